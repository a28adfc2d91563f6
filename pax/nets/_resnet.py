"""Residual networks: ``ResNet`` and ``ResNet18/34/50/101/152/200``.

Haiku's architecture (He et al. 2015, v1; and the pre-activation v2 of He et
al. 2016), with sizes explicit and the module's mode in place of
``is_training``. The structure mirrors Haiku's one module for one module:

=====================================  =======================================
PAX attribute path                     Haiku module name
=====================================  =======================================
``initial_conv``                       ``initial_conv``
``initial_batchnorm`` (v1 only)        ``initial_batchnorm``
``block_groups[i]``                    ``block_group_{i}``
``block_groups[i].blocks[j]``          ``block_group_{i}/~/block_{j}``
``...blocks[j].conv_{k}``              ``.../block_{j}/~/conv_{k}``
``...blocks[j].batchnorm_{k}``         ``.../block_{j}/~/batchnorm_{k}``
``...blocks[j].proj_conv``             ``.../block_{j}/~/shortcut_conv``
``...blocks[j].proj_batchnorm`` (v1)   ``.../block_{j}/~/shortcut_batchnorm``
``final_batchnorm`` (v2 only)          ``final_batchnorm``
``logits``                             ``logits``
=====================================  =======================================

Attributes a configuration does not use (``conv_2`` without a bottleneck, the
projection of a block without one, ``initial_batchnorm`` in v2,
``final_batchnorm`` in v1) are ``None``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax

from .._core.module import Module
from ..initializers import zeros
from ..nn._batch_norm import BatchNorm
from ..nn._conv import Conv2D
from ..nn._linear import Linear
from ..nn._utils import (
    as_array,
    positive_int,
    replicate,
    rng_key_or_next,
    split_key,
    who,
)
from ._arch import (
    RESNET_BN_DEFAULTS,
    RESNET_CONFIGS,
    RESNET_INITIAL_CONV_DEFAULTS,
    ResNetBlockSpec,
    Stride,
    resnet_forward,
)

# Keyword arguments each config may forward (the input size, data format and
# rng key are the network's to set).
_BN_KEYS = (
    "create_scale",
    "create_offset",
    "decay_rate",
    "eps",
    "scale_init",
    "offset_init",
    "cross_replica_axis",
    "cross_replica_axis_index_groups",
)
_CONV_KEYS = (
    "out_features",
    "kernel_shape",
    "stride",
    "rate",
    "padding",
    "with_bias",
    "w_init",
    "b_init",
    "mask",
    "feature_group_count",
    "name",
)
_LINEAR_KEYS = ("with_bias", "w_init", "b_init", "name")
# Haiku spellings that have another name here, for a helpful error.
_HAIKU_SPELLINGS = {"output_channels": "out_features", "output_size": "num_classes"}


def config_dict(
    config: Mapping[str, Any] | None, allowed: Sequence[str], name: str, owner: str
) -> dict[str, Any]:
    """``config`` as a dict, after checking that every key is in ``allowed``."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(
            f"{owner}: `{name}` must be a mapping of keyword arguments or None, "
            f"got {config!r}"
        )
    for key in config:
        if key not in allowed:
            hint = ""
            if key in _HAIKU_SPELLINGS:
                hint = f" (Haiku's `{key}` is `{_HAIKU_SPELLINGS[key]}` here)"
            raise ValueError(
                f"{owner}: unknown key {key!r} in `{name}`{hint}; allowed keys: "
                f"{', '.join(allowed)}"
            )
    return dict(config)


def check_image(x: Any, channels: int, owner: str) -> jax.Array:
    """``x`` as an array, checked to be ``[N, H, W, channels]``."""
    x = as_array(x, owner)
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(
            f"{owner}: expected NHWC input of shape [N, H, W, {channels}], got "
            f"shape {tuple(x.shape)}"
        )
    return x


def _length4(value: Any, name: str, owner: str) -> tuple:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"{owner}: `{name}` must be a sequence of length 4, got {value!r}"
        )
    if len(value) != 4:
        raise ValueError(
            f"{owner}: `{name}` must be a sequence of length 4, got {value!r} "
            f"(length {len(value)})"
        )
    return tuple(value)


def check_stride(stride: Any, name: str, owner: str) -> Stride:
    """A positive int or a pair of them, returned as given (int or tuple)."""
    values = replicate(stride, 2, name, owner)
    return values if isinstance(stride, Sequence) else values[0]


class _Block(Module):
    """What the v1 and v2 blocks share: construction from
    :class:`ResNetBlockSpec`, the layer list and the forward pass."""

    _v2: bool  # the pre-activation form

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: Stride,
        use_projection: bool,
        bn_config: Mapping[str, Any] | None = None,
        bottleneck: bool = True,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels", owner)
        self.channels = positive_int(channels, "channels", owner)
        self.stride = check_stride(stride, "stride", owner)
        self.use_projection = bool(use_projection)
        self.bottleneck = bool(bottleneck)
        spec = self.spec
        bn = spec.bn_config(config_dict(bn_config, _BN_KEYS, "bn_config", owner))
        if self.bottleneck and self.channels < 4:
            raise ValueError(
                f"{owner}: a bottleneck block needs `channels` >= 4 (its inner "
                f"convolutions have channels // 4), got {self.channels}"
            )
        if not self.use_projection and self.in_channels != self.channels:
            raise ValueError(
                f"{owner}: without a projection the shortcut adds the input to "
                f"the output, so `in_channels` (={self.in_channels}) must equal "
                f"`channels` (={self.channels}); set `use_projection=True`"
            )
        keys = split_key(rng_key_or_next(rng_key), 8)

        def conv(key, cin, cout, kernel, s):
            return Conv2D(
                cin,
                cout,
                kernel,
                stride=s,
                with_bias=False,
                padding="SAME",
                rng_key=key,
            )

        self.proj_conv = self.proj_batchnorm = None
        if self.use_projection:
            self.proj_conv = conv(keys[0], self.in_channels, self.channels, 1, stride)
        if spec.projection_norm:
            self.proj_batchnorm = BatchNorm(self.channels, rng_key=keys[1], **bn)
        cin = self.in_channels
        for k, layer in enumerate(spec.layers):
            cout = layer.out_channels
            conv_k = conv(keys[2 + 2 * k], cin, cout, layer.kernel_shape, layer.stride)
            setattr(self, f"conv_{k}", conv_k)
            # v2 normalizes a convolution's input, v1 its output; a zero scale
            # wins over the config's `scale_init` (the branch starts at zero)
            bn_k = dict(bn, scale_init=zeros) if layer.zero_scale else bn
            norm = BatchNorm(cin if self._v2 else cout, rng_key=keys[3 + 2 * k], **bn_k)
            setattr(self, f"batchnorm_{k}", norm)
            cin = cout
        if not self.bottleneck:
            self.conv_2 = self.batchnorm_2 = None

    @property
    def spec(self) -> ResNetBlockSpec:
        """The block's structure (shared with ``pax.hk.nets``)."""
        return ResNetBlockSpec(
            self.channels, self.stride, self.use_projection, self.bottleneck, self._v2
        )

    @property
    def layers(self) -> tuple[tuple[Conv2D, BatchNorm], ...]:
        """The ``(conv_k, batchnorm_k)`` pairs, in order (two or three)."""
        pairs = ((self.conv_0, self.batchnorm_0), (self.conv_1, self.batchnorm_1))
        if self.conv_2 is not None:
            pairs = (*pairs, (self.conv_2, self.batchnorm_2))
        return pairs

    def __call__(self, x: jax.Array, *, test_local_stats: bool = False) -> jax.Array:
        """``[N, H, W, in_channels] -> [N, H', W', channels]``."""
        x = check_image(x, self.in_channels, who(self))

        def norm(bn):
            return functools.partial(bn, test_local_stats=test_local_stats)

        projection = self.proj_conv
        if self.proj_batchnorm is not None:
            projection = lambda y: norm(self.proj_batchnorm)(self.proj_conv(y))
        layers = [(conv, norm(bn)) for conv, bn in self.layers]
        with jax.named_scope(f"pax.nets.ResNet.{type(self).__name__}"):
            return self.spec.apply(x, layers, projection, self._add)

    def _add(self, out: jax.Array, shortcut: jax.Array) -> jax.Array:
        if out.shape != shortcut.shape:
            raise ValueError(
                f"{who(self)}: the residual branch gives shape {tuple(out.shape)} "
                f"but the shortcut {tuple(shortcut.shape)}; a block that changes "
                "the spatial size (stride > 1) needs `use_projection=True`"
            )
        return out + shortcut


class BlockV1(_Block):
    """A ResNet v1 block (post-activation), with an optional bottleneck.

    Basic block: ``conv_0`` (3x3, ``stride``) and ``conv_1`` (3x3), each
    followed by batch norm, ``relu`` between them. Bottleneck block: ``conv_0``
    (1x1, ``channels // 4``), ``conv_1`` (3x3, ``channels // 4``, ``stride``),
    ``conv_2`` (1x1, ``channels``), each followed by batch norm, ``relu``
    between them; ``batchnorm_2`` starts with a zero scale. The shortcut is
    the input, or ``proj_batchnorm(proj_conv(x))`` (1x1, ``stride``) with a
    projection. Output: ``relu(branch + shortcut)``. No convolution has a bias.

    Args:
      in_channels: channels ``C`` of the input.
      channels: channels of the output.
      stride: stride of the block (an int or a pair).
      use_projection: project the shortcut; needed when ``C != channels`` or
        ``stride > 1``.
      bn_config: keyword arguments for every :class:`pax.nn.BatchNorm` (keys
        ``create_scale``, ``create_offset``, ``decay_rate``, ``eps``,
        ``scale_init``, ``offset_init``, ``cross_replica_axis``,
        ``cross_replica_axis_index_groups``); Haiku's block defaults:
        ``decay_rate=0.999``, scale and offset created.
      bottleneck: use the bottleneck form.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]``, output ``[N, ceil(H / s), ceil(W / s), channels]``.
    In training mode a call updates batch statistics (use ``pax.purecall``).
    """

    _v2 = False


class BlockV2(_Block):
    """A ResNet v2 block (pre-activation), with an optional bottleneck.

    Same convolutions as :class:`BlockV1`, but each is preceded by batch norm
    and ``relu`` (``batchnorm_k`` normalizes ``conv_k``'s input), the
    projection ``proj_conv`` reads the first normalized activation, there is no
    ``proj_batchnorm`` and no final ``relu``: output ``branch + shortcut``.
    Every batch norm starts with a unit scale.

    Args:
      in_channels: channels ``C`` of the input.
      channels: channels of the output.
      stride: stride of the block (an int or a pair).
      use_projection: project the shortcut; needed when ``C != channels`` or
        ``stride > 1``.
      bn_config: keyword arguments for every :class:`pax.nn.BatchNorm` (see
        :class:`BlockV1`); scale and offset are created by default.
      bottleneck: use the bottleneck form.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]``, output ``[N, ceil(H / s), ceil(W / s), channels]``.
    In training mode a call updates batch statistics (use ``pax.purecall``).
    """

    _v2 = True


class BlockGroup(Module):
    """``num_blocks`` ResNet blocks in a row; the first one carries the stride
    and (optionally) the projection.

    Args:
      in_channels: channels ``C`` of the input.
      channels: channels of every block's output.
      num_blocks: number of blocks (>= 1), stored in ``blocks``.
      stride: stride of the first block (an int or a pair).
      bn_config: keyword arguments for the batch norms (see :class:`BlockV1`).
      resnet_v2: use :class:`BlockV2` instead of :class:`BlockV1`.
      bottleneck: use bottleneck blocks.
      use_projection: give the first block a projection shortcut.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]``, output ``[N, ceil(H / s), ceil(W / s), channels]``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        num_blocks: int,
        stride: Stride,
        bn_config: Mapping[str, Any] | None,
        resnet_v2: bool,
        bottleneck: bool,
        use_projection: bool,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels", owner)
        self.channels = positive_int(channels, "channels", owner)
        num_blocks = positive_int(num_blocks, "num_blocks", owner)
        block_cls = BlockV2 if resnet_v2 else BlockV1
        specs = ResNetBlockSpec.group(
            self.channels, num_blocks, stride, use_projection, bottleneck, resnet_v2
        )
        keys = split_key(rng_key_or_next(rng_key), num_blocks)
        self.blocks = tuple(
            block_cls(
                self.in_channels if i == 0 else self.channels,
                self.channels,
                spec.stride,
                use_projection=spec.use_projection,
                bn_config=bn_config,
                bottleneck=bottleneck,
                rng_key=keys[i],
            )
            for i, spec in enumerate(specs)
        )

    def __call__(self, x: jax.Array, *, test_local_stats: bool = False) -> jax.Array:
        """``[N, H, W, in_channels] -> [N, H', W', channels]``."""
        for block in self.blocks:
            x = block(x, test_local_stats=test_local_stats)
        return x


class ResNet(Module):
    """A ResNet (v1 or v2) image classifier, Haiku's ``hk.nets.ResNet``.

    Layers: ``initial_conv`` (7x7, stride 2, 64 channels, no bias, by
    default), then in v1 ``initial_batchnorm`` and ``relu``; a 3x3 max pool
    with stride 2 (``"SAME"``); four :class:`BlockGroup` (``block_groups``);
    in v2 ``final_batchnorm`` and ``relu``; the mean over height and width;
    ``logits``, a :class:`pax.nn.Linear` whose weight starts at zero.

    Args:
      input_channels: channels ``C`` of the input image.
      blocks_per_group: 4 positive ints, the blocks in each group.
      num_classes: size of the output.
      bn_config: keyword arguments for every :class:`pax.nn.BatchNorm` (keys
        ``create_scale``, ``create_offset``, ``decay_rate``, ``eps``,
        ``scale_init``, ``offset_init``, ``cross_replica_axis``,
        ``cross_replica_axis_index_groups``). Defaults: ``decay_rate=0.9``,
        ``eps=1e-5``, scale and offset created. In v1 bottleneck blocks the
        last batch norm starts with a zero scale whatever ``scale_init`` says.
      resnet_v2: use the pre-activation (v2) blocks.
      bottleneck: use bottleneck blocks (1x1, 3x3, 1x1 with ``channels // 4``
        inner channels) instead of basic ones (3x3, 3x3).
      channels_per_group: 4 positive ints, the output channels of each group
        (at least 4 with a bottleneck).
      use_projection: 4 bools, whether each group's first block projects its
        shortcut (required where the channels change).
      logits_config: keyword arguments for the :class:`pax.nn.Linear` logits
        layer (``with_bias``, ``w_init``, ``b_init``, ``name``); ``w_init``
        defaults to zeros.
      initial_conv_config: keyword arguments for the initial
        :class:`pax.nn.Conv2D` (``out_features``, ``kernel_shape``, ``stride``,
        ``rate``, ``padding``, ``with_bias``, ``w_init``, ``b_init``, ``mask``,
        ``feature_group_count``, ``name``); defaults ``out_features=64``,
        ``kernel_shape=7``, ``stride=2``, ``with_bias=False``,
        ``padding="SAME"``.
      strides: 4 strides (ints or pairs), one for each group's first block.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]`` (NHWC), output logits ``[N, num_classes]`` in the
    input's floating dtype. In training mode (the default) a call updates the
    batch-norm statistics, so it goes through ``pax.purecall``; after
    ``net.eval()`` the running averages are used and a call is plain.
    Trainable: convolution weights, batch-norm scales and offsets, logits
    weight and bias. State: batch-norm running averages.

    >>> import jax, jax.numpy as jnp, pax
    >>> net = pax.nets.ResNet(
    ...     3, (1, 1, 1, 1), 10, bottleneck=False,
    ...     channels_per_group=(8, 8, 8, 8), use_projection=(False, True, True, True),
    ...     initial_conv_config={"out_features": 8},
    ...     rng_key=jax.random.PRNGKey(0))
    >>> x = jnp.ones((2, 16, 16, 3))
    >>> net, logits = pax.purecall(net, x)    # training: updates statistics
    >>> logits.shape
    (2, 10)
    >>> net.eval()(x).shape                   # eval: a plain call
    (2, 10)
    """

    # Haiku's configurations and defaults; pax.hk.nets.ResNet reads these
    CONFIGS = RESNET_CONFIGS
    BN_DEFAULTS = RESNET_BN_DEFAULTS
    INITIAL_CONV_DEFAULTS = RESNET_INITIAL_CONV_DEFAULTS

    BlockGroup = BlockGroup
    BlockV1 = BlockV1
    BlockV2 = BlockV2

    def __init__(
        self,
        input_channels: int,
        blocks_per_group: Sequence[int],
        num_classes: int,
        bn_config: Mapping[str, Any] | None = None,
        resnet_v2: bool = False,
        bottleneck: bool = True,
        channels_per_group: Sequence[int] = (256, 512, 1024, 2048),
        use_projection: Sequence[bool] = (True, True, True, True),
        logits_config: Mapping[str, Any] | None = None,
        initial_conv_config: Mapping[str, Any] | None = None,
        strides: Sequence[Stride] = (1, 2, 2, 2),
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.input_channels = positive_int(input_channels, "input_channels", owner)
        self.num_classes = positive_int(num_classes, "num_classes", owner)
        self.resnet_v2 = bool(resnet_v2)
        self.bottleneck = bool(bottleneck)
        self.blocks_per_group = tuple(
            positive_int(n, "blocks_per_group", owner)
            for n in _length4(blocks_per_group, "blocks_per_group", owner)
        )
        self.channels_per_group = tuple(
            positive_int(c, "channels_per_group", owner)
            for c in _length4(channels_per_group, "channels_per_group", owner)
        )
        self.use_projection = tuple(
            bool(p) for p in _length4(use_projection, "use_projection", owner)
        )
        self.strides = tuple(
            check_stride(s, "strides", owner)
            for s in _length4(strides, "strides", owner)
        )
        if self.bottleneck and min(self.channels_per_group) < 4:
            raise ValueError(
                f"{owner}: bottleneck blocks need every `channels_per_group` "
                f">= 4 (inner convolutions have channels // 4), got "
                f"{self.channels_per_group}"
            )

        bn = config_dict(bn_config, _BN_KEYS, "bn_config", owner)
        bn = {**RESNET_BN_DEFAULTS, **bn}
        logits_kw = config_dict(logits_config, _LINEAR_KEYS, "logits_config", owner)
        logits_kw.setdefault("w_init", zeros)
        conv_kw = config_dict(
            initial_conv_config, _CONV_KEYS, "initial_conv_config", owner
        )
        conv_kw = {"out_features": 64, **RESNET_INITIAL_CONV_DEFAULTS, **conv_kw}

        # check every shortcut before building anything
        in_channels = positive_int(
            conv_kw["out_features"], "initial_conv_config['out_features']", owner
        )
        for i, channels in enumerate(self.channels_per_group):
            if not self.use_projection[i] and in_channels != channels:
                raise ValueError(
                    f"{owner}: group {i} gets {in_channels} channels but outputs "
                    f"channels_per_group[{i}]={channels}; its first block needs "
                    f"a projection (use_projection[{i}]=True)"
                )
            if not self.use_projection[i] and self.strides[i] not in (1, (1, 1)):
                raise ValueError(
                    f"{owner}: group {i} has stride {self.strides[i]}, which "
                    "changes the spatial size, so its first block's shortcut "
                    f"needs a projection (use_projection[{i}]=True) or "
                    f"strides[{i}]=1"
                )
            in_channels = channels

        keys = split_key(rng_key_or_next(rng_key), 8)
        self.initial_conv = Conv2D(self.input_channels, rng_key=keys[0], **conv_kw)
        c = self.initial_conv.out_features
        self.initial_batchnorm = (
            None if self.resnet_v2 else BatchNorm(c, rng_key=keys[1], **bn)
        )
        groups = []
        for i in range(4):
            groups.append(
                BlockGroup(
                    c,
                    self.channels_per_group[i],
                    self.blocks_per_group[i],
                    self.strides[i],
                    bn_config=bn,
                    resnet_v2=self.resnet_v2,
                    bottleneck=self.bottleneck,
                    use_projection=self.use_projection[i],
                    rng_key=keys[2 + i],
                )
            )
            c = self.channels_per_group[i]
        self.block_groups = tuple(groups)
        self.final_batchnorm = (
            BatchNorm(c, rng_key=keys[6], **bn) if self.resnet_v2 else None
        )
        self.logits = Linear(c, self.num_classes, rng_key=keys[7], **logits_kw)

    def __call__(self, x: jax.Array, *, test_local_stats: bool = False) -> jax.Array:
        """``[N, H, W, input_channels] -> [N, num_classes]``.

        Args:
          x: a batch of NHWC images.
          test_local_stats: in eval mode, normalize with the batch's own
            statistics instead of the running averages (Haiku's flag).
        """
        x = check_image(x, self.input_channels, who(self))
        with jax.named_scope(f"pax.nets.{type(self).__name__}"):
            return resnet_forward(
                x,
                self.initial_conv,
                self._norm(self.initial_batchnorm, test_local_stats),
                [
                    functools.partial(g, test_local_stats=test_local_stats)
                    for g in self.block_groups
                ],
                self._norm(self.final_batchnorm, test_local_stats),
                self.logits,
            )

    @staticmethod
    def _norm(bn: BatchNorm | None, test_local_stats: bool):
        if bn is None:
            return None
        return functools.partial(bn, test_local_stats=test_local_stats)


class _ResNetPreset(ResNet):
    """A :class:`ResNet` with one of Haiku's configurations (``CONFIGS``):
    ``ResNet18(input_channels, num_classes, bn_config=None, resnet_v2=False,
    logits_config=None, initial_conv_config=None, strides=(1, 2, 2, 2))``,
    and the same for 34, 50, 101, 152 and 200. ResNet-18 and 34 have basic
    blocks at ``channels_per_group=(64, 128, 256, 512)`` and no projection in
    the first group; the others bottleneck blocks at ``(256, 512, 1024,
    2048)`` and projections everywhere. Input ``[N, H, W, C]``, output
    ``[N, num_classes]``; see :class:`ResNet`.

    Counting the parameters without allocating them:

    >>> import jax, pax
    >>> def count(cls):
    ...     shapes = jax.eval_shape(
    ...         lambda k: cls(3, 1000, rng_key=k).parameters(), jax.random.PRNGKey(0))
    ...     return sum(x.size for x in jax.tree_util.tree_leaves(shapes))
    >>> [count(getattr(pax.nets, f"ResNet{d}")) for d in (18, 34, 50)]
    [11689512, 21797672, 25557032]
    >>> [count(getattr(pax.nets, f"ResNet{d}")) for d in (101, 152, 200)]
    [44549160, 60192808, 64673832]
    """

    _depth: int  # the key of ``ResNet.CONFIGS``

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        bn_config: Mapping[str, Any] | None = None,
        resnet_v2: bool = False,
        logits_config: Mapping[str, Any] | None = None,
        initial_conv_config: Mapping[str, Any] | None = None,
        strides: Sequence[Stride] = (1, 2, 2, 2),
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        """Build the network (the other arguments are fixed by ``CONFIGS``).

        Args:
          input_channels: channels ``C`` of the input image.
          num_classes: size of the output.
          bn_config: keyword arguments for the batch norms (see
            :class:`ResNet`; default ``decay_rate=0.9``, ``eps=1e-5``).
          resnet_v2: use the pre-activation (v2) blocks.
          logits_config: keyword arguments for the logits layer (see
            :class:`ResNet`); its weight starts at zero by default.
          initial_conv_config: keyword arguments for the initial convolution
            (default 7x7, stride 2, 64 channels, no bias).
          strides: 4 strides, one for each group's first block.
          rng_key: key for the initializers; ``None`` draws
            ``pax.next_rng_key()``.
          name: optional module name.
        """
        super().__init__(
            input_channels,
            num_classes=num_classes,
            bn_config=bn_config,
            resnet_v2=resnet_v2,
            logits_config=logits_config,
            initial_conv_config=initial_conv_config,
            strides=strides,
            rng_key=rng_key,
            name=name,
            **ResNet.CONFIGS[self._depth],
        )


class ResNet18(_ResNetPreset):
    """ResNet-18: :class:`ResNet` with ``CONFIGS[18]`` (basic blocks,
    ``blocks_per_group=(2, 2, 2, 2)``); 11,689,512 parameters for 3 input
    channels and 1000 classes."""

    _depth = 18


class ResNet34(_ResNetPreset):
    """ResNet-34: :class:`ResNet` with ``CONFIGS[34]`` (basic blocks,
    ``blocks_per_group=(3, 4, 6, 3)``); 21,797,672 parameters for 3 input
    channels and 1000 classes."""

    _depth = 34


class ResNet50(_ResNetPreset):
    """ResNet-50: :class:`ResNet` with ``CONFIGS[50]`` (bottleneck blocks,
    ``blocks_per_group=(3, 4, 6, 3)``); 25,557,032 parameters for 3 input
    channels and 1000 classes."""

    _depth = 50


class ResNet101(_ResNetPreset):
    """ResNet-101: :class:`ResNet` with ``CONFIGS[101]`` (bottleneck blocks,
    ``blocks_per_group=(3, 4, 23, 3)``); 44,549,160 parameters for 3 input
    channels and 1000 classes."""

    _depth = 101


class ResNet152(_ResNetPreset):
    """ResNet-152: :class:`ResNet` with ``CONFIGS[152]`` (bottleneck blocks,
    ``blocks_per_group=(3, 8, 36, 3)``); 60,192,808 parameters for 3 input
    channels and 1000 classes."""

    _depth = 152


class ResNet200(_ResNetPreset):
    """ResNet-200: :class:`ResNet` with ``CONFIGS[200]`` (bottleneck blocks,
    ``blocks_per_group=(3, 24, 36, 3)``); 64,673,832 parameters for 3 input
    channels and 1000 classes."""

    _depth = 200

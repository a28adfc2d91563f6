"""``hk.nets.ResNet`` and ``ResNet18`` ... ``ResNet200``: Haiku's ResNets
(v1 and v2, plain or bottleneck blocks).

The architecture is ``pax.nets``': the block layouts come from
:class:`pax.nets.ResNetBlockSpec`, the configurations and defaults from
``pax.nets.ResNet``, the order of the layers from its forward functions. What
is left here is Haiku's side of it: ``pax.hk`` layers (lazy input sizes,
Haiku's module names and ``is_training`` flags), Haiku's signatures and
argument spellings (``output_channels``, ``name`` in the configs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

from ... import nets
from .._conv import Conv2D
from .._linear import Linear
from .._module import Module
from .._norm import BatchNorm


def _conv(channels: int, kernel: int, stride, name: str) -> Conv2D:
    return Conv2D(
        output_channels=channels,
        kernel_shape=kernel,
        stride=stride,
        with_bias=False,
        padding="SAME",
        name=name,
    )


def with_flags(layer, *flags):
    """``layer`` with Haiku's flags (``is_training``, ...) bound, the
    one-argument callable that ``pax.nets``' forward functions take; ``None``
    stays ``None``. The flags are passed positionally, as Haiku passes them
    (method interceptors see the same arguments)."""
    if layer is None:
        return None
    return lambda x: layer(x, *flags)


class _Block(Module):
    """Haiku's ResNet block, laid out by :class:`pax.nets.ResNetBlockSpec`:
    ``shortcut_conv`` (+ ``shortcut_batchnorm`` in v1) with a projection, then
    ``conv_k`` / ``batchnorm_k`` pairs in ``layers``.

    ``__call__(inputs, is_training, test_local_stats)``:
    ``[N, H, W, C] -> [N, H', W', channels]``.
    """

    _v2: bool  # the pre-activation form

    def __init__(
        self,
        channels: int,
        stride: int | Sequence[int],
        use_projection: bool,
        bn_config: Mapping[str, Any],
        bottleneck: bool,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.use_projection = use_projection
        self._spec = nets.ResNetBlockSpec(
            channels, stride, use_projection, bottleneck, self._v2
        )
        bn_config = self._spec.bn_config(bn_config)
        if use_projection:
            self.proj_conv = _conv(channels, 1, stride, "shortcut_conv")
        if self._spec.projection_norm:
            self.proj_batchnorm = BatchNorm(name="shortcut_batchnorm", **bn_config)
        layers = []
        for k, layer in enumerate(self._spec.layers):
            conv = _conv(
                layer.out_channels, layer.kernel_shape, layer.stride, f"conv_{k}"
            )
            # Haiku passes the zero scale beside **bn_config, so a config with
            # its own `scale_init` is a TypeError there and here
            zero = {"scale_init": jnp.zeros} if layer.zero_scale else {}
            layers.append((conv, BatchNorm(name=f"batchnorm_{k}", **zero, **bn_config)))
        self.layers = tuple(layers)

    def __call__(self, inputs, is_training, test_local_stats):
        def norm(bn):
            return with_flags(bn, is_training, test_local_stats)

        projection = None
        if self.use_projection:
            projection = self.proj_conv
        if self._spec.projection_norm:
            projection = lambda x: norm(self.proj_batchnorm)(self.proj_conv(x))
        layers = [(conv, norm(bn)) for conv, bn in self.layers]
        return self._spec.apply(inputs, layers, projection)


class BlockV1(_Block):
    """Haiku's ResNet v1 block (post-activation); see
    :class:`pax.nets.ResNetBlockSpec`. Its batch norms default to
    ``decay_rate=0.999``; a bottleneck's last one starts with a zero scale."""

    _v2 = False


class BlockV2(_Block):
    """Haiku's ResNet v2 block (pre-activation); see
    :class:`pax.nets.ResNetBlockSpec`. No batch norm on the shortcut."""

    _v2 = True


class BlockGroup(Module):
    """Haiku's group of ``num_blocks`` blocks ``block_0``, ``block_1``, ...;
    only the first is strided and (if ``use_projection``) projects."""

    def __init__(
        self,
        channels: int,
        num_blocks: int,
        stride: int | Sequence[int],
        bn_config: Mapping[str, Any],
        resnet_v2: bool,
        bottleneck: bool,
        use_projection: bool,
        name: str | None = None,
    ):
        super().__init__(name=name)
        block_cls = BlockV2 if resnet_v2 else BlockV1
        specs = nets.ResNetBlockSpec.group(
            channels, num_blocks, stride, use_projection, bottleneck, resnet_v2
        )
        self.blocks = [
            block_cls(
                channels=spec.channels,
                stride=spec.stride,
                use_projection=spec.use_projection,
                bottleneck=bottleneck,
                bn_config=bn_config,
                name=f"block_{i}",
            )
            for i, spec in enumerate(specs)
        ]

    def __call__(self, inputs, is_training, test_local_stats):
        out = inputs
        for block in self.blocks:
            out = block(out, is_training, test_local_stats)
        return out


def _check_length(length, value, name):
    if len(value) != length:
        raise ValueError(f"`{name}` must be of length 4 not {len(value)}")


class ResNet(Module):
    """Haiku's ``ResNet``; the layers and defaults of :class:`pax.nets.ResNet`
    (``initial_conv``, ``initial_batchnorm`` in v1, ``block_group_i``,
    ``final_batchnorm`` in v2, ``logits``), with Haiku's signature: the
    configs take Haiku's keyword arguments (``output_channels``, ``name``).

    ``__call__(inputs, is_training, test_local_stats=False)``:
    ``[N, H, W, C] -> [N, num_classes]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet18(3)(x, True))
    >>> x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)  # no compute
    >>> params["res_net18/~/block_group_1/~/block_0/~/shortcut_conv"]["w"].shape
    (1, 1, 64, 128)
    """

    CONFIGS = nets.ResNet.CONFIGS
    BlockGroup = BlockGroup
    BlockV1 = BlockV1
    BlockV2 = BlockV2

    def __init__(
        self,
        blocks_per_group: Sequence[int],
        num_classes: int,
        bn_config: Mapping[str, Any] | None = None,
        resnet_v2: bool = False,
        bottleneck: bool = True,
        channels_per_group: Sequence[int] = (256, 512, 1024, 2048),
        use_projection: Sequence[bool] = (True, True, True, True),
        logits_config: Mapping[str, Any] | None = None,
        name: str | None = None,
        initial_conv_config: Mapping[str, Any] | None = None,
        strides: Sequence[int] = (1, 2, 2, 2),
    ):
        super().__init__(name=name)
        self.resnet_v2 = resnet_v2
        bn_config = {**nets.ResNet.BN_DEFAULTS, **(bn_config or {})}
        logits_config = {"w_init": jnp.zeros, "name": "logits", **(logits_config or {})}
        _check_length(4, blocks_per_group, "blocks_per_group")
        _check_length(4, channels_per_group, "channels_per_group")
        _check_length(4, strides, "strides")
        self.initial_conv = Conv2D(
            **{
                "output_channels": 64,
                **nets.ResNet.INITIAL_CONV_DEFAULTS,
                "name": "initial_conv",
                **(initial_conv_config or {}),
            }
        )
        if not resnet_v2:
            self.initial_batchnorm = BatchNorm(name="initial_batchnorm", **bn_config)
        self.block_groups = [
            BlockGroup(
                channels=channels_per_group[i],
                num_blocks=blocks_per_group[i],
                stride=stride,
                bn_config=bn_config,
                resnet_v2=resnet_v2,
                bottleneck=bottleneck,
                use_projection=use_projection[i],
                name=f"block_group_{i}",
            )
            for i, stride in enumerate(strides)
        ]
        if resnet_v2:
            self.final_batchnorm = BatchNorm(name="final_batchnorm", **bn_config)
        self.logits = Linear(num_classes, **logits_config)

    def __call__(self, inputs, is_training, test_local_stats=False):
        flags = (is_training, test_local_stats)
        return nets.resnet_forward(
            inputs,
            self.initial_conv,
            with_flags(getattr(self, "initial_batchnorm", None), *flags),
            [with_flags(group, *flags) for group in self.block_groups],
            with_flags(getattr(self, "final_batchnorm", None), *flags),
            self.logits,
        )


class _ResNetPreset(ResNet):
    """A :class:`ResNet` with one of ``ResNet.CONFIGS`` (as ``pax.nets``)."""

    _depth: int  # the key of ``ResNet.CONFIGS``

    def __init__(
        self,
        num_classes: int,
        bn_config: Mapping[str, Any] | None = None,
        resnet_v2: bool = False,
        logits_config: Mapping[str, Any] | None = None,
        name: str | None = None,
        initial_conv_config: Mapping[str, Any] | None = None,
        strides: Sequence[int] = (1, 2, 2, 2),
    ):
        super().__init__(
            num_classes=num_classes,
            bn_config=bn_config,
            initial_conv_config=initial_conv_config,
            resnet_v2=resnet_v2,
            strides=strides,
            logits_config=logits_config,
            name=name,
            **ResNet.CONFIGS[self._depth],
        )


class ResNet18(_ResNetPreset):
    """Haiku's ``ResNet18``: :class:`ResNet` with ``ResNet.CONFIGS[18]``."""

    _depth = 18


class ResNet34(_ResNetPreset):
    """Haiku's ``ResNet34``: :class:`ResNet` with ``ResNet.CONFIGS[34]``."""

    _depth = 34


class ResNet50(_ResNetPreset):
    """Haiku's ``ResNet50``: :class:`ResNet` with ``ResNet.CONFIGS[50]``."""

    _depth = 50


class ResNet101(_ResNetPreset):
    """Haiku's ``ResNet101``: :class:`ResNet` with ``ResNet.CONFIGS[101]``."""

    _depth = 101


class ResNet152(_ResNetPreset):
    """Haiku's ``ResNet152``: :class:`ResNet` with ``ResNet.CONFIGS[152]``."""

    _depth = 152


class ResNet200(_ResNetPreset):
    """Haiku's ``ResNet200``: :class:`ResNet` with ``ResNet.CONFIGS[200]``."""

    _depth = 200

"""``hk.nets.ResNet`` and ``ResNet18`` ... ``ResNet200``: Haiku's ResNets
(v1 and v2, plain or bottleneck blocks), built from ``pax.hk`` layers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .._conv import Conv2D
from .._linear import Linear
from .._module import Module
from .._norm import BatchNorm
from .._pool import max_pool


def _conv(channels, kernel, stride, name):
    return Conv2D(
        output_channels=channels,
        kernel_shape=kernel,
        stride=stride,
        with_bias=False,
        padding="SAME",
        name=name,
    )


def _block_layers(channels, stride, bn_config, bottleneck, last_scale_init=None):
    """The ``(conv_i, batchnorm_i)`` pairs shared by both block versions: a
    bottleneck has 1x1 -> 3x3 (strided) -> 1x1 at ``channels // 4`` inside;
    otherwise two 3x3 convolutions, the first strided."""
    inner = channels // 4 if bottleneck else channels
    layers = [
        (
            _conv(inner, 1 if bottleneck else 3, 1 if bottleneck else stride, "conv_0"),
            BatchNorm(name="batchnorm_0", **bn_config),
        ),
        (
            _conv(inner, 3, stride if bottleneck else 1, "conv_1"),
            BatchNorm(name="batchnorm_1", **bn_config),
        ),
    ]
    if bottleneck:
        extra = {} if last_scale_init is None else {"scale_init": last_scale_init}
        layers.append(
            (
                _conv(channels, 1, 1, "conv_2"),
                BatchNorm(name="batchnorm_2", **extra, **bn_config),
            )
        )
    return tuple(layers)


class BlockV1(Module):
    """Haiku's ResNet v1 block (post-activation): conv -> batch norm -> relu,
    the last batch norm (zero-initialised scale in a bottleneck) added to the
    shortcut (``shortcut_conv`` + ``shortcut_batchnorm`` when
    ``use_projection``) before the final relu."""

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
        bn_config = dict(bn_config)
        bn_config.setdefault("create_scale", True)
        bn_config.setdefault("create_offset", True)
        bn_config.setdefault("decay_rate", 0.999)
        if use_projection:
            self.proj_conv = _conv(channels, 1, stride, "shortcut_conv")
            self.proj_batchnorm = BatchNorm(name="shortcut_batchnorm", **bn_config)
        self.layers = _block_layers(
            channels, stride, bn_config, bottleneck, last_scale_init=jnp.zeros
        )

    def __call__(self, inputs, is_training, test_local_stats):
        out = shortcut = inputs
        if self.use_projection:
            shortcut = self.proj_conv(shortcut)
            shortcut = self.proj_batchnorm(shortcut, is_training, test_local_stats)
        last = len(self.layers) - 1
        for i, (conv, bn) in enumerate(self.layers):
            out = bn(conv(out), is_training, test_local_stats)
            if i < last:
                out = jax.nn.relu(out)
        return jax.nn.relu(out + shortcut)


class BlockV2(Module):
    """Haiku's ResNet v2 block (pre-activation): batch norm -> relu -> conv per
    layer; with ``use_projection`` the shortcut is ``shortcut_conv`` of the
    first activation. No batch norm on the shortcut, no final relu."""

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
        bn_config = dict(bn_config)
        bn_config.setdefault("create_scale", True)
        bn_config.setdefault("create_offset", True)
        if use_projection:
            self.proj_conv = _conv(channels, 1, stride, "shortcut_conv")
        self.layers = _block_layers(channels, stride, bn_config, bottleneck)

    def __call__(self, inputs, is_training, test_local_stats):
        x = shortcut = inputs
        for i, (conv, bn) in enumerate(self.layers):
            x = jax.nn.relu(bn(x, is_training, test_local_stats))
            if i == 0 and self.use_projection:
                shortcut = self.proj_conv(x)
            x = conv(x)
        return x + shortcut


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
        self.blocks = [
            block_cls(
                channels=channels,
                stride=stride if i == 0 else 1,
                use_projection=i == 0 and use_projection,
                bottleneck=bottleneck,
                bn_config=bn_config,
                name=f"block_{i}",
            )
            for i in range(num_blocks)
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
    """Haiku's ``ResNet``: ``initial_conv`` (7x7 stride 2, 64 channels, no
    bias by default; ``initial_conv_config`` overrides), ``initial_batchnorm``
    + relu (v1 only), 3x3 stride-2 SAME max pool, four ``block_group_i``,
    ``final_batchnorm`` + relu (v2 only), spatial mean, ``logits`` (a
    ``Linear`` with zero ``w_init`` by default; ``logits_config`` overrides).

    ``bn_config`` defaults to ``decay_rate=0.9, eps=1e-5`` with scale and
    offset. ``__call__(inputs, is_training, test_local_stats=False)``:
    ``[N, H, W, C] -> [N, num_classes]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(lambda x: hk.nets.ResNet18(3)(x, True))
    >>> x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    >>> params, state = jax.eval_shape(f.init, jax.random.PRNGKey(0), x)  # no compute
    >>> params["res_net18/~/block_group_1/~/block_0/~/shortcut_conv"]["w"].shape
    (1, 1, 64, 128)
    """

    CONFIGS = {
        18: {
            "blocks_per_group": (2, 2, 2, 2),
            "bottleneck": False,
            "channels_per_group": (64, 128, 256, 512),
            "use_projection": (False, True, True, True),
        },
        34: {
            "blocks_per_group": (3, 4, 6, 3),
            "bottleneck": False,
            "channels_per_group": (64, 128, 256, 512),
            "use_projection": (False, True, True, True),
        },
        50: {
            "blocks_per_group": (3, 4, 6, 3),
            "bottleneck": True,
            "channels_per_group": (256, 512, 1024, 2048),
            "use_projection": (True, True, True, True),
        },
        101: {
            "blocks_per_group": (3, 4, 23, 3),
            "bottleneck": True,
            "channels_per_group": (256, 512, 1024, 2048),
            "use_projection": (True, True, True, True),
        },
        152: {
            "blocks_per_group": (3, 8, 36, 3),
            "bottleneck": True,
            "channels_per_group": (256, 512, 1024, 2048),
            "use_projection": (True, True, True, True),
        },
        200: {
            "blocks_per_group": (3, 24, 36, 3),
            "bottleneck": True,
            "channels_per_group": (256, 512, 1024, 2048),
            "use_projection": (True, True, True, True),
        },
    }

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
        bn_config = dict(bn_config or {})
        bn_config.setdefault("decay_rate", 0.9)
        bn_config.setdefault("eps", 1e-5)
        bn_config.setdefault("create_scale", True)
        bn_config.setdefault("create_offset", True)
        logits_config = dict(logits_config or {})
        logits_config.setdefault("w_init", jnp.zeros)
        logits_config.setdefault("name", "logits")
        _check_length(4, blocks_per_group, "blocks_per_group")
        _check_length(4, channels_per_group, "channels_per_group")
        _check_length(4, strides, "strides")
        initial_conv_config = dict(initial_conv_config or {})
        initial_conv_config.setdefault("output_channels", 64)
        initial_conv_config.setdefault("kernel_shape", 7)
        initial_conv_config.setdefault("stride", 2)
        initial_conv_config.setdefault("with_bias", False)
        initial_conv_config.setdefault("padding", "SAME")
        initial_conv_config.setdefault("name", "initial_conv")
        self.initial_conv = Conv2D(**initial_conv_config)
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
        out = self.initial_conv(inputs)
        if not self.resnet_v2:
            out = self.initial_batchnorm(out, is_training, test_local_stats)
            out = jax.nn.relu(out)
        out = max_pool(
            out, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME"
        )
        for group in self.block_groups:
            out = group(out, is_training, test_local_stats)
        if self.resnet_v2:
            out = self.final_batchnorm(out, is_training, test_local_stats)
            out = jax.nn.relu(out)
        out = jnp.mean(out, axis=(1, 2))
        return self.logits(out)


class ResNet18(ResNet):
    """Haiku's ``ResNet18``: ``ResNet`` with ``ResNet.CONFIGS[18]``."""

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
            **ResNet.CONFIGS[18],
        )


class ResNet34(ResNet):
    """Haiku's ``ResNet34``: ``ResNet`` with ``ResNet.CONFIGS[34]``."""

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
            **ResNet.CONFIGS[34],
        )


class ResNet50(ResNet):
    """Haiku's ``ResNet50``: ``ResNet`` with ``ResNet.CONFIGS[50]``."""

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
            **ResNet.CONFIGS[50],
        )


class ResNet101(ResNet):
    """Haiku's ``ResNet101``: ``ResNet`` with ``ResNet.CONFIGS[101]``."""

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
            **ResNet.CONFIGS[101],
        )


class ResNet152(ResNet):
    """Haiku's ``ResNet152``: ``ResNet`` with ``ResNet.CONFIGS[152]``."""

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
            **ResNet.CONFIGS[152],
        )


class ResNet200(ResNet):
    """Haiku's ``ResNet200``: ``ResNet`` with ``ResNet.CONFIGS[200]``."""

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
            **ResNet.CONFIGS[200],
        )

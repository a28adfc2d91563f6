"""The architectures of ``pax.nets``, said once for both front doors.

``pax.nets`` builds its networks from ``pax.nn`` layers; ``pax.hk.nets``
builds Haiku's from ``pax.hk`` layers (with Haiku's names, lazy shapes and
``is_training`` flags). Both read the structure from here: which layers a
ResNet block has and with what sizes, the ResNet configurations, the default
hyperparameters, and the order in which every network applies its layers.
The forward functions take the layers as callables (a batch norm with its
flags already bound), so they hold no parameters and know neither library.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..nn._pool import max_pool

Stride = int | Sequence[int]
Layer = Callable[[jax.Array], jax.Array]

# ---------------------------------------------------------------------------
# ResNet
# ---------------------------------------------------------------------------

_BASIC = {
    "bottleneck": False,
    "channels_per_group": (64, 128, 256, 512),
    "use_projection": (False, True, True, True),
}
_WIDE = {
    "bottleneck": True,
    "channels_per_group": (256, 512, 1024, 2048),
    "use_projection": (True, True, True, True),
}

#: Haiku's ``ResNet.CONFIGS``: depth -> the :class:`ResNet` arguments it fixes.
RESNET_CONFIGS: dict[int, dict[str, Any]] = {
    18: {"blocks_per_group": (2, 2, 2, 2), **_BASIC},
    34: {"blocks_per_group": (3, 4, 6, 3), **_BASIC},
    50: {"blocks_per_group": (3, 4, 6, 3), **_WIDE},
    101: {"blocks_per_group": (3, 4, 23, 3), **_WIDE},
    152: {"blocks_per_group": (3, 8, 36, 3), **_WIDE},
    200: {"blocks_per_group": (3, 24, 36, 3), **_WIDE},
}

#: A ResNet's batch-norm defaults (``bn_config`` keys a user leaves out).
RESNET_BN_DEFAULTS = MappingProxyType(
    {"decay_rate": 0.9, "eps": 1e-5, "create_scale": True, "create_offset": True}
)
#: The initial convolution's defaults, but for its 64 output channels (whose
#: key is spelled ``out_features`` in ``pax.nn`` and ``output_channels`` in
#: Haiku).
RESNET_INITIAL_CONV_DEFAULTS = MappingProxyType(
    {"kernel_shape": 7, "stride": 2, "with_bias": False, "padding": "SAME"}
)


class ResNetLayer(NamedTuple):
    """One convolution of a ResNet block (``conv_k``) and its batch norm
    (``batchnorm_k``): the convolution's output channels, kernel size and
    stride (``"SAME"`` padding, no bias), and whether the batch norm's scale
    starts at zero."""

    out_channels: int
    kernel_shape: int
    stride: Stride
    zero_scale: bool


@dataclasses.dataclass(frozen=True)
class ResNetBlockSpec:
    """The structure of one ResNet block, v1 or v2, plain or bottleneck.

    A basic block is ``conv_0`` (3x3, strided) and ``conv_1`` (3x3) at
    ``channels``; a bottleneck block ``conv_0`` (1x1), ``conv_1`` (3x3,
    strided) at ``channels // 4`` and ``conv_2`` (1x1) at ``channels``, whose
    batch norm starts with a zero scale in v1. v1 (post-activation) applies
    conv -> batch norm -> relu, adds the shortcut (``shortcut_conv`` +
    ``shortcut_batchnorm`` with a projection) and ends with relu. v2
    (pre-activation) applies batch norm -> relu -> conv, projects the first
    activation with ``shortcut_conv`` alone, and has no final relu.

    Args:
      channels: the block's output channels.
      stride: the block's stride (an int or a pair).
      use_projection: whether the shortcut is a 1x1 strided convolution.
      bottleneck: the bottleneck form.
      resnet_v2: the pre-activation form.

    >>> import pax
    >>> spec = pax.nets.ResNetBlockSpec(256, 2, True, bottleneck=True, resnet_v2=False)
    >>> [(l.out_channels, l.kernel_shape, l.stride) for l in spec.layers]
    [(64, 1, 1), (64, 3, 2), (256, 1, 1)]
    >>> len(pax.nets.ResNetBlockSpec.group(256, 3, 2, True, True, False))
    3
    """

    channels: int
    stride: Stride
    use_projection: bool
    bottleneck: bool
    resnet_v2: bool

    @classmethod
    def group(
        cls,
        channels: int,
        num_blocks: int,
        stride: Stride,
        use_projection: bool,
        bottleneck: bool,
        resnet_v2: bool,
    ) -> tuple[ResNetBlockSpec, ...]:
        """The blocks of a block group: only the first is strided and (with
        ``use_projection``) projects its shortcut."""
        return tuple(
            cls(
                channels,
                stride if i == 0 else 1,
                bool(use_projection) and i == 0,
                bottleneck,
                resnet_v2,
            )
            for i in range(num_blocks)
        )

    @property
    def layers(self) -> tuple[ResNetLayer, ...]:
        """``conv_0``, ``conv_1`` (and ``conv_2`` with a bottleneck), in order."""
        if not self.bottleneck:
            return (
                ResNetLayer(self.channels, 3, self.stride, False),
                ResNetLayer(self.channels, 3, 1, False),
            )
        inner = self.channels // 4
        return (
            ResNetLayer(inner, 1, 1, False),
            ResNetLayer(inner, 3, self.stride, False),
            ResNetLayer(self.channels, 1, 1, not self.resnet_v2),
        )

    @property
    def projection_norm(self) -> bool:
        """Whether the shortcut has a batch norm (v1 with a projection)."""
        return self.use_projection and not self.resnet_v2

    def bn_config(self, bn_config: Mapping[str, Any]) -> dict[str, Any]:
        """The batch norms' keyword arguments: ``bn_config`` with the block's
        defaults (scale and offset created; in v1 ``decay_rate=0.999``)."""
        bn = dict(bn_config)
        bn.setdefault("create_scale", True)
        bn.setdefault("create_offset", True)
        if not self.resnet_v2:
            bn.setdefault("decay_rate", 0.999)
        return bn

    def apply(
        self,
        x: jax.Array,
        layers: Sequence[tuple[Layer, Layer]],
        projection: Layer | None = None,
        add: Callable[[jax.Array, jax.Array], jax.Array] = operator.add,
    ) -> jax.Array:
        """Run the block: ``[N, H, W, C] -> [N, H', W', channels]``.

        Args:
          x: the block's input.
          layers: a ``(conv_k, batchnorm_k)`` pair of callables per entry of
            :attr:`layers` (batch norms with their flags bound).
          projection: the shortcut (v1: ``shortcut_batchnorm`` after
            ``shortcut_conv``; v2: ``shortcut_conv``), ``None`` without one.
          add: adds the residual branch (first) and the shortcut.
        """
        if self.resnet_v2:
            out = shortcut = x
            for k, (conv, norm) in enumerate(layers):
                out = jax.nn.relu(norm(out))
                if k == 0 and projection is not None:
                    shortcut = projection(out)
                out = conv(out)
            return add(out, shortcut)
        # v1: the shortcut's layers come first (Haiku creates them first)
        shortcut = x if projection is None else projection(x)
        out = x
        for k, (conv, norm) in enumerate(layers):
            out = norm(conv(out))
            if k < len(layers) - 1:
                out = jax.nn.relu(out)
        return jax.nn.relu(add(out, shortcut))


def resnet_forward(
    x: jax.Array,
    initial_conv: Layer,
    initial_norm: Layer | None,
    block_groups: Iterable[Layer],
    final_norm: Layer | None,
    logits: Layer,
) -> jax.Array:
    """A ResNet's forward pass: ``[N, H, W, C] -> [N, num_classes]``.

    ``initial_conv``, then ``initial_norm`` and relu (v1; ``None`` in v2), a
    3x3 stride-2 ``"SAME"`` max pool, the block groups, ``final_norm`` and
    relu (v2; ``None`` in v1), the mean over height and width, ``logits``.
    """
    out = initial_conv(x)
    if initial_norm is not None:
        out = jax.nn.relu(initial_norm(out))
    out = max_pool(out, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
    for group in block_groups:
        out = group(out)
    if final_norm is not None:
        out = jax.nn.relu(final_norm(out))
    return logits(jnp.mean(out, axis=(1, 2)))


# ---------------------------------------------------------------------------
# MobileNetV1
# ---------------------------------------------------------------------------

#: Haiku's default blocks: 13 of them, for 224x224 images (7x7 before the mean).
MOBILENET_V1_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
MOBILENET_V1_CHANNELS = (64, 128, 128, 256, 256) + (512,) * 6 + (1024, 1024)
#: Every MobileNet batch norm's moving-average decay.
MOBILENET_V1_DECAY_RATE = 0.999


def mobilenet_v1_block(
    x: jax.Array,
    depthwise: Layer,
    depthwise_norm: Layer | None,
    pointwise: Layer,
    pointwise_norm: Layer | None,
) -> jax.Array:
    """A MobileNet v1 block's forward pass: the depthwise 3x3 convolution,
    its batch norm (``None`` without batch norm), relu, the pointwise 1x1
    convolution, its batch norm, relu. ``[N, H, W, C] -> [N, H', W', C']``."""
    out = depthwise(x)
    if depthwise_norm is not None:
        out = depthwise_norm(out)
    out = pointwise(jax.nn.relu(out))
    if pointwise_norm is not None:
        out = pointwise_norm(out)
    return jax.nn.relu(out)


def mobilenet_v1_forward(
    x: jax.Array,
    initial_conv: Layer,
    initial_norm: Layer | None,
    blocks: Iterable[Layer],
    logits: Layer,
) -> jax.Array:
    """A MobileNet v1's forward pass: ``initial_conv`` (3x3, stride 2,
    ``"VALID"``, 32 channels), its batch norm, relu, the blocks, the mean over
    height and width, ``logits``. ``[N, H, W, C] -> [N, num_classes]``."""
    out = initial_conv(x)
    if initial_norm is not None:
        out = initial_norm(out)
    out = jax.nn.relu(out)
    for block in blocks:
        out = block(out)
    return logits(jnp.mean(out, axis=(1, 2)))


# ---------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------


def mlp_forward(
    x: jax.Array,
    layers: Sequence[Layer],
    activation: Layer,
    activate_final: bool,
    dropout: Layer | None = None,
) -> jax.Array:
    """An MLP's forward pass: every layer, then ``dropout`` (called once per
    activation, in order; ``None``: no dropout) and ``activation`` after each
    layer but the last (and after the last with ``activate_final``)."""
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        x = layer(x)
        if i < last or activate_final:
            if dropout is not None:
                x = dropout(x)
            x = activation(x)
    return x

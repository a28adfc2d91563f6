"""``hk.nets.MobileNetV1``: Haiku's MobileNet v1 (depthwise-separable
convolution blocks), built from ``pax.hk`` layers in the order and with the
defaults of ``pax.nets.MobileNetV1`` (``pax.nets.mobilenet_v1_block`` and
``mobilenet_v1_forward``). Haiku creates every layer inside ``__call__``, so
the modules are made there, before the shared forward pass runs them."""

from __future__ import annotations

from collections.abc import Sequence

import jax

from ... import nets
from .._basic import Flatten
from .._conv import Conv2D
from .._depthwise import DepthwiseConv2D
from .._linear import Linear
from .._module import Module
from .._norm import BatchNorm
from ._resnet import with_flags


def _bn(use_bn: bool, is_training: bool):
    """A new batch norm with its flag bound, or ``None`` without batch norm."""
    if not use_bn:
        return None
    bn = BatchNorm(
        create_scale=True, create_offset=True, decay_rate=nets.MobileNetV1.DECAY_RATE
    )
    return with_flags(bn, is_training)


class MobileNetV1Block(Module):
    """Haiku's MobileNet v1 block: 3x3 ``depthwise_conv`` (padding 1, given
    stride) -> batch norm -> relu -> 1x1 ``pointwise_conv`` -> batch norm ->
    relu. Without ``use_bn`` the convolutions get biases and there is no batch
    norm. Layers are created when called, as in Haiku.

    ``__call__(inputs, is_training)``: ``[N, H, W, C] -> [N, H', W', channels]``.
    """

    def __init__(
        self,
        channels: int,
        stride: int,
        use_bn: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.channels = channels
        self.stride = stride
        self.use_bn = use_bn
        self.with_bias = not use_bn

    def __call__(self, inputs: jax.Array, is_training: bool) -> jax.Array:
        depthwise = DepthwiseConv2D(
            channel_multiplier=1,
            kernel_shape=3,
            stride=self.stride,
            padding=((1, 1), (1, 1)),
            with_bias=self.with_bias,
            name="depthwise_conv",
        )
        pointwise = Conv2D(
            output_channels=self.channels,
            kernel_shape=(1, 1),
            stride=1,
            padding="VALID",
            with_bias=self.with_bias,
            name="pointwise_conv",
        )
        # Haiku's names: the batch norms are made after both convolutions
        norms = [_bn(self.use_bn, is_training) for _ in range(2)]
        return nets.mobilenet_v1_block(inputs, depthwise, norms[0], pointwise, norms[1])


class MobileNetV1(Module):
    """Haiku's ``MobileNetV1``: a 3x3 stride-2 VALID ``conv2_d`` to 32
    channels (+ ``batch_norm``) and relu, one ``mobile_net_v1_block`` per
    ``(stride, channels)`` pair, spatial mean, flatten, ``logits`` Linear.
    Submodules are created on call, so they take Haiku's auto names
    (``mobile_net_v1/conv2_d``, ``mobile_net_v1/mobile_net_v1_block_1/...``).

    ``__call__(inputs, is_training)``: ``[N, H, W, C] -> [N, num_classes]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> net = lambda x: hk.nets.MobileNetV1((1, 2), (8, 16), num_classes=3)(x, True)
    >>> f = hk.transform_with_state(net)
    >>> params, state = f.init(jax.random.PRNGKey(0), jnp.ones((1, 16, 16, 3)))
    >>> params["mobile_net_v1/conv2_d"]["w"].shape
    (3, 3, 3, 32)
    """

    def __init__(
        self,
        strides: Sequence[int] = nets.MobileNetV1.STRIDES,
        channels: Sequence[int] = nets.MobileNetV1.CHANNELS,
        num_classes: int = 1000,
        use_bn: bool = True,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if len(strides) != len(channels):
            raise ValueError("`strides` and `channels` must have the same length.")
        self.strides = strides
        self.channels = channels
        self.use_bn = use_bn
        self.with_bias = not use_bn
        self.num_classes = num_classes

    def __call__(self, inputs: jax.Array, is_training: bool) -> jax.Array:
        initial_conv = Conv2D(
            output_channels=32,
            kernel_shape=(3, 3),
            stride=2,
            padding="VALID",
            with_bias=self.with_bias,
        )
        initial_norm = _bn(self.use_bn, is_training)
        blocks = [
            with_flags(MobileNetV1Block(c, s, self.use_bn), is_training)
            for s, c in zip(self.strides, self.channels)
        ]

        def logits(x):
            # Haiku flattens the pooled [N, C] features (a no-op) before them
            return Linear(self.num_classes, name="logits")(Flatten()(x))

        return nets.mobilenet_v1_forward(
            inputs, initial_conv, initial_norm, blocks, logits
        )

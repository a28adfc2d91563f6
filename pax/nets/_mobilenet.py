"""MobileNet v1 (Howard et al. 2017): ``MobileNetV1``.

Haiku's architecture with sizes explicit and the module's mode in place of
``is_training``. The structure mirrors Haiku's one module for one module
(Haiku builds them in ``__call__``, hence ``/`` rather than ``/~/``):

=========================================  ====================================
PAX attribute path                         Haiku module name
=========================================  ====================================
``initial_conv``                           ``mobile_net_v1/conv2_d``
``initial_batchnorm``                      ``mobile_net_v1/batch_norm``
``blocks[i]``                              ``mobile_net_v1/mobile_net_v1_block``
                                           (``_1``, ``_2``, ... for i > 0)
``blocks[i].depthwise_conv``               ``{block}/depthwise_conv``
``blocks[i].depthwise_batchnorm``          ``{block}/batch_norm``
``blocks[i].pointwise_conv``               ``{block}/pointwise_conv``
``blocks[i].pointwise_batchnorm``          ``{block}/batch_norm_1``
``logits``                                 ``mobile_net_v1/logits``
=========================================  ====================================

Without batch norm (``use_bn=False``) the ``*_batchnorm`` attributes are
``None`` and the convolutions have biases instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from .._core.module import Module
from ..nn._batch_norm import BatchNorm
from ..nn._conv import Conv2D
from ..nn._depthwise import DepthwiseConv2D
from ..nn._linear import Linear
from ..nn._utils import positive_int, rng_key_or_next, who
from ._arch import (
    MOBILENET_V1_CHANNELS,
    MOBILENET_V1_DECAY_RATE,
    MOBILENET_V1_STRIDES,
    Stride,
    mobilenet_v1_block,
    mobilenet_v1_forward,
)
from ._resnet import check_image, check_stride


def _batch_norm(use_bn: bool, channels: int, key: jax.Array) -> BatchNorm | None:
    if not use_bn:
        return None
    return BatchNorm(channels, decay_rate=MOBILENET_V1_DECAY_RATE, rng_key=key)


class MobileNetV1Block(Module):
    """A depthwise-separable block: depthwise 3x3 convolution (stride
    ``stride``, one pixel of zero padding on every side), batch norm, ``relu``,
    pointwise 1x1 convolution to ``channels``, batch norm, ``relu``.

    Args:
      in_channels: channels ``C`` of the input.
      channels: channels of the output.
      stride: stride of the depthwise convolution (an int or a pair).
      use_bn: use batch norm (``decay_rate=0.999``); without it the
        convolutions have biases.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]``, output
    ``[N, (H - 1) // s + 1, (W - 1) // s + 1, channels]``. In training mode
    with batch norm a call updates statistics (use ``pax.purecall``).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: Stride,
        use_bn: bool = True,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.in_channels = positive_int(in_channels, "in_channels", owner)
        self.channels = positive_int(channels, "channels", owner)
        self.stride = check_stride(stride, "stride", owner)
        self.use_bn = bool(use_bn)
        keys = jax.random.split(rng_key_or_next(rng_key), 4)
        self.depthwise_conv = DepthwiseConv2D(
            self.in_channels,
            1,
            kernel_shape=3,
            stride=stride,
            padding=((1, 1), (1, 1)),
            with_bias=not self.use_bn,
            rng_key=keys[0],
        )
        self.depthwise_batchnorm = _batch_norm(self.use_bn, self.in_channels, keys[1])
        self.pointwise_conv = Conv2D(
            self.in_channels,
            self.channels,
            kernel_shape=1,
            padding="VALID",
            with_bias=not self.use_bn,
            rng_key=keys[2],
        )
        self.pointwise_batchnorm = _batch_norm(self.use_bn, self.channels, keys[3])

    def __call__(self, x: jax.Array) -> jax.Array:
        """``[N, H, W, in_channels] -> [N, H', W', channels]``."""
        x = check_image(x, self.in_channels, who(self))
        with jax.named_scope("pax.nets.MobileNetV1Block"):
            return mobilenet_v1_block(
                x,
                self.depthwise_conv,
                self.depthwise_batchnorm,
                self.pointwise_conv,
                self.pointwise_batchnorm,
            )


class MobileNetV1(Module):
    """MobileNet v1 image classifier, Haiku's ``hk.nets.MobileNetV1``.

    Layers: ``initial_conv`` (3x3, stride 2, ``"VALID"``, 32 channels), batch
    norm (``initial_batchnorm``), ``relu``; one :class:`MobileNetV1Block` per
    entry of ``strides``/``channels`` (``blocks``); the mean over height and
    width; ``logits``, a :class:`pax.nn.Linear` with Haiku's default
    initializer.

    Args:
      input_channels: channels ``C`` of the input image.
      strides: the depthwise stride of each block (ints or pairs); default
        ``(1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)``.
      channels: the output channels of each block, as many as ``strides``;
        default ``(64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512,
        1024, 1024)``.
      num_classes: size of the output.
      use_bn: use batch norm (``decay_rate=0.999``, ``eps=1e-5``) after every
        convolution; without it the convolutions have biases.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]`` (NHWC, ``H, W >= 3``), output logits
    ``[N, num_classes]`` in the input's floating dtype. In training mode (the
    default) with batch norm a call updates statistics, so it goes through
    ``pax.purecall``; after ``net.eval()`` a call is plain. The default
    network has 4,231,976 trainable parameters for 3 input channels.

    >>> import jax, jax.numpy as jnp, pax
    >>> net = pax.nets.MobileNetV1(
    ...     3, strides=(1, 2), channels=(32, 32), num_classes=10,
    ...     rng_key=jax.random.PRNGKey(0))
    >>> x = jnp.ones((2, 9, 9, 3))
    >>> net, logits = pax.purecall(net, x)    # training: updates statistics
    >>> logits.shape
    (2, 10)
    >>> net.eval()(x).shape                   # eval: a plain call
    (2, 10)
    """

    # Haiku's defaults; pax.hk.nets.MobileNetV1 reads these
    STRIDES = MOBILENET_V1_STRIDES
    CHANNELS = MOBILENET_V1_CHANNELS
    DECAY_RATE = MOBILENET_V1_DECAY_RATE

    def __init__(
        self,
        input_channels: int,
        strides: Sequence[Stride] = MOBILENET_V1_STRIDES,
        channels: Sequence[int] = MOBILENET_V1_CHANNELS,
        num_classes: int = 1000,
        use_bn: bool = True,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.input_channels = positive_int(input_channels, "input_channels", owner)
        for arg, value in (("strides", strides), ("channels", channels)):
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise TypeError(f"{owner}: `{arg}` must be a sequence, got {value!r}")
        if len(strides) != len(channels):
            raise ValueError(
                f"{owner}: `strides` and `channels` must have the same length, "
                f"got {len(strides)} and {len(channels)}"
            )
        self.strides = tuple(check_stride(s, "strides", owner) for s in strides)
        self.channels = tuple(positive_int(c, "channels", owner) for c in channels)
        self.num_classes = positive_int(num_classes, "num_classes", owner)
        self.use_bn = bool(use_bn)
        keys = jax.random.split(rng_key_or_next(rng_key), len(self.channels) + 3)
        self.initial_conv = Conv2D(
            self.input_channels,
            32,
            kernel_shape=3,
            stride=2,
            padding="VALID",
            with_bias=not self.use_bn,
            rng_key=keys[0],
        )
        self.initial_batchnorm = _batch_norm(self.use_bn, 32, keys[1])
        blocks, c = [], 32
        for i, (stride, out) in enumerate(zip(self.strides, self.channels)):
            blocks.append(
                MobileNetV1Block(c, out, stride, self.use_bn, rng_key=keys[3 + i])
            )
            c = out
        self.blocks = tuple(blocks)
        self.logits = Linear(c, self.num_classes, rng_key=keys[2])

    def __call__(self, x: jax.Array) -> jax.Array:
        """``[N, H, W, input_channels] -> [N, num_classes]``."""
        owner = who(self)
        x = check_image(x, self.input_channels, owner)
        if x.shape[1] < 3 or x.shape[2] < 3:
            raise ValueError(
                f"{owner}: the initial 3x3 'VALID' convolution needs height and "
                f"width >= 3, got shape {tuple(x.shape)}"
            )
        with jax.named_scope("pax.nets.MobileNetV1"):
            return mobilenet_v1_forward(
                x, self.initial_conv, self.initial_batchnorm, self.blocks, self.logits
            )

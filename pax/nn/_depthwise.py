"""Depthwise convolutions: ``DepthwiseConv1D/2D/3D``, ``SeparableDepthwiseConv2D``.

A depthwise convolution filters every input channel on its own with
``channel_multiplier`` kernels: it is a :class:`ConvND` whose
``feature_group_count`` equals ``in_features``. Output channel
``c * channel_multiplier + m`` is input channel ``c`` filtered by kernel ``m``
(Haiku's and ``jax.lax``'s order).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from .._core.module import Module
from ..initializers import Initializer
from ._conv import ConvND, check_conv_input
from ._data_format import channel_index
from ._pad import Padding, resolve_padding
from ._utils import positive_int, replicate, rng_key_or_next, who


class DepthwiseConvND(ConvND):
    """N-d depthwise convolution (the shared implementation).

    Args:
      num_spatial_dims: number of spatial dimensions ``n`` (>= 1).
      in_features: number of input channels ``C``.
      channel_multiplier: kernels per input channel ``M``; the output has
        ``C * M`` channels.
      kernel_shape: kernel size, an int or a sequence of ``n`` ints.
      stride: step between windows, an int or ``n`` ints (default 1).
      rate: kernel dilation, an int or ``n`` ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, padding function(s) or
        ``(low, high)`` pair(s), as for :class:`ConvND`.
      with_bias: add a bias ``[C * M]`` (default True); otherwise None.
      w_init: initializer for ``weight`` ``[*kernel_shape, 1, C * M]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(prod(kernel_shape)))``.
      b_init: initializer for ``bias``. Default: zeros.
      data_format: ``"channels_last"`` (default), ``"channels_first"`` or
        any spelling :func:`pax.nn.channel_index` accepts: ``"NHWC"``,
        ``"NCHW"``, ``"N...C"``, ``"NC..."``...; one spelled letter by letter
        must have ``num_spatial_dims + 2`` letters.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, *spatial, C]`` or ``[N, C, *spatial]`` (batch axis optional),
    output the same layout with ``C * M`` channels and the spatial size of a
    :class:`ConvND` with the same kernel, stride, rate and padding.

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> dw = pax.DepthwiseConvND(2, 2, 2, kernel_shape=3, rng_key=key)
    >>> dw.weight.shape
    (3, 3, 1, 4)
    >>> dw(jnp.ones((1, 5, 5, 2))).shape
    (1, 5, 5, 4)
    """

    def __init__(
        self,
        num_spatial_dims: int,
        in_features: int,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "channels_last",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        owner = type(self).__name__
        multiplier = positive_int(channel_multiplier, "channel_multiplier", owner)
        in_features = positive_int(in_features, "in_features", owner)
        super().__init__(
            num_spatial_dims,
            in_features,
            in_features * multiplier,
            kernel_shape,
            stride=stride,
            rate=rate,
            padding=padding,
            with_bias=with_bias,
            w_init=w_init,
            b_init=b_init,
            data_format=data_format,
            feature_group_count=in_features,
            rng_key=rng_key,
            name=name,
        )
        self.channel_multiplier = multiplier


class DepthwiseConv1D(DepthwiseConvND):
    """1-d depthwise convolution: :class:`DepthwiseConvND` with ``num_spatial_dims=1``.

    Args:
      in_features: number of input channels ``C``.
      channel_multiplier: kernels per input channel ``M``; the output has
        ``C * M`` channels.
      kernel_shape: kernel width ``k``, an int or a 1-sequence.
      stride: an int or a 1-sequence (default 1).
      rate: kernel dilation, an int or a 1-sequence (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, padding function(s) or
        ``(low, high)`` pair(s), as for :class:`ConvND`.
      with_bias: add a bias ``[C * M]`` (default True); otherwise None.
      w_init: initializer for ``weight`` ``[k, 1, C * M]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(k))``.
      b_init: initializer for ``bias``. Default: zeros.
      data_format: ``"NWC"`` (default) or ``"NCW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, W, C]`` (``"NWC"``) or ``[N, C, W]`` (``"NCW"``),
    batch axis optional; output the same layout with ``C * M`` channels
    (spatial size as for :class:`ConvND`, e.g. ``ceil(L / stride)`` for
    ``"SAME"``).

    >>> import jax, jax.numpy as jnp, pax
    >>> dw = pax.DepthwiseConv1D(4, 1, kernel_shape=3, rng_key=jax.random.PRNGKey(0))
    >>> dw(jnp.ones((2, 10, 4))).shape
    (2, 10, 4)
    """

    def __init__(
        self,
        in_features: int,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NWC",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            1,
            in_features,
            channel_multiplier,
            kernel_shape,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            rng_key=rng_key,
            name=name,
        )


class DepthwiseConv2D(DepthwiseConvND):
    """2-d depthwise convolution: :class:`DepthwiseConvND` with ``num_spatial_dims=2``.

    Args:
      in_features: number of input channels ``C``.
      channel_multiplier: kernels per input channel ``M``; the output has
        ``C * M`` channels.
      kernel_shape: ``(kh, kw)``, or an int for both.
      stride: an int or 2 ints (default 1).
      rate: kernel dilation, an int or 2 ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, padding function(s) or
        ``(low, high)`` pair(s), as for :class:`ConvND`.
      with_bias: add a bias ``[C * M]`` (default True); otherwise None.
      w_init: initializer for ``weight`` ``[kh, kw, 1, C * M]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(kh * kw))``.
      b_init: initializer for ``bias``. Default: zeros.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]`` (``"NHWC"``) or ``[N, C, H, W]`` (``"NCHW"``),
    batch axis optional; output the same layout with ``C * M`` channels
    (spatial size as for :class:`ConvND`, e.g. ``ceil(L / stride)`` for
    ``"SAME"``).

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> dw = pax.DepthwiseConv2D(2, 2, kernel_shape=3, stride=2, rng_key=key)
    >>> dw.weight.shape
    (3, 3, 1, 4)
    >>> dw(jnp.ones((2, 8, 8, 2))).shape
    (2, 4, 4, 4)
    """

    def __init__(
        self,
        in_features: int,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NHWC",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            2,
            in_features,
            channel_multiplier,
            kernel_shape,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            rng_key=rng_key,
            name=name,
        )


class DepthwiseConv3D(DepthwiseConvND):
    """3-d depthwise convolution: :class:`DepthwiseConvND` with ``num_spatial_dims=3``.

    Args:
      in_features: number of input channels ``C``.
      channel_multiplier: kernels per input channel ``M``; the output has
        ``C * M`` channels.
      kernel_shape: ``(kd, kh, kw)``, or an int for all three.
      stride: an int or 3 ints (default 1).
      rate: kernel dilation, an int or 3 ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, padding function(s) or
        ``(low, high)`` pair(s), as for :class:`ConvND`.
      with_bias: add a bias ``[C * M]`` (default True); otherwise None.
      w_init: initializer for ``weight`` ``[kd, kh, kw, 1, C * M]``. Default
        (Haiku's): ``TruncatedNormal(stddev=1 / sqrt(kd * kh * kw))``.
      b_init: initializer for ``bias``. Default: zeros.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, D, H, W, C]`` (``"NDHWC"``) or ``[N, C, D, H, W]`` (``"NCDHW"``),
    batch axis optional; output the same layout with ``C * M`` channels
    (spatial size as for :class:`ConvND`, e.g. ``ceil(L / stride)`` for
    ``"SAME"``).

    >>> import jax, jax.numpy as jnp, pax
    >>> dw = pax.DepthwiseConv3D(4, 1, kernel_shape=2, rng_key=jax.random.PRNGKey(0))
    >>> dw(jnp.ones((1, 4, 4, 4, 4))).shape
    (1, 4, 4, 4, 4)
    """

    def __init__(
        self,
        in_features: int,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NDHWC",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            3,
            in_features,
            channel_multiplier,
            kernel_shape,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            rng_key=rng_key,
            name=name,
        )


class SeparableDepthwiseConv2D(Module):
    """Haiku's separable 2-d depthwise convolution: two depthwise convolutions.

    ``conv1`` is a :class:`DepthwiseConv2D` with kernel ``(kh, 1)``, the
    ``channel_multiplier``, the ``stride`` and no bias; ``conv2`` is a
    :class:`DepthwiseConv2D` on its ``C * M`` channels with kernel
    ``(1, kw)``, multiplier 1, stride 1 and the bias. Both get the same
    ``padding``, ``w_init``, ``b_init`` and ``data_format`` (as in Haiku).

    Args:
      in_features: number of input channels ``C``.
      channel_multiplier: kernels per input channel ``M`` (in ``conv1``).
      kernel_shape: ``(kh, kw)``, or an int for both.
      stride: stride of ``conv1``, an int or 2 ints (default 1).
      padding: padding of both convolutions: ``"SAME"`` (default),
        ``"VALID"``, padding function(s) or ``(low, high)`` pair(s).
      with_bias: give ``conv2`` a bias ``[C * M]`` (default True).
      w_init: initializer for both weights (``[kh, 1, 1, C * M]`` and
        ``[1, kw, 1, C * M]``). Default (Haiku's):
        ``TruncatedNormal(stddev=1 / sqrt(kh))`` and ``1 / sqrt(kw)``.
      b_init: initializer for the bias. Default: zeros.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``; ``"channels_last"`` and
        ``"channels_first"`` also work.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]`` (``"NHWC"``) or ``[N, C, H, W]`` (``"NCHW"``), batch
    axis optional; output the same layout with ``C * M`` channels and, for
    ``"SAME"``, spatial size ``(ceil(H / stride), ceil(W / stride))``.
    Trainable: ``conv1.weight``, ``conv2.weight``, ``conv2.bias``.

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> sep = pax.SeparableDepthwiseConv2D(2, 2, kernel_shape=3, rng_key=key)
    >>> sep.conv1.weight.shape, sep.conv2.weight.shape
    ((3, 1, 1, 4), (1, 3, 1, 4))
    >>> sep(jnp.ones((2, 8, 8, 2))).shape
    (2, 8, 8, 4)
    """

    def __init__(
        self,
        in_features: int,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NHWC",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.in_features = positive_int(in_features, "in_features", owner)
        self.channel_multiplier = positive_int(
            channel_multiplier, "channel_multiplier", owner
        )
        self.kernel_shape = replicate(kernel_shape, 2, "kernel_shape", owner)
        # check here so that errors name this module, not a sub-convolution
        replicate(stride, 2, "stride", owner)
        resolve_padding(padding, self.kernel_shape, (1, 1), owner)
        self.data_format = data_format
        self.channels_last = channel_index(data_format, owner, num_spatial_dims=2) == -1
        key1, key2 = jax.random.split(rng_key_or_next(rng_key))
        kh, kw = self.kernel_shape
        self.conv1 = DepthwiseConv2D(
            self.in_features,
            self.channel_multiplier,
            (kh, 1),
            stride,
            padding=padding,
            with_bias=False,
            w_init=w_init,
            b_init=b_init,
            data_format=data_format,
            rng_key=key1,
        )
        self.conv2 = DepthwiseConv2D(
            self.in_features * self.channel_multiplier,
            1,
            (1, kw),
            1,
            padding=padding,
            with_bias=with_bias,
            w_init=w_init,
            b_init=b_init,
            data_format=data_format,
            rng_key=key2,
        )

    def __call__(
        self, x: jax.Array, *, precision: jax.lax.Precision | None = None
    ) -> jax.Array:
        """``[N, H, W, C] -> [N, H', W', C * M]`` (or channels first)."""
        x = check_conv_input(x, 2, self.in_features, self.channels_last, who(self))
        with jax.named_scope("pax.nn.SeparableDepthwiseConv2D"):
            y = self.conv1(x, precision=precision)
            return self.conv2(y, precision=precision)

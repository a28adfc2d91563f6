"""``hk.DepthwiseConv1D/2D/3D`` and ``hk.SeparableDepthwiseConv2D``: Haiku's
depthwise convolutions, computing with ``pax.nn.DepthwiseConvND``.

``w`` is ``[*kernel_shape, 1, channel_multiplier * C]`` (default initializer
``TruncatedNormal(1 / sqrt(prod(kernel_shape)))``); output channel
``c * channel_multiplier + m`` is input channel ``c`` filtered by kernel
``m``. ``b`` is ``[M * C]`` channels last and ``[M * C, 1, ..., 1]``
channels first.

Where Haiku fails, these work: unbatched inputs, and channels-first 1-d and
3-d inputs (Haiku always shapes the channels-first bias ``[M * C, 1, 1]``,
which only broadcasts for 2-d). Padding functions (``hk.pad.*``) are also
accepted, as for :class:`~pax.hk.ConvND`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn
from . import pad as hk_pad
from ._conv import channels, conv_params, default_w_init, freeze_pairs, layout
from ._conv_utils import replicate
from ._module import Module
from ._native import template

Padding = Any  # "SAME"/"VALID", (low, high) pairs or padding function(s)


class DepthwiseConvND(Module):
    """The shared implementation (Haiku's ``DepthwiseConvND``, not exported
    by Haiku either; note its argument order)."""

    def __init__(
        self,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        num_spatial_dims: int,
        data_format: str,
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        n = self.num_spatial_dims = num_spatial_dims
        self.kernel_shape = replicate(kernel_shape, n, "kernel_shape")
        self.lhs_dilation = (1,) * n
        self.rhs_dilation = replicate(rate, n, "rhs_dilation")
        self.channel_multiplier = channel_multiplier
        self.padding = padding
        self.stride = replicate(stride, n, "strides")
        self.data_format = data_format
        self.channel_index = nn.channel_index(data_format, f"hk.{type(self).__name__}")
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """``[N, *spatial, C] -> [N, *spatial', M * C]`` (channels last) or
        ``[N, C, *spatial] -> [N, M * C, *spatial']``."""
        inputs = jnp.asarray(inputs)
        n, m = self.num_spatial_dims, self.channel_multiplier
        c = channels(inputs, n, self.channel_index)
        w_shape = self.kernel_shape + (1, m * c)
        w_init = self.w_init
        if w_init is None:
            w_init = default_w_init(int(np.prod(w_shape[:-1])))
        padding = self.padding
        if hk_pad.is_padfn(padding):
            padding = hk_pad.create_from_padfn(
                padding, self.kernel_shape, self.rhs_dilation, n
            )
        if not isinstance(padding, str):
            padding = freeze_pairs(padding)
        spec = template(
            nn.DepthwiseConvND,
            n,
            c,
            m,
            self.kernel_shape,
            self.stride,
            self.rhs_dilation,
            padding,
            self.with_bias,
            data_format=layout(self.channel_index),
        )
        arrays = conv_params(
            spec, n, self.channel_index, inputs.dtype, w_init, self.b_init
        )
        return spec.build(arrays)(inputs)


class DepthwiseConv1D(DepthwiseConvND):
    """Haiku's ``DepthwiseConv1D``: input ``[N, W, C]`` (``"NWC"``, default)
    or ``[N, C, W]``; output ``channel_multiplier * C`` channels.

    Args:
      channel_multiplier: kernels per input channel ``M``.
      kernel_shape: an int or a sequence of 1 int.
      stride: an int or a 1-sequence (default 1).
      rate: kernel dilation, an int or a 1-sequence (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, ``(low, high)`` pairs or
        padding function(s).
      with_bias: add ``b`` ``[M * C]`` (default True).
      w_init: initializer of ``w`` ``[k, 1, M * C]``; default
        ``TruncatedNormal(1 / sqrt(k))``.
      b_init: initializer of ``b``; default zeros.
      data_format: ``"NWC"`` (default), ``"NCW"`` or another spelling
        :func:`get_channel_index` accepts.
      name: module name (default ``"depthwise_conv1_d"``).
    """

    def __init__(
        self,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NWC",
        name: str | None = None,
    ):
        super().__init__(
            channel_multiplier,
            kernel_shape,
            1,
            data_format,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            name,
        )


class DepthwiseConv2D(DepthwiseConvND):
    """Haiku's ``DepthwiseConv2D``: input ``[N, H, W, C]`` (``"NHWC"``,
    default) or ``[N, C, H, W]``; output ``channel_multiplier * C`` channels.

    Arguments as :class:`DepthwiseConv1D` with 2-d kernel, stride and rate
    (``w`` is ``[kh, kw, 1, M * C]``, default ``TruncatedNormal(1 / sqrt(kh *
    kw))``; default name ``"depthwise_conv2_d"``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.DepthwiseConv2D(2, 3)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 6, 6, 3)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'depthwise_conv2_d': {'b': (6,), 'w': (3, 3, 1, 6)}}
    """

    def __init__(
        self,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NHWC",
        name: str | None = None,
    ):
        super().__init__(
            channel_multiplier,
            kernel_shape,
            2,
            data_format,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            name,
        )


class DepthwiseConv3D(DepthwiseConvND):
    """Haiku's ``DepthwiseConv3D``: input ``[N, D, H, W, C]`` (``"NDHWC"``,
    default) or ``[N, C, D, H, W]``; output ``channel_multiplier * C``
    channels. Arguments as :class:`DepthwiseConv1D` with 3-d kernel, stride
    and rate (default name ``"depthwise_conv3_d"``)."""

    def __init__(
        self,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NDHWC",
        name: str | None = None,
    ):
        super().__init__(
            channel_multiplier,
            kernel_shape,
            3,
            data_format,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            name,
        )


class SeparableDepthwiseConv2D(Module):
    """Haiku's ``SeparableDepthwiseConv2D``: a :class:`DepthwiseConv2D` with
    kernel ``(kh, 1)``, the multiplier, the stride and no bias, then one with
    kernel ``(1, kw)``, multiplier 1, stride 1 and the bias. Both are created
    here, so their parameters are
    ``separable_depthwise_conv2_d/~/depthwise_conv2_d`` (``w`` ``[kh, 1, 1, M
    * C]``) and ``.../~/depthwise_conv2_d_1`` (``w`` ``[1, kw, 1, M * C]``,
    ``b``).

    Args:
      channel_multiplier: kernels per input channel ``M``.
      kernel_shape: ``(kh, kw)``, an int or a 1-sequence.
      stride: stride of the first convolution (default 1).
      padding, with_bias, w_init, b_init, data_format: as
        :class:`DepthwiseConv2D` (``padding``, ``w_init``, ``b_init`` and
        ``data_format`` are given to both convolutions).
      name: module name (default ``"separable_depthwise_conv2_d"``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.SeparableDepthwiseConv2D(2, 3)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 6, 6, 3)))
    >>> sorted(params)  # doctest: +NORMALIZE_WHITESPACE
    ['separable_depthwise_conv2_d/~/depthwise_conv2_d',
     'separable_depthwise_conv2_d/~/depthwise_conv2_d_1']
    """

    def __init__(
        self,
        channel_multiplier: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NHWC",
        name: str | None = None,
    ):
        super().__init__(name=name)
        kh, kw = replicate(kernel_shape, 2, "kernel_shape")
        self._conv1 = DepthwiseConv2D(
            channel_multiplier=channel_multiplier,
            kernel_shape=[kh, 1],
            stride=stride,
            padding=padding,
            with_bias=False,
            w_init=w_init,
            b_init=b_init,
            data_format=data_format,
        )
        self._conv2 = DepthwiseConv2D(
            channel_multiplier=1,
            kernel_shape=[1, kw],
            stride=1,
            padding=padding,
            with_bias=with_bias,
            w_init=w_init,
            b_init=b_init,
            data_format=data_format,
        )

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """``[N, H, W, C] -> [N, H', W', M * C]`` (or channels first)."""
        return self._conv2(self._conv1(inputs))

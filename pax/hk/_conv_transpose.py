"""``hk.ConvNDTranspose`` and ``hk.Conv1D/2D/3DTranspose``: Haiku's transposed
convolutions, computing with ``pax.nn.ConvNDTranspose``.

``w`` is ``[*kernel_shape, output_channels, C]``; its default initializer is
``TruncatedNormal(1 / sqrt(prod(kernel_shape) * C))`` (fan-in over the
kernel and the *input* channels, as Haiku). ``b`` is shaped as for
:class:`~pax.hk.ConvND`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn
from ..nn.internal_api import conv_dimension_numbers
from ._conv import (
    channels,
    check_rank,
    conv_params,
    default_w_init,
    freeze_pairs,
    layout,
)
from ._conv_utils import replicate
from ._module import Module
from ._native import template


class ConvNDTranspose(Module):
    """Haiku's ``ConvNDTranspose`` (deconvolution): the input is dilated by
    ``stride``, padded and cross-correlated with ``w``.

    Args:
      num_spatial_dims: number of spatial dimensions ``n`` (> 0).
      output_channels: number of output channels ``O``.
      kernel_shape: an int or a sequence of 1 or ``n`` ints.
      stride: upsampling factor, an int or a sequence of 1 or ``n`` ints.
      output_shape: optional spatial output shape (an int or 1 or ``n`` ints);
        the padding is then chosen to give it (``padding`` must be a string).
      padding: ``"SAME"`` (default), ``"VALID"`` or explicit ``(low, high)``
        pairs applied to the dilated input.
      with_bias: add the bias ``b`` (default True).
      w_init: initializer of ``w`` ``[*kernel_shape, O, C]``; default
        ``TruncatedNormal(1 / sqrt(prod(kernel_shape) * C))``.
      b_init: initializer of ``b``; default zeros.
      data_format: ``"channels_last"`` (default), ``"channels_first"`` or a
        spelling :func:`get_channel_index` accepts.
      mask: optional array of ``w``'s shape, multiplied into ``w``.
      name: module name (default ``"conv_nd_transpose"``).

    Output spatial size: ``output_shape`` if given, else ``L * stride``
    (``"SAME"``) or ``L * stride + max(k - stride, 0)`` (``"VALID"``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Conv2DTranspose(3, 4, stride=2)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 5, 5, 8)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'conv2_d_transpose': {'b': (3,), 'w': (4, 4, 3, 8)}}
    >>> f.apply(params, None, jnp.ones((1, 5, 5, 8))).shape
    (1, 10, 10, 3)
    """

    def __init__(
        self,
        num_spatial_dims: int,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        output_shape: int | Sequence[int] | None = None,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "channels_last",
        mask: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if num_spatial_dims <= 0:
            raise ValueError(
                "hk.ConvNDTranspose supports only convolution operations for "
                "`num_spatial_dims` greater than 0, got "
                f"num_spatial_dims={num_spatial_dims}."
            )
        n = self.num_spatial_dims = num_spatial_dims
        self.output_channels = output_channels
        self.kernel_shape = replicate(kernel_shape, n, "kernel_shape")
        self.output_shape = output_shape
        if output_shape is not None:
            self.output_shape = replicate(output_shape, n, "output_shape")
            if not isinstance(padding, str):
                raise ValueError(
                    "When specifying `output_shape`, `padding` must be 'VALID' "
                    f"or 'SAME', got {padding!r}."
                )
        self.with_bias = with_bias
        self.stride = replicate(stride, n, "strides")
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros
        self.mask = mask
        self.padding = padding
        self.data_format = data_format
        self.channel_index = nn.channel_index(data_format, f"hk.{type(self).__name__}")
        self.dimension_numbers = conv_dimension_numbers(
            n, self.channel_index == -1, transpose=True
        )

    def __call__(self, inputs: jax.Array, *, precision=None) -> jax.Array:
        """``[N, *spatial, C] -> [N, *spatial', O]`` (channels last) or
        ``[N, C, *spatial] -> [N, O, *spatial']``; the batch axis may be
        omitted."""
        inputs = jnp.asarray(inputs)
        n = self.num_spatial_dims
        check_rank(inputs, n, "ConvNDTranspose")
        c = channels(inputs, n, self.channel_index)
        w_shape = self.kernel_shape + (self.output_channels, c)
        if self.mask is not None and self.mask.shape != w_shape:
            raise ValueError(
                "Mask needs to have the same shape as weights. "
                f"Shapes are: {self.mask.shape}, {w_shape}"
            )
        w_init = self.w_init
        if w_init is None:
            w_init = default_w_init(int(np.prod(self.kernel_shape)) * c)
        padding = self.padding
        if not isinstance(padding, str):
            padding = freeze_pairs(padding)
        spec = template(
            nn.ConvNDTranspose,
            n,
            c,
            self.output_channels,
            self.kernel_shape,
            self.stride,
            self.output_shape,
            padding,
            self.with_bias,
            data_format=layout(self.channel_index),
        )
        arrays = conv_params(
            spec, n, self.channel_index, inputs.dtype, w_init, self.b_init
        )
        if self.mask is not None:
            arrays[".weight"] = arrays[".weight"] * self.mask
        return spec.build(arrays)(inputs, precision=precision)


class Conv1DTranspose(ConvNDTranspose):
    """Haiku's ``Conv1DTranspose``: :class:`ConvNDTranspose` with
    ``num_spatial_dims=1``; input ``[N, W, C]`` (``"NWC"``, default) or
    ``[N, C, W]`` (``"NCW"``)."""

    def __init__(
        self,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        output_shape: int | Sequence[int] | None = None,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NWC",
        mask: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            1,
            output_channels,
            kernel_shape,
            stride,
            output_shape,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            name,
        )


class Conv2DTranspose(ConvNDTranspose):
    """Haiku's ``Conv2DTranspose``: :class:`ConvNDTranspose` with
    ``num_spatial_dims=2``; input ``[N, H, W, C]`` (``"NHWC"``, default) or
    ``[N, C, H, W]`` (``"NCHW"``)."""

    def __init__(
        self,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        output_shape: int | Sequence[int] | None = None,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NHWC",
        mask: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            2,
            output_channels,
            kernel_shape,
            stride,
            output_shape,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            name,
        )


class Conv3DTranspose(ConvNDTranspose):
    """Haiku's ``Conv3DTranspose``: :class:`ConvNDTranspose` with
    ``num_spatial_dims=3``; input ``[N, D, H, W, C]`` (``"NDHWC"``, default)
    or ``[N, C, D, H, W]`` (``"NCDHW"``)."""

    def __init__(
        self,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        output_shape: int | Sequence[int] | None = None,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NDHWC",
        mask: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            3,
            output_channels,
            kernel_shape,
            stride,
            output_shape,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            name,
        )

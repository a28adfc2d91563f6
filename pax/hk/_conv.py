"""``hk.ConvND`` and ``hk.Conv1D/2D/3D``: Haiku's convolutions, computing with
``pax.nn.ConvND``.

Parameters are ``w`` ``[*kernel_shape, C // feature_group_count,
output_channels]`` and ``b``, shaped ``[output_channels]`` for channels-last
inputs and ``[output_channels, 1, ..., 1]`` for channels-first ones (Haiku's
shapes); ``pax.nn`` keeps the bias flat, so it is reshaped on the way in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn
from ..nn.internal_api import conv_dimension_numbers
from . import initializers
from . import pad as hk_pad
from ._conv_utils import replicate
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import Template, template

Padding = Any  # "SAME"/"VALID", (low, high) pair(s) or padding function(s)


def layout(channel_index: int) -> str:
    """The ``pax.nn`` data format for a Haiku channel index."""
    return "channels_last" if channel_index == -1 else "channels_first"


def freeze_pairs(padding: Any) -> Any:
    """Explicit pairs as a tuple of int pairs (hashable; ``pax.nn`` checks
    anything else)."""
    try:
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        return padding


def check_rank(inputs: jax.Array, n: int, owner: str) -> bool:
    """Whether ``inputs`` is unbatched (rank ``n + 1``); raise unless the rank
    is ``n + 1`` or ``n + 2``."""
    allowed = [n + 1, n + 2]
    if inputs.ndim not in allowed:
        raise ValueError(
            f"Input to {owner} needs to have rank in {allowed}, but input has "
            f"shape {inputs.shape}."
        )
    return inputs.ndim == n + 1


def channels(inputs: jax.Array, n: int, channel_index: int) -> int:
    """The channel count of a (possibly unbatched) input."""
    return inputs.shape[-1] if channel_index == -1 else inputs.shape[-n - 1]


def default_w_init(fan_in: int) -> Any:
    """Haiku's default weight initializer: ``TruncatedNormal(1 / sqrt(fan_in))``."""
    return initializers.TruncatedNormal(stddev=1.0 / np.sqrt(fan_in))


def conv_params(
    spec: Template, n: int, channel_index: int, dtype: Any, w_init: Any, b_init: Any
) -> dict[str, jax.Array]:
    """``w`` and ``b`` of a (transposed, depthwise) convolution through its
    record: Haiku's shapes (``b`` ``[O, 1, ..., 1]`` channels first), flat
    ``[O]`` bias for ``pax.nn``."""
    ctx = Context(channels_last=channel_index == -1, spatial_dims=n)
    inits = {"w": w_init, "b": b_init}
    return fetch(record_for(spec.type), ctx, spec.shapes, dtype, inits)


class ConvND(Module):
    """Haiku's ``ConvND``: an N-d convolution whose input channel count is
    read from the first input.

    Args:
      num_spatial_dims: number of spatial dimensions ``n`` (> 0).
      output_channels: number of output channels ``O``.
      kernel_shape: an int or a sequence of 1 or ``n`` ints.
      stride: an int or a sequence of 1 or ``n`` ints (default 1).
      rate: kernel dilation, an int or a sequence of 1 or ``n`` ints (default
        1).
      padding: ``"SAME"`` (default) or ``"VALID"`` (any case); a ``(low,
        high)`` pair or a sequence of 1 or ``n`` pairs; or a padding function
        (``hk.pad.same``, ``causal``, ...) or a sequence of 1 or ``n`` of them.
      with_bias: add the bias ``b`` (default True).
      w_init: initializer of ``w`` ``[*kernel_shape, C // groups, O]``;
        default ``TruncatedNormal(1 / sqrt(prod(kernel_shape) * C // groups))``.
      b_init: initializer of ``b``; default zeros.
      data_format: ``"channels_last"`` (default), ``"channels_first"`` or a
        spelling :func:`get_channel_index` accepts (``"NHWC"``, ``"NCHW"``...).
      mask: optional array of ``w``'s shape, multiplied into ``w``.
      feature_group_count: number of groups (default 1); must divide ``C``.
      name: module name (default ``"conv_nd"``).

    Parameters take the input's dtype.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.ConvND(2, 4, kernel_shape=3)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 8, 8, 3)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'conv_nd': {'b': (4,), 'w': (3, 3, 3, 4)}}
    """

    def __init__(
        self,
        num_spatial_dims: int,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "channels_last",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if num_spatial_dims <= 0:
            raise ValueError(
                "hk.ConvND supports only convolution operations for "
                "`num_spatial_dims` greater than 0, got "
                f"num_spatial_dims={num_spatial_dims}."
            )
        n = self.num_spatial_dims = num_spatial_dims
        self.output_channels = output_channels
        self.kernel_shape = replicate(kernel_shape, n, "kernel_shape")
        self.with_bias = with_bias
        self.stride = replicate(stride, n, "strides")
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros
        self.mask = mask
        self.feature_group_count = feature_group_count
        self.lhs_dilation = (1,) * n
        self.kernel_dilation = replicate(rate, n, "kernel_dilation")
        self.data_format = data_format
        self.channel_index = nn.channel_index(data_format, f"hk.{type(self).__name__}")
        self.dimension_numbers = conv_dimension_numbers(
            n, self.channel_index == -1, transpose=False
        )
        if isinstance(padding, str):
            self.padding = padding.upper()
        elif hk_pad.is_padfn(padding):
            self.padding = hk_pad.create_from_padfn(
                padding, self.kernel_shape, self.kernel_dilation, n
            )
        else:
            self.padding = hk_pad.create_from_tuple(padding, n)

    def __call__(self, inputs: jax.Array, *, precision=None) -> jax.Array:
        """``[N, *spatial, C] -> [N, *spatial', O]`` (channels last) or
        ``[N, C, *spatial] -> [N, O, *spatial']``; the batch axis may be
        omitted."""
        inputs = jnp.asarray(inputs)
        n, g = self.num_spatial_dims, self.feature_group_count
        check_rank(inputs, n, "ConvND")
        c = channels(inputs, n, self.channel_index)
        if c % g != 0:
            raise ValueError(
                f"Inputs channels {c} should be a multiple of feature_group_count {g}"
            )
        w_shape = self.kernel_shape + (c // g, self.output_channels)
        if self.mask is not None and self.mask.shape != w_shape:
            raise ValueError(
                "Mask needs to have the same shape as weights. "
                f"Shapes are: {self.mask.shape}, {w_shape}"
            )
        w_init = self.w_init
        if w_init is None:
            w_init = default_w_init(int(np.prod(w_shape[:-1])))
        spec = template(
            nn.ConvND,
            n,
            c,
            self.output_channels,
            self.kernel_shape,
            self.stride,
            self.kernel_dilation,
            freeze_pairs(self.padding),
            self.with_bias,
            data_format=layout(self.channel_index),
            feature_group_count=g,
        )
        arrays = conv_params(
            spec, n, self.channel_index, inputs.dtype, w_init, self.b_init
        )
        if self.mask is not None:
            arrays[".weight"] = arrays[".weight"] * self.mask
        return spec.build(arrays)(inputs, precision=precision)


class Conv1D(ConvND):
    """Haiku's ``Conv1D``: :class:`ConvND` with ``num_spatial_dims=1``; input
    ``[N, W, C]`` (``"NWC"``, default) or ``[N, C, W]`` (``"NCW"``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Conv1D(4, 3, padding=hk.pad.causal)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 10, 3)))
    >>> f.apply(params, None, jnp.ones((2, 10, 3))).shape
    (2, 10, 4)
    """

    def __init__(
        self,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NWC",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        name: str | None = None,
    ):
        super().__init__(
            1,
            output_channels,
            kernel_shape,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            feature_group_count,
            name,
        )


class Conv2D(ConvND):
    """Haiku's ``Conv2D``: :class:`ConvND` with ``num_spatial_dims=2``; input
    ``[N, H, W, C]`` (``"NHWC"``, default) or ``[N, C, H, W]`` (``"NCHW"``,
    then ``b`` is ``[O, 1, 1]``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Conv2D(4, 3, data_format="NCHW")(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3, 8, 8)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'conv2_d': {'b': (4, 1, 1), 'w': (3, 3, 3, 4)}}
    """

    def __init__(
        self,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NHWC",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        name: str | None = None,
    ):
        super().__init__(
            2,
            output_channels,
            kernel_shape,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            feature_group_count,
            name,
        )


class Conv3D(ConvND):
    """Haiku's ``Conv3D``: :class:`ConvND` with ``num_spatial_dims=3``; input
    ``[N, D, H, W, C]`` (``"NDHWC"``, default) or ``[N, C, D, H, W]``
    (``"NCDHW"``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Conv3D(2, 3, stride=2)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 6, 6, 6, 3)))
    >>> f.apply(params, None, jnp.ones((1, 6, 6, 6, 3))).shape
    (1, 3, 3, 3, 2)
    """

    def __init__(
        self,
        output_channels: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Any = None,
        b_init: Any = None,
        data_format: str = "NDHWC",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        name: str | None = None,
    ):
        super().__init__(
            3,
            output_channels,
            kernel_shape,
            stride,
            rate,
            padding,
            with_bias,
            w_init,
            b_init,
            data_format,
            mask,
            feature_group_count,
            name,
        )

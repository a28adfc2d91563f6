"""Convolutions: ``ConvND`` and ``Conv1D/2D/3D`` (transposes: _conv_transpose.py).

One implementation: ``Conv1D``, ``Conv2D``, ``Conv3D`` are ``ConvND`` with
``num_spatial_dims`` fixed. The
math, parameter shapes and default initializers are Haiku's; sizes are
explicit, so parameters exist as soon as the module is built.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, parameters_method
from ..initializers import Initializer, TruncatedNormal, zeros
from ._data_format import channel_index
from ._pad import Padding, resolve_padding
from ._utils import (
    as_array,
    check_rank,
    compute_dtype,
    init_keys,
    positive_int,
    replicate,
    rng_key_or_next,
    who,
)


def dimension_numbers(
    n: int, channels_last: bool, transpose: bool
) -> jax.lax.ConvDimensionNumbers:
    """The ``jax.lax`` dimension numbers of an ``n``-d convolution.

    Args:
      n: number of spatial dimensions.
      channels_last: input and output ``[N, *spatial, C]`` if True, else
        ``[N, C, *spatial]``.
      transpose: kernel ``[*spatial, out, in]`` (a transposed convolution's,
        as Haiku stores it) if True, else ``[*spatial, in, out]``.

    Returns:
      ``jax.lax.ConvDimensionNumbers(lhs_spec, rhs_spec, out_spec)`` for
      ``jax.lax.conv_general_dilated`` (Haiku's ``to_dimension_numbers``).

    >>> dimension_numbers(2, True, False)
    ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1),
                         out_spec=(0, 3, 1, 2))
    >>> dimension_numbers(1, False, True).rhs_spec
    (1, 2, 0)
    """
    if channels_last:
        image = (0, n + 1, *range(1, n + 1))
    else:
        image = (0, 1, *range(2, n + 2))
    out_axis, in_axis = (n, n + 1) if transpose else (n + 1, n)
    return jax.lax.ConvDimensionNumbers(image, (out_axis, in_axis, *range(n)), image)


def check_conv_input(
    x, n: int, in_features: int, channels_last: bool, owner: Any
) -> jax.Array:
    """Check rank (``n + 1`` unbatched or ``n + 2``) and channel count of ``x``.

    ``owner`` names the module in errors: a string, or the module itself
    (named only when an error is raised)."""
    x = as_array(x, owner)
    shape = x.shape
    ndim = len(shape)
    if ndim != n + 1 and ndim != n + 2:
        layout = "channels-last" if channels_last else "channels-first"
        check_rank(x, (n + 1, n + 2), owner, f"{layout} input")
    axis = -1 if channels_last else ndim - n - 1
    if shape[axis] != in_features:
        raise ValueError(
            f"{who(owner)}: expected input with {in_features} channels on "
            f"axis {axis}, got shape {tuple(shape)}"
        )
    return x


class _ConvBase(Module):
    """What convolutions and transposed convolutions share."""

    parameters = parameters_method("weight", "bias")

    def _setup(self, n, in_features, out_features, kernel_shape, stride, fmt, owner):
        self.num_spatial_dims = positive_int(n, "num_spatial_dims", owner)
        self.in_features = positive_int(in_features, "in_features", owner)
        self.out_features = positive_int(out_features, "out_features", owner)
        self.kernel_shape = replicate(kernel_shape, n, "kernel_shape", owner)
        self.stride = replicate(stride, n, "stride", owner)
        self.data_format = fmt
        self.channels_last = channel_index(fmt, owner, num_spatial_dims=n) == -1

    def _init_params(self, shape, fan_in, with_bias, w_init, b_init, mask, key, owner):
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.shape != shape:
                raise ValueError(
                    f"{owner}: `mask` must have the weight's shape {shape}, "
                    f"got {tuple(mask.shape)}"
                )
        self.mask = mask
        self.with_bias = bool(with_bias)
        if w_init is None:
            w_init = TruncatedNormal(stddev=1.0 / np.sqrt(fan_in))
        b_init = zeros if b_init is None else b_init
        w_key, b_key = init_keys(
            rng_key_or_next(key), (w_init, b_init if self.with_bias else None)
        )
        self.weight = w_init(w_key, shape, jnp.float32)
        if self.with_bias:
            self.bias = b_init(b_key, (self.out_features,), jnp.float32)
        else:
            self.bias = None

    def _prepare(self, x):
        n = self.num_spatial_dims
        x = check_conv_input(x, n, self.in_features, self.channels_last, self)
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        dtype = compute_dtype(x, self.weight)
        w = self.weight.astype(dtype)
        if self.mask is not None:
            w = w * self.mask.astype(dtype)
        return x.astype(dtype), w, unbatched

    def _finish(self, y, unbatched):
        if self.bias is not None:
            b = self.bias.astype(y.dtype)
            if not self.channels_last:
                b = b.reshape((-1,) + (1,) * self.num_spatial_dims)
            y = y + jnp.broadcast_to(b, y.shape)
        return y[0] if unbatched else y


class ConvND(_ConvBase):
    """N-d convolution (cross-correlation), Haiku's ``ConvND`` with sizes.

    Args:
      num_spatial_dims: number of spatial dimensions ``n`` (>= 1).
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: kernel size, an int or a sequence of ``n`` ints.
      stride: step between windows, an int or ``n`` ints (default 1).
      rate: kernel dilation, an int or ``n`` ints (default 1: dense kernel).
      padding: ``"SAME"`` (default) or ``"VALID"`` (any case); a padding
        function ``fn(effective_kernel_size) -> (low, high)`` such as
        ``same``, ``full``, ``causal`` or ``reverse_causal`` (called with
        ``(k - 1) * rate + 1``); a ``(low, high)`` pair for every dimension;
        or a sequence of ``n`` pairs / padding functions.
      with_bias: add a bias (default True). Without one, ``bias`` is None.
      w_init: initializer for ``weight`` ``[*kernel_shape, C // groups, O]``,
        called ``w_init(rng_key, shape, dtype)``. Default (Haiku's):
        ``TruncatedNormal(stddev=1 / sqrt(prod(kernel_shape) * C // groups))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"channels_last"`` (default), ``"channels_first"`` or
        any spelling :func:`pax.nn.channel_index` accepts: ``"NHWC"``,
        ``"NCHW"``, ``"N...C"``, ``"NC..."``...; one spelled letter by letter
        must have ``num_spatial_dims + 2`` letters.
      mask: optional array of the weight's shape, multiplied into the weight at
        every call (non-trainable state).
      feature_group_count: number of groups ``groups``; must divide ``C`` and
        ``O`` (default 1: a dense convolution).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, *spatial, C]`` (channels last) or ``[N, C, *spatial]``
    (channels first); the batch axis may be omitted. Output has the same layout
    with ``O`` channels; spatial size ``ceil(L / stride)`` for ``"SAME"``,
    ``ceil((L - (k - 1) * rate) / stride)`` for ``"VALID"``, and
    ``(L + low + high - (k - 1) * rate - 1) // stride + 1`` for explicit
    padding. The output follows the input's floating dtype.
    Trainable: ``weight``, ``bias``.

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> conv = pax.ConvND(2, 3, 4, kernel_shape=3, stride=2, rng_key=key)
    >>> conv.weight.shape
    (3, 3, 3, 4)
    >>> conv(jnp.ones((2, 9, 9, 3))).shape
    (2, 5, 5, 4)
    """

    def __init__(
        self,
        num_spatial_dims: int,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "channels_last",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        n = positive_int(num_spatial_dims, "num_spatial_dims", owner)
        self._setup(
            n, in_features, out_features, kernel_shape, stride, data_format, owner
        )
        self.rate = replicate(rate, n, "rate", owner)
        self.padding = resolve_padding(padding, self.kernel_shape, self.rate, owner)
        g = positive_int(feature_group_count, "feature_group_count", owner)
        for size_name in ("in_features", "out_features"):
            if getattr(self, size_name) % g:
                raise ValueError(
                    f"{owner}: `feature_group_count` (={g}) must divide "
                    f"`{size_name}` (={getattr(self, size_name)})"
                )
        self.feature_group_count = g
        shape = (*self.kernel_shape, self.in_features // g, self.out_features)
        fan_in = int(np.prod(shape[:-1]))
        self._init_params(
            shape, fan_in, with_bias, w_init, b_init, mask, rng_key, owner
        )

    def __call__(
        self, x: jax.Array, *, precision: jax.lax.Precision | None = None
    ) -> jax.Array:
        """``[N, *spatial, C] -> [N, *spatial', O]`` (or channels first)."""
        n = self.num_spatial_dims
        x = check_conv_input(x, n, self.in_features, self.channels_last, self)
        if isinstance(precision, list):  # lax takes a pair as a list too
            precision = tuple(precision)
        config = (
            type(self).__name__,
            n,
            self.channels_last,
            self.stride,
            self.padding,
            self.rate,
            self.feature_group_count,
            precision,
        )
        return _conv(x, self.weight, self.bias, self.mask, config)


@functools.partial(jax.jit, static_argnums=4, inline=True)
def _conv(x, weight, bias, mask, config):
    """``ConvND``'s math; ``config`` holds the module's hashable settings.

    Jitted, so that an eager call is one dispatch (batch axis, casts, mask,
    convolution and bias compile together, traced once per shape, dtype and
    config); ``inline`` puts the same operations into an enclosing trace."""
    name, n, channels_last, stride, padding, rate, groups, precision = config
    with jax.named_scope(f"pax.nn.{name}"):
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        dtype = compute_dtype(x, weight)
        w = weight.astype(dtype)
        if mask is not None:
            w = w * mask.astype(dtype)
        y = jax.lax.conv_general_dilated(
            x.astype(dtype),
            w,
            window_strides=stride,
            padding=padding,
            rhs_dilation=rate,
            dimension_numbers=dimension_numbers(n, channels_last, transpose=False),
            feature_group_count=groups,
            precision=precision,
        )
        if bias is not None:
            b = bias.astype(dtype)
            if not channels_last:
                b = b.reshape((-1,) + (1,) * n)
            y = y + jnp.broadcast_to(b, y.shape)
        return y[0] if unbatched else y


class Conv1D(ConvND):
    """1-d convolution: :class:`ConvND` with ``num_spatial_dims=1``.

    Args:
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: kernel width ``k``, an int or a 1-sequence.
      stride: an int or a 1-sequence (default 1).
      rate: kernel dilation, an int or a 1-sequence (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, a padding function or a
        ``(low, high)`` pair (or a 1-sequence of those); see :class:`ConvND`.
      with_bias: add a bias (default True); otherwise ``bias`` is None.
      w_init: initializer for ``weight`` ``[k, C // groups, O]``. Default:
        ``TruncatedNormal(stddev=1 / sqrt(k * C // groups))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"NWC"`` (default) or ``"NCW"``; ``"channels_last"`` and
        ``"channels_first"`` also work.
      mask: optional array of the weight's shape, multiplied into the weight.
      feature_group_count: groups; must divide ``C`` and ``O`` (default 1).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, W, C]`` (``"NWC"``) or ``[N, C, W]`` (``"NCW"``), batch axis
    optional; output ``[N, W', O]`` (or ``[N, O, W']``) with ``W' = ceil(W /
    stride)`` for ``"SAME"`` (see :class:`ConvND` for the others).

    >>> import jax, jax.numpy as jnp, pax
    >>> key = jax.random.PRNGKey(0)
    >>> conv = pax.Conv1D(3, 4, kernel_shape=3, padding="VALID", rng_key=key)
    >>> conv(jnp.ones((2, 16, 3))).shape
    (2, 14, 4)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NWC",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            1,
            in_features,
            out_features,
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
            rng_key=rng_key,
            name=name,
        )


class Conv2D(ConvND):
    """2-d convolution: :class:`ConvND` with ``num_spatial_dims=2``.

    Args:
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: ``(kh, kw)``, or an int for both.
      stride: an int or 2 ints (default 1).
      rate: kernel dilation, an int or 2 ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, a padding function, a
        ``(low, high)`` pair, or 2 pairs / padding functions; see
        :class:`ConvND`.
      with_bias: add a bias (default True); otherwise ``bias`` is None.
      w_init: initializer for ``weight`` ``[kh, kw, C // groups, O]``. Default:
        ``TruncatedNormal(stddev=1 / sqrt(kh * kw * C // groups))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"NHWC"`` (default) or ``"NCHW"``; ``"channels_last"`` and
        ``"channels_first"`` also work.
      mask: optional array of the weight's shape, multiplied into the weight.
      feature_group_count: groups; must divide ``C`` and ``O`` (default 1).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, H, W, C]`` (``"NHWC"``) or ``[N, C, H, W]`` (``"NCHW"``),
    batch axis optional; output ``[N, H', W', O]`` (or ``[N, O, H', W']``)
    with ``H' = ceil(H / stride)`` for ``"SAME"`` (see :class:`ConvND`).

    >>> import jax, jax.numpy as jnp, pax
    >>> conv = pax.Conv2D(3, 4, kernel_shape=3, rng_key=jax.random.PRNGKey(0))
    >>> conv
    Conv2D(in_features=3, out_features=4, kernel_shape=3, stride=1, rate=1,
      padding='SAME', with_bias=True, data_format='NHWC', feature_group_count=1)
    >>> conv(jnp.ones((2, 8, 8, 3))).shape
    (2, 8, 8, 4)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NHWC",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            2,
            in_features,
            out_features,
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
            rng_key=rng_key,
            name=name,
        )


class Conv3D(ConvND):
    """3-d convolution: :class:`ConvND` with ``num_spatial_dims=3``.

    Args:
      in_features: number of input channels ``C``.
      out_features: number of output channels ``O``.
      kernel_shape: ``(kd, kh, kw)``, or an int for all three.
      stride: an int or 3 ints (default 1).
      rate: kernel dilation, an int or 3 ints (default 1).
      padding: ``"SAME"`` (default), ``"VALID"``, a padding function, a
        ``(low, high)`` pair, or 3 pairs / padding functions; see
        :class:`ConvND`.
      with_bias: add a bias (default True); otherwise ``bias`` is None.
      w_init: initializer for ``weight`` ``[kd, kh, kw, C // groups, O]``.
        Default: ``TruncatedNormal(stddev=1 / sqrt(kd * kh * kw * C // groups))``.
      b_init: initializer for ``bias`` ``[O]``. Default: zeros.
      data_format: ``"NDHWC"`` (default) or ``"NCDHW"``; ``"channels_last"``
        and ``"channels_first"`` also work.
      mask: optional array of the weight's shape, multiplied into the weight.
      feature_group_count: groups; must divide ``C`` and ``O`` (default 1).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[N, D, H, W, C]`` (``"NDHWC"``) or ``[N, C, D, H, W]``
    (``"NCDHW"``), batch axis optional; output ``[N, D', H', W', O]`` (or
    channels first) with ``D' = ceil(D / stride)`` for ``"SAME"``.

    >>> import jax, jax.numpy as jnp, pax
    >>> conv = pax.Conv3D(3, 4, kernel_shape=2, stride=2, rng_key=jax.random.PRNGKey(0))
    >>> conv(jnp.ones((1, 6, 6, 6, 3))).shape
    (1, 3, 3, 3, 4)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_shape: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        rate: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        data_format: str = "NDHWC",
        mask: jax.Array | None = None,
        feature_group_count: int = 1,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            3,
            in_features,
            out_features,
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
            rng_key=rng_key,
            name=name,
        )

"""Per-example normalization: ``LayerNorm``, ``InstanceNorm``, ``RMSNorm``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, parameters_method
from ..initializers import Initializer, ones
from ._data_format import channel_index
from ._utils import (
    affine,
    as_array,
    check_call_affine,
    float_result_dtype,
    init_affine,
    norm_dtype,
    positive_int,
    real_number,
    rng_key_or_next,
    who,
)

Axes = int | Sequence[int] | slice


def _is_int(a: Any) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


def _check_axes(axis: Axes, owner: str) -> int | tuple[int, ...] | slice:
    if isinstance(axis, slice):
        return axis
    if _is_int(axis):
        return (int(axis),)
    if (
        isinstance(axis, Sequence)
        and not isinstance(axis, str)
        and all(_is_int(a) for a in axis)
    ):
        return tuple(int(a) for a in axis)
    raise TypeError(
        f"{owner}: `axis` must be an int, a sequence of ints or a slice, got "
        f"{axis!r} ({type(axis).__name__})"
    )


def _check_param_axis(
    param_axis: Any, num_channels: Any, owner: str
) -> tuple[int | tuple[int, ...], int | tuple[int, ...], tuple[int, ...]]:
    """``(param_axis, num_channels, parameter shape)``: an int axis with an
    int size (shape ``[C]``), or a sequence of axes with one size each (shape
    the sizes, in the order of the axes)."""
    if _is_int(param_axis):
        c = positive_int(num_channels, "num_channels", owner)
        return int(param_axis), c, (c,)
    if (
        isinstance(param_axis, Sequence)
        and not isinstance(param_axis, str)
        and all(_is_int(a) for a in param_axis)
    ):
        axes = tuple(int(a) for a in param_axis)
        if _is_int(num_channels) and len(axes) == 1:
            num_channels = (num_channels,)
        if (
            not isinstance(num_channels, Sequence)
            or isinstance(num_channels, str)
            or len(num_channels) != len(axes)
        ):
            raise ValueError(
                f"{owner}: with several `param_axis` {axes}, `num_channels` must "
                f"give one size per axis, got {num_channels!r}"
            )
        sizes = tuple(positive_int(c, "num_channels", owner) for c in num_channels)
        return axes, sizes, sizes
    raise TypeError(
        f"{owner}: `param_axis` must be an int or a sequence of ints, got "
        f"{param_axis!r} ({type(param_axis).__name__})"
    )


def _param_axes(module: Any, x: jax.Array) -> tuple[int, ...]:
    """``module.param_axis`` as non-negative axes of ``x``, checked against
    ``x``'s shape (several axes must be in increasing order)."""
    given = module.param_axis
    axes = (given,) if _is_int(given) else given
    sizes = (module.num_channels,) if _is_int(given) else module.num_channels
    if any(not -x.ndim <= a < x.ndim for a in axes):
        raise ValueError(
            f"{who(module)}: input of shape {tuple(x.shape)} has no axis {given}"
        )
    absolute = tuple(a % x.ndim for a in axes)
    if any(a >= b for a, b in zip(absolute, absolute[1:])):
        raise ValueError(
            f"{who(module)}: `param_axis` {given} must list distinct axes of the "
            f"rank-{x.ndim} input in increasing order"
        )
    if tuple(x.shape[a] for a in absolute) != tuple(sizes):
        raise ValueError(
            f"{who(module)}: expected input with {module.num_channels} channels on "
            f"axis {given}, got shape {tuple(x.shape)}"
        )
    return absolute


def _broadcast_param(
    own: Any, given: Any, x: jax.Array, axes: tuple[int, ...], dtype: Any
) -> Any:
    """The scale/offset applied, broadcast to ``x``: the module's own (sizes
    along the increasing ``axes``), else one given at call time, else None."""
    if own is None:
        return affine(None, given, x, -1, dtype)
    p = jnp.asarray(own, dtype)
    shape = [1] * x.ndim
    for a in axes:
        shape[a] = x.shape[a]
    return jnp.broadcast_to(p.reshape(shape), x.shape)


def _resolve(axis, ndim: int, owner: str) -> tuple[int, ...]:
    if isinstance(axis, slice):
        return tuple(range(ndim)[axis])
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(
                f"{owner}: axis {a} is out of range for an input of rank {ndim}"
            )
    return tuple(sorted(a % ndim for a in axis))


class LayerNorm(Module):
    """Normalizes each example over ``axis``, with a learned per-channel affine.

    ``y = inv * (x - mean) + offset`` with ``inv = scale * rsqrt(var + eps)``
    (Haiku's order of operations), mean and (biased) variance taken over
    ``axis`` of each input; ``scale``/``offset`` have shape ``[num_channels]``
    and act along ``param_axis`` (the last axis by default), as Haiku's
    ``LayerNorm``. Arithmetic is float32 or wider; the output has a floating
    input's dtype, and integer input gives float32 output.

    Args:
      num_channels: size of the input along ``param_axis`` (one size per axis
        when ``param_axis`` is a sequence).
      axis: axes to normalize over: an int, a sequence of ints or a slice
        (``slice(1, None)``: everything but the batch axis). Default ``-1``.
      create_scale: learn ``scale`` (default ones via ``scale_init``); if
        False, ``scale`` may be passed at call time.
      create_offset: learn ``offset`` (default zeros); if False, ``offset``
        may be passed at call time.
      eps: added to the variance.
      scale_init, offset_init: initializers ``init(rng_key, shape, dtype)``.
      use_fast_variance: compute the variance as ``E[x²] - E[x]²`` (Haiku's
        option) instead of ``E[(x - E[x])²]``.
      param_axis: the channel axis that ``scale``/``offset`` act along, or a
        sequence of distinct axes in increasing order (for the input's rank):
        then ``scale``/``offset`` have shape ``num_channels``, one size per
        axis.
      rng_key: key for random initializers; ``None`` draws one.
      name: optional module name.

    Input ``[..., num_channels]`` (any rank); output the same shape and dtype
    (float32 for integer input). Trainable: ``scale``, ``offset``.

    >>> import jax.numpy as jnp, pax
    >>> ln = pax.LayerNorm(4)
    >>> y = ln(jnp.array([[1.0, 2.0, 3.0, 4.0]]))
    >>> bool(jnp.allclose(y.mean(-1), 0.0, atol=1e-6))
    True
    >>> pax.LayerNorm((2, 3), param_axis=(0, -1)).scale.shape  # e.g. [2, 5, 3]
    (2, 3)
    """

    keep_float32_under_mixed_precision = True
    parameters = parameters_method("scale", "offset")

    def __init__(
        self,
        num_channels: int | Sequence[int],
        axis: Axes = -1,
        create_scale: bool = True,
        create_offset: bool = True,
        eps: float = 1e-5,
        scale_init: Initializer | None = None,
        offset_init: Initializer | None = None,
        *,
        use_fast_variance: bool = False,
        param_axis: int | Sequence[int] = -1,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.axis = _check_axes(axis, owner)
        self.param_axis, self.num_channels, shape = _check_param_axis(
            param_axis, num_channels, owner
        )
        init_affine(
            self,
            create_scale,
            create_offset,
            scale_init,
            offset_init,
            eps,
            rng_key,
            shape=shape,
        )
        self.use_fast_variance = bool(use_fast_variance)

    def _statistics(self, xf: jax.Array, axes: tuple[int, ...]):
        mean = jnp.mean(xf, axes, keepdims=True)
        if self.use_fast_variance:
            var = jnp.mean(jnp.square(xf), axes, keepdims=True) - jnp.square(mean)
        else:
            var = jnp.var(xf, axes, keepdims=True)
        return mean, var

    def __call__(
        self,
        x: jax.Array,
        scale: jax.Array | None = None,
        offset: jax.Array | None = None,
    ) -> jax.Array:
        """Normalize ``x`` over ``axis`` (shape and dtype kept).

        ``scale``/``offset`` (broadcastable to ``x``) may be given only when the
        module does not create its own.
        """
        x = as_array(x, who(self))
        check_call_affine(self, scale, offset)
        p_axes = _param_axes(self, x)
        axes = _resolve(self.axis, x.ndim, who(self))
        with jax.named_scope(f"pax.nn.{type(self).__name__}"):
            dtype = norm_dtype(x)
            xf = x.astype(dtype)
            mean, var = self._statistics(xf, axes)
            # Haiku's order of operations: inv = scale * rsqrt(var + eps), then
            # inv * (x - mean) + offset.
            inv = jnp.broadcast_to(
                jax.lax.rsqrt(var + jnp.asarray(self.eps, dtype)), x.shape
            )
            scale = _broadcast_param(self.scale, scale, x, p_axes, dtype)
            if scale is not None:
                inv = scale * inv
            y = inv * (xf - jnp.broadcast_to(mean, x.shape))
            offset = _broadcast_param(self.offset, offset, x, p_axes, dtype)
            if offset is not None:
                y = y + offset
            return y.astype(float_result_dtype(x))


class InstanceNorm(LayerNorm):
    """Normalizes each example and channel over the spatial axes (Haiku's
    ``InstanceNorm``: a :class:`LayerNorm` over the spatial axes with
    per-channel ``scale``/``offset``).

    Args:
      num_channels: size of the channel axis.
      create_scale, create_offset, eps, scale_init, offset_init: as
        :class:`LayerNorm`.
      data_format: ``"channels_last"`` (``[N, ..., C]``, the default) or
        ``"channels_first"`` (``[N, C, ...]``), or any spelling
        :func:`pax.nn.channel_index` accepts (``"NHWC"``, ``"NCHW"``,
        ``"N...C"``, ``"NC..."``, ...).
      rng_key, name: as :class:`LayerNorm`.

    Input ``[N, *spatial, C]`` or ``[N, C, *spatial]``; output the same
    (integer input gives float32 output).

    >>> import jax, jax.numpy as jnp, pax
    >>> norm = pax.InstanceNorm(3)
    >>> y = norm(jax.random.normal(jax.random.PRNGKey(0), (2, 5, 5, 3)))
    >>> bool(jnp.allclose(y.mean((1, 2)), 0.0, atol=1e-5))
    True
    """

    def __init__(
        self,
        num_channels: int,
        create_scale: bool = True,
        create_offset: bool = True,
        eps: float = 1e-5,
        scale_init: Initializer | None = None,
        offset_init: Initializer | None = None,
        data_format: str = "channels_last",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        ch = channel_index(data_format, type(self).__name__)
        super().__init__(
            num_channels,
            axis=slice(1, -1) if ch == -1 else slice(2, None),
            create_scale=create_scale,
            create_offset=create_offset,
            eps=eps,
            scale_init=scale_init,
            offset_init=offset_init,
            param_axis=ch,
            rng_key=rng_key,
            name=name,
        )
        self.data_format = data_format


class RMSNorm(Module):
    """Root-mean-square normalization: ``y = x * scale * rsqrt(mean(x², axis)
    + eps)``, as Haiku's ``RMSNorm`` and in its order of operations (no
    centering, no offset).

    Args:
      num_channels: size of the input along ``param_axis`` (one size per axis
        when ``param_axis`` is a sequence).
      axis: axes to average ``x²`` over (int, sequence or slice); default -1.
      eps: added to the mean square (``>= 0``; with 0 an all-zero row gives
        NaN).
      scale_init: initializer for ``scale`` (default ones).
      create_scale: learn ``scale`` ``[num_channels]``; otherwise no scale.
      param_axis: the axis ``scale`` acts along (default -1), or a sequence
        of distinct axes in increasing order (``scale`` then has shape
        ``num_channels``, one size per axis).
      rng_key: key for a random ``scale_init``; ``None`` draws one.
      name: optional module name.

    Input ``[..., num_channels]``; output the same shape and dtype; integer
    input gives float32 output. Trainable: ``scale``.

    >>> import jax.numpy as jnp, pax
    >>> pax.RMSNorm(2)(jnp.array([[3.0, 4.0]]))
    Array([[0.8485..., 1.1313...]], dtype=float32)
    """

    keep_float32_under_mixed_precision = True
    parameters = parameters_method("scale")

    def __init__(
        self,
        num_channels: int | Sequence[int],
        axis: Axes = -1,
        eps: float = 1e-5,
        scale_init: Initializer | None = None,
        create_scale: bool = True,
        *,
        param_axis: int | Sequence[int] = -1,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.axis = _check_axes(axis, owner)
        if not create_scale and scale_init is not None:
            raise ValueError(
                f"{owner}: cannot set `scale_init` if `create_scale=False`"
            )
        # eps = 0 is allowed (as in Haiku): exact RMS, NaN for all-zero rows
        self.eps = real_number(eps, "eps", owner, low=0.0)
        self.create_scale = bool(create_scale)
        self.param_axis, self.num_channels, c = _check_param_axis(
            param_axis, num_channels, owner
        )
        self.scale = (
            (scale_init or ones)(rng_key_or_next(rng_key), c, jnp.float32)
            if create_scale
            else None
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        """``[..., num_channels] -> [..., num_channels]``."""
        x = as_array(x, who(self))
        p_axes = _param_axes(self, x)
        axes = _resolve(self.axis, x.ndim, who(self))
        with jax.named_scope("pax.nn.RMSNorm"):
            dtype = norm_dtype(x)
            xf = x.astype(dtype)
            ms = jnp.mean(jnp.square(xf), axes, keepdims=True)
            # Haiku's order of operations: x * scale * rsqrt(ms + eps)
            y = xf
            if self.scale is not None:
                y = y * _broadcast_param(self.scale, None, x, p_axes, dtype)
            y = y * jnp.broadcast_to(
                jax.lax.rsqrt(ms + jnp.asarray(self.eps, dtype)), x.shape
            )
            return y.astype(float_result_dtype(x))

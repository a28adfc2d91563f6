"""Pooling: ``avg_pool`` and ``max_pool``, and the ``AvgPool``/``MaxPool`` modules.

Window and stride shapes follow Haiku's rules:

* an ``int`` applies to every axis except the first (the batch axis) and the
  channel axis, which get 1;
* a sequence shorter than the input's rank is padded on the left with 1s (the
  extra leading axes are taken to be batch axes);
* a sequence as long as the rank is used as is (``channel_axis`` is then not
  consulted for the shape).

Under ``jax.vmap`` the mapped batch axis is invisible, so an ``int`` would pool
over the first spatial axis as if it were the batch axis. Haiku emits a
``DeprecationWarning`` on every call with an ``int`` other than 1 (vmapped or
not); PAX cannot see a vmap through public JAX API either, and documents the
rule instead of warning: give the per-example shape as a sequence, e.g.
``(2, 2, 1)`` for ``[H, W, C]`` examples, which is correct both batched and
under vmap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._core.module import Module
from ._utils import as_array, float_result_dtype, positive_int, who

_PADDINGS = ("SAME", "VALID")


def _check_size(value: Any, name: str, owner: str) -> int | tuple[int, ...]:
    """An int > 0, or a non-empty sequence of ints > 0 (returned as a tuple)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return positive_int(value, name, owner)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value):
        return tuple(positive_int(v, name, owner) for v in value)
    raise TypeError(
        f"{owner}: `{name}` must be a positive int or a non-empty sequence of "
        f"positive ints, got {value!r}"
    )


def _check_args(
    window_shape: Any, strides: Any, padding: Any, channel_axis: Any, owner: str
) -> tuple[int | tuple[int, ...], int | tuple[int, ...], str, int | None]:
    """Validate everything that does not depend on the input; fail early."""
    window_shape = _check_size(window_shape, "window_shape", owner)
    strides = _check_size(strides, "strides", owner)
    if not isinstance(padding, str) or padding not in _PADDINGS:
        raise ValueError(
            f"{owner}: `padding` must be 'SAME' or 'VALID', got {padding!r}"
        )
    if channel_axis is not None and (
        isinstance(channel_axis, bool)
        or not isinstance(channel_axis, (int, np.integer))
    ):
        raise TypeError(
            f"{owner}: `channel_axis` must be an int or None, got {channel_axis!r}"
        )
    channel_axis = None if channel_axis is None else int(channel_axis)
    return window_shape, strides, padding, channel_axis


def _full_shape(
    size: int | tuple[int, ...],
    ndim: int,
    channel_axis: int | None,
    name: str,
    owner: str,
    shape: tuple[int, ...],
) -> tuple[int, ...]:
    """Expand a window or stride argument to one entry per input axis."""
    if isinstance(size, int):
        channel = None if channel_axis is None else channel_axis % ndim
        return (1,) + tuple(1 if d == channel else size for d in range(1, ndim))
    if len(size) > ndim:
        raise ValueError(
            f"{owner}: `{name}` {size} has more entries than the input has axes "
            f"(shape {shape})"
        )
    return (1,) * (ndim - len(size)) + size


def _pool(
    value: Any,
    window_shape: int | tuple[int, ...],
    strides: int | tuple[int, ...],
    padding: str,
    channel_axis: int | None,
    kind: str,
    owner: str,
) -> jax.Array:
    """Pool ``value`` (arguments already validated by ``_check_args``)."""
    x = as_array(value, owner)
    shape = tuple(x.shape)
    if x.ndim < 1:
        raise ValueError(f"{owner}: expected an input of rank >= 1, got a scalar")
    if channel_axis is not None and not -x.ndim <= channel_axis < x.ndim:
        raise ValueError(
            f"{owner}: `channel_axis` {channel_axis} is out of range for an input "
            f"of shape {shape}"
        )
    window = _full_shape(
        window_shape, x.ndim, channel_axis, "window_shape", owner, shape
    )
    stride = _full_shape(strides, x.ndim, channel_axis, "strides", owner, shape)
    if kind == "max":
        if jnp.issubdtype(x.dtype, jnp.integer):
            init = np.array(jnp.iinfo(x.dtype).min, x.dtype)
        elif x.dtype == jnp.bool_:
            init = np.array(False)
        else:
            init = np.array(-np.inf, x.dtype)
        return lax.reduce_window(x, init, lax.max, window, stride, padding)
    # sum integers (uint8 images: no overflow) and booleans in float32
    x = x.astype(float_result_dtype(x))
    zero = np.array(0, x.dtype)
    total = lax.reduce_window(x, zero, lax.add, window, stride, padding)
    if padding == "VALID":
        return total / int(np.prod(window))
    # SAME: divide by the number of real (non-padded) elements in each window.
    # Padding is separable, so counting over a ones array that is 1-long on
    # unpooled axes gives counts that broadcast along those axes.
    ones = jnp.ones([n if w != 1 else 1 for n, w in zip(shape, window)], x.dtype)
    counts = lax.reduce_window(ones, zero, lax.add, window, stride, padding)
    return total / counts


def avg_pool(
    value: jax.Array,
    window_shape: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str,
    channel_axis: int | None = -1,
) -> jax.Array:
    """Average pooling with Haiku's semantics.

    With ``'SAME'`` padding each output is the mean of its window's real
    elements: padded positions count neither in the sum nor in the divisor.

    Args:
      value: input of any rank >= 1, batch axis first.
      window_shape: pooling window. An ``int`` covers every axis except the
        first (batch) axis and ``channel_axis``; a sequence shorter than the
        input's rank is left-padded with 1s; a full-rank sequence is used as
        is.
      strides: step between windows, with the same rules as ``window_shape``.
      padding: ``'SAME'`` (``ceil(n / stride)`` outputs along an axis of size
        ``n``) or ``'VALID'`` (whole windows only:
        ``ceil((n - window + 1) / stride)``).
      channel_axis: the axis an ``int`` window or stride leaves alone
        (negative counts from the end); ``None`` pools every non-batch axis.
        Not consulted for sequence arguments, as in Haiku.

    Returns:
      An array of the input's rank, each axis shrunk as ``padding`` says, in
      the input's floating dtype; integer or boolean input is averaged in
      float32 and gives float32 (DESIGN §8, "Integer input").

    Raises:
      ValueError: unknown ``padding``, a non-positive window or stride entry, a
        sequence longer than the input's rank, ``channel_axis`` out of range.
      TypeError: an argument of the wrong type.

    Under ``jax.vmap``, give the per-example shape as a sequence (see this
    file's module docstring): an ``int`` would treat the first per-example
    axis as the batch axis.

    >>> import jax.numpy as jnp, pax
    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)  # [N, H, W, C]
    >>> pax.avg_pool(x, 2, 2, "VALID")[0, :, :, 0]
    Array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    >>> pax.avg_pool(x, (3, 3, 1), 1, "SAME").shape
    (1, 4, 4, 1)
    """
    args = _check_args(window_shape, strides, padding, channel_axis, "avg_pool")
    return _pool(value, *args, kind="avg", owner="avg_pool")


def max_pool(
    value: jax.Array,
    window_shape: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str,
    channel_axis: int | None = -1,
) -> jax.Array:
    """Max pooling with Haiku's semantics (padded positions never win).

    Args:
      value: input of any rank >= 1, batch axis first.
      window_shape: pooling window. An ``int`` covers every axis except the
        first (batch) axis and ``channel_axis``; a sequence shorter than the
        input's rank is left-padded with 1s; a full-rank sequence is used as
        is.
      strides: step between windows, with the same rules as ``window_shape``.
      padding: ``'SAME'`` (``ceil(n / stride)`` outputs along an axis of size
        ``n``) or ``'VALID'`` (whole windows only:
        ``ceil((n - window + 1) / stride)``).
      channel_axis: the axis an ``int`` window or stride leaves alone
        (negative counts from the end); ``None`` pools every non-batch axis.
        Not consulted for sequence arguments, as in Haiku.

    Returns:
      An array of the input's rank and dtype, each axis shrunk as ``padding``
      says. Integer and boolean inputs keep their dtype: a maximum is exact,
      nothing is computed in floating point.

    Raises:
      ValueError: unknown ``padding``, a non-positive window or stride entry, a
        sequence longer than the input's rank, ``channel_axis`` out of range.
      TypeError: an argument of the wrong type.

    Under ``jax.vmap``, give the per-example shape as a sequence (see
    :func:`avg_pool`).

    >>> import jax.numpy as jnp, pax
    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)  # [N, H, W, C]
    >>> pax.max_pool(x, 2, 2, "VALID")[0, :, :, 0]
    Array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    >>> x = jnp.ones((2, 3, 8, 8))  # [N, C, H, W]
    >>> pax.max_pool(x, 2, 2, "SAME", channel_axis=1).shape
    (2, 3, 4, 4)
    """
    args = _check_args(window_shape, strides, padding, channel_axis, "max_pool")
    return _pool(value, *args, kind="max", owner="max_pool")


class _Pool(Module):
    """Shared constructor and call of :class:`AvgPool` and :class:`MaxPool`."""

    _kind = ""  # "avg" or "max", set by the subclass (class-level, static)

    def __init__(
        self,
        window_shape: int | Sequence[int],
        strides: int | Sequence[int],
        padding: str,
        channel_axis: int | None = -1,
        *,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        args = _check_args(window_shape, strides, padding, channel_axis, owner)
        self.window_shape, self.strides, self.padding, self.channel_axis = args

    def __call__(self, value: jax.Array) -> jax.Array:
        """``[N, ...] -> [N, ...]``, pooled axes shrunk as ``padding`` says."""
        with jax.named_scope(f"pax.nn.{type(self).__name__}"):
            return _pool(
                value,
                self.window_shape,
                self.strides,
                self.padding,
                self.channel_axis,
                kind=self._kind,
                owner=who(self),
            )


class AvgPool(_Pool):
    """Average pooling as a module: :func:`avg_pool` with fixed arguments.

    Args:
      window_shape: pooling window: an ``int`` (every axis except the batch
        axis and ``channel_axis``), or a sequence (left-padded with 1s to the
        input's rank). Prefer the per-example shape, e.g. ``(2, 2, 1)`` for
        ``[H, W, C]`` examples: it is also right under ``jax.vmap``.
      strides: step between windows, with the same rules as ``window_shape``.
      padding: ``'SAME'`` or ``'VALID'``; with ``'SAME'``, padded positions are
        left out of each mean.
      channel_axis: the axis an ``int`` window or stride leaves alone; ``None``
        pools every non-batch axis. Default ``-1`` (channels last).
      name: optional module name.

    Input: any rank >= 1, batch axis first. Output: same rank, each axis shrunk
    as ``padding`` says (see :func:`avg_pool`), in the input's floating dtype
    (float32 for integer or boolean input). No parameters, no state.

    >>> import jax.numpy as jnp, pax
    >>> pool = pax.AvgPool((2, 2, 1), (2, 2, 1), "VALID")
    >>> pool(jnp.ones((8, 6, 6, 3))).shape
    (8, 3, 3, 3)
    """

    _kind = "avg"


class MaxPool(_Pool):
    """Max pooling as a module: :func:`max_pool` with fixed arguments.

    Args:
      window_shape: pooling window: an ``int`` (every axis except the batch
        axis and ``channel_axis``), or a sequence (left-padded with 1s to the
        input's rank). Prefer the per-example shape, e.g. ``(2, 2, 1)`` for
        ``[H, W, C]`` examples: it is also right under ``jax.vmap``.
      strides: step between windows, with the same rules as ``window_shape``.
      padding: ``'SAME'`` or ``'VALID'``.
      channel_axis: the axis an ``int`` window or stride leaves alone; ``None``
        pools every non-batch axis. Default ``-1`` (channels last).
      name: optional module name.

    Input: any rank >= 1, batch axis first. Output: same rank and dtype (an
    integer input stays integer: the maximum is exact), each axis shrunk as
    ``padding`` says (see :func:`max_pool`). No parameters, no state.

    >>> import jax.numpy as jnp, pax
    >>> pool = pax.MaxPool(3, 2, "SAME")
    >>> pool
    MaxPool(window_shape=3, strides=2, padding='SAME', channel_axis=-1)
    >>> pool(jnp.ones((8, 7, 7, 3))).shape
    (8, 4, 4, 3)
    """

    _kind = "max"

"""``hk.max_pool``, ``hk.avg_pool``, ``hk.MaxPool``, ``hk.AvgPool``: Haiku's
pooling, computing with ``pax.nn.max_pool`` / ``pax.nn.avg_pool``.

Window and stride rules are Haiku's (and ``pax.nn``'s): an ``int`` covers
every axis but the first and ``channel_axis``; a shorter sequence is
left-padded with 1s; a full-rank sequence is used as is. As in Haiku, an
``int`` other than 1 emits a ``DeprecationWarning`` (it is wrong under
``jax.vmap``, where the batch axis is invisible), and ``channel_axis`` is only
looked at for ``int`` arguments. Haiku's ``MaxPool``/``AvgPool`` check their
arguments when called, not when built; so do these.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .. import nn
from ._module import Module

_VMAP_WARNING = (
    "An int `window_shape` or `strides` (other than 1) pools every axis but "
    "the first and `channel_axis`; under jax.vmap the batch axis is not "
    "visible, so the first per-example axis is left unpooled. Give the "
    "per-example shape instead, e.g. window_shape=(3, 3, 1) for [H, W, C] "
    "examples rather than 3: it is right both batched and under vmap."
)


def _prepare(value, window_shape, strides, padding, channel_axis):
    """Haiku's checks, then the ``channel_axis`` to give ``pax.nn``."""
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"Invalid padding '{padding}', must be 'SAME' or 'VALID'.")
    value = jnp.asarray(value)
    unsafe = [s for s in (window_shape, strides) if isinstance(s, int) and s != 1]
    if unsafe:
        warnings.warn(_VMAP_WARNING, DeprecationWarning, stacklevel=3)
    if not any(isinstance(s, int) for s in (window_shape, strides)):
        return value, None  # channel_axis is not consulted for sequences
    if channel_axis and not 0 <= abs(channel_axis) < value.ndim:
        raise ValueError(f"Invalid channel axis {channel_axis} for {value.shape}")
    return value, channel_axis or None  # 0 (the batch axis) pools like None


def max_pool(
    value: jax.Array,
    window_shape: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str,
    channel_axis: int | None = -1,
) -> jax.Array:
    """Haiku's ``max_pool``: the maximum over each window.

    Args:
      value: input, batch axis first.
      window_shape: an int (every axis but the first and ``channel_axis``) or
        a sequence (left-padded with 1s to ``value``'s rank).
      strides: step between windows, same rules as ``window_shape``.
      padding: ``"SAME"`` or ``"VALID"`` (upper case).
      channel_axis: the axis an int window or stride leaves alone (default
        -1); ``None`` pools every axis but the first.

    Returns:
      An array of ``value``'s rank and dtype.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> hk.max_pool(x, (2, 2, 1), (2, 2, 1), "VALID")[0, :, :, 0]
    Array([[ 5.,  7.],
           [13., 15.]], dtype=float32)
    """
    value, channel_axis = _prepare(value, window_shape, strides, padding, channel_axis)
    return nn.max_pool(value, window_shape, strides, padding, channel_axis)


def avg_pool(
    value: jax.Array,
    window_shape: int | Sequence[int],
    strides: int | Sequence[int],
    padding: str,
    channel_axis: int | None = -1,
) -> jax.Array:
    """Haiku's ``avg_pool``: the mean over each window; with ``"SAME"``,
    padded positions count neither in the sum nor in the divisor.

    Arguments as :func:`max_pool`.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> hk.avg_pool(x, (2, 2, 1), (2, 2, 1), "VALID")[0, :, :, 0]
    Array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    value, channel_axis = _prepare(value, window_shape, strides, padding, channel_axis)
    return nn.avg_pool(value, window_shape, strides, padding, channel_axis)


class MaxPool(Module):
    """Haiku's ``MaxPool``: :func:`max_pool` with fixed arguments.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.MaxPool((2, 2, 1), (2, 2, 1), "SAME")(x))
    >>> f.apply({}, None, jnp.ones((1, 5, 5, 3))).shape
    (1, 3, 3, 3)
    """

    def __init__(
        self,
        window_shape: int | Sequence[int],
        strides: int | Sequence[int],
        padding: str,
        channel_axis: int | None = -1,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.window_shape = window_shape
        self.strides = strides
        self.padding = padding
        self.channel_axis = channel_axis

    def __call__(self, value: jax.Array) -> jax.Array:
        """``value`` pooled (same rank and dtype)."""
        return max_pool(
            value, self.window_shape, self.strides, self.padding, self.channel_axis
        )


class AvgPool(Module):
    """Haiku's ``AvgPool``: :func:`avg_pool` with fixed arguments.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.AvgPool((3, 3, 1), 1, "SAME")(x))
    >>> f.apply({}, None, jnp.ones((1, 5, 5, 3))).shape
    (1, 5, 5, 3)
    """

    def __init__(
        self,
        window_shape: int | Sequence[int],
        strides: int | Sequence[int],
        padding: str,
        channel_axis: int | None = -1,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.window_shape = window_shape
        self.strides = strides
        self.padding = padding
        self.channel_axis = channel_axis

    def __call__(self, value: jax.Array) -> jax.Array:
        """``value`` pooled (same rank, floating dtype)."""
        return avg_pool(
            value, self.window_shape, self.strides, self.padding, self.channel_axis
        )

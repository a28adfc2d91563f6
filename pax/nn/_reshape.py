"""Reshaping that keeps leading (batch) axes: ``Reshape`` and ``Flatten``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module
from ._utils import as_array, who


def _check_preserve_dims(preserve_dims: Any, owner: str) -> int:
    if isinstance(preserve_dims, bool) or not isinstance(
        preserve_dims, (int, np.integer)
    ):
        raise TypeError(
            f"{owner}: `preserve_dims` must be a non-zero int, got {preserve_dims!r}"
        )
    if preserve_dims == 0:
        raise ValueError(
            f"{owner}: `preserve_dims` must be non-zero (positive: leading axes "
            "kept; negative: trailing axes replaced), got 0"
        )
    return int(preserve_dims)


def _check_output_shape(output_shape: Any, owner: str) -> tuple[int, ...]:
    if isinstance(output_shape, (str, bytes)) or not isinstance(output_shape, Sequence):
        raise TypeError(
            f"{owner}: `output_shape` must be a sequence of ints, got {output_shape!r}"
        )
    for d in output_shape:
        if (
            isinstance(d, bool)
            or not isinstance(d, (int, np.integer))
            or (d < 1 and d != -1)
        ):
            raise ValueError(
                f"{owner}: `output_shape` entries must be positive ints or a "
                f"single -1, got {tuple(output_shape)!r}"
            )
    shape = tuple(int(d) for d in output_shape)
    if shape.count(-1) > 1:
        raise ValueError(
            f"{owner}: -1 may appear at most once in `output_shape`, got {shape}"
        )
    return shape


class Reshape(Module):
    """Reshapes the trailing axes of its input, keeping the leading ones.

    Args:
      output_shape: the new shape of the reshaped axes. One entry may be
        ``-1``: it is inferred from the input's size. Other entries must be
        positive.
      preserve_dims: if positive, the number of leading axes kept as they are
        (default 1: the batch axis); the axes after them are reshaped to
        ``output_shape``. If negative, ``-preserve_dims`` is the number of
        trailing axes reshaped (all of them if the input has fewer), so one
        module serves batched and unbatched inputs alike. Must not be 0.
      name: optional module name.

    Input ``[*lead, *rest]`` with ``lead`` the kept axes; output
    ``[*lead, *output_shape]`` (``-1`` filled in). As in Haiku, an input with
    at most ``preserve_dims`` axes (positive ``preserve_dims``) is returned
    unchanged. No parameters, no state.

    Raises:
      ValueError: at construction for ``preserve_dims == 0`` or a bad
        ``output_shape``; at call when ``rest`` cannot be reshaped to
        ``output_shape``.

    >>> import jax.numpy as jnp, pax
    >>> x = jnp.ones((2, 3, 4, 5))
    >>> pax.Reshape((-1, 5))(x).shape
    (2, 12, 5)
    >>> pax.Reshape((-1, 5), preserve_dims=2)(x).shape
    (2, 3, 4, 5)
    >>> pax.Reshape((-1,), preserve_dims=-2)(x).shape
    (2, 3, 20)
    """

    def __init__(
        self,
        output_shape: Sequence[int],
        preserve_dims: int = 1,
        *,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.output_shape = _check_output_shape(output_shape, owner)
        self.preserve_dims = _check_preserve_dims(preserve_dims, owner)

    def _target_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The full output shape for an input of shape ``shape``."""
        lead, rest = shape[: self.preserve_dims], shape[self.preserve_dims :]
        size = int(np.prod(rest, dtype=np.int64))
        known = int(np.prod([d for d in self.output_shape if d != -1], dtype=np.int64))
        if -1 in self.output_shape:
            ok = size % known == 0
            new = tuple(size // known if d == -1 else d for d in self.output_shape)
        else:
            ok = size == known
            new = self.output_shape
        if not ok:
            raise ValueError(
                f"{who(self)}: cannot reshape the axes {rest} (size {size}) of an "
                f"input of shape {shape} to {self.output_shape}"
            )
        return lead + new

    def __call__(self, x: jax.Array) -> jax.Array:
        """``[*lead, *rest] -> [*lead, *output_shape]``."""
        x = as_array(x, who(self))
        if x.ndim <= self.preserve_dims:
            return x
        with jax.named_scope(f"pax.nn.{type(self).__name__}"):
            return jnp.reshape(x, self._target_shape(tuple(x.shape)))


class Flatten(Reshape):
    """Flattens all axes after the leading ``preserve_dims`` into one.

    Args:
      preserve_dims: if positive, the number of leading axes kept (default 1:
        the batch axis). If negative, ``-preserve_dims`` is the number of
        trailing axes flattened (all of them if the input has fewer). Must not
        be 0.
      name: optional module name.

    Input ``[*lead, *rest]``, output ``[*lead, prod(rest)]``. An input with at
    most ``preserve_dims`` axes (positive ``preserve_dims``) is returned
    unchanged, as in Haiku. No parameters, no state.

    >>> import jax.numpy as jnp, pax
    >>> pax.Flatten()(jnp.ones((2, 3, 4))).shape
    (2, 12)
    >>> pax.Flatten()(jnp.ones((5,))).shape
    (5,)
    >>> pax.Flatten(preserve_dims=-2)(jnp.ones((3, 4))).shape
    (12,)
    """

    def __init__(self, preserve_dims: int = 1, *, name: str | None = None):
        super().__init__((-1,), preserve_dims, name=name)

"""Apply a function over merged leading axes: ``BatchApply``, ``expand_apply``.

Which leaves are touched (the same rules for both):

* array leaves (``jax.Array``, ``np.ndarray``, NumPy scalars) of the
  arguments are reshaped; so are Python numbers in ``expand_apply``, which
  turns them into arrays, as Haiku does;
* ``pax.Module`` arguments are passed through whole: their parameters are
  never reshaped;
* anything else (strings, ``None``, flags, functions) is passed through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, is_module
from ._utils import positive_int, who

_ARRAYS = (jax.Array, np.ndarray, np.number, np.bool_)
_NUMBERS = (bool, int, float, complex)


def _leaves(tree: Any) -> list:
    return jax.tree_util.tree_leaves(tree, is_leaf=is_module)


def _map(fn: Callable[[Any], Any], tree: Any) -> Any:
    return jax.tree_util.tree_map(fn, tree, is_leaf=is_module)


class BatchApply(Module):
    """Calls ``f`` with the leading ``num_dims`` axes of its inputs merged.

    Every array argument (positional or keyword, at any depth of a pytree)
    with at least ``num_dims`` axes has those leading axes merged into one
    before ``f`` is called; every array output then has its leading axis split
    back. Use it to apply a layer written for ``[batch, ...]`` to
    ``[time, batch, ...]`` data, for instance. Arguments with fewer axes,
    non-array arguments and ``pax.Module`` arguments are passed unchanged.

    Args:
      f: the function to apply. A ``pax.Module`` becomes a submodule (its
        parameters are this module's children, ``.f``); any other callable is
        static data (pass a module itself rather than a bound method of it,
        whose arrays would then be constants).
      num_dims: number of leading axes to merge (default 2). Must be >= 1.
      name: optional module name.

    Inputs ``[d_1, ..., d_n, *rest]`` with ``n = num_dims`` reach ``f`` as
    ``[d_1 * ... * d_n, *rest]``; each array output ``[d_1 * ... * d_n,
    *out]`` comes back as ``[d_1, ..., d_n, *out]``. No parameters of its own.

    Raises (at call):
      ValueError: no argument has ``num_dims`` axes; two merged arguments
        disagree on their leading ``num_dims`` axes; an array output does not
        lead with the merged axis.

    Unlike Haiku's ``BatchApply`` (a plain class), this is a module, so it
    can be jitted, differentiated with ``pax.grad`` and saved as a whole; and
    it checks that the merged leading axes agree, where Haiku would reshape
    disagreeing inputs silently.

    >>> import jax, jax.numpy as jnp, pax
    >>> fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> seq = pax.BatchApply(fc)                      # [T, B, 3] -> [T, B, 4]
    >>> seq(jnp.ones((5, 2, 3))).shape
    (5, 2, 4)
    >>> pax.BatchApply(jnp.cumsum, num_dims=1)(jnp.ones((3,))).shape
    (3,)
    """

    def __init__(
        self,
        f: Callable[..., Any],
        num_dims: int = 2,
        *,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if not callable(f):
            raise TypeError(f"{owner}: `f` must be callable, got {f!r}")
        self.f = f
        self.num_dims = positive_int(num_dims, "num_dims", owner)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``f`` over ``[d_1 * ... * d_n, ...]``; outputs ``[d_1, ..., d_n, ...]``."""
        n = self.num_dims

        def mergeable(x: Any) -> bool:
            return isinstance(x, _ARRAYS) and np.ndim(x) >= n

        leaves = _leaves((args, kwargs))
        merged = [x for x in leaves if mergeable(x)]
        if not merged:
            shapes = [tuple(np.shape(x)) for x in leaves if isinstance(x, _ARRAYS)]
            raise ValueError(
                f"{who(self)}: needs at least one array argument with at least "
                f"{n} axes to merge, got array arguments of shapes {shapes}"
            )
        lead = tuple(np.shape(merged[0])[:n])
        for x in merged[1:]:
            if tuple(np.shape(x)[:n]) != lead:
                raise ValueError(
                    f"{who(self)}: every argument with at least {n} axes must "
                    f"share the leading {n} axes; got shapes "
                    f"{tuple(np.shape(merged[0]))} and {tuple(np.shape(x))}"
                )
        size = int(np.prod(lead, dtype=np.int64))

        def merge(x: Any) -> Any:
            if not mergeable(x):
                return x
            return jnp.reshape(x, (size, *np.shape(x)[n:]))

        def split(y: Any) -> Any:
            if not isinstance(y, _ARRAYS):
                return y
            if np.ndim(y) < 1 or np.shape(y)[0] != size:
                raise ValueError(
                    f"{who(self)}: every array output of `f` must lead with the "
                    f"merged axis of size {size} (leading axes {lead}), got an "
                    f"output of shape {tuple(np.shape(y))}"
                )
            return jnp.reshape(y, (*lead, *np.shape(y)[1:]))

        with jax.named_scope("pax.nn.BatchApply"):
            out = self.f(*_map(merge, args), **_map(merge, kwargs))
            return _map(split, out)


def expand_apply(f: Callable[..., Any], axis: int = 0) -> Callable[..., Any]:
    """Wraps ``f`` so that it sees its inputs with an extra size-1 axis.

    The wrapper inserts a size-1 axis at ``axis`` into every array (and Python
    number) argument, calls ``f``, and removes that axis from every array
    output. Use it to run a function written for ``[time, batch, ...]`` on one
    step ``[batch, ...]``. ``pax.Module`` arguments and other objects are
    passed unchanged.

    Args:
      f: the function to wrap (a ``pax.Module`` works too).
      axis: where the axis goes: ``0`` (first) or ``-1`` (last), as in Haiku.

    Returns:
      ``wrapper(*args, **kwargs)``: inputs ``[...]`` reach ``f`` as ``[1, ...]``
      (or ``[..., 1]``); each array output ``[1, ...]`` (or ``[..., 1]``)
      comes back as ``[...]``. An array output without a size-1 axis there
      raises ``ValueError``.

    >>> import jax.numpy as jnp, pax
    >>> def over_time(x):                         # [T, B, D] -> [T, B]
    ...     return jnp.cumsum(x, axis=0).sum(-1)
    >>> pax.expand_apply(over_time)(jnp.ones((2, 3))).shape   # one step: [B, D]
    (2,)
    """
    if isinstance(axis, bool) or axis not in (0, -1):
        raise ValueError(f"expand_apply: `axis` must be 0 or -1, got {axis!r}")
    name = getattr(f, "__name__", type(f).__name__)

    def expand(x: Any) -> Any:
        if isinstance(x, (*_ARRAYS, *_NUMBERS)):
            return jnp.expand_dims(x, axis)
        return x

    def squeeze(y: Any) -> Any:
        if not isinstance(y, _ARRAYS):
            return y
        if np.ndim(y) < 1 or np.shape(y)[axis] != 1:
            raise ValueError(
                f"expand_apply({name}): every array output must have a size-1 "
                f"axis at {axis}, got an output of shape {tuple(np.shape(y))}"
            )
        return jnp.squeeze(y, axis)

    @functools.wraps(f, updated=())
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _map(squeeze, f(*_map(expand, args), **_map(expand, kwargs)))

    return wrapper

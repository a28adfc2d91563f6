"""Build a ``pax.nn`` module around given arrays, without initialising it.

Haiku layers in ``pax.hk`` get their parameters from ``hk.get_parameter``
and then compute with the matching ``pax.nn`` module. ``native`` builds that
module from the arrays: the module's structure (its treedef and leaf paths)
is computed once per layer configuration with ``jax.eval_shape`` (no
initializer runs, nothing is allocated) and cached; each call then only
unflattens the given arrays into it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import jax

_cache: dict[Any, tuple[Any, tuple[str, ...]]] = {}
_KEY = jax.random.PRNGKey(0)


def _takes_key(cls: type) -> bool:
    try:
        return "rng_key" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return True


def _template(cls: type, args: tuple, kwargs: dict) -> tuple[Any, tuple[str, ...]]:
    def build():
        extra = {"rng_key": _KEY} if _takes_key(cls) else {}
        module = jax.eval_shape(lambda: cls(*args, **extra, **kwargs))
        leaves, treedef = jax.tree_util.tree_flatten_with_path(module)
        return treedef, tuple(jax.tree_util.keystr(p) for p, _ in leaves)

    try:
        key = (cls, args, tuple(sorted(kwargs.items())))
        hash(key)
    except TypeError:  # unhashable configuration (lists, arrays): no cache
        return build()
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = build()
    return found


def native(cls: type, *args: Any, arrays: Mapping[str, Any], **kwargs: Any) -> Any:
    """``cls(*args, **kwargs)`` with its leaves taken from ``arrays``.

    ``arrays`` maps each leaf's ``jax.tree_util.keystr`` path (``".weight"``,
    ``".linear.bias"``) to its value; every leaf must be given.

    >>> import jax.numpy as jnp, pax
    >>> from pax.hk._native import native
    >>> fc = native(pax.nn.Linear, 2, 3,
    ...             arrays={".weight": jnp.ones((2, 3)), ".bias": jnp.zeros(3)})
    >>> fc(jnp.ones((1, 2)))
    Array([[2., 2., 2.]], dtype=float32)
    """
    treedef, paths = _template(cls, args, kwargs)
    missing = [p for p in paths if p not in arrays]
    extra = sorted(set(arrays) - set(paths))
    if missing or extra:
        raise ValueError(
            f"{cls.__name__}{args}: the arrays given do not match the module's "
            f"leaves (missing {missing}, unexpected {extra})"
        )
    return jax.tree_util.tree_unflatten(treedef, [arrays[p] for p in paths])

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

_KEY = jax.random.PRNGKey(0)
Shape = tuple[int, ...]


class Template:
    """The structure of one layer configuration: its treedef, its leaves'
    ``keystr`` paths and their shapes (``shapes``), and the module's type."""

    def __init__(self, cls: type, args: tuple, module: Any):
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(module)
        self.paths = tuple(jax.tree_util.keystr(p) for p, _ in leaves)
        self.shapes: dict[str, Shape] = {
            jax.tree_util.keystr(p): tuple(leaf.shape) for p, leaf in leaves
        }
        self.type = type(module)
        self._what = f"{getattr(cls, '__name__', cls)}{args}"

    def build(self, arrays: Mapping[str, Any]) -> Any:
        """The module with its leaves taken from ``arrays`` (path -> value)."""
        missing = [p for p in self.paths if p not in arrays]
        extra = sorted(set(arrays) - set(self.paths))
        if missing or extra:
            raise ValueError(
                f"{self._what}: the arrays given do not match the module's "
                f"leaves (missing {missing}, unexpected {extra})"
            )
        return jax.tree_util.tree_unflatten(
            self.treedef, [arrays[p] for p in self.paths]
        )


_cache: dict[Any, Template] = {}


def _takes_key(cls: type) -> bool:
    try:
        return "rng_key" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return True


def template(cls: type, *args: Any, **kwargs: Any) -> Template:
    """The (cached) :class:`Template` of ``cls(*args, **kwargs)``, computed with
    ``jax.eval_shape``: no initializer runs, nothing is allocated.

    >>> import pax
    >>> from pax.hk._native import template
    >>> template(pax.nn.Linear, 2, 3).shapes
    {'.weight': (2, 3), '.bias': (3,)}
    """

    def build() -> Template:
        extra = {"rng_key": _KEY} if _takes_key(cls) else {}
        module = jax.eval_shape(lambda: cls(*args, **extra, **kwargs))
        return Template(cls, args, module)

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
    return template(cls, *args, **kwargs).build(arrays)

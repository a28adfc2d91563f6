"""Frozen containers: what a module holds cannot be changed in place.

When a module is frozen (``__init__`` returns, a ``pax.pure`` assignment, a
``replace``), every attribute value goes through :func:`freeze`:

* ``list`` becomes :class:`FrozenList` and ``dict`` becomes
  :class:`FrozenDict`: subclasses of ``list``/``dict`` (so ``isinstance``,
  indexing, iteration, ``len``, ``==`` and ``repr`` are unchanged) whose
  mutating methods raise :class:`pax.MutationError`;
* ``set`` becomes ``frozenset``; tuples and namedtuples are rebuilt only when
  something inside them changed;
* a writeable ``numpy`` array is copied into a read-only one (JAX arrays are
  immutable already);
* everything else is kept as it is (arrays, modules, numbers, strings,
  functions, and objects of other classes, which PAX cannot freeze).

Both container types are registered pytree nodes with the same key entries
(``SequenceKey``, ``DictKey``) and leaf order as ``list`` and ``dict``, so key
paths, ``state_dict()`` keys and checkpoints are the same as for the plain
containers. A copy made with ``list(x)``, ``dict(x)``, ``x.copy()`` or a slice
is an ordinary, mutable container, and :func:`thaw` turns a whole frozen tree
back into plain containers (a pytree holding a ``FrozenDict`` has a different
structure from one holding a ``dict``, so ``tree_map`` over the two needs it).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from .errors import MutationError

__all__ = ["FrozenList", "FrozenDict", "freeze", "thaw"]

_FROZEN_MSG = (
    "This {kind} belongs to a PAX module and is frozen: modules are immutable, "
    "including the containers they hold. Build a new container and a new "
    "module instead, e.g. `module = module.replace(attr=new_{kind})` (copy it "
    "with `{copy}` first), or assign the new container inside `pax.pure`."
)


def _refuse(kind: str, copy: str):
    def method(self, *args, **kwargs):
        raise MutationError(_FROZEN_MSG.format(kind=kind, copy=copy))

    return method


class FrozenList(list):
    """A ``list`` that refuses in-place changes (raises ``pax.MutationError``).

    Modules store their lists as ``FrozenList``; ``list(x)`` gives a mutable
    copy.

    >>> import pax
    >>> xs = pax.FrozenList([1, 2])
    >>> xs == [1, 2], isinstance(xs, list)
    (True, True)
    >>> xs.append(3)
    Traceback (most recent call last):
    ...
    pax.MutationError: This list belongs to a PAX module ...
    """

    __slots__ = ()
    _refused = _refuse("list", "list(x)")
    append = extend = insert = remove = pop = clear = sort = reverse = _refused
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refused

    def __reduce__(self):
        return (FrozenList, (list(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        import copy

        return FrozenList(copy.deepcopy(list(self), memo))


class FrozenDict(dict):
    """A ``dict`` that refuses in-place changes (raises ``pax.MutationError``).

    Modules store their dicts as ``FrozenDict``; ``dict(x)`` or ``x.copy()``
    gives a mutable copy.

    >>> import pax
    >>> d = pax.FrozenDict({"a": 1})
    >>> d["a"], d == {"a": 1}
    (1, True)
    >>> d["b"] = 2
    Traceback (most recent call last):
    ...
    pax.MutationError: This dict belongs to a PAX module ...
    """

    __slots__ = ()
    _refused = _refuse("dict", "dict(x)")
    __setitem__ = __delitem__ = __ior__ = _refused
    clear = pop = popitem = setdefault = update = _refused

    def copy(self) -> dict:
        return dict(self)

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        import copy

        return FrozenDict(copy.deepcopy(dict(self), memo))


# -- pytree registration: same keys and leaf order as list / dict -------------


def _list_flatten(xs: FrozenList):
    return xs, None


def _list_flatten_with_keys(xs: FrozenList):
    return [(jax.tree_util.SequenceKey(i), x) for i, x in enumerate(xs)], None


def _list_unflatten(_, children) -> FrozenList:
    return FrozenList(children)


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except TypeError:  # unsortable keys: JAX keeps insertion order too
        return tuple(d)


def _dict_aux(d: dict) -> tuple:
    keys = _sorted_keys(d)
    order = tuple(d)
    return keys, (None if order == keys else order)


def _dict_flatten(d: FrozenDict):
    aux = _dict_aux(d)
    return [d[k] for k in aux[0]], aux


def _dict_flatten_with_keys(d: FrozenDict):
    aux = _dict_aux(d)
    return [(jax.tree_util.DictKey(k), d[k]) for k in aux[0]], aux


def _dict_unflatten(aux: tuple, children) -> FrozenDict:
    keys, order = aux
    d = dict(zip(keys, children))
    if order is not None:
        d = {k: d[k] for k in order}
    return FrozenDict(d)


jax.tree_util.register_pytree_with_keys(
    FrozenList, _list_flatten_with_keys, _list_unflatten, _list_flatten
)
jax.tree_util.register_pytree_with_keys(
    FrozenDict, _dict_flatten_with_keys, _dict_unflatten, _dict_flatten
)

_IMMUTABLE = (str, int, float, bool, complex, bytes, type, type(None), frozenset)


def freeze(value: Any) -> Any:
    """``value`` with every builtin container in it made immutable (see above).

    Returns ``value`` itself when nothing needed freezing.
    """
    t = type(value)
    if t is list:
        return FrozenList([freeze(x) for x in value])
    if t is dict:
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if t is set:
        return frozenset(value)
    if isinstance(value, tuple):
        return _rebuild_tuple(value, [freeze(x) for x in value])
    if t is np.ndarray and value.flags.writeable:
        out = np.array(value, copy=True)
        out.flags.writeable = False
        return out
    return value


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: ``FrozenList``/``FrozenDict`` (at any
    depth inside lists, dicts and tuples) back to plain ``list``/``dict``.

    Use it where a container a module holds meets code that compares pytree
    structures with plain containers, e.g. ``jax.tree_util.tree_map(f,
    module.params, plain_dict)``. Arrays and modules are returned as they are.

    >>> import jax.numpy as jnp, pax
    >>> class Holder(pax.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.params = {"w": jnp.ones(2)}
    >>> type(Holder().params).__name__, type(pax.thaw(Holder().params)).__name__
    ('FrozenDict', 'dict')
    """
    t = type(value)
    if t is FrozenList:
        return [thaw(x) for x in value]
    if t is FrozenDict:
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return _rebuild_tuple(value, [thaw(x) for x in value])
    return value


def _rebuild_tuple(value: tuple, items: list) -> tuple:
    """``value`` with ``items``, or ``value`` itself when nothing changed (or
    it is a tuple subclass other than a namedtuple, which is kept as is)."""
    if all(a is b for a, b in zip(items, value)):
        return value
    if type(value) is tuple:
        return tuple(items)
    if hasattr(value, "_fields"):  # namedtuple
        return type(value)(*items)
    return value

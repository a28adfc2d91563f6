"""``hk.data_structures``: helpers for Haiku's two-level params/state mappings.

Haiku stores parameters and state as ``{module_name: {name: value}}``. The
functions here filter, split, merge, map and measure such structures with
dm-haiku's behaviour: results are fresh plain ``dict`` objects (never views),
``filter`` / ``map`` / ``partition`` visit entries in sorted key order,
``merge`` keeps first-seen order and lets later structures win.

``to_immutable_dict`` returns a :class:`FlatMap`, a read-only mapping that is
a registered pytree (as in Haiku).
"""

from __future__ import annotations

import builtins
import collections
import pprint
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

import jax

# Haiku's public names; `FlatMap` and `BucketIndexError` are importable too.
__all__ = [
    "filter",
    "is_subset",
    "map",
    "merge",
    "partition",
    "partition_n",
    "to_haiku_dict",
    "to_immutable_dict",
    "to_mutable_dict",
    "traverse",
    "tree_bytes",
    "tree_size",
]

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")
InT = TypeVar("InT")
OutT = TypeVar("OutT")

Structure = Mapping[str, Mapping[str, T]]


class BucketIndexError(ValueError, AssertionError):
    """``partition_n``'s ``fn`` returned an index outside ``[0, n)``.

    Haiku signals this with a failed ``assert`` (``AssertionError``); this
    error is both a ``ValueError`` (PAX's convention for bad values) and an
    ``AssertionError`` (so Haiku-era ``except AssertionError`` still works),
    and it is raised even under ``python -O``.
    """


# ---------------------------------------------------------------------------
# FlatMap: the immutable mapping returned by `to_immutable_dict`.
# ---------------------------------------------------------------------------


class _KeysView(collections.abc.KeysView):
    """Keys view whose repr lists only the keys (Haiku's ``KeysOnlyKeysView``)."""

    def __repr__(self) -> str:
        return f"KeysOnlyKeysView({list(self._mapping)!r})"

    __str__ = __repr__


def _indent(amount: int, text: str) -> str:
    pad = " " * amount
    return "\n".join(pad + line for line in text.splitlines())


def _format_item(key: Any, value: Any) -> str:
    head = repr(key) + ": "
    return head + _indent(len(head), pprint.pformat(value)).lstrip()


class FlatMap(Mapping[K, V]):
    """Read-only mapping, a registered pytree; what ``to_immutable_dict`` returns.

    Built like ``dict`` (``FlatMap({'w': 1})``, ``FlatMap(w=1)``). Item
    assignment fails, attribute access (``m.w``) raises ``AttributeError``
    pointing at ``m['w']``, equality compares the contents with any mapping,
    and the hash covers the tree structure and leaves (so it needs hashable
    leaves). ``jax.tree.map`` over it returns a ``FlatMap`` whose keys are in
    sorted order, as for ``dict``; key paths are ``DictKey`` entries.

    >>> import jax
    >>> from pax.hk.data_structures import FlatMap
    >>> m = FlatMap({'linear': FlatMap({'w': 1, 'b': 2})})
    >>> m
    FlatMap({'linear': FlatMap({'w': 1, 'b': 2})})
    >>> jax.tree.map(lambda v: v * 10, m)
    FlatMap({'linear': FlatMap({'b': 20, 'w': 10})})
    >>> m == {'linear': {'b': 2, 'w': 1}}
    True
    """

    __slots__ = ("_mapping",)

    def __init__(self, *args: Any, **kwargs: Any):
        object.__setattr__(self, "_mapping", dict(*args, **kwargs))

    def __getitem__(self, key: K) -> V:
        return self._mapping[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def __contains__(self, key: object) -> bool:
        return key in self._mapping

    def keys(self) -> _KeysView:
        return _KeysView(self)

    def values(self):
        return self._mapping.values()

    def items(self):
        return self._mapping.items()

    def __eq__(self, other: object) -> bool:
        if other is None:
            return False
        if type(other) is FlatMap:
            other = other._mapping
        return self._mapping == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        leaves, treedef = jax.tree.flatten(self)
        return hash((treedef, tuple(leaves)))

    def __getattr__(self, key: str) -> Any:
        raise AttributeError(
            f"`x.{key}` is not supported on FlatMapping, use `x['{key}']` instead."
        )

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"FlatMap is immutable: cannot set attribute {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"FlatMap is immutable: cannot delete attribute {key!r}")

    def __repr__(self) -> str:
        name = type(self).__name__
        body = ", ".join(f"{k!r}: {v!r}" for k, v in self._mapping.items())
        line = f"{name}({{{body}}})"
        if len(line) <= 80:
            return line
        items = ",\n".join(_format_item(k, v) for k, v in self._mapping.items())
        return f"{name}({{\n{_indent(2, items)},\n}})"

    __str__ = __repr__

    def __reduce__(self):
        return FlatMap, (self._mapping,)


def _flatmap_flatten_with_keys(m: FlatMap):
    mapping = m._mapping
    keys = tuple(sorted(mapping))
    children = [(jax.tree_util.DictKey(k), mapping[k]) for k in keys]
    return children, keys


def _flatmap_flatten(m: FlatMap):
    mapping = m._mapping
    keys = tuple(sorted(mapping))
    return [mapping[k] for k in keys], keys


def _flatmap_unflatten(keys: tuple, children) -> FlatMap:
    return FlatMap(zip(keys, children))


jax.tree_util.register_pytree_with_keys(
    FlatMap,
    _flatmap_flatten_with_keys,
    _flatmap_unflatten,
    flatten_func=_flatmap_flatten,
)


# ---------------------------------------------------------------------------
# Conversions.
# ---------------------------------------------------------------------------


def to_immutable_dict(mapping: Mapping[K, V]) -> Mapping[K, V]:
    """Return an immutable :class:`FlatMap` copy of ``mapping``.

    Nested values whose type is exactly ``dict`` become ``FlatMap`` too (at
    any depth); other values are kept as they are. A ``FlatMap`` is returned
    unchanged.

    >>> from pax.hk import data_structures
    >>> data_structures.to_immutable_dict({'linear': {'w': 1}})
    FlatMap({'linear': FlatMap({'w': 1})})
    """
    if type(mapping) is FlatMap:
        return mapping
    items = []
    for key, value in mapping.items():
        if type(value) is dict:
            value = to_immutable_dict(value)
        items.append((key, value))
    return FlatMap(items)


def to_mutable_dict(mapping: Mapping[K, Any]) -> dict[K, Any]:
    """Return a plain ``dict`` copy of ``mapping``, turning nested ``FlatMap``\\ s
    into ``dict``\\ s (other nested values are kept as they are).

    >>> from pax.hk import data_structures
    >>> frozen = data_structures.to_immutable_dict({'linear': {'w': 1}})
    >>> data_structures.to_mutable_dict(frozen)
    {'linear': {'w': 1}}
    """
    out = {}
    for key, value in mapping.items():
        if type(value) is FlatMap:
            value = to_mutable_dict(value)
        out[key] = value
    return out


def _copy_tree(value: Any) -> Any:
    leaves, treedef = jax.tree.flatten(value)
    return jax.tree.unflatten(treedef, leaves)


def _to_dict(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_dict(v) for k, v in value.items()}
    return _copy_tree(value)


def to_haiku_dict(structure: Mapping[K, V]) -> MutableMapping[K, V]:
    """Return a copy of ``structure`` in the mapping type Haiku's ``init`` returns.

    That type is a plain ``dict``: every nested ``Mapping`` becomes a new
    ``dict`` and other values are copied as pytrees (new containers, same
    leaves). Always a copy, even when the input is already a ``dict``.

    >>> from pax.hk import data_structures
    >>> params = {'linear': {'w': 1}}
    >>> out = data_structures.to_haiku_dict(params)
    >>> out == params, out is params, out['linear'] is params['linear']
    (True, False, False)
    """
    return _to_dict(structure)


# ---------------------------------------------------------------------------
# Filtering, partitioning, merging.
# ---------------------------------------------------------------------------


def traverse(structure: Structure[T]) -> Iterator[tuple[str, str, T]]:
    """Yield ``(module_name, name, value)`` for every entry, in sorted key order.

    >>> from pax.hk import data_structures
    >>> params = {'b': {'w': 1}, 'a': {'w': 2, 'b': 3}}
    >>> list(data_structures.traverse(params))
    [('a', 'b', 3), ('a', 'w', 2), ('b', 'w', 1)]
    """
    for module_name in sorted(structure):
        bundle = structure[module_name]
        for name in sorted(bundle):
            yield module_name, name, bundle[name]


def partition_n(
    fn: Callable[[str, str, T], int],
    structure: Structure[T],
    n: int,
) -> tuple[dict[str, dict[str, T]], ...]:
    """Split ``structure`` into ``n`` structures by ``fn(module_name, name, value)``.

    ``fn`` returns the bucket index in ``[0, n)`` of each entry; any other
    index raises :class:`BucketIndexError` (a ``ValueError`` and an
    ``AssertionError``). Returns a tuple of ``n`` new plain dicts.

    >>> from pax.hk import data_structures
    >>> params = {'linear': {'w': 1, 'b': 2}, 'conv': {'w': 3}}
    >>> by_name = lambda module_name, name, value: 0 if name == 'w' else 1
    >>> data_structures.partition_n(by_name, params, 3)
    ({'conv': {'w': 3}, 'linear': {'w': 1}}, {'linear': {'b': 2}}, {})
    """
    out = [collections.defaultdict(dict) for _ in range(n)]
    for module_name, name, value in traverse(structure):
        i = fn(module_name, name, value)
        if not 0 <= i < n:
            raise BucketIndexError(f"{i} must be in range [0, {n})")
        out[i][module_name][name] = value
    return tuple(to_haiku_dict(o) for o in out)


def partition(
    predicate: Callable[[str, str, T], bool],
    structure: Structure[T],
) -> tuple[dict[str, dict[str, T]], dict[str, dict[str, T]]]:
    """Split ``structure`` in two: entries where ``predicate`` holds, and the rest.

    ``predicate(module_name, name, value)`` is called once per entry.

    >>> from pax.hk import data_structures
    >>> params = {'linear': {'w': 1, 'b': 2}}
    >>> is_weight = lambda module_name, name, value: name == 'w'
    >>> data_structures.partition(is_weight, params)
    ({'linear': {'w': 1}}, {'linear': {'b': 2}})
    """
    bucket = lambda m, n, v: int(not predicate(m, n, v))
    return partition_n(bucket, structure, 2)  # type: ignore[return-value]


def filter(  # Haiku's public name
    predicate: Callable[[str, str, T], bool],
    structure: Structure[T],
) -> dict[str, dict[str, T]]:
    """Keep the entries for which ``predicate(module_name, name, value)`` holds.

    Returns a new plain dict; modules left with no entry are dropped.

    >>> from pax.hk import data_structures
    >>> params = {'linear': {'w': 1, 'b': 2}, 'norm': {'scale': 3}}
    >>> data_structures.filter(lambda m, n, v: n == 'w', params)
    {'linear': {'w': 1}}
    """
    out = collections.defaultdict(dict)
    for module_name, name, value in traverse(structure):
        if predicate(module_name, name, value):
            out[module_name][name] = value
    return to_haiku_dict(out)


def map(  # Haiku's public name
    fn: Callable[[str, str, InT], OutT],
    structure: Structure[InT],
) -> dict[str, dict[str, OutT]]:
    """Replace every value by ``fn(module_name, name, value)``, in a new dict.

    Keys come out in sorted order (the order ``traverse`` visits them).

    >>> from pax.hk import data_structures
    >>> params = {'linear': {'w': 1.0, 'b': 2.0}}
    >>> data_structures.map(lambda m, n, v: 2 * v if n == 'w' else v, params)
    {'linear': {'b': 2.0, 'w': 2.0}}
    """
    out = collections.defaultdict(dict)
    for module_name, name, value in traverse(structure):
        out[module_name][name] = fn(module_name, name, value)
    return to_haiku_dict(out)


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _short_dtype(dtype: Any) -> str:
    if isinstance(dtype, type):
        dtype = dtype(0).dtype
    name = dtype.name
    for long, short in (
        ("complex", "c"),
        ("double", "d"),
        ("float", "f"),
        ("uint", "u"),
        ("int", "s"),
    ):
        name = name.replace(long, short)
    return name


def _describe(value: Any) -> str:
    if _is_array_like(value):
        shape = ",".join(builtins.map(str, value.shape))
        return f"{_short_dtype(value.dtype)}[{shape}]"
    return repr(value)


def _shape_and_dtype(value: Any) -> Any:
    return (value.shape, value.dtype) if _is_array_like(value) else None


def merge(
    *structures: Structure[Any],
    check_duplicates: bool = False,
) -> dict[str, dict[str, Any]]:
    """Merge structures into one new dict; for a repeated path the last one wins.

    Modules and names appear in the order they are first met (each structure
    visited in sorted key order). With ``check_duplicates=True`` a path found
    in several structures must hold arrays of the same shape and dtype (or
    non-arrays in all of them), else ``ValueError``.

    >>> from pax.hk import data_structures
    >>> data_structures.merge({'linear': {'w': 1}}, {'linear': {'b': 2}})
    {'linear': {'w': 1, 'b': 2}}
    >>> data_structures.merge({'linear': {'w': 1}}, {'linear': {'w': 5}})
    {'linear': {'w': 5}}
    """
    out = collections.defaultdict(dict)
    for structure in structures:
        for module_name, name, value in traverse(structure):
            bundle = out[module_name]
            if check_duplicates and name in bundle:
                previous = bundle[name]
                if _shape_and_dtype(previous) != _shape_and_dtype(value):
                    raise ValueError(
                        "Duplicate array found with different shape/dtype for "
                        f"{module_name}.{name}: {_describe(previous)} vs "
                        f"{_describe(value)}."
                    )
            bundle[name] = value
    return to_haiku_dict(out)


def is_subset(
    *,
    subset: Structure[Any],
    superset: Structure[Any],
) -> bool:
    """Whether every ``(module_name, name)`` path of ``subset`` is in ``superset``.

    Only paths are compared, not values; modules with no entries count for
    nothing, so this is vacuously true when ``subset`` has no entries.

    >>> from pax.hk import data_structures
    >>> data_structures.is_subset(subset={'a': {'w': 0}}, superset={'a': {'w': 1}})
    True
    >>> data_structures.is_subset(subset={'a': {}}, superset={})
    True
    """
    sub = {(m, n) for m, n, _ in traverse(subset)}
    sup = {(m, n) for m, n, _ in traverse(superset)}
    return sub.issubset(sup)


# ---------------------------------------------------------------------------
# Sizes.
# ---------------------------------------------------------------------------


def tree_size(tree: Any) -> int:
    """Total number of elements of the arrays in a pytree.

    Every leaf must have a ``size`` (arrays do; Python scalars do not).

    >>> import jax.numpy as jnp
    >>> from pax.hk import data_structures
    >>> params = {'linear': {'w': jnp.ones((3, 4)), 'b': jnp.ones(4)}}
    >>> data_structures.tree_size(params)
    16
    """
    return sum(x.size for x in jax.tree.leaves(tree))


def tree_bytes(tree: Any) -> int:
    """Total size in bytes of the arrays in a pytree (``size * itemsize``).

    A lower bound on memory: accelerators may pad buffers.

    >>> import jax.numpy as jnp
    >>> from pax.hk import data_structures
    >>> params = {'w': jnp.ones((3, 4)), 'b': jnp.ones(4, jnp.bfloat16)}
    >>> data_structures.tree_bytes(params)  # 12 * 4 + 4 * 2
    56
    """
    return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))

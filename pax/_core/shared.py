"""``pax.Shared``: one parameter (or submodule) used in several places, stored
once.

A module is a pytree, so an array or submodule stored under two attributes is
flattened twice and comes back from every ``jit`` / ``pure`` / checkpoint
round trip as two independent copies. ``Shared`` makes a tie explicit instead:
it stores the tree with every tied slot emptied (``None``: no leaf) and
re-fills those slots from their source each time the tree is rebuilt. Only the
source is a leaf, so gradients of every use add up in it, an optimizer updates
it once, and checkpoints hold one copy.

Nothing here runs for modules that do not tie: the core's flatten/unflatten are
untouched; a ``Shared`` is an ordinary module whose child is the emptied tree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from .module import _INIT, Module, _AttrPathKey, _session_of, parameters_method

__all__ = ["Shared"]

_GetAttrKey = jax.tree_util.GetAttrKey
_SequenceKey = jax.tree_util.SequenceKey
_DictKey = jax.tree_util.DictKey


@dataclasses.dataclass(frozen=True)
class _Tie:
    """A ``Shared``'s resolved tie: the slots' key paths, the sources' key
    paths (None when ``get`` is a function), and whether ``get`` gives one
    value or a sequence."""

    paths: tuple
    get_paths: tuple | None
    get_single: bool


class _Marker:
    """A unique stand-in leaf: ``where`` runs on a tree of these, so a selected
    node is found by identity even when two slots hold the same array."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


# ---------------------------------------------------------------------------
# paths: enumerate, read and write nodes of a pytree of modules and containers
# ---------------------------------------------------------------------------


def _children(node: Any) -> list:
    """``(one-step key path, child)`` for each direct child of ``node``."""
    if node is None:
        return []
    pairs = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[
        0
    ]
    if len(pairs) == 1 and pairs[0][0] == () and pairs[0][1] is node:
        return []  # a leaf
    return pairs


def _nodes(tree: Any, prefix: tuple = ()):
    """Every node of ``tree`` (itself, containers, submodules, leaves) with its
    key path."""
    yield prefix, tree
    for path, child in _children(tree):
        yield from _nodes(child, prefix + tuple(path))


def _get_at(node: Any, path: tuple) -> Any:
    for key in path:
        if isinstance(key, _AttrPathKey):
            node = _get_at(node.__dict__[key.name], key.path)
        elif isinstance(key, _GetAttrKey):
            node = getattr(node, key.name)
        elif isinstance(key, _SequenceKey):
            node = node[key.idx]
        elif isinstance(key, _DictKey):
            node = node[key.key]
        else:
            raise ValueError(f"pax.Shared: cannot follow key {key!r}")
    return node


def _set_at(node: Any, path: tuple, value: Any) -> Any:
    """``node`` with the node at ``path`` replaced by ``value`` (functional)."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(node, Module):
        if isinstance(key, _AttrPathKey):  # inside a mixed container
            inner = node.__dict__[key.name]
            return node.replace(**{key.name: _set_at(inner, key.path + rest, value)})
        return node.replace(**{key.name: _set_at(node.__dict__[key.name], rest, value)})
    if isinstance(key, _SequenceKey) and isinstance(node, (list, tuple)):
        items = list(node)
        items[key.idx] = _set_at(items[key.idx], rest, value)
        if isinstance(node, list):
            return type(node)(items)
        return tuple(items) if type(node) is tuple else type(node)(*items)
    if isinstance(key, _DictKey) and isinstance(node, dict):
        d = dict(node)
        d[key.key] = _set_at(d[key.key], rest, value)
        return d if type(node) is dict else type(node)(d)
    if isinstance(key, _GetAttrKey) and hasattr(node, "_replace"):  # namedtuple
        new = _set_at(getattr(node, key.name), rest, value)
        return node._replace(**{key.name: new})
    raise ValueError(
        f"pax.Shared: cannot write into a {type(node).__name__} at key {key!r}; "
        "tie arrays or submodules held by modules, lists, tuples, dicts or "
        "namedtuples"
    )


def _keystr(path: tuple) -> str:
    return jax.tree_util.keystr(path) or "<the whole tree>"


def _signature(value: Any) -> list:
    """``[(key path, shape, dtype)]`` of the leaves: what a slot must match."""
    pairs = jax.tree_util.tree_flatten_with_path(value)[0]
    return [
        (jax.tree_util.keystr(p), tuple(np.shape(x)), str(getattr(x, "dtype", "?")))
        for p, x in pairs
    ]


def _describe_signature(sig: list) -> str:
    if not sig:
        return "nothing (no arrays)"
    if len(sig) == 1 and sig[0][0] == "":
        return f"{sig[0][2]}{list(sig[0][1])}"
    parts = [f"{p}: {d}{list(s)}" for p, s, d in sig[:4]]
    more = f", ... ({len(sig)} arrays)" if len(sig) > 4 else ""
    return "{" + ", ".join(parts) + more + "}"


def _is_paths(spec: Any) -> bool:
    if isinstance(spec, str):
        return True
    return (
        isinstance(spec, (list, tuple))
        and len(spec) > 0
        and all(isinstance(s, str) for s in spec)
    )


def _resolve_strings(tree: Any, spec: Any, what: str, owner: str) -> list:
    names = [spec] if isinstance(spec, str) else list(spec)
    table = {jax.tree_util.keystr(p): p for p, _ in _nodes(tree) if p}
    paths = []
    for name in names:
        if name not in table:
            known = ", ".join(list(table)[:8])
            raise ValueError(
                f"{owner}: `{what}` path {name!r} selects nothing: no node of the "
                f"tree has that key path (paths look like: {known}, ...)"
            )
        paths.append(table[name])
    return paths


def _resolve_where(tree: Any, where: Any, owner: str) -> tuple[list, bool]:
    """Key paths of the nodes ``where`` selects, and whether it gave one."""
    if _is_paths(where):
        return _resolve_strings(tree, where, "where", owner), isinstance(where, str)
    if not callable(where):
        raise TypeError(
            f"{owner}: `where` must be a function of the tree returning the "
            f"node(s) to tie, or key-path string(s) such as '.output.weight'; got "
            f"{type(where).__name__}"
        )
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    marked = jax.tree_util.tree_unflatten(
        treedef, [_Marker(i) for i in range(len(leaves))]
    )
    try:
        selected = where(marked)
    except Exception as e:  # noqa: BLE001 - reported with the cause
        raise ValueError(
            f"{owner}: `where` must only pick existing nodes of the tree (arrays, "
            f"submodules, containers), not compute new values; it raised "
            f"{type(e).__name__}: {e}"
        ) from e
    index = {
        id(node): path for path, node in _nodes(marked) if node is not None and path
    }
    if id(selected) in index:
        nodes, single = [selected], True
    elif isinstance(selected, (list, tuple)) and not isinstance(selected, Module):
        nodes, single = list(selected), False
    else:
        nodes, single = [selected], True
    if not nodes:
        raise ValueError(f"{owner}: `where` selects nothing (it returned {selected!r})")
    paths = []
    for node in nodes:
        if node is None or id(node) not in index:
            raise ValueError(
                f"{owner}: `where` selects nothing: it returned "
                f"{'None' if node is None else type(node).__name__}, which is not "
                "a node of the tree (an array, submodule or container held there)"
            )
        paths.append(index[id(node)])
    return paths, single


class Shared(Module):
    """A tree in which some slots are tied to others: each tied array is stored
    (and flattened, differentiated, optimized and saved) once.

    ``Shared(tree, where, get)`` stores ``tree`` with the nodes that ``where``
    selects emptied (``None``: they are not leaves). :meth:`rebuild` returns the
    tree with those slots re-filled with ``get(stored_tree)``, computed from the
    *current* values, so under ``jax.jit`` / ``jax.grad`` the rebuilt slots are
    functions of the source leaves and the gradient of the source is the sum of
    the gradients of every use. ``get`` may transform its source (a transpose,
    a reshape, a slice): a tied output projection is ``get=lambda m:
    m.embed.weight.T``.

    Compare Equinox's ``eqx.nn.Shared(pytree, where, get)``: the same three
    arguments. The PAX module is also callable: ``shared(*args)`` calls the
    rebuilt tree, and inside :func:`pax.pure` / :func:`pax.purecall` the
    state it changes (Dropout keys, BatchNorm statistics) is written back, tied
    slots emptied again.

    Args:
      tree: any pytree of modules and arrays (usually one module, e.g. a model
        whose output layer should reuse its embedding). Its arrays are
        trainable unless a submodule holding them says otherwise.
      where: the slot(s) to tie: a function ``tree -> node`` or ``tree ->
        (node, ...)`` that picks existing nodes (``lambda m: m.output.weight``;
        a whole submodule or container works too), or key-path string(s) as in
        :meth:`pax.Module.state_dict` (``'.output.weight'``). It is run once, here,
        on a stand-in copy of the tree, and stored as key paths
        (``shared.where``).
      get: the value(s) for those slots: a function of the stored tree (tied
        slots are ``None`` in it, so it must read the sources elsewhere),
        returning one value per selected slot, each with the slot's structure,
        shapes and dtypes; or key-path string(s) naming the sources unchanged.
        ``get`` is static (part of the treedef): pass the same function object
        (a module-level ``def``) or strings to share ``jax.jit`` caches between
        separately built models; a fresh ``lambda`` per model retraces once per
        model.
      name: optional module name.

    Attributes:
      tree: the stored tree, tied slots ``None``. Its leaves are this module's
        leaves; checkpoint and :meth:`state_dict` keys are ``.tree<path>``.
      where: the tied slots' key paths, e.g. ``('.output.weight',)``.
      get: as given.

    Raises:
      ValueError: naming this module, when ``where`` selects nothing (``None``,
        an empty sequence, a computed value, an unknown path), a slot is nested
        in another, or ``get``'s result differs from a slot in structure, shape
        or dtype. All checked here, at construction.

    Shapes, for the tied embedding below (``V = 10`` tokens, ``D = 4``): the
    ``Embed``'s ``weight`` ``[V, D]`` is the one leaf; the readout ``Linear``'s
    ``weight`` ``[D, V]`` is rebuilt as its transpose; ``[B]`` ids give ``[B, V]``
    logits.

    >>> import jax, jax.numpy as jnp, pax
    >>> keys = jax.random.split(jax.random.PRNGKey(0))
    >>> net = pax.Sequential(pax.Embed(10, 4, rng_key=keys[0]),
    ...                      pax.Linear(4, 10, rng_key=keys[1]))
    >>> tied = pax.Shared(net, where=lambda s: s[1].weight,
    ...                   get=lambda s: s[0].weight.T)
    >>> tied.where
    ('.layers[1].weight',)
    >>> len(jax.tree_util.tree_leaves(net)), len(jax.tree_util.tree_leaves(tied))
    (3, 2)
    >>> tied(jnp.array([1, 2])).shape                  # [2] ids -> [2, 10] logits
    (2, 10)
    >>> bool((tied.rebuild()[1].weight == tied.tree[0].weight.T).all())
    True
    >>> g = jax.grad(lambda t: t(jnp.array([3])).sum())(tied)
    >>> g.tree[0].weight.shape, g.tree[1].weight     # one gradient, both uses
    ((10, 4), None)
    """

    parameters = parameters_method("tree")

    def __init__(
        self,
        tree: Any,
        where: Callable[[Any], Any] | str | Sequence[str],
        get: Callable[[Any], Any] | str | Sequence[str],
        *,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = f"pax.Shared({_describe(tree)})"
        paths, single = _resolve_where(tree, where, owner)
        texts = [_keystr(p) for p in paths]
        for i, p in enumerate(paths):
            if not p:
                raise ValueError(f"{owner}: `where` selects the whole tree")
            for j, q in enumerate(paths):
                if i != j and q[: len(p)] == p:
                    what = "twice" if p == q else f"inside `{texts[i]}`"
                    raise ValueError(
                        f"{owner}: `where` selects `{texts[j]}` {what}; tied slots "
                        "must be distinct and not nested"
                    )
        slots = [_get_at(tree, p) for p in paths]
        stored = tree
        for p in paths:
            stored = _set_at(stored, p, None)
        if _is_paths(get):
            get_paths = tuple(_resolve_strings(stored, get, "get", owner))
            get_single = isinstance(get, str)
        else:
            if not callable(get):
                raise TypeError(
                    f"{owner}: `get` must be a function of the stored tree or "
                    f"key-path string(s); got {type(get).__name__}"
                )
            get_paths = None
            get_single = single
        # how to rebuild: static (hashable), hidden from reprs and treescope
        self._pax_tie = _Tie(tuple(paths), get_paths, get_single)
        self.get = get
        self.where = tuple(texts)
        try:
            values = self._fetch(stored, get_single, owner)
        except ValueError:
            raise
        except Exception as e:  # noqa: BLE001 - reported with the cause
            raise ValueError(
                f"{owner}: `get` failed on the stored tree, whose tied slots "
                f"({', '.join(texts)}) are None: read the sources from elsewhere; "
                f"it raised {type(e).__name__}: {e}"
            ) from e
        for text, slot, value in zip(texts, slots, values):
            want, got = _signature(slot), _signature(value)
            if want != got:
                hint = (
                    " (`get` reads the stored tree, whose tied slots are None: "
                    "read the source elsewhere)"
                    if not got
                    else ""
                )
                raise ValueError(
                    f"{owner}: `get` gives {_describe_signature(got)} for the tied "
                    f"slot `{text}`, which holds {_describe_signature(want)}; they "
                    f"must match in structure, shape and dtype{hint}"
                )
        self.tree = stored

    def _fetch(self, stored: Any, single: bool, owner: str = "") -> list:
        """The values for the tied slots, from ``stored``."""
        paths = self._pax_tie.get_paths
        if paths is not None:
            values = [_get_at(stored, p) for p in paths]
        else:
            out = self.get(stored)
            values = [out] if single else out
        is_seq = isinstance(values, (list, tuple))
        if not is_seq or len(values) != len(self._pax_tie.paths):
            n = len(values) if is_seq else "not a sequence of"
            owner = owner or f"pax.Shared({_describe(stored)})"
            raise ValueError(
                f"{owner}: `get` gives {n} value(s) for "
                f"{len(self._pax_tie.paths)} tied slot(s) ({', '.join(self.where)})"
            )
        return list(values)

    def rebuild(self) -> Any:
        """The tree with every tied slot filled from ``get``: computed from the
        current (possibly traced, just updated) source values."""
        tree = self.tree
        values = self._fetch(tree, self._pax_tie.get_single)
        for path, value in zip(self._pax_tie.paths, values):
            tree = _set_at(tree, path, value)
        return tree

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``self.rebuild()(*args, **kwargs)``.

        Inside :func:`pax.pure` (and so under :func:`pax.purecall`) the call runs
        on a copy of the rebuilt tree and the state it changes is stored back
        (tied slots emptied again); outside, a stateful call raises
        :class:`pax.MutationError` as the tree's own call would.
        """
        tree = self.rebuild()
        if not callable(tree):
            raise TypeError(
                f"pax.Shared({_describe(tree)}): the tree is not callable; use "
                "`.rebuild()` to get it"
            )
        session = _session_of(self)
        if session is None or session is _INIT or not isinstance(tree, Module):
            return tree(*args, **kwargs)
        from .pure import purecall

        tree, out = purecall(tree, *args, **kwargs)
        for path in self._pax_tie.paths:
            tree = _set_at(tree, path, None)
        self.tree = tree
        return out


def _describe(tree: Any) -> str:
    return type(tree).__name__

"""Sharding rules -> ``PartitionSpec`` trees, and placing trees on a mesh.

A *rule set* is an ordered sequence of items, each either

* a pair ``(pattern, spec)``: ``pattern`` a regular expression (``str`` or
  compiled) searched (``re.search``) in the leaf's key path, ``spec`` a
  ``jax.sharding.PartitionSpec`` (``None`` means ``PartitionSpec()``); or
* a callable ``rule(path, leaf, mesh) -> PartitionSpec | None``, ``None``
  meaning "no opinion, try the next item" (``mesh`` may be ``None``).

A single callable is accepted as a rule set of one item. Key paths are the
strings of ``jax.tree_util.keystr``: the keys of ``module.state_dict()`` and of
checkpoints (``.transformer.blocks.layers.dense_1.weight``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AbstractMesh, AxisType, Mesh, NamedSharding, PartitionSpec

from .._core.module import is_module

__all__ = [
    "Rule",
    "Rules",
    "make_mesh",
    "partition_specs",
    "named_shardings",
    "shard",
    "init",
]

Rule = tuple[Any, Any] | Callable[[str, Any, Any], Any]
Rules = Sequence[Rule] | Callable[[str, Any, Any], Any]

_WHERE = "pax.sharding"


def _owner(tree: Any) -> str:
    return repr(tree) if is_module(tree) else type(tree).__name__


def leaf_shape(leaf: Any) -> tuple[int, ...]:
    shape = getattr(leaf, "shape", None)
    return tuple(np.shape(leaf) if shape is None else shape)


def leaf_dtype(leaf: Any) -> Any:
    dtype = getattr(leaf, "dtype", None)
    return np.result_type(leaf) if dtype is None else dtype


def _raw_key_shape() -> tuple[int, ...]:
    with jax.ensure_compile_time_eval():
        return tuple(jax.random.key_data(jax.random.key(0)).shape)


def is_rng_key(leaf: Any) -> bool:
    """Typed keys, and raw keys: ``uint32`` arrays ending in the default key
    implementation's data shape (``[..., 2]`` for threefry)."""
    dtype = leaf_dtype(leaf)
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    shape = leaf_shape(leaf)
    trailing = _raw_key_shape()
    return dtype == np.uint32 and shape[len(shape) - len(trailing) :] == trailing


def _is_integer(leaf: Any) -> bool:
    dtype = leaf_dtype(leaf)
    return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_))


def _as_items(rules: Rules) -> list[tuple[str, Callable[[str, Any, Any], Any]]]:
    """Normalise a rule set to ``(description, callable)`` items."""
    if callable(rules) and not isinstance(rules, (tuple, list)):
        rules = [rules]
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise TypeError(
            f"{_WHERE}: `rules` must be a sequence of (pattern, PartitionSpec) "
            f"pairs or callables (path, leaf, mesh) -> PartitionSpec | None, "
            f"got {type(rules).__name__}"
        )
    items = []
    for i, rule in enumerate(rules):
        if isinstance(rule, tuple) and len(rule) == 2:
            pattern, spec = rule
            if isinstance(pattern, str):
                try:
                    pattern = re.compile(pattern)
                except re.error as e:
                    raise ValueError(
                        f"{_WHERE}: rule {i}: invalid regular expression "
                        f"{pattern!r}: {e}"
                    ) from None
            if not isinstance(pattern, re.Pattern):
                raise TypeError(
                    f"{_WHERE}: rule {i}: the pattern must be a str or re.Pattern, "
                    f"got {type(pattern).__name__}"
                )
            spec = PartitionSpec() if spec is None else spec
            if not isinstance(spec, PartitionSpec):
                raise TypeError(
                    f"{_WHERE}: rule {i} ({pattern.pattern!r}): expected a "
                    f"jax.sharding.PartitionSpec, got {spec!r}"
                )

            def match(path, leaf, mesh, pattern=pattern, spec=spec):
                return spec if pattern.search(path) else None

            items.append((f"rule {i} ({pattern.pattern!r})", match))
        elif callable(rule):
            items.append((f"rule {i} ({rule!r})", rule))
        else:
            raise TypeError(
                f"{_WHERE}: rule {i} must be a (pattern, PartitionSpec) pair or a "
                f"callable (path, leaf, mesh) -> PartitionSpec | None, got {rule!r}"
            )
    return items


def _axis_names(entry: Any) -> tuple[str, ...]:
    if entry is None:
        return ()
    if isinstance(entry, tuple):
        return entry
    return (entry,)


def check_spec(
    path: str, leaf: Any, spec: Any, mesh: Any, origin: str, owner: str
) -> PartitionSpec:
    """Check ``spec`` against the leaf's rank and, given a mesh, its axes."""
    where = f"{_WHERE}: {owner}: leaf `{path}` with shape {leaf_shape(leaf)}"
    if not isinstance(spec, PartitionSpec):
        raise TypeError(
            f"{where}: {origin} gave {spec!r}, expected a jax.sharding.PartitionSpec"
        )
    shape = leaf_shape(leaf)
    if len(spec) > len(shape):
        raise ValueError(
            f"{where}: {origin} gave {spec} with {len(spec)} entries, more than "
            f"the leaf's rank {len(shape)}"
        )
    if mesh is None:
        return spec
    seen: set[str] = set()
    for dim, entry in enumerate(spec):
        names = _axis_names(entry)
        size = 1
        for name in names:
            if name not in mesh.shape:
                raise ValueError(
                    f"{where}: {origin} gave {spec}, whose mesh axis {name!r} is "
                    f"not an axis of the mesh (axes {tuple(mesh.axis_names)})"
                )
            if name in seen:
                raise ValueError(
                    f"{where}: {origin} gave {spec}, which uses mesh axis "
                    f"{name!r} twice"
                )
            seen.add(name)
            size *= mesh.shape[name]
        if shape[dim] % size:
            axes = " x ".join(f"{n!r} (size {mesh.shape[n]})" for n in names)
            raise ValueError(
                f"{where}: {origin} gave {spec}: dimension {dim} (size "
                f"{shape[dim]}) is not divisible by mesh axis {axes}"
            )
    return spec


def partition_specs(
    tree: Any,
    rules: Rules,
    *,
    default: PartitionSpec | None = None,
    mesh: Mesh | AbstractMesh | None = None,
) -> Any:
    """A tree of ``PartitionSpec`` s shaped like ``tree``, one per leaf.

    For each array leaf, the first rule that matches its key path gives its
    spec (rules are searched with ``re.search``, so a pattern matches anywhere
    in the path: anchor the end with ``$``, and leave the start unanchored if
    the same rules should also apply to optimizer state, whose paths end with
    the parameter's, e.g. ``.state[0].mu.layers[0].weight``). Whatever the
    rules say:

    * 0-d leaves and rng keys (typed, or raw ``uint32`` ``[..., 2]``) are
      replicated (``PartitionSpec()``);
    * integer and boolean leaves no rule matches (counters, step numbers) are
      replicated.

    Other leaves no rule matches take ``default``; without one, they are an
    error listing every unmatched path (``default=PartitionSpec()``
    replicates them).

    Args:
      tree: a module (or any pytree) of arrays, ``jax.ShapeDtypeStruct`` s or
        tracers; ``None`` leaves stay ``None``.
      rules: a rule set (see :mod:`pax.sharding`): ``[(pattern, spec), ...]``
        and/or callables ``(path, leaf, mesh) -> spec | None``.
      default: the spec of unmatched floating-point leaves.
      mesh: a ``Mesh`` or ``AbstractMesh`` (sizes and names, no devices);
        if given, every spec is also checked against it: its axes must be
        mesh axes, and divide the dimensions they shard (callable rules such as
        :func:`fsdp_rules` need it).

    Returns:
      ``tree`` with a ``PartitionSpec`` in place of every leaf.

    Raises:
      ValueError: unmatched leaves; a spec longer than its leaf's rank; a mesh
        axis that is unknown, used twice, or does not divide its dimension
        (naming the leaf path, the dimension and the axis).

    >>> import jax, pax
    >>> from jax.sharding import PartitionSpec as P
    >>> mlp = pax.nets.MLP(4, [8, 2], rng_key=jax.random.PRNGKey(0))
    >>> specs = pax.sharding.partition_specs(
    ...     mlp, [(r"layers\\[0\\]\\.weight$", P(None, "model"))], default=P())
    >>> specs.layers[0].weight, specs.layers[0].bias
    (P(None, 'model'), P())
    """
    items = _as_items(rules)
    if default is not None and not isinstance(default, PartitionSpec):
        raise TypeError(
            f"{_WHERE}: `default` must be a jax.sharding.PartitionSpec or None, "
            f"got {default!r}"
        )
    if mesh is not None and not isinstance(mesh, (Mesh, AbstractMesh)):
        raise TypeError(
            f"{_WHERE}: `mesh` must be a jax.sharding.Mesh or AbstractMesh, "
            f"got {type(mesh).__name__}"
        )
    owner = _owner(tree)
    unmatched: list[str] = []

    def spec_of(key_path, leaf):
        path = jax.tree_util.keystr(key_path)
        if len(leaf_shape(leaf)) == 0 or is_rng_key(leaf):
            return PartitionSpec()
        for origin, rule in items:
            spec = rule(path, leaf, mesh)
            if spec is not None:
                return check_spec(path, leaf, spec, mesh, origin, owner)
        if _is_integer(leaf):
            return PartitionSpec()
        if default is not None:
            return check_spec(path, leaf, default, mesh, "`default`", owner)
        unmatched.append(path)
        return PartitionSpec()

    specs = jax.tree_util.tree_map_with_path(spec_of, tree)
    if unmatched:
        listing = "\n  ".join(unmatched)
        raise ValueError(
            f"{_WHERE}: {owner}: no rule matches {len(unmatched)} leaf path(s):"
            f"\n  {listing}\nAdd rules for them, or pass `default=PartitionSpec()` "
            f"to replicate every unmatched leaf."
        )
    return specs


def make_mesh(
    axis_shapes: Sequence[int], axis_names: Sequence[str], *, devices: Any = None
) -> Mesh:
    """``jax.make_mesh`` with every axis ``AxisType.Auto``: the mesh to shard
    PAX modules on.

    PAX layers leave the partitioning of their intermediate values to JAX's
    automatic partitioner. ``jax.make_mesh`` defaults to ``Explicit`` axes in
    recent JAX, under which a matmul, a convolution or an embedding lookup
    with sharded operands must be told its output sharding, so
    :func:`shard`, :func:`init` and :func:`named_shardings` refuse such
    meshes.

    Args:
      axis_shapes: the size of each axis, e.g. ``(4, 2)``; their product is
        the number of devices used.
      axis_names: a name per axis, e.g. ``("data", "model")``.
      devices: optional devices (default: ``jax.devices()``).

    >>> import pax
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> mesh.axis_names, mesh.axis_types
    (('data',), (Auto,))
    """
    if isinstance(axis_names, str) or len(axis_shapes) != len(axis_names):
        raise ValueError(
            f"{_WHERE}.make_mesh: expected one name per axis, got axis_shapes="
            f"{tuple(axis_shapes)} and axis_names={axis_names!r}"
        )
    auto = (AxisType.Auto,) * len(axis_names)
    return jax.make_mesh(
        tuple(axis_shapes), tuple(axis_names), axis_types=auto, devices=devices
    )


def _check_mesh(mesh: Any) -> None:
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"{_WHERE}: `mesh` must be a jax.sharding.Mesh (e.g. pax.sharding."
            f"make_mesh((4, 2), ('data', 'model'))), got {type(mesh).__name__}"
        )
    explicit = [
        name
        for name, kind in zip(mesh.axis_names, mesh.axis_types)
        if kind == AxisType.Explicit
    ]
    if explicit:
        raise ValueError(
            f"{_WHERE}: the mesh has Explicit axes {tuple(explicit)} ({mesh}); "
            f"PAX layers need the automatic partitioner: build the mesh with "
            f"pax.sharding.make_mesh(shape, names), or jax.make_mesh(shape, "
            f"names, axis_types=(jax.sharding.AxisType.Auto,) * len(names))"
        )


def named_shardings(
    tree: Any, mesh: Mesh, rules: Rules, *, default: PartitionSpec | None = None
) -> Any:
    """``tree`` with a ``NamedSharding(mesh, spec)`` in place of every leaf.

    The specs are :func:`partition_specs` 's, checked against ``mesh``. Use
    the result as ``jax.jit``'s ``in_shardings`` / ``out_shardings``, with
    ``jax.device_put`` or ``jax.lax.with_sharding_constraint``.

    >>> import jax, pax
    >>> from jax.sharding import PartitionSpec as P
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> fc = pax.Linear(4, 8, rng_key=jax.random.PRNGKey(0))
    >>> s = pax.sharding.named_shardings(fc, mesh, [("weight", P(None, "data"))],
    ...                                  default=P())
    >>> s.weight.spec
    P(None, 'data')
    """
    _check_mesh(mesh)
    specs = partition_specs(tree, rules, default=default, mesh=mesh)
    return jax.tree_util.tree_map(
        lambda spec: NamedSharding(mesh, spec),
        specs,
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def shard(
    tree: Any, mesh: Mesh, rules: Rules, *, default: PartitionSpec | None = None
) -> Any:
    """``tree`` placed on ``mesh``: every leaf ``jax.device_put`` with the
    ``NamedSharding`` its rule gives (see :func:`partition_specs`).

    Works on modules, optimizers (``pax.optim.from_optax``: the same rules
    apply to its moments, whose paths end with the parameters' paths) and
    batches (``shard(batch, mesh, [(".*", P("data"))])``).

    >>> import jax, pax
    >>> from jax.sharding import PartitionSpec as P
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> fc = pax.Linear(4, 8, rng_key=jax.random.PRNGKey(0))
    >>> fc = pax.sharding.shard(fc, mesh, pax.sharding.fsdp_rules(min_size=1))
    >>> fc.weight.sharding.spec
    P(None, 'data')
    """
    shardings = named_shardings(tree, mesh, rules, default=default)
    return jax.device_put(tree, shardings)


def init(
    make_module: Callable[[], Any],
    mesh: Mesh,
    rules: Rules,
    *,
    default: PartitionSpec | None = None,
) -> Any:
    """Build ``make_module()`` with its arrays born sharded on ``mesh``.

    ``jax.eval_shape(make_module)`` gives the structure (no array is
    allocated), the rules give each leaf's sharding, and one
    ``jax.jit(make_module, out_shardings=...)`` builds the module: every
    device computes and holds only its own shards, so a parameter too large
    for one device can be created.

    The values equal an eager ``make_module()`` (up to float rounding: XLA
    compiles the initializers as one program) *when every key is explicit*:
    pass ``rng_key=`` to the model. A module built with ``rng_key=None``
    draws from ``pax.next_rng_key()`` once under ``jax.eval_shape`` and again
    while ``jax.jit`` traces (at trace time, without a warning), so it gets
    different keys than an eager build would.

    Args:
      make_module: a function of no arguments returning a module (or any
        pytree of arrays), e.g. ``lambda: pax.nets.TransformerLM(...,
        rng_key=key)``.
      mesh: the ``jax.sharding.Mesh``.
      rules: a rule set (see :func:`partition_specs`).
      default: the spec of unmatched floating-point leaves.

    Returns:
      The module, each leaf a ``jax.Array`` sharded as its rule says.

    >>> import jax, jax.numpy as jnp, pax
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> key = jax.random.PRNGKey(0)
    >>> mlp = pax.sharding.init(lambda: pax.nets.MLP(4, [8, 2], rng_key=key),
    ...                         mesh, pax.sharding.fsdp_rules(min_size=1))
    >>> mlp.layers[0].weight.sharding.spec
    P(None, 'data')
    >>> eager = pax.nets.MLP(4, [8, 2], rng_key=key)
    >>> bool(jnp.allclose(mlp.layers[0].weight, eager.layers[0].weight))
    True
    """
    _check_mesh(mesh)
    if not callable(make_module):
        raise TypeError(
            f"{_WHERE}.init: `make_module` must be a function of no arguments "
            f"returning a module, got {type(make_module).__name__}"
        )
    shapes = jax.eval_shape(make_module)
    shardings = named_shardings(shapes, mesh, rules, default=default)
    return jax.jit(make_module, out_shardings=shardings)()

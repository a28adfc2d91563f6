"""Native modules <-> Haiku parameter dicts.

``to_haiku_params`` exports a ``pax.nn`` / ``pax.nets`` module's arrays as the
``params`` and ``state`` dicts the matching Haiku program creates (the same
module names such as ``mlp/~/linear_0``, the same array names ``w``/``b``/
``scale``/``embeddings``/``mean_ema``..., Haiku's shapes); ``from_haiku_params``
loads such dicts back into a native module. The round trip is exact.

A table of *entries* drives both directions: each entry ties one native leaf
(its ``jax.tree_util.keystr`` path) to one Haiku array (module name, array
name) and knows Haiku's shape for it. The entries are produced by walking the
module with Haiku's naming rules: a module gets the snake-case name of its
class, made unique in its scope (``linear``, ``linear_1``, ...); submodules
that Haiku creates in ``__init__`` live under ``parent/~/``, those created in
``__call__`` under ``parent/``; containers (``Sequential``, ``DeepRNN``,
``ResetCore``) add no scope, as in Haiku, where their layers are built by the
caller. Every layer with a Haiku twin is read from its record in
``pax.hk._mapping`` (the same records the ``pax.hk`` layers create their
parameters from); only the composite nets (MLP, ResNet, MobileNetV1), the
containers and users' own modules have walks of their own here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import Module as PaxModule
from .. import nets, nn
from . import _mapping
from ._module import camel_to_snake

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class _Entry:
    path: str  # the native leaf, as a keystr path
    module: str  # Haiku module name, e.g. "mlp/~/linear_0"
    name: str  # Haiku array name, e.g. "w"
    shape: Callable[[Shape], Shape] | None = None  # native -> Haiku shape
    load: bool = True  # False: exported only (a copy Haiku also keeps)
    kind: str | None = None  # "param"/"state"; None: the leaf's trainability


class _Names:
    """Haiku's module names inside one scope: ``linear``, ``linear_1``, ..."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        self.used: dict[str, int] = {}

    def __call__(self, base: str) -> str:
        count = self.used.get(base, 0)
        self.used[base] = count + 1
        return self.prefix + (base if count == 0 else f"{base}_{count}")


class _Walk:
    """Produces the entries for one module tree."""

    def __init__(self, root: Any, input_ndim: int | None):
        self.input_ndim = input_ndim
        leaves = jax.tree_util.tree_flatten_with_path(root)[0]
        self.leaves = {jax.tree_util.keystr(p): leaf for p, leaf in leaves}
        self.entries: list[_Entry] = []

    # -- helpers ------------------------------------------------------------
    def has(self, path: str) -> bool:
        return path in self.leaves

    def add(self, path, module, name, shape=None, load=True, kind=None) -> None:
        if path in self.leaves:
            self.entries.append(_Entry(path, module, name, shape, load, kind))

    # -- dispatch -----------------------------------------------------------
    def walk(self, m: Any, path: str, names: _Names, name: str | None = None):
        for cls, handler in _HANDLERS:
            if isinstance(m, cls):
                return handler(self, m, path, names, name)
        twin = _mapping.record_for(m)
        if twin is not None:
            return _record(self, m, twin, path, names, name)
        if isinstance(m, PaxModule):
            return _generic(self, m, path, names, name)
        raise TypeError(f"{type(m).__name__} is not a pax.Module")


def _base(m: Any) -> str:
    return camel_to_snake(type(m).__name__)


# -- layers: one generic handler reading the records --------------------------


def _record(
    w: _Walk,
    m: Any,
    twin: _mapping.HaikuTwin,
    path: str,
    names: _Names,
    name: str | None,
    ctx: _mapping.Context | None = None,
) -> None:
    """The entries of a layer with a Haiku twin: its own leaves, then its
    children's, named in its scope (``name/~/child`` or ``name/child``)."""
    if twin.check is not None:
        twin.check(m)
    full = names(name or twin.haiku_name(m))
    if ctx is None:
        ctx = twin.context(m, w.input_ndim)
    claimed: set[str] = set()
    for leaf in twin.leaves:
        source = leaf.source(lambda p: w.has(path + p))
        if source is None:
            continue
        shape = None
        if leaf.shape is not None:
            shape = functools.partial(leaf.haiku_shape, ctx=ctx)
        w.add(path + source, full, leaf.name, shape, source not in claimed, leaf.kind)
        claimed.add(source)
    inner = _Names(full + twin.scope)
    for child in twin.children:
        sub = getattr(m, child.path.lstrip("."), None)
        if sub is None:
            continue
        sub_twin = _mapping.record_for(sub)
        sub_ctx = sub_twin.context(sub, w.input_ndim)
        if child.value_shape is not None:
            value_shape = functools.partial(child.value_shape, ctx=ctx)
            sub_ctx = dataclasses.replace(sub_ctx, value_shape=value_shape)
        _record(w, sub, sub_twin, path + child.path, inner, child.name, sub_ctx)


def _transparent(attr: str):
    """Containers: their layers are named in the caller's scope, as in Haiku."""

    def handler(w: _Walk, m, path, names, name):
        if name is not None:
            raise ValueError(
                f"{type(m).__name__} has no Haiku name of its own (its layers "
                "are named where they are built); do not pass name="
            )
        layers = getattr(m, attr)
        if isinstance(layers, (list, tuple)):
            for i, layer in enumerate(layers):
                if isinstance(layer, PaxModule):
                    w.walk(layer, f"{path}.{attr}[{i}]", names)
        elif isinstance(layers, PaxModule):
            w.walk(layers, f"{path}.{attr}", names)

    return handler


# -- nets ---------------------------------------------------------------------


def _images(handler: Callable) -> Callable:
    """The image nets see NHWC inputs: inside them the norms' Haiku shapes are
    rank 4, whatever ``input_ndim`` says for the layers around the net."""

    def wrapped(w: _Walk, *args):
        outer, w.input_ndim = w.input_ndim, 4
        try:
            return handler(w, *args)
        finally:
            w.input_ndim = outer

    return wrapped


def _mlp(w: _Walk, m, path, names, name):
    inner = _Names(names(name or "mlp") + "/~/")
    for i, layer in enumerate(m.layers):
        w.walk(layer, f"{path}.layers[{i}]", inner, f"linear_{i}")


@_images
def _resnet(w: _Walk, m, path, names, name):
    inner = _Names(names(name or _base(m)) + "/~/")
    if m.initial_conv is not None:
        w.walk(m.initial_conv, path + ".initial_conv", inner, "initial_conv")
    bn = getattr(m, "initial_batchnorm", None)
    if bn is not None:
        w.walk(bn, path + ".initial_batchnorm", inner, "initial_batchnorm")
    for g, group in enumerate(m.block_groups):
        gpath = f"{path}.block_groups[{g}]"
        ginner = _Names(inner(f"block_group_{g}") + "/~/")
        for b, block in enumerate(group.blocks):
            bpath = f"{gpath}.blocks[{b}]"
            binner = _Names(ginner(f"block_{b}") + "/~/")
            for attr, hk_name in (
                ("proj_conv", "shortcut_conv"),
                ("proj_batchnorm", "shortcut_batchnorm"),
                *((f"conv_{k}", f"conv_{k}") for k in range(3)),
                *((f"batchnorm_{k}", f"batchnorm_{k}") for k in range(3)),
            ):
                sub = getattr(block, attr, None)
                if sub is not None:
                    w.walk(sub, f"{bpath}.{attr}", binner, hk_name)
    bn = getattr(m, "final_batchnorm", None)
    if bn is not None:
        w.walk(bn, path + ".final_batchnorm", inner, "final_batchnorm")
    w.walk(m.logits, path + ".logits", inner, "logits")


@_images
def _mobilenet(w: _Walk, m, path, names, name):
    inner = _Names(names(name or _base(m)) + "/")
    w.walk(m.initial_conv, path + ".initial_conv", inner, "conv2_d")
    if m.initial_batchnorm is not None:
        w.walk(m.initial_batchnorm, path + ".initial_batchnorm", inner)
    for i, block in enumerate(m.blocks):
        bpath = f"{path}.blocks[{i}]"
        binner = _Names(inner("mobile_net_v1_block") + "/")
        for attr, hk_name in (
            ("depthwise_conv", "depthwise_conv"),
            ("depthwise_batchnorm", "batch_norm"),
            ("pointwise_conv", "pointwise_conv"),
            ("pointwise_batchnorm", "batch_norm"),
        ):
            sub = getattr(block, attr, None)
            if sub is not None:
                w.walk(sub, f"{bpath}.{attr}", binner, hk_name)
    w.walk(m.logits, path + ".logits", inner, "logits")


def _generic(w: _Walk, m, path, names, name):
    """A user's module: its array attributes are its own Haiku parameters (or
    state, when not trainable) named after the attribute; its submodules are
    built in ``__init__`` (``name/~/child``) in attribute order."""
    full = names(name or _base(m))
    inner = _Names(full + "/~/")
    for attr, value in vars(m).items():
        if attr.startswith("_"):
            continue
        if isinstance(value, PaxModule):
            w.walk(value, f"{path}.{attr}", inner)
        elif isinstance(value, (list, tuple)) and any(
            isinstance(v, PaxModule) for v in value
        ):
            for i, v in enumerate(value):
                if isinstance(v, PaxModule):
                    w.walk(v, f"{path}.{attr}[{i}]", inner)
        else:
            w.add(f"{path}.{attr}", full, attr)


def _refuse(w: _Walk, m, path, names, name):
    raise ValueError(
        f"{type(m).__name__}: no Haiku counterpart to export to or load from "
        "(Haiku's layer_stack names and stacks its parameters differently)"
    )


# Composite nets and containers keep their walks; every layer with a Haiku twin
# (pax.hk._mapping.RECORDS) is handled by ``_record``.
_HANDLERS: list[tuple[type, Callable]] = [
    (nn.LayerStack, _refuse),
    (nets.MLP, _mlp),
    (nets.ResNet, _resnet),
    (nets.MobileNetV1, _mobilenet),
    (nn.Sequential, _transparent("layers")),
    (nn.DeepRNN, _transparent("layers")),
    (nn.ResetCore, _transparent("core")),
]


def _entries(module: Any, name: str | None, input_ndim: int | None) -> _Walk:
    walk = _Walk(module, input_ndim)
    walk.walk(module, "", _Names(), name)
    covered = {e.path for e in walk.entries}
    lost = [p for p in walk.leaves if p not in covered]
    if lost:
        raise ValueError(
            f"{type(module).__name__}: no Haiku counterpart for the leaves "
            f"{lost} (supported: pax.nn layers with a Haiku twin, pax.nets "
            "MLP/ResNet/MobileNetV1/VectorQuantizer(EMA), containers, and "
            "modules made of these)"
        )
    return walk


def to_haiku_params(
    module: Any, *, name: str | None = None, input_ndim: int | None = None
) -> tuple[dict[str, dict[str, jax.Array]], dict[str, dict[str, jax.Array]]]:
    """A native module's arrays as Haiku's ``(params, state)`` dicts.

    The dicts are what the matching Haiku program creates: for
    ``pax.nets.MLP`` that is ``hk.nets.MLP`` (``mlp/~/linear_0``: ``w``
    ``[in, out]``, ``b`` ``[out]``), for ``pax.nn.BatchNorm`` ``hk.BatchNorm``
    (``batch_norm``: ``scale``/``offset`` ``[1, ..., C]``, state
    ``batch_norm/~/mean_ema`` and ``var_ema`` with ``counter``, ``hidden``,
    ``average``). Trainable leaves go to ``params``, the others to ``state``.
    Native names that differ from Haiku's are translated (``weight`` -> ``w``,
    ``MultiHeadAttention.output_projection`` -> ``linear``, ResNet
    ``proj_conv`` -> ``shortcut_conv``, ...).

    Args:
      module: a ``pax.nn`` layer, a ``pax.nets`` network, a container of them
        (``Sequential``/``DeepRNN``/``ResetCore``: the layers are named in the
        caller's scope, as Haiku's), or your own module made of these (named
        like a Haiku module that builds its layers in ``__init__``; array
        attributes become its parameters ``name/attr``).
      name: the Haiku name of ``module`` (default: Haiku's default for the
        class, e.g. ``linear``, ``conv2_d``, ``res_net18``, ``mobile_net_v1``).
      input_ndim: the rank of the inputs (batch axes included). Needed only
        where Haiku's shapes depend on it: ``BatchNorm`` (``[1, ..., 1, C]``)
        and channels-first ``GroupNorm``/``LayerNorm``/``InstanceNorm``/
        ``RMSNorm``. ``BatchNorm1D``/``2D`` and the nets know it.

    Returns:
      ``(params, state)``: ``{module_name: {array_name: array}}`` dicts
      (``state`` is ``{}`` for stateless modules). The arrays are the
      module's own (reshaped where Haiku's shape differs), not copies.

    >>> import jax, jax.numpy as jnp, pax, pax.hk as hk
    >>> mlp = pax.nets.MLP(3, [4, 2], rng_key=jax.random.PRNGKey(0))
    >>> params, state = hk.to_haiku_params(mlp)
    >>> jax.tree_util.tree_map(jnp.shape, params)  # doctest: +NORMALIZE_WHITESPACE
    {'mlp/~/linear_0': {'b': (4,), 'w': (3, 4)},
     'mlp/~/linear_1': {'b': (2,), 'w': (4, 2)}}
    >>> f = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([4, 2])(x)))
    >>> x = jnp.ones((1, 3))
    >>> bool(jnp.allclose(f.apply(params, x), mlp(x)))
    True
    """
    walk = _entries(module, name, input_ndim)
    trainable = _trainable_paths(module)
    params: dict[str, dict[str, jax.Array]] = {}
    state: dict[str, dict[str, jax.Array]] = {}
    for e in walk.entries:
        value = walk.leaves[e.path]
        if e.shape is not None:
            hk_shape = e.shape(tuple(value.shape))
            if isinstance(value, jax.ShapeDtypeStruct):  # from jax.eval_shape
                value = jax.ShapeDtypeStruct(hk_shape, value.dtype)
            else:
                value = jnp.reshape(value, hk_shape)
        target = params if _is_param(e, trainable) else state
        target.setdefault(e.module, {})[e.name] = value
    return _sorted(params), _sorted(state)


def from_haiku_params(
    module: Any,
    params: Mapping[str, Mapping[str, Any]],
    state: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    name: str | None = None,
    input_ndim: int | None = None,
) -> Any:
    """``module`` with its arrays taken from Haiku's ``params`` (and ``state``).

    The inverse of :func:`to_haiku_params` (same ``name``/``input_ndim``
    rules): every array the native module holds must be found under its
    Haiku name, with Haiku's shape (or the native one), and every array given
    must find a place; anything else is an error, so nothing is silently
    dropped. Arrays keep the dtype they come with.

    Args:
      module: the native module to fill (e.g. freshly built, or
        ``jax.eval_shape`` of its constructor: only its structure is used).
      params: Haiku's params, ``{module_name: {array_name: array}}``.
      state: Haiku's state (needed when the module has state, e.g. BatchNorm's
        moving averages).

    Returns:
      A new module; ``module`` itself is unchanged.

    >>> import jax, jax.numpy as jnp, pax, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> params = f.init(jax.random.PRNGKey(1), jnp.ones((1, 3)))
    >>> fc = hk.from_haiku_params(pax.nn.Linear(3, 2), params)
    >>> bool(jnp.array_equal(fc.weight, params["linear"]["w"]))
    True
    """
    walk = _entries(module, name, input_ndim)
    trainable = _trainable_paths(module)
    state = {} if state is None else state
    used: set[tuple[str, str, str]] = set()
    new = dict(walk.leaves)
    for e in walk.entries:
        if _is_param(e, trainable):
            kind, source = "params", params
        else:
            kind, source = "state", state
        if e.module not in source or e.name not in source[e.module]:
            raise KeyError(
                f"{type(module).__name__}: Haiku {kind} have no "
                f"'{e.module}' / '{e.name}' (needed for the native {e.path!r}); "
                f"found modules {sorted(source)}"
            )
        used.add((kind, e.module, e.name))
        if not e.load:
            continue
        value = jnp.asarray(source[e.module][e.name])
        old = walk.leaves[e.path]
        want = tuple(np.shape(old))
        hk_shape = e.shape(want) if e.shape is not None else want
        if value.shape not in (want, hk_shape):
            raise ValueError(
                f"{type(module).__name__}: Haiku's '{e.module}/{e.name}' has shape "
                f"{value.shape}, expected {hk_shape} for the native {e.path!r}"
            )
        old_dtype = np.dtype(old.dtype)
        if jnp.issubdtype(value.dtype, jnp.integer) != jnp.issubdtype(
            old_dtype, jnp.integer
        ):
            raise ValueError(
                f"{type(module).__name__}: Haiku's '{e.module}/{e.name}' has dtype "
                f"{value.dtype}, expected {old_dtype}"
            )
        new[e.path] = value.reshape(want)
    for kind, source in (("params", params), ("state", state)):
        extra = [
            f"{mod}/{arr}"
            for mod, arrays in source.items()
            for arr in arrays
            if (kind, mod, arr) not in used
        ]
        if extra:
            raise ValueError(
                f"{type(module).__name__}: Haiku {kind} {extra} have no place in "
                "the native module (filter them out with "
                "hk.data_structures.filter first if that is intended)"
            )
    treedef = jax.tree_util.tree_structure(module)
    return jax.tree_util.tree_unflatten(treedef, [new[p] for p in walk.leaves])


def _is_param(e: _Entry, trainable: set[str]) -> bool:
    """Haiku's kind: the record's for layers with a twin, else (a user's
    module) the leaf's trainability."""
    return e.kind == "param" if e.kind is not None else e.path in trainable


def _trainable_paths(module: Any) -> set[str]:
    leaves = jax.tree_util.tree_flatten_with_path(module.parameters())[0]
    return {jax.tree_util.keystr(p) for p, _ in leaves}


def _sorted(tree: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: dict(sorted(tree[k].items())) for k in sorted(tree)}

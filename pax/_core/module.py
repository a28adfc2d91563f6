"""``pax.Module``: a Python object that is a JAX pytree.

How a module becomes a pytree (the design, in short; see README.md here):

* While ``__init__`` runs, attributes are plain assignments.
* When ``__init__`` returns, the metaclass classifies every attribute *once*
  into a :class:`_Spec`: *children* (arrays, submodules, and containers of
  them) and *static* data (everything else). The spec is the pytree's aux
  data, so it is hashed once and compared by identity on the hot path.
* ``flatten`` returns the children named by the spec and the spec itself;
  ``unflatten`` builds ``__dict__`` from the spec's static dict and the
  children. Neither scans the instance.
* A container that mixes dynamic leaves with static ones (``[Linear,
  jax.nn.relu]``) is "exploded": each array/submodule inside it becomes one
  child, and the container skeleton plus its static leaves live in the spec.
* An assignment made later (inside :func:`pax.pure`) re-classifies only the
  assigned attribute, and only when its kind or static value changes.
"""

from __future__ import annotations

import copy
import inspect
import operator
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from .errors import MutationError, UnknownAttributeError
from .frozen import freeze
from .keys import check_rng_key

__all__ = [
    "Module",
    "ParameterModule",
    "StateModule",
    "parameters_method",
    "is_module",
]

T = TypeVar("T", bound="Module")


def _concrete_array_class() -> type:
    """The class of concrete ``jax.Array`` s, found without creating an array:
    creating one at import would start JAX's backend, after which
    ``jax.distributed.initialize`` refuses to run (``import pax`` must come
    first in multi-process scripts)."""
    for cls in jax.Array.__subclasses__():
        if cls.__name__ == "ArrayImpl" and cls.__module__.startswith("jaxlib"):
            return cls
    return type(jnp.zeros(()))  # pragma: no cover - another jaxlib layout


_ArrayImpl = _concrete_array_class()  # the concrete array class
_new_object = object.__new__
_ARRAY_TYPES = (jax.Array, np.ndarray, np.generic)
_STATIC_FAST = (str, int, float, bool, complex, type, type(None), bytes)
_STATIC_TYPES = frozenset(_STATIC_FAST)  # exact types: one set lookup

# Kinds of attribute.
_CHILD = 0
_STATIC = 1
_MIXED = 2

# Marker stored in the session slot while ``__init__`` runs.
_INIT = object()
# Marker for "every array attribute is trainable".
_ALL = object()

_MUTATION_MSG = (
    "Cannot set attribute `{name}` of {module}: PAX modules are immutable "
    "after `__init__`.\n"
    "  * for a one-off change, build a new module: "
    "`module = module.replace({name}=value)`;\n"
    "  * for a call that updates state (BatchNorm statistics, dropout keys, "
    "counters), run it on a copy: `module, y = pax.purecall(module, x)`, or "
    "inside a function decorated with `@pax.pure` that returns the module."
)


def is_module(x: Any) -> bool:
    """Return True if ``x`` is a :class:`pax.Module`."""
    return isinstance(x, Module)


def _is_array(x: Any) -> bool:
    return type(x) is _ArrayImpl or isinstance(x, _ARRAY_TYPES)


def _is_dynamic(x: Any) -> bool:
    return type(x) is _ArrayImpl or isinstance(x, _DYNAMIC_TYPES)


def _is_tracer(x: Any) -> bool:
    return isinstance(x, jax.Array) and type(x) is not _ArrayImpl


def _safe_hash(value: Any) -> int:
    try:
        return hash(value)
    except TypeError:
        return hash(type(value))


def _static_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an odd __eq__ means "not equal"
        return False


class _AttrPathKey:
    """Key entry for a leaf inside an exploded (mixed) container attribute.

    ``str()`` gives the same text ``keystr`` would give for the real path, e.g.
    ``.layers[0]``, so checkpoint keys do not depend on how the container is
    stored.
    """

    __slots__ = ("name", "path", "_text")

    def __init__(self, name: str, path: tuple):
        self.name = name
        self.path = path
        self._text = "." + name + jax.tree_util.keystr(path)

    def __str__(self) -> str:
        return self._text

    __repr__ = __str__

    def __hash__(self) -> int:
        return hash(self._text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _AttrPathKey) and other._text == self._text


class _Mixed:
    """Skeleton of a container that mixes dynamic and static leaves."""

    __slots__ = ("treedef", "leaves", "dynamic", "keys")

    def __init__(self, value: Any, name: str):
        pairs, self.treedef = jax.tree_util.tree_flatten_with_path(
            value, is_leaf=is_module
        )
        self.dynamic = tuple(i for i, (_, x) in enumerate(pairs) if _is_dynamic(x))
        dyn = set(self.dynamic)
        # static leaves kept in place; dynamic slots hold None
        self.leaves = tuple(None if i in dyn else x for i, (_, x) in enumerate(pairs))
        self.keys = tuple(_AttrPathKey(name, pairs[i][0]) for i in self.dynamic)

    def split(self, value: Any) -> list:
        leaves = self.treedef.flatten_up_to(value)
        return [leaves[i] for i in self.dynamic]

    def join(self, dynamic: list) -> Any:
        leaves = list(self.leaves)
        for i, x in zip(self.dynamic, dynamic):
            leaves[i] = x
        return self.treedef.unflatten(leaves)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _Mixed)
            and self.treedef == other.treedef
            and self.dynamic == other.dynamic
            and all(map(_static_equal, self.leaves, other.leaves))
        )

    def __hash__(self) -> int:
        return hash((self.treedef, self.dynamic))


def _classify(value: Any) -> int:
    kind = type(value)
    if kind is _ArrayImpl:
        return _CHILD
    if kind in _STATIC_TYPES:
        return _STATIC
    if isinstance(value, _DYNAMIC_TYPES):
        return _CHILD
    if isinstance(value, _STATIC_FAST):
        return _STATIC
    # Anything else: look at its pytree leaves (a function or an unregistered
    # object is a single non-array leaf, hence static).
    flags = [
        _is_dynamic(x) for x in jax.tree_util.tree_leaves(value, is_leaf=is_module)
    ]
    if not any(flags):
        return _STATIC
    if all(flags):
        return _CHILD
    return _MIXED


class _Spec:
    """Per-instance-structure description: the pytree aux data of a module.

    Instances that share a structure share one spec object (unflatten reuses
    it), so jit cache checks usually hit the ``is`` fast path of ``__eq__``.
    """

    __slots__ = (
        "cls",
        "kinds",
        "child_names",
        "static",
        "mixed",
        "getter",
        "children",
        "_keys",
        "make",
        "_hash",
        "__weakref__",
    )

    def __init__(self, cls: type, kinds: dict, static: dict, mixed: dict):
        self.cls = cls
        # ``make(children)`` builds an instance (the unflatten hot path); the
        # first call compiles it for this spec's attribute layout.
        self.make = self._first_make
        self.kinds = kinds
        self.child_names = tuple(n for n, k in kinds.items() if k != _STATIC)
        self.static = static
        self.mixed = mixed
        names = self.child_names
        if mixed:
            self.getter = None
        elif len(names) == 1:
            name = names[0]
            self.getter = lambda d: (d[name],)
        elif names:
            self.getter = operator.itemgetter(*names)
        else:
            self.getter = _no_children
        # ``children(d)``: the child values of a ``__dict__``, as a tuple (the
        # C-level itemgetter itself when no container is exploded)
        self.children = self.getter or self._mixed_children
        # the key paths and the hash are computed when first asked for (a
        # keyed flatten, a jit cache lookup): eager construction builds a spec
        # per module and needs neither
        self._keys = None
        self._hash = None

    @property
    def keys(self) -> tuple:
        """The key-path entry of each child, in flatten order."""
        keys = self._keys
        if keys is None:
            keys = []
            for n in self.child_names:
                if n in self.mixed:
                    keys.extend(self.mixed[n].keys)
                else:
                    keys.append(jax.tree_util.GetAttrKey(n))
            keys = self._keys = tuple(keys)
        return keys

    @classmethod
    def build(cls, module_cls: type, d: dict) -> _Spec:
        kinds, static, mixed = {}, {}, {}
        for name, value in d.items():
            kind = _classify(value)
            kinds[name] = kind
            if kind == _STATIC:
                static[name] = value
            elif kind == _MIXED:
                mixed[name] = _Mixed(value, name)
        return cls(module_cls, kinds, static, mixed)

    def with_attr(self, name: str, value: Any) -> _Spec:
        """The spec after ``name`` was assigned ``value`` (copy on write)."""
        kind = _classify(value)
        kinds = dict(self.kinds)
        static = dict(self.static)
        mixed = dict(self.mixed)
        kinds.pop(name, None)
        static.pop(name, None)
        mixed.pop(name, None)
        kinds[name] = kind
        if kind == _STATIC:
            static[name] = value
        elif kind == _MIXED:
            mixed[name] = _Mixed(value, name)
        # keep attribute order stable for existing names
        order = [n for n in self.kinds if n in kinds]
        if name not in order:
            order.append(name)
        kinds = {n: kinds[n] for n in order}
        static = {n: static[n] for n in order if n in static}
        return _Spec(self.cls, kinds, static, mixed)

    def without_attr(self, name: str) -> _Spec:
        kinds = {n: k for n, k in self.kinds.items() if n != name}
        static = {n: v for n, v in self.static.items() if n != name}
        mixed = {n: v for n, v in self.mixed.items() if n != name}
        return _Spec(self.cls, kinds, static, mixed)

    # -- pytree hooks -----------------------------------------------------
    def _mixed_children(self, d: dict) -> tuple:
        out = []
        mixed = self.mixed
        for n in self.child_names:
            if n in mixed:
                out.extend(mixed[n].split(d[n]))
            else:
                out.append(d[n])
        return tuple(out)

    def _first_make(self, children) -> Module:
        """Compile ``make`` for this spec, then build the first instance."""
        if _can_defer_dict(self.cls, self.kinds):
            self.make = _lazy_maker(self)
        elif self.mixed:
            self.make = self._make_mixed
        else:
            layout = tuple((n, k != _STATIC) for n, k in self.kinds.items())
            factory = _MAKER_FACTORIES.get(layout)
            if factory is None:
                factory = _maker_factory(layout)
                _MAKER_FACTORIES[layout] = factory
            self.make = factory(
                self, *(self.static[n] for n, child in layout if not child)
            )
        return self.make(children)

    def _make_mixed(self, children) -> Module:
        children = tuple(children)
        obj = _new_object(self.cls)
        _set_dict(obj, self.build_dict(children))
        _set_flat(obj, (children, self))
        return obj

    def build_dict(self, children) -> dict:
        """The ``__dict__`` these children and this spec describe, in
        attribute order."""
        if not self.mixed:
            d = dict.fromkeys(self.kinds)  # fixes the attribute order
            d.update(self.static)
            d.update(zip(self.child_names, children))
            return d
        d = self.static.copy()
        it = iter(children)
        for n in self.child_names:
            if n in self.mixed:
                info = self.mixed[n]
                d[n] = info.join([next(it) for _ in info.dynamic])
            else:
                d[n] = next(it)
        # restore attribute order
        return {n: d[n] for n in self.kinds}

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash(
                (
                    self.cls,
                    self.child_names,
                    tuple((k, _safe_hash(v)) for k, v in self.static.items()),
                    tuple(self.mixed.items()),
                )
            )
        return h

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, _Spec):
            return False
        return (
            hash(self) == hash(other)
            and self.cls is other.cls
            and self.child_names == other.child_names
            and self.static.keys() == other.static.keys()
            and all(_static_equal(v, other.static[k]) for k, v in self.static.items())
            and self.mixed == other.mixed
        )

    def __repr__(self) -> str:
        return f"PaxSpec({self.cls.__name__}, children={self.child_names})"


# ---------------------------------------------------------------------------
# pytree registration
# ---------------------------------------------------------------------------


def _no_children(d: dict) -> tuple:
    return ()


# Flatten is a C-level attribute read: every module keeps its ``(children,
# spec)`` pair in the ``_pax_flat`` slot, set whenever its ``__dict__`` or spec
# changes (modules are immutable; a write inside ``pax.pure`` refreshes it), so
# JAX's C++ pytree code flattens a module without running a Python frame.
_flatten = operator.attrgetter("_pax_flat")


def _flatten_with_keys(module: Module):
    children, spec = _get_flat(module)
    return list(zip(spec.keys, children)), spec


def _unflatten(spec: _Spec, children) -> Module:
    # Hot path (every jit call): the spec's compiled ``make`` builds the
    # instance with no classification, no lookups and no session slot (an
    # unset session slot means "immutable", see `_session_of`).
    return spec.make(children)


def _can_defer_dict(cls: type, names: Any) -> bool:
    """Whether instances of ``cls`` with these attribute names may be built
    without their dict (`_lazy_maker`): normal attribute lookup must fail
    for every such name, so that it reaches `Module.__getattr__`, which
    builds the dict. A class attribute of the same name (a default the
    instance overrides) or a custom ``__getattr__``/``__getattribute__``
    rules that out; those specs build the dict eagerly."""
    if cls.__getattr__ is not Module.__getattr__:
        return False
    if cls.__getattribute__ is not object.__getattribute__:
        return False
    return not any(hasattr(cls, n) for n in names)


def _lazy_maker(spec: _Spec) -> Callable:
    """``make(children)`` for a spec whose instances defer their dict: the
    instance holds only its ``(children, spec)`` pair (what flatten returns)
    until an attribute is read (see `Module.__getattr__`, `_dict_of`). A
    jitted step's output modules are usually flattened again for the next
    step without any attribute being read, so they never build a dict."""
    cls, new, set_flat = spec.cls, _new_object, _set_flat

    def make(children):
        obj = new(cls)
        set_flat(obj, (children, spec))
        return obj

    return make


# Compiled constructors, one per attribute layout: a tuple of (name, is_child)
# in attribute order. The generated ``make(children)`` unpacks the children and
# writes ``__dict__`` in one dict display, with static values bound as closure
# variables of the spec it was made for.
_MAKER_FACTORIES: dict[tuple, Callable] = {}


def _maker_factory(layout: tuple) -> Callable:
    statics = [f"s{i}" for i, (_, child) in enumerate(layout) if not child]
    childs = [f"c{i}" for i, (_, child) in enumerate(layout) if child]
    unpack = f"        {', '.join(childs)}, = children\n" if childs else ""
    if statics:
        # copying a template that holds the static values (a C-level copy of
        # the whole table) and storing the children into it is about twice as
        # fast as a dict display of every attribute
        template = ", ".join(
            f"{name!r}: {'None' if child else f's{i}'}"
            for i, (name, child) in enumerate(layout)
        )
        stores = "".join(
            f"        d[{name!r}] = c{i}\n"
            for i, (name, child) in enumerate(layout)
            if child
        )
        prologue = f"    template = {{{template}}}\n"
        body = f"{unpack}        d = template.copy()\n{stores}"
    else:
        items = ", ".join(f"{name!r}: c{i}" for i, (name, _) in enumerate(layout))
        prologue = ""
        body = f"{unpack}        d = {{{items}}}\n"
    src = (
        f"def factory({', '.join(['spec', *statics])}):\n"
        "    cls = spec.cls\n"
        f"{prologue}"
        "    def make(children):\n"
        "        obj = new(cls)\n"
        f"{body}"
        "        set_dict(obj, d)\n"
        "        set_flat(obj, (children, spec))\n"
        "        return obj\n"
        "    return make\n"
    )
    namespace = {"new": _new_object, "set_dict": _set_dict, "set_flat": _set_flat}
    exec(src, namespace)  # noqa: S102 - generated from attribute names (repr'd)
    return namespace["factory"]


def _format_value(value: Any) -> str:
    if _is_array(value):
        dtype = getattr(value, "dtype", None)
        return f"{dtype}{list(np.shape(value))}"
    if isinstance(value, Module):
        return type(value).__name__
    if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.isclass(value):
        return getattr(value, "__name__", repr(value))
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    if isinstance(value, (list, tuple, dict)):
        # a container of arrays (a template tree, say): shapes, not values
        leaves = jax.tree_util.tree_leaves(value, is_leaf=is_module)
        if any(_is_dynamic(x) for x in leaves):
            return repr(
                jax.tree_util.tree_map(
                    lambda x: _Text(_format_value(x)) if _is_dynamic(x) else x,
                    value,
                    is_leaf=is_module,
                )
            )
    return repr(value)


class _Text(str):
    """A string whose repr is itself (a leaf in a formatted container)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


_SKIP_REPR_ARGS = frozenset({"self", "rng_key"})
_SCALAR_REPR = (str, int, float, bool)


class _Binder:
    """How one class's constructor arguments map to its parameter names.

    ``bind(args, kwargs)`` gives ``[(name, value), ...]`` in signature order,
    defaults applied, exactly as ``inspect.Signature.bind`` +
    ``apply_defaults`` would (minus ``*args``/``**kwargs`` parameters), or None
    when the call is one the fast path does not handle (then the signature
    binds it). Built once per class: construction is eager and runs this once
    per module.
    """

    __slots__ = (
        "sig",
        "positional",
        "names",
        "name_set",
        "defaults",
        "required",
        "fast",
    )

    def __init__(self, sig: inspect.Signature | None):
        self.sig = sig
        self.positional: tuple = ()
        self.names: tuple = ()
        self.name_set: frozenset = frozenset()
        self.defaults: dict = {}
        self.required: frozenset = frozenset()
        self.fast = False
        if sig is None:
            return
        params = list(sig.parameters.values())[1:]  # drop ``self``
        kinds = {p.kind for p in params}
        if inspect.Parameter.POSITIONAL_ONLY in kinds:
            return  # rare; leave it to ``Signature.bind``
        self.positional = tuple(
            p.name for p in params if p.kind == p.POSITIONAL_OR_KEYWORD
        )
        named = [
            p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        self.names = tuple(p.name for p in named)
        self.name_set = frozenset(self.names)
        self.defaults = {p.name: p.default for p in named if p.default is not p.empty}
        self.required = frozenset(p.name for p in named if p.default is p.empty)
        self.fast = inspect.Parameter.VAR_KEYWORD not in kinds

    def bind(self, args: tuple, kwargs: dict) -> list | None:
        if self.fast and len(args) <= len(self.positional):
            values = dict(zip(self.positional, args))
            for name, value in kwargs.items():
                if name in values:
                    return None  # given twice: the signature raises
                values[name] = value
            if self.name_set.issuperset(kwargs) and self.required.issubset(values):
                defaults = self.defaults
                return [
                    (n, values[n] if n in values else defaults[n]) for n in self.names
                ]
            return None
        if self.sig is None:
            return None
        try:
            bound = self.sig.bind(None, *args, **kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        params = self.sig.parameters
        return [
            (name, value)
            for name, value in bound.arguments.items()
            if params[name].kind
            not in (params[name].VAR_POSITIONAL, params[name].VAR_KEYWORD)
        ]


_BINDERS: dict[type, _Binder] = {}
_BINDERS_LOCK = threading.Lock()


def _binder(cls: type) -> _Binder:
    binder = _BINDERS.get(cls)
    if binder is None:
        try:
            sig = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            sig = None
        binder = _Binder(sig)
        with _BINDERS_LOCK:
            _BINDERS[cls] = binder
    return binder


def _constructor_repr(cls: type, args: tuple, kwargs: dict) -> str:
    bound = _binder(cls).bind(args, kwargs)
    parts = []
    if bound is not None:
        for pname, value in bound:
            if value is None or pname in _SKIP_REPR_ARGS:
                continue
            if type(value) in _SCALAR_REPR:
                parts.append(f"{pname}={value!r}")
            else:
                parts.append(f"{pname}={_format_value(value)}")
    if not parts:
        return cls.__name__
    return f"{cls.__name__}({', '.join(parts)})"


_construction = threading.local()


def constructing() -> bool:
    """True while some module's ``__init__`` runs in this thread."""
    return getattr(_construction, "depth", 0) > 0


class _ModuleMeta(type):
    """Runs ``__init__`` in an open (mutable) state, then freezes the module."""

    @property
    def __signature__(cls) -> inspect.Signature:
        # ``inspect.signature(SomeModule)`` (help(), IDEs, the API reference)
        # would otherwise show this metaclass's ``__call__(*args, **kwargs)``
        try:
            try:  # annotations evaluated, as inspect gives for functions
                sig = inspect.signature(cls.__init__, eval_str=True)
            except NameError:  # a name imported only for type checkers
                sig = inspect.signature(cls.__init__)
        except (TypeError, ValueError):  # no signature: let inspect fall back
            raise AttributeError("__signature__") from None
        return sig.replace(parameters=list(sig.parameters.values())[1:])

    def __call__(cls, *args, **kwargs):
        rng_key = kwargs.get("rng_key")
        if rng_key is not None:
            check_rng_key(rng_key, cls.__name__)
        obj = cls.__new__(cls)
        _set_session(obj, _INIT)
        _set_spec(obj, None)
        d = _get_raw_dict(obj)
        d["_training"] = True
        d["name"] = None
        depth = getattr(_construction, "depth", 0)
        _construction.depth = depth + 1
        try:
            obj.__init__(*args, **kwargs)
        finally:
            _construction.depth = depth
        for name, value in d.items():
            frozen = freeze(value)
            if frozen is not value:
                d[name] = frozen
        d["_pax_repr"] = _constructor_repr(cls, args, kwargs)
        _check_declared_parameters(obj)
        _set_spec(obj, _Spec.build(cls, d))
        _set_session(obj, None)
        return obj


def _check_declared_parameters(module: Module) -> None:
    names = getattr(type(module).parameters, "_pax_trainable", _ALL)
    if names is _ALL or names is None:
        return
    missing = [n for n in names if n not in module.__dict__]
    if missing:
        raise ValueError(
            f"{type(module).__name__} declares trainable parameters "
            f"{', '.join(map(repr, names))} with `pax.parameters_method`, but "
            f"`__init__` did not set {', '.join(f'`{n}`' for n in missing)}. "
            "Assign every declared attribute in `__init__` (use `None` for an "
            "unused one, e.g. `self.bias = None`)."
        )


# ---------------------------------------------------------------------------
# trainable-parameter selection
# ---------------------------------------------------------------------------


def _select(value: Any, keep_arrays: bool) -> Any:
    """Keep submodules' own parameters, keep or drop (None) the other leaves.

    A child attribute holds only arrays and modules, but its leaves need not be
    arrays: after ``jax.eval_shape`` they are ``ShapeDtypeStruct``s, after a
    ``tree_map`` anything. Every non-module leaf counts as an array here.
    """
    if isinstance(value, Module):
        return value.parameters()

    def leaf(x):
        if isinstance(x, Module):
            return x.parameters()
        return x if keep_arrays else None

    return jax.tree_util.tree_map(leaf, value, is_leaf=is_module)


def _parameters_impl(module: T, trainable: Any) -> T:
    spec = _get_spec(module)
    frozen = module.__dict__.get("_pax_frozen", False)
    d = dict(module.__dict__)
    for name in spec.child_names:
        keep = not frozen and (trainable is _ALL or name in trainable)
        d[name] = _select(d[name], keep)
    return _new_like(module, d, spec)


def parameters_method(*trainable: str) -> Callable[[Module], Module]:
    """Declare which attributes of a module class are trainable parameters.

    Use it as a class attribute. The named attributes (arrays or containers of
    arrays) are trainable; every other array attribute of the class is
    non-trainable state. Submodules always decide for themselves.

    Args:
      *trainable: attribute names, each assigned in ``__init__``.

    Returns:
      A ``parameters`` method: ``module.parameters()`` returns a module of the
      same structure whose non-trainable leaves are ``None``.

    Example:

    >>> import jax.numpy as jnp, pax
    >>> class Scale(pax.Module):
    ...     parameters = pax.parameters_method("scale")
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = jnp.ones((2,))
    ...         self.calls = jnp.array(0)      # state, not trainable
    >>> p = Scale().parameters()
    >>> p.scale, p.calls
    (Array([1., 1.], dtype=float32), None)
    """
    for name in trainable:
        if not isinstance(name, str):
            raise TypeError(
                f"pax.parameters_method expects attribute names (str), got {name!r}"
            )
    names = frozenset(trainable)

    def parameters(self):
        return _parameters_impl(self, names)

    parameters._pax_trainable = tuple(trainable)
    parameters.__doc__ = (
        f"Trainable parameters ({', '.join(trainable) or 'none of its own'}); "
        "other leaves are None."
    )
    return parameters


# ---------------------------------------------------------------------------
# low-level helpers (slot access; the only code that bypasses immutability)
# ---------------------------------------------------------------------------


def _new_like(module: T, d: dict, spec: _Spec | None = None) -> T:
    """A new immutable instance of ``type(module)`` with ``__dict__ = d``.

    ``spec`` must describe ``d``; if None it is rebuilt from scratch.
    """
    obj = object.__new__(type(module))
    _set_dict(obj, d)
    _set_spec(obj, spec if spec is not None else _Spec.build(type(module), d))
    _set_session(obj, None)
    return obj


def _children_values(module: Module) -> list:
    d = module.__dict__
    return [d[n] for n in _get_spec(module).child_names]


def _iter_submodules(value: Any) -> Iterator[Module]:
    """Direct submodules inside an attribute value."""
    if isinstance(value, Module):
        yield value
        return
    if _is_array(value):
        return
    for x in jax.tree_util.tree_leaves(value, is_leaf=is_module):
        if isinstance(x, Module):
            yield x


def _map_modules(module: T, fn: Callable[[Module], Module]) -> T:
    """Rebuild ``module`` bottom-up, applying ``fn`` to every module."""
    spec = _get_spec(module)
    d = dict(module.__dict__)

    def sub(x):
        return _map_modules(x, fn) if isinstance(x, Module) else x

    for name in spec.child_names:
        value = d[name]
        if isinstance(value, Module):
            new = _map_modules(value, fn)
        elif _is_array(value):
            continue
        else:
            new = jax.tree_util.tree_map(sub, value, is_leaf=is_module)
        d[name] = new
    return fn(_new_like(module, d, spec))


class _ModuleBase:
    """The storage of a module: its attribute dict and the two core slots.

    ``Module`` replaces the ``__dict__`` attribute by a property that builds
    a deferred dict first (see `_dict_of`), so the raw slot descriptors are
    read from this class (`_get_raw_dict`, `_set_dict`, `_get_flat`, ...).
    """

    __slots__ = ("__dict__", "__weakref__", "_pax_flat", "_pax_session")


class Module(_ModuleBase, metaclass=_ModuleMeta):
    """Base class of every PAX module: a Python object that is a pytree.

    Create parameters in ``__init__`` from explicit sizes and an rng key. After
    ``__init__`` the module is immutable: change it functionally
    (:meth:`replace`, :meth:`train`, ...) or inside :func:`pax.pure`.

    Children and static data are told apart like this:

    * arrays, submodules and lists/tuples/dicts holding them are pytree
      children (leaves that ``jax.jit``/``jax.grad`` see);
    * everything else (ints, strings, functions, dtypes) is static aux data.

    Which attribute is which is decided once, when ``__init__`` returns.

    Trainable vs non-trainable: declare trainable attributes with
    ``parameters = pax.parameters_method("weight", ...)``; other arrays are
    state (running statistics, rng keys, counters).

    Mixed precision: a class that sets ``keep_float32_under_mixed_precision =
    True`` (the normalization layers do) keeps float32 parameters, state and
    arithmetic under :func:`pax.apply_mp_policy`, submodules included, and
    casts its output to the policy's compute dtype. Subclasses inherit the
    setting; set it to ``False`` in a subclass to opt back in to the policy.

    Sharing: a submodule or array stored under two attributes is two separate
    leaves after a flatten/unflatten round trip (every ``jax.jit`` call, every
    ``pax.pure`` call): updates to one are not seen through the other. Tie
    weights explicitly, by storing them once and reading them from there.

    Example:

    >>> import jax, jax.numpy as jnp, pax
    >>> class Affine(pax.Module):
    ...     parameters = pax.parameters_method("weight", "bias")
    ...     def __init__(self, in_dim, out_dim, *, rng_key=None):
    ...         super().__init__()
    ...         rng_key = pax.next_rng_key() if rng_key is None else rng_key
    ...         self.weight = jax.random.normal(rng_key, (in_dim, out_dim))
    ...         self.bias = jnp.zeros((out_dim,))
    ...     def __call__(self, x):            # x: [..., in_dim]
    ...         return x @ self.weight + self.bias  # [..., out_dim]
    >>> f = Affine(2, 3, rng_key=jax.random.PRNGKey(0))
    >>> f
    Affine(in_dim=2, out_dim=3)
    >>> jax.jit(lambda m, x: m(x))(f, jnp.ones((2,))).shape
    (3,)
    """

    __slots__ = ()

    #: Keep this class in float32 under :func:`pax.apply_mp_policy` (see above).
    keep_float32_under_mixed_precision: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_with_keys(
            cls, _flatten_with_keys, _unflatten, _flatten
        )

    def __init__(self, name: str | None = None):
        """Set the module's name (``None`` by default)."""
        self.name = name

    # -- the attribute dict, built on first use -----------------------------
    # An instance rebuilt by ``unflatten`` starts with no attribute dict, only
    # its ``(children, spec)`` pair (see `_lazy_maker`); the dict is built the
    # first time an attribute, ``__dict__`` or ``vars()`` is read.
    @property
    def __dict__(self) -> dict:  # type: ignore[override]
        return _dict_of(self)

    def __getattr__(self, name: str) -> Any:
        # Reached only when normal lookup failed: build the dict of an
        # instance rebuilt by ``unflatten`` and look again.
        if not _get_raw_dict(self):
            d = _dict_of(self)
            if name in d:
                return d[name]
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}",
            name=name,
            obj=self,
        )

    # -- immutability -----------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        try:
            session = _get_session(self)
        except AttributeError:  # never set: built by unflatten, immutable
            session = None
        if session is _INIT:
            _get_raw_dict(self)[name] = value
            return
        if session is None:
            raise MutationError(_MUTATION_MSG.format(name=name, module=repr(self)))
        spec = _get_flat(self)[1]
        kind = spec.kinds.get(name)
        d = _get_raw_dict(self)  # a session's copy always has its dict
        if type(value) is _ArrayImpl or isinstance(value, _ARRAY_TYPES):
            if type(value) is np.ndarray:
                value = freeze(value)
            if kind != _CHILD:
                spec = spec.with_attr(name, value)
            d[name] = value
            _set_flat(self, (spec.children(d), spec))
            if type(value) is not _ArrayImpl and isinstance(value, jax.Array):
                session.record_tracer(self, name, value)
            return
        if not (kind == _CHILD and isinstance(value, Module)):
            value = freeze(value)
            spec = spec.with_attr(name, value)
        d[name] = value
        _set_flat(self, (spec.children(d), spec))
        # a tracer may hide anywhere inside (a container, a new submodule)
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
            if _is_tracer(leaf):
                session.record_tracer(self, name + jax.tree_util.keystr(path), leaf)

    def __delattr__(self, name: str) -> None:
        session = _session_of(self)
        if session is None:
            raise MutationError(_MUTATION_MSG.format(name=name, module=repr(self)))
        del self.__dict__[name]
        if session is not _INIT:
            _set_spec(self, _get_spec(self).without_attr(name))

    # -- inspection ---------------------------------------------------------
    @property
    def training(self) -> bool:
        """True in training mode (the default), False after :meth:`eval`."""
        return _dict_of(self)["_training"]

    def __repr__(self) -> str:
        return self.__dict__.get("_pax_repr", type(self).__name__)

    def submodules(self) -> list[Module]:
        """The direct submodules, in attribute order (containers included)."""
        out = []
        for value in _children_values(self):
            out.extend(_iter_submodules(value))
        return out

    def summary(self, *, table: bool = False) -> str:
        """A tree of the module and its submodules, one per line.

        With ``table=True``, the table view instead: ``pax.tabulate(self)``,
        one row per module with its parameter and state counts, bytes and
        dtypes, and totals (call :func:`pax.tabulate` with example inputs to
        add each module's output shapes).

        >>> import pax
        >>> print(pax.RngSeq(seed=0).summary())
        RngSeq(seed=0)
        >>> print(pax.RngSeq(seed=0).summary(table=True))
        path    module  params  state  bytes  dtypes
        ------  ------  ------  -----  -----  ------
        (root)  RngSeq       0      2    8 B  uint32
        ------  ------  ------  -----  -----  ------
        total                0      2    8 B
        """
        if table:
            from .._tabulate import tabulate

            return tabulate(self)
        lines = [self._summary_line()]
        subs = self.submodules()
        for i, sub in enumerate(subs):
            last = i == len(subs) - 1
            sub_lines = sub.summary().split("\n")
            lines.append(("└── " if last else "├── ") + sub_lines[0])
            pad = "    " if last else "│   "
            lines.extend(pad + line for line in sub_lines[1:])
        return "\n".join(lines)

    def _summary_line(self) -> str:
        return repr(self)

    def __treescope_repr__(self, path: str | None, subtree_renderer: Any) -> Any:
        """How treescope renders the module (the optional ``treescope``
        package calls this): constructor form, arrays summarised, each array
        attribute marked ``# trainable`` or ``# state`` (as a line comment:
        shown where the node is expanded; the HTML view also colours the
        names); see ``pax._treescope``.

        >>> import pax, treescope
        >>> print(treescope.render_to_text(pax.RngSeq(seed=0)))
        RngSeq(
          _rng_key=<jax.Array([0, 0], dtype=uint32)>,  # state
        )
        """
        from .._treescope import render

        return render(self, path, subtree_renderer)

    # -- trainable parameters ----------------------------------------------
    def parameters(self: T) -> T:
        """This module's trainable parameters, in a module of the same type.

        Non-trainable leaves are replaced by ``None`` (an empty pytree), so the
        result is fit for ``jax.grad`` and optax. A plain ``Module`` has no
        trainable arrays of its own (declare them with
        :func:`pax.parameters_method`); its submodules contribute theirs.
        """
        return _parameters_impl(self, frozenset())

    parameters._pax_trainable = ()

    def update_parameters(self: T, params: T) -> T:
        """Return a copy with trainable leaves taken from ``params``.

        ``params`` is what :meth:`parameters` returned (possibly transformed:
        gradients, optimizer updates); its ``None`` leaves keep this module's
        values. Raises ``ValueError`` naming the first differing path if the
        structures or shapes do not match.
        """
        leaves, treedef = jax.tree_util.tree_flatten(self)
        p_leaves, p_treedef = jax.tree_util.tree_flatten(params, is_leaf=_is_none)
        if treedef != p_treedef:
            _check_same_paths(self, params, "update_parameters")
        new = []
        for leaf, p in zip(leaves, p_leaves):
            if p is None:
                new.append(leaf)
                continue
            if np.shape(p) != np.shape(leaf):
                _raise_shape_mismatch(self, params, "update_parameters")
            new.append(p)
        return jax.tree_util.tree_unflatten(treedef, new)

    # -- functional updates -------------------------------------------------
    def replace(self: T, **attrs: Any) -> T:
        """A copy with the given attributes replaced.

        >>> import jax.numpy as jnp, pax
        >>> seq = pax.RngSeq(seed=0)
        >>> seq.replace(_rng_key=jnp.zeros((2,), jnp.uint32))._rng_key
        Array([0, 0], dtype=uint32)

        Raises:
          UnknownAttributeError: (a ``ValueError``) for a name the module does
            not have; use :meth:`set_attribute` to add one.
        """
        d = self.__dict__
        for name in attrs:
            if name not in d:
                known = ", ".join(n for n in d if not n.startswith("_pax"))
                raise UnknownAttributeError(
                    f"{type(self).__name__}.replace: unknown attribute `{name}` "
                    f"(attributes: {known}). Use `set_attribute` to add a new one."
                )
        return self._with_attrs(attrs)

    def set_attribute(self: T, name: str, value: Any) -> T:
        """A copy with attribute ``name`` set to ``value`` (may be new)."""
        return self._with_attrs({name: value})

    def _with_attrs(self: T, attrs: Mapping[str, Any]) -> T:
        spec = _get_spec(self)
        d = dict(self.__dict__)
        for name, value in attrs.items():
            value = freeze(value)
            kind = spec.kinds.get(name)
            if not (kind == _CHILD and _is_dynamic(value)):
                spec = spec.with_attr(name, value)
            d[name] = value
        return _new_like(self, d, spec)

    def replace_node(self: T, node: Any, value: Any) -> T:
        """A copy where ``node`` (a submodule or array, found by identity) is
        replaced by ``value``.

        Raises ``ValueError`` if ``node`` is not part of this module.
        """
        found = []

        def is_target(x):
            if x is node:
                found.append(x)
                return True
            return False

        out = jax.tree_util.tree_map(
            lambda x: value if x is node else x, self, is_leaf=is_target
        )
        if not found:
            raise ValueError(
                f"{type(self).__name__}.replace_node: the node to replace "
                f"({_format_value(node)}) is not part of this module."
            )
        return out

    def train(self: T) -> T:
        """A copy with this module and every submodule in training mode."""
        return _map_modules(self, lambda m: _with_static(m, "_training", True))

    def eval(self: T) -> T:
        """A copy with this module and every submodule in evaluation mode."""
        return _map_modules(self, lambda m: _with_static(m, "_training", False))

    def apply(self: T, fn: Callable[[Module], Module]) -> T:
        """Apply ``fn`` to every submodule, bottom-up, then to this module.

        ``fn`` receives a module whose submodules were already transformed and
        returns a module.
        """
        return _map_modules(self, fn)

    def map(self: T, fn: Callable[..., Any], *others: Any) -> T:
        """``jax.tree_util.tree_map(fn, self, *others)``."""
        return jax.tree_util.tree_map(fn, self, *others)

    def copy(self: T) -> T:
        """A new module of the same structure (arrays are shared: immutable)."""
        leaves, treedef = jax.tree_util.tree_flatten(self)
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def __copy__(self: T) -> T:
        return _new_like(self, dict(self.__dict__), _get_spec(self))

    def __deepcopy__(self: T, memo: dict) -> T:
        d = {k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()}
        return _new_like(self, d, _get_spec(self))

    # -- state dicts ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every leaf keyed by its key path, e.g. ``{'.layers[0].weight': w}``."""
        return {
            jax.tree_util.keystr(path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(self)[0]
        }

    def load_state_dict(self: T, state: Mapping[str, Any]) -> T:
        """A copy whose leaves come from ``state`` (as :meth:`state_dict` gives).

        Raises ``ValueError`` naming the first missing, extra, mis-shaped or
        mis-typed entry.
        """
        pairs, treedef = jax.tree_util.tree_flatten_with_path(self)
        keys = [jax.tree_util.keystr(p) for p, _ in pairs]
        name = type(self).__name__
        for key in keys:
            if key not in state:
                raise ValueError(f"{name}.load_state_dict: missing entry `{key}`.")
        extra = [k for k in state if k not in set(keys)]
        if extra:
            raise ValueError(
                f"{name}.load_state_dict: unexpected entry `{extra[0]}` "
                "(not a leaf of this module)."
            )
        leaves = []
        for key, (_, leaf) in zip(keys, pairs):
            value = state[key]
            if np.shape(value) != np.shape(leaf):
                raise ValueError(
                    f"{name}.load_state_dict: entry `{key}` has shape "
                    f"{np.shape(value)}, expected {np.shape(leaf)}."
                )
            want = getattr(leaf, "dtype", None)
            got = getattr(value, "dtype", None)
            if want is not None and got is not None and want != got:
                raise ValueError(
                    f"{name}.load_state_dict: entry `{key}` has dtype {got}, "
                    f"expected {want}."
                )
            leaves.append(jnp.asarray(value) if isinstance(leaf, jax.Array) else value)
        return jax.tree_util.tree_unflatten(treedef, leaves)


jax.tree_util.register_pytree_with_keys(
    Module, _flatten_with_keys, _unflatten, _flatten
)

_slot_flat = _ModuleBase.__dict__["_pax_flat"]
_slot_session = _ModuleBase.__dict__["_pax_session"]
_get_flat = _slot_flat.__get__
_set_flat = _slot_flat.__set__
_get_session = _slot_session.__get__
_set_session = _slot_session.__set__
_slot_dict = _ModuleBase.__dict__["__dict__"]
_get_raw_dict = _slot_dict.__get__
_set_dict = _slot_dict.__set__


def _dict_of(module: Module) -> dict:
    """The attribute dict of ``module``, built first if ``unflatten`` left it
    out (an empty raw dict and a ``(children, spec)`` pair)."""
    d = _get_raw_dict(module)
    if d:
        return d
    try:
        flat = _get_flat(module)
    except AttributeError:  # not built by PAX (object.__new__ alone)
        return d
    if flat is not None:
        built = flat[1].build_dict(flat[0])
        if built:
            _set_dict(module, built)
            return built
    return d


def _get_spec(module: Module) -> _Spec | None:
    """The module's spec (None while its ``__init__`` runs)."""
    flat = _get_flat(module)
    return None if flat is None else flat[1]


def _set_spec(module: Module, spec: _Spec | None) -> None:
    """Set the spec describing ``module.__dict__`` (set the dict first) and
    the cached ``(children, spec)`` pair that flatten returns."""
    _set_flat(module, None if spec is None else (spec.children(module.__dict__), spec))


def _refresh(module: Module) -> None:
    """Re-read the children after a write into ``__dict__`` (same spec)."""
    spec = _get_flat(module)[1]
    _set_flat(module, (spec.children(module.__dict__), spec))


def _session_of(module: Module) -> Any:
    """The module's session: None (immutable), `_INIT`, or a pure session."""
    try:
        return _get_session(module)
    except AttributeError:  # never set: built by unflatten, immutable
        return None


def _with_static(module: T, name: str, value: Any) -> T:
    d = module.__dict__
    if name in d and d[name] is value:
        return module
    spec = _get_spec(module).with_attr(name, value)
    new = dict(d)
    new[name] = value
    return _new_like(module, new, spec)


def _is_none(x: Any) -> bool:
    return x is None


def _paths(tree: Any, none_is_leaf: bool) -> list[str]:
    pairs = jax.tree_util.tree_flatten_with_path(
        tree, is_leaf=_is_none if none_is_leaf else None
    )[0]
    return [jax.tree_util.keystr(p) for p, _ in pairs]


def _check_same_paths(module: Module, params: Any, where: str) -> None:
    mine = _paths(module, none_is_leaf=False)
    theirs = _paths(params, none_is_leaf=True)
    if mine == theirs:
        return
    for i in range(max(len(mine), len(theirs))):
        a = mine[i] if i < len(mine) else "<nothing>"
        b = theirs[i] if i < len(theirs) else "<nothing>"
        if a != b:
            raise ValueError(
                f"{type(module).__name__}.{where}: structure mismatch at leaf "
                f"{i}: the module has `{a}`, the given tree has `{b}`. Pass what "
                "`module.parameters()` returns (or a tree of the same structure)."
            )


def _raise_shape_mismatch(module: Module, params: Any, where: str) -> None:
    mine = jax.tree_util.tree_flatten_with_path(module)[0]
    theirs = jax.tree_util.tree_flatten_with_path(params, is_leaf=_is_none)[0]
    for (path, a), (_, b) in zip(mine, theirs):
        if b is not None and np.shape(a) != np.shape(b):
            raise ValueError(
                f"{type(module).__name__}.{where}: leaf "
                f"`{jax.tree_util.keystr(path)}` has shape {np.shape(b)} in the "
                f"given tree, expected {np.shape(a)}."
            )


class ParameterModule(Module):
    """A module whose own array attributes are all trainable parameters.

    Submodules keep their own classification.

    >>> import jax.numpy as jnp, pax
    >>> class Weights(pax.ParameterModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = jnp.ones((2,))
    >>> Weights().parameters().w
    Array([1., 1.], dtype=float32)
    """

    def parameters(self: T) -> T:
        """Every array attribute of this module (submodules decide for theirs)."""
        return _parameters_impl(self, _ALL)

    parameters._pax_trainable = _ALL


# what a module's attribute holds as a child (set once ``Module`` exists)
_DYNAMIC_TYPES = (*_ARRAY_TYPES, Module)


class StateModule(Module):
    """A module whose own array attributes are all non-trainable state.

    Submodules keep their own classification.

    >>> import jax.numpy as jnp, pax
    >>> class Stats(pax.StateModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.mean = jnp.zeros((2,))
    >>> print(Stats().parameters().mean)
    None
    """

    def parameters(self: T) -> T:
        """No array attribute of this module is trainable."""
        return _parameters_impl(self, frozenset())

    parameters._pax_trainable = ()

"""``pax.hk.Module``: Haiku's module class, its naming rules and interceptors.

A module gets its name where it is constructed: the snake-case class name (or
``name=``), made unique within the enclosing scope (``linear``, ``linear_1``),
prefixed by the parent module and, when the parent is not in ``__call__``, by
the parent's method (``parent/~/child`` from ``__init__``, ``parent/~m/child``
from method ``m``). Every method call opens a fresh naming scope, so calling a
module twice reuses its parameters.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import pprint
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, TypeVar

import jax

from . import _base, config

T = TypeVar("T")

_FORCE_PREFIX = "FORCE:"
_NO_SCOPE = "_pax_hk_transparent"
_NAME_LIKE = "_pax_hk_name_like"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMBERED = re.compile(r"^(.*)_(0|[1-9][0-9]*)$")


def camel_to_snake(name: str) -> str:
    """Haiku's module-name rule: ``MobileNetV1`` -> ``mobile_net_v1``.

    An underscore goes before a capital that follows a lowercase letter or a
    digit, and before a capital (not the first letter) that starts a
    lowercase run, so acronyms stay together (``MLP`` -> ``mlp``,
    ``Conv2DLSTM`` -> ``conv2_dlstm``).

    >>> camel_to_snake("ResNet18"), camel_to_snake("Conv2DLSTM")
    ('res_net18', 'conv2_dlstm')
    """
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0:
            prev = name[i - 1]
            after_lower = prev.islower() or prev.isdigit()
            starts_word = i + 1 < len(name) and name[i + 1].islower()
            if after_lower or starts_word:
                out.append("_")
        out.append(ch)
    return "".join(out).lower()


def _split_number(name: str) -> tuple[str, int | None]:
    match = _NUMBERED.match(name)
    return (match.group(1), int(match.group(2))) if match else (name, None)


def _check_name(component: str, full: str, allow_tilde: bool = False) -> None:
    if allow_tilde and component.startswith("~"):
        component = component[1:]
        if not component:
            return
    if not _IDENTIFIER.match(component):
        raise ValueError(
            f"'{full}' is not a valid module name (must be a valid Python identifier)"
        )


def _reserve(frame: _base.Frame, name: str, *, check_unique: bool) -> None:
    used = frame.used_names_stack[-2]
    if check_unique and name in used:
        raise ValueError(f"Module name '{name}' is not unique.")
    used.add(name)
    base, number = _split_number(name)
    counters = frame.counter_stack[-2]
    counters[base] = max(counters[base], (number or 0) + 1)


def _unique_name(frame: _base.Frame, name: str) -> str:
    """The full, unique name of a module being constructed (see module doc)."""
    if len(frame.module_stack) > 1:
        parent = frame.module_stack[-2]
        if parent.method_name == "__init__":
            name = f"~/{name}"
        elif parent.method_name != "__call__":
            name = f"~{parent.method_name}/{name}"
        name = f"{_base.module_name_of(parent.module)}/{name}"
    base, number = _split_number(name)
    explicit = number is not None
    if number is None:
        number = frame.counter_stack[-2][base]
    name = f"{base}_{number}" if explicit or number else base
    _reserve(frame, name, check_unique=True)
    return name


# ---------------------------------------------------------------------------
# method interceptors and hooks
# ---------------------------------------------------------------------------


class MethodContext(NamedTuple):
    """What an interceptor sees: the module, the method name, the unwrapped
    bound method (``orig_method``) and the class that defined it."""

    module: Any
    method_name: str
    orig_method: Callable[..., Any]
    orig_class: type


_interceptors: list = []
_method_hooks: list = []


@contextlib.contextmanager
def intercept_methods(interceptor):
    """Run ``interceptor(next_fn, args, kwargs, context)`` around every module
    method call while active (outermost interceptor first).

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> seen = []
    >>> def log(next_fn, args, kwargs, context):
    ...     seen.append((type(context.module).__name__, context.method_name))
    ...     return next_fn(*args, **kwargs)
    >>> class Double(hk.Module):
    ...     def __call__(self, x):
    ...         return 2 * x
    >>> def f(x):
    ...     with hk.intercept_methods(log):
    ...         return Double()(x)
    >>> _ = hk.transform(f).init(None, jnp.ones((1, 3)))
    >>> seen
    [('Double', '__init__'), ('Double', '__call__')]
    """
    _interceptors.append(interceptor)
    try:
        yield
    finally:
        _interceptors.pop()


@contextlib.contextmanager
def hook_methods(hook):
    """``hook(module, method_name)`` is a context manager entered around every
    module method call while active."""
    _method_hooks.append(hook)
    try:
        yield
    finally:
        _method_hooks.pop()


def _run_interceptors(
    bound: Callable[..., Any],
    method_name: str,
    module: Any,
    orig_class: type,
    args: tuple,
    kwargs: dict,
) -> Any:
    """Call ``bound`` through the active interceptors, outermost first."""
    if not _interceptors:
        return bound(*args, **kwargs)
    context = MethodContext(module, method_name, bound, orig_class)
    remaining = list(_interceptors)

    def next_fn(*a, **k):
        if remaining:
            return remaining.pop(0)(next_fn, a, k, context)
        return bound(*a, **k)

    return next_fn(*args, **kwargs)


def _wrap_method(
    method_name: str, method: Callable, get_class: Callable[[], type]
) -> Callable:
    """``method`` running in the module's naming scope, through method hooks
    and interceptors, and under a JAX name scope (so profiles and HLO carry
    module names, as with Haiku)."""
    if getattr(method, _NO_SCOPE, False):
        return method
    scope_name = getattr(method, _NAME_LIKE, method_name)

    @functools.wraps(method)
    def wrapped(self, *args, **kwargs):
        if not _base.frame_stack():
            raise ValueError(
                f"{type(self).__name__}.{method_name}: all `hk.Module`s must be "
                "initialized inside an `hk.transform` (and called inside one: "
                "create and call them in the function you transform, then call "
                "`init`/`apply` of the result)."
            )
        frame = _base.current_frame()
        with contextlib.ExitStack() as stack:
            stack.enter_context(frame.module(_base.ModuleState(self, scope_name)))
            for hook in list(_method_hooks):
                stack.enter_context(hook(self, method_name))
            bound = functools.partial(method, self)
            orig_class = get_class()

            def run(*a, **k):
                return _run_interceptors(bound, method_name, self, orig_class, a, k)

            name = getattr(self, "module_name", None)
            if name:
                run = jax.named_call(run, name=name.rsplit("/", 1)[-1])
                if method_name != "__call__":
                    run = jax.named_call(run, name=method_name)
            out = run(*args, **kwargs)
            if name is None:
                name = getattr(self, "module_name", None)
            if name is not None:
                for state in frame.module_stack:
                    if state.module is not self:
                        state.module._submodules.add(name)
        return out

    return wrapped


# ---------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------


def _equal_or_false(a: Any, b: Any) -> bool:
    """``a == b`` as a bool; ``False`` when comparing fails or is ambiguous."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - e.g. arrays of more than one element
        return False


def _indent(amount: int, text: str) -> str:
    return "\n".join(" " * amount + line for line in text.splitlines())


def _named_repr(name: str, value: Any) -> str:
    try:
        text = pprint.pformat(value)
    except TypeError:
        text = repr(value)
    return name + (_indent(len(name), text).strip() if name else text)


def auto_repr(cls: type, args: tuple, kwargs: dict) -> str:
    """``cls(...)`` written as a call with the given arguments, as Haiku does.

    Named arguments of ``__init__`` are shown as ``name=value`` (in signature
    order, skipping those equal to their default), then extra positionals, then
    the remaining keywords (keyword-only ones included, even when default).
    Longer than 80 characters: one argument per line.
    """
    spec = inspect.getfullargspec(cls.__init__)
    bound = inspect.getcallargs(cls.__init__, None, *args, **kwargs)
    named = spec.args[1 : len(args) + 1]
    named += [n for n in spec.args if n in kwargs]
    defaults = dict(zip(spec.args[::-1], (spec.defaults or ())[::-1]))
    items = [
        (f"{n}=", bound[n])
        for n in named
        if not (n in defaults and _equal_or_false(bound[n], defaults[n]))
    ]
    items += [("", a) for a in args[len(spec.args) - 1 :]]
    items += [(f"{n}=", v) for n, v in kwargs.items() if n not in spec.args]
    line = f"{cls.__name__}({', '.join(n + repr(v) for n, v in items)})"
    if len(line) <= 80:
        return line
    body = ",\n".join(_named_repr(n, v) for n, v in items)
    return f"{cls.__name__}(\n{_indent(4, body)},\n)"


class ModuleMetaclass(type(Protocol)):
    """Wraps every method (``__call__`` and properties included, other dunders
    excluded) so it opens the module's naming scope and runs method
    interceptors.

    Like Haiku's, it derives from the metaclass of ``typing.Protocol`` (an
    ``abc.ABCMeta``), so modules may also be abstract base classes or
    protocols.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]):
        cell: list[type] = []

        def defining_class() -> type:
            return cell[0]

        method_names = []
        for key, value in list(namespace.items()):
            if key == "module_name" or (key.startswith("__") and key != "__call__"):
                continue
            if isinstance(value, property):
                namespace[key] = property(
                    *(
                        None if f is None else _wrap_method(key, f, defining_class)
                        for f in (value.fget, value.fset, value.fdel)
                    ),
                    doc=value.__doc__,
                )
            elif inspect.isfunction(value):
                method_names.append(key)
        # a module is never itself a Protocol class unless it says so
        namespace.setdefault("_is_protocol", False)
        namespace.setdefault("__repr__", lambda self: self._auto_repr)
        cls = super().__new__(mcs, name, bases, namespace)
        cell.append(cls)
        for key in method_names:
            setattr(cls, key, _wrap_method(key, cls.__dict__[key], defining_class))
        return cls

    def __call__(cls, *args, **kwargs):
        module = cls.__new__(cls, *args, **kwargs)
        if config.get_config().module_auto_repr and getattr(cls, "AUTO_REPR", True):
            text = auto_repr(cls, args, kwargs)
        else:
            text = object.__repr__(module)
        object.__setattr__(module, "_auto_repr", text)
        init = _wrap_method("__init__", cls.__init__, lambda: cls)
        init(module, *args, **kwargs)
        if not hasattr(module, "module_name"):
            raise ValueError(
                f"{cls.__name__}: constructing an hk.Module without calling the "
                "super constructor is not supported. Add "
                f"`super().__init__(name=name)` as the first line of "
                f"{cls.__name__}.__init__."
            )
        return module

    @property
    def __signature__(cls) -> inspect.Signature:
        """The constructor's signature without ``self``."""
        sig = inspect.signature(cls.__init__)
        return sig.replace(parameters=tuple(sig.parameters.values())[1:])


class Module(metaclass=ModuleMetaclass):
    """Base class of Haiku-style modules (``import pax.hk as hk``).

    Subclasses call ``super().__init__(name=name)`` first, then create
    submodules; parameters come from ``hk.get_parameter`` in any method.
    Modules must be created and called inside a transformed function.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> class Scale(hk.Module):
    ...     def __call__(self, x):
    ...         s = hk.get_parameter("s", x.shape[-1:], init=jnp.ones)
    ...         return x * s
    >>> f = hk.transform(lambda x: Scale()(x))
    >>> f.init(None, jnp.ones(3))
    {'scale': {'s': Array([1., 1., 1.], dtype=float32)}}
    """

    def __init__(self, name: str | None = None):
        if name is None:
            existing = getattr(self, "name", None)
            name = existing if isinstance(existing, str) else None
        if name is None:
            name = camel_to_snake(type(self).__name__)
        frame = _base.assert_context(f"{type(self).__name__}(...)")
        if name.startswith(_FORCE_PREFIX):
            name = name[len(_FORCE_PREFIX) :]
            for part in name.split("/"):
                _check_name(part, name, allow_tilde=True)
            _reserve(frame, name, check_unique=False)
        else:
            _check_name(name, name)
            name = _unique_name(frame, name)
        self._submodules: set[str] = set()
        self.module_name = name
        self.name = name.split("/")[-1]
        self._creation_frame_id = frame.frame_id

    __post_init__ = __init__

    def params_dict(self) -> Mapping[str, Any]:
        """This module's and its submodules' parameters, keyed by full name
        (``"linear/w"``)."""
        return _params_or_state(self, "params")

    def state_dict(self) -> Mapping[str, Any]:
        """This module's and its submodules' state, keyed by full name."""
        return _params_or_state(self, "state")


def _params_or_state(module: Module, which: str) -> dict:
    frame = _base.assert_context(f"Module.{which}_dict")
    prefix = module.module_name
    out = {}
    for owner, values in getattr(frame, which).items():
        if (
            owner == prefix
            or owner.startswith(prefix + "/")
            or owner in module._submodules
        ):
            for name, value in values.items():
                out[f"{owner}/{name}"] = value.current if which == "state" else value
    return out


def transparent(method: T) -> T:
    """Mark a method so it opens no name scope: what it creates is named as if
    created by its caller."""
    setattr(method, _NO_SCOPE, True)
    return method


def name_like(method_name: str) -> Callable[[T], T]:
    """Name submodules created in the decorated method as if it were
    ``method_name`` (keeps checkpoint names when refactoring)."""

    def decorator(method: T) -> T:
        setattr(method, _NAME_LIKE, method_name)
        return method

    return decorator


def force_name(name: str) -> str:
    """A ``name=`` value that makes a module take exactly ``name`` (no scope
    prefix, no uniquing): two modules forced to one name share parameters."""
    return f"{_FORCE_PREFIX}{name}"


class NameScopeModule(Module):
    """The module `name_scope` enters (one per path component); interceptors
    recognise it by this class name, as in Haiku."""


class _NameScope:
    def __init__(self, name: str, method_name: str):
        if not name or name[0] == "/":
            raise ValueError("Name scopes must not start with /")
        frame = _base.current_frame()
        parts = [name] if name.startswith(_FORCE_PREFIX) else name.split("/")
        module = None
        with contextlib.ExitStack() as stack:
            for part in parts:
                module = NameScopeModule(name=part)
                stack.enter_context(
                    frame.module(_base.ModuleState(module, method_name))
                )
        self._module, self._method = module, method_name
        self._stack: contextlib.ExitStack | None = contextlib.ExitStack()
        self._entered = False

    def __enter__(self):
        if self._stack is None:
            raise ValueError("name_scope is not reusable")
        if self._entered:
            raise ValueError("name_scope is not reentrant")
        self._entered = True
        frame = _base.current_frame()
        self._stack.enter_context(
            frame.module(_base.ModuleState(self._module, self._method))
        )

    def __exit__(self, *exc):
        try:
            return self._stack.__exit__(*exc)
        finally:
            self._entered = False
            self._stack = None


def name_scope(name: str, *, method_name: str = "__call__"):
    """Prefix modules, parameters and state created inside with ``name``.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> def f():
    ...     with hk.name_scope("block"):
    ...         return hk.get_parameter("w", [], init=jnp.ones)
    >>> list(hk.transform(f).init(None))
    ['block']
    """
    _base.assert_context("name_scope")
    return _NameScope(name, method_name)


def to_module(f: Callable) -> type[Module]:
    """Turn a function into a module class: ``to_module(f)(name="x")(...)``
    runs ``f`` inside module ``x``'s scope (default name: ``f.__name__``).

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> def bias(x):
    ...     return x + hk.get_parameter("b", x.shape[-1:], init=jnp.zeros)
    >>> Bias = hk.to_module(bias)
    >>> list(hk.transform(lambda x: Bias(name="my_bias")(x)).init(None, jnp.ones(2)))
    ['my_bias']
    """

    class ToModuleWrapper(Module):
        def __init__(self, name: str | None = None):
            if name is None:
                name = f.__name__
            elif not isinstance(name, str):
                raise TypeError(
                    "Expected a string name as the first argument to the module "
                    "constructor (hk.to_module returns a class: create the module, "
                    f"`mod = cls(name=...)`, then call it), got: {name}"
                )
            super().__init__(name=name)

        def __call__(self, *args, **kwargs):
            return f(*args, **kwargs)

    doc = getattr(f, "__doc__", None)
    ToModuleWrapper.__doc__ = doc or "Module produced by `hk.to_module`."
    functools.update_wrapper(ToModuleWrapper.__call__, f)
    return ToModuleWrapper

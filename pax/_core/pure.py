"""``pax.pure``: run a function on private, mutable copies of its modules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import numpy as np

from .errors import LeakedTracerError
from .frozen import FrozenDict, FrozenList
from .module import (
    Module,
    _ArrayImpl,
    _get_flat,
    _get_raw_dict,
    _new_object,
    _set_dict,
    _set_flat,
    _set_session,
    is_module,
)

__all__ = ["pure", "purecall", "module_and_value"]

# leaves that hold no module (returned as they are by `_Session.copy`)
_LEAF_TYPES = (jax.Array, np.ndarray, np.generic, str, int, float, complex, bool)

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=Module)


class _Session:
    """Bookkeeping for one call of a pure function.

    The session object itself is stored in each copied module's session slot:
    that slot is what makes the copy mutable. Copies belong to exactly one call,
    so no lock is needed and calls in several threads never interfere.
    """

    __slots__ = ("modules", "tracers")

    def __init__(self):
        self.modules: list[Module] = []
        self.tracers: list[tuple[Module, str, Any]] | None = None

    def record_tracer(self, module: Module, name: str, value: Any) -> None:
        if self.tracers is None:
            self.tracers = []
        self.tracers.append((module, name, value))

    def copy(self, tree: Any) -> Any:
        """Copy every module in ``tree`` (at any depth) into this session.

        Arrays are shared (they are immutable); modules and the containers
        holding them are rebuilt, and each module copy is marked mutable.
        Plain tuples, lists and dicts (frozen or not) are walked directly;
        other pytrees go through ``tree_map``.
        """
        t = type(tree)
        if t is _ArrayImpl or tree is None:
            return tree
        if isinstance(tree, Module):
            return self._copy_module(tree)
        if t is tuple or t is list or t is FrozenList:
            items = [self.copy(x) for x in tree]
            if all(a is b for a, b in zip(items, tree)):
                return tree
            return t(items)
        if t is dict or t is FrozenDict:
            items = {k: self.copy(v) for k, v in tree.items()}
            if all(items[k] is v for k, v in tree.items()):
                return tree
            return t(items)
        if isinstance(tree, _LEAF_TYPES):
            return tree
        return jax.tree_util.tree_map(self._copy_leaf, tree, is_leaf=is_module)

    def _copy_leaf(self, x: Any) -> Any:
        return self._copy_module(x) if isinstance(x, Module) else x

    def _copy_module(self, module: Module) -> Module:
        flat = _get_flat(module)
        spec = flat[1]
        d = _get_raw_dict(module)
        # a module rebuilt by unflatten may have no dict yet: build the copy's
        # from its (children, spec) pair and leave the original as it is
        d = d.copy() if d else spec.build_dict(flat[0])
        changed = False
        for name in spec.child_names:
            value = d[name]
            if type(value) is not _ArrayImpl:
                new = self.copy(value)
                if new is not value:
                    d[name] = new
                    changed = True
        obj = _new_object(type(module))
        _set_dict(obj, d)
        _set_flat(obj, (spec.children(d), spec) if changed else flat)
        _set_session(obj, self)
        self.modules.append(obj)
        return obj

    def close(self) -> None:
        for m in self.modules:
            _set_session(m, None)

    def check_tracers(self) -> None:
        for module, name, value in self.tracers:
            try:
                jax.lax.stop_gradient(value)
            except jax.errors.UnexpectedTracerError:
                raise LeakedTracerError(
                    f"pax.pure: attribute `{name}` of {type(module).__name__} holds "
                    "a JAX tracer from a transformation that has already "
                    "finished (a jax.jit/jax.grad/jax.vmap/... run inside the "
                    "pure function). Return the value from the transformed "
                    "function and assign it outside, or apply the "
                    "transformation to the whole pure function instead."
                ) from None


def pure(func: F) -> F:
    """Make ``func`` pure: it gets mutable copies of the modules it is given.

    Every module in the arguments (at any depth) is copied, and the copies may
    be mutated while ``func`` runs. Nothing leaks out except what ``func``
    returns: the caller's modules are untouched, and returned copies are
    immutable again. Works under ``jax.jit``, ``jax.grad``, ``jax.vmap``,
    ``jax.lax.scan`` and in several threads at once.

    Example:

    >>> import jax.numpy as jnp, pax
    >>> class Counter(pax.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.count = jnp.array(0)
    ...     def __call__(self):
    ...         self.count = self.count + 1
    ...         return self.count
    >>> @pax.pure
    ... def step(counter):
    ...     value = counter()
    ...     return counter, value
    >>> counter = Counter()
    >>> new_counter, value = step(counter)
    >>> int(counter.count), int(new_counter.count), int(value)
    (0, 1, 1)

    Raises:
      LeakedTracerError: a module attribute was assigned a tracer of a JAX
        transformation run (and finished) inside ``func``.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        session = _Session()
        args, kwargs = session.copy((args, kwargs))
        try:
            out = func(*args, **kwargs)
        finally:
            session.close()
        if session.tracers:
            session.check_tracers()
        return out

    return wrapper


@pure
def _call_on_copy(module, method, args, kwargs):
    if method is None:
        return module, module(*args, **kwargs)
    return module, method(module, *args, **kwargs)


def purecall(module: M, *args: Any, **kwargs: Any) -> tuple[M, Any]:
    """Call ``module(*args, **kwargs)`` on a copy; return ``(new_module, output)``.

    This is how a stateful call (BatchNorm in training mode, Dropout, a
    counter) is made: the returned module carries the updated state.

    >>> import jax.numpy as jnp, pax
    >>> class Counter(pax.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.count = jnp.array(0)
    ...     def __call__(self, step):
    ...         self.count = self.count + step
    ...         return self.count * 10
    >>> counter, out = pax.purecall(Counter(), 2)
    >>> int(counter.count), int(out)
    (2, 20)
    """
    if not isinstance(module, Module):
        raise TypeError(
            f"pax.purecall expects a pax.Module as first argument, got "
            f"{type(module).__name__}."
        )
    # `pure` applied to `lambda m, *a, **k: (m, m(*a, **k))`, without the
    # generic argument walk: the module is copied directly.
    session = _Session()
    copy = session._copy_module(module)
    for a in args:
        if type(a) is not _ArrayImpl:
            args = session.copy(args)
            break
    if kwargs:
        kwargs = session.copy(kwargs)
    try:
        out = copy(*args, **kwargs)
    finally:
        session.close()
    if session.tracers:
        session.check_tracers()
    return copy, out


def module_and_value(func: Callable[..., Any]) -> Callable[..., tuple[Any, Any]]:
    """Turn a module, or a bound method of one, into a pure function.

    ``pax.module_and_value(module)(*args)`` is ``pax.purecall(module, *args)``;
    ``pax.module_and_value(module.method)(*args)`` calls ``method`` on a copy
    and returns ``(new_module, output)``.
    """
    if isinstance(func, Module):
        return functools.partial(purecall, func)
    if inspect.ismethod(func) and isinstance(func.__self__, Module):
        module, method = func.__self__, func.__func__
        return lambda *args, **kwargs: _call_on_copy(module, method, args, kwargs)
    raise TypeError(
        "pax.module_and_value expects a pax.Module or a bound method of one, got "
        f"{type(func).__name__}."
    )

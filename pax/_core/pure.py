"""``pax.pure``: run a function on private, mutable copies of its modules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import jax

from .errors import LeakedTracerError
from .module import (
    Module,
    _ArrayImpl,
    _get_spec,
    _is_array,
    _set_dict,
    _set_session,
    _set_spec,
    is_module,
)

__all__ = ["pure", "purecall", "module_and_value"]

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
        self.tracers: list[tuple[Module, str, Any]] = []

    def record_tracer(self, module: Module, name: str, value: Any) -> None:
        self.tracers.append((module, name, value))

    def copy(self, tree: Any) -> Any:
        """Copy every module in ``tree`` (at any depth) into this session.

        Arrays are shared (they are immutable); modules and the containers
        holding them are rebuilt, and each module copy is marked mutable.
        """
        return jax.tree_util.tree_map(self._copy_leaf, tree, is_leaf=is_module)

    def _copy_leaf(self, x: Any) -> Any:
        return self._copy_module(x) if isinstance(x, Module) else x

    def _copy_module(self, module: Module) -> Module:
        d = module.__dict__.copy()
        for name in _get_spec(module).child_names:
            value = d[name]
            if type(value) is _ArrayImpl:
                continue
            if isinstance(value, Module):
                d[name] = self._copy_module(value)
            elif not _is_array(value):
                d[name] = self.copy(value)
        obj = object.__new__(type(module))
        _set_dict(obj, d)
        _set_spec(obj, _get_spec(module))
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
    return _call_on_copy(module, None, args, kwargs)


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

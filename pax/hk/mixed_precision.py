"""``hk.mixed_precision``: per-module-class jmp policies.

``set_policy(hk.nets.MLP, policy)`` makes every method call on instances of
that class cast its array arguments to ``policy.compute_dtype``, create its
parameters in ``policy.param_dtype`` (read in the compute dtype), and cast
its outputs to ``policy.output_dtype``. The innermost policy wins for
dtypes of arguments and outputs; parameters follow the outermost policy's
creator, as in Haiku.
"""

from __future__ import annotations

__all__ = ["set_policy", "get_policy", "clear_policy", "current_policy", "push_policy"]

import contextlib
import threading
from typing import Any

import jmp

from . import _base, _module


def _key(cls: type) -> Any:
    # classes defined in functions are keyed by identity, others by name so
    # that reloading a module keeps its policy
    if "<locals>" in cls.__qualname__:
        return cls
    return (cls.__module__, cls.__qualname__)


class _State(threading.local):
    def __init__(self):
        self.policies: dict[Any, jmp.Policy] = {}
        self.current: list[jmp.Policy] = []


_state = _State()
_installed = False


def _creator(next_creator, shape, dtype, init, context):
    return next_creator(shape, _state.current[-1].param_dtype, init)


def _getter(next_getter, value, context):
    return next_getter(_state.current[-1].cast_to_compute(value))


def _interceptor(next_fn, args, kwargs, context):
    policy = get_policy(type(context.module))
    if policy is None:
        return next_fn(*args, **kwargs)
    with contextlib.ExitStack() as stack:
        if not _state.current:
            stack.enter_context(_base.custom_creator(_creator))
            stack.enter_context(_base.custom_getter(_getter, state=True))
        _state.current.append(policy)
        stack.callback(_state.current.pop)
        args, kwargs = policy.cast_to_compute((args, kwargs))
        return policy.cast_to_output(next_fn(*args, **kwargs))


def set_policy(cls: type, policy: jmp.Policy) -> None:
    """Use ``policy`` for every module of class ``cls`` (not subclasses).

    >>> import jmp, pax.hk as hk
    >>> class Block(hk.Module):
    ...     pass
    >>> hk.mixed_precision.set_policy(Block, jmp.get_policy("p=f32,c=bf16,o=f32"))
    >>> hk.mixed_precision.get_policy(Block).compute_dtype.__name__
    'bfloat16'
    >>> hk.mixed_precision.clear_policy(Block)
    """
    global _installed
    if policy is None:
        raise ValueError("To unset a policy use hk.mixed_precision.clear_policy.")
    if not _installed:
        _module._interceptors.insert(0, _interceptor)
        _installed = True
    _state.policies[_key(cls)] = policy


def get_policy(cls: type) -> jmp.Policy | None:
    """The policy set for ``cls``, or ``None``."""
    return _state.policies.get(_key(cls))


def clear_policy(cls: type) -> None:
    """Remove ``cls``'s policy (if any)."""
    _state.policies.pop(_key(cls), None)


def current_policy() -> jmp.Policy | None:
    """The policy of the innermost module call running under one."""
    return _state.current[-1] if _state.current else None


@contextlib.contextmanager
def push_policy(cls: type, policy: jmp.Policy):
    """Use ``policy`` for ``cls`` inside the ``with`` block only."""
    if policy is None:
        raise ValueError("To unset a policy use hk.mixed_precision.clear_policy.")
    module = _base.inside_transform() and _base.current_module()
    if module and _key(type(module)) == _key(cls):
        raise ValueError(
            "Pushing a policy inside a method on the same class is not supported."
        )
    old = get_policy(cls)
    set_policy(cls, policy)
    try:
        yield
    finally:
        if old is None:
            clear_policy(cls)
        else:
            set_policy(cls, old)

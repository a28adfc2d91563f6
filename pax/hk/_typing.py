"""Haiku's type aliases (``hk.Params``, ``hk.State``, ...), for type hints."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol, TypeVar, runtime_checkable

import jax

Params = Mapping[str, Mapping[str, jax.Array]]
State = Mapping[str, Mapping[str, jax.Array]]
MutableParams = MutableMapping[str, MutableMapping[str, jax.Array]]
MutableState = MutableMapping[str, MutableMapping[str, jax.Array]]

_P = TypeVar("_P", bound=type)


def _only_extended_by_protocols(protocol: _P) -> _P:
    """Make subclassing ``protocol`` an error unless the subclass is itself a
    protocol (``class P(protocol, Protocol)``): classes satisfy a protocol
    structurally, by having its methods, not by deriving from it."""
    parent_hook = protocol.__init_subclass__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        parent_hook.__func__(cls, **kwargs)
        if Protocol not in cls.__bases__:
            bases = ", ".join(b.__name__ for b in cls.__bases__)
            raise TypeError(
                f"{cls.__name__} is a Protocol subclass, but {protocol.__name__} "
                "should not be subclassed by concrete classes: a class supports "
                "a protocol by defining its methods. To extend the protocol "
                f"instead, define `class {cls.__name__}({bases}, Protocol)`."
            )

    protocol.__init_subclass__ = classmethod(__init_subclass__)
    return protocol


@_only_extended_by_protocols
@runtime_checkable
class SupportsCall(Protocol):
    """Anything callable as a module: ``module(*args, **kwargs)``.

    A protocol: classes support it by defining ``__call__``; subclassing it
    is only allowed to define a new protocol.

    >>> import pax.hk as hk
    >>> isinstance(lambda x: x, hk.SupportsCall)
    True
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@_only_extended_by_protocols
@runtime_checkable
class ModuleProtocol(Protocol):
    """What every ``hk.Module`` provides (``params_dict``, ``state_dict``).

    >>> import pax.hk as hk
    >>> f = lambda: isinstance(hk.Linear(1), hk.ModuleProtocol)
    >>> hk.transform(f).apply({}, None)
    True
    """

    def params_dict(self) -> Mapping[str, jax.Array]: ...

    def state_dict(self) -> Mapping[str, jax.Array]: ...

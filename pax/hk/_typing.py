"""Haiku's type aliases (``hk.Params``, ``hk.State``, ...), for type hints."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol, runtime_checkable

import jax

Params = Mapping[str, Mapping[str, jax.Array]]
State = Mapping[str, Mapping[str, jax.Array]]
MutableParams = MutableMapping[str, MutableMapping[str, jax.Array]]
MutableState = MutableMapping[str, MutableMapping[str, jax.Array]]


@runtime_checkable
class SupportsCall(Protocol):
    """Anything callable as a module: ``module(*args, **kwargs)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class ModuleProtocol(Protocol):
    """What every ``hk.Module`` provides."""

    def params_dict(self) -> Mapping[str, jax.Array]: ...

    def state_dict(self) -> Mapping[str, jax.Array]: ...

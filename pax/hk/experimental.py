"""``hk.experimental``: creators, getters, setters, method interceptors and
the other advanced hooks Haiku keeps under this name."""

import types as _types
from typing import Any

from . import _jaxpr_info as jaxpr_info
from . import config as _config
from ._base import DO_NOT_STORE as DO_NOT_STORE
from ._base import GetterContext as GetterContext
from ._base import SetterContext as SetterContext
from ._base import current_name as current_name
from ._base import custom_creator as custom_creator
from ._base import custom_getter as custom_getter
from ._base import custom_setter as custom_setter
from ._base import get_current_state as get_current_state
from ._base import get_initial_state as get_initial_state
from ._base import get_params as get_params
from ._base import maybe_get_rng_sequence_state as maybe_get_rng_sequence_state
from ._base import replace_rng_sequence_state as replace_rng_sequence_state
from ._layer_stack import LayerStackTransparencyMapping as LayerStackTransparencyMapping
from ._layer_stack import layer_stack as layer_stack
from ._lift import LiftWithStateUpdater as LiftWithStateUpdater
from ._lift import lift as lift
from ._lift import lift_with_state as lift_with_state
from ._lift import transparent_lift as transparent_lift
from ._lift import transparent_lift_with_state as transparent_lift_with_state
from ._module import MethodContext as MethodContext
from ._module import force_name as force_name
from ._module import intercept_methods as intercept_methods
from ._module import name_like as name_like
from ._module import name_scope as name_scope
from ._random import optimize_rng_use as optimize_rng_use
from ._summarise import ArraySpec as ArraySpec
from ._summarise import MethodInvocation as MethodInvocation
from ._summarise import ModuleDetails as ModuleDetails
from ._summarise import eval_summary as eval_summary
from ._summarise import fast_eval_shape as fast_eval_shape
from ._summarise import tabulate as tabulate
from ._transform import get_original_fn as get_original_fn

ParamContext = GetterContext


def module_auto_repr(enabled: bool) -> bool:
    """Turn the automatic ``repr`` of modules built from their constructor
    arguments on or off (for modules created afterwards); returns the previous
    setting. A class may opt out alone with ``AUTO_REPR = False``."""
    settings = _config.get_config()
    previous, settings.module_auto_repr = settings.module_auto_repr, enabled
    return previous


def rng_reserve_size(size: int) -> int:
    """Split ``size`` keys at a time when ``next_rng_key`` runs out (default 1);
    returns the previous size. Keys (and so random numbers) change with it,
    exactly as in Haiku."""
    if size <= 0:
        raise ValueError(f"RNG reserve size needs to be more than 0, got {size}.")
    settings = _config.get_config()
    previous, settings.rng_reserve_size = settings.rng_reserve_size, size
    return previous


def check_jax_usage(enabled: bool = True) -> bool:
    """Check that raw JAX transforms are not used around Haiku API calls.

    JAX transforms and control flow (``jax.jit``, ``jax.vmap``, ``jax.grad``,
    ``jax.lax.cond``, ``jax.lax.scan``, ``jax.checkpoint``...) expect pure
    functions. A function calling ``hk.get_parameter``, ``hk.get_state``,
    ``hk.set_state``, ``hk.next_rng_key`` (et al) inside a transformed
    function is not pure: those calls read or change the transform's
    parameters, state or rng. The ``hk.*`` versions (``hk.jit``,
    ``hk.vmap``, ``hk.cond``, ``hk.scan``...) make it pure first.

    With the check on, such a call made inside a raw JAX transform entered
    inside the transformed function raises ``JaxUsageError`` (a
    ``ValueError``). Off by default (the check then costs nothing); also
    settable with ``hk.config.set`` / ``hk.config.context``. Returns the
    previous value.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f():
    ...     return hk.get_parameter("w", [], init=jnp.zeros)
    >>> bad = hk.transform(lambda: jax.vmap(f, axis_size=2)())
    >>> previous = hk.experimental.check_jax_usage(True)
    >>> try:
    ...     bad.init(None)
    ... except ValueError as e:
    ...     print(type(e).__name__)
    JaxUsageError
    >>> good = hk.transform(lambda: hk.vmap(f, axis_size=2, split_rng=False)())
    >>> good.apply(good.init(None), None)
    Array([0., 0.], dtype=float32)
    >>> _ = hk.experimental.check_jax_usage(previous)
    """
    settings = _config.get_config()
    previous, settings.check_jax_usage = settings.check_jax_usage, enabled
    return previous


__all__ = [
    "flax",
    "jaxpr_info",
    "optimize_rng_use",
    "ArraySpec",
    "MethodInvocation",
    "ModuleDetails",
    "eval_summary",
    "fast_eval_shape",
    "tabulate",
    "LiftWithStateUpdater",
    "lift",
    "lift_with_state",
    "transparent_lift",
    "transparent_lift_with_state",
    "LayerStackTransparencyMapping",
    "layer_stack",
    "check_jax_usage",
    "module_auto_repr",
    "rng_reserve_size",
    "DO_NOT_STORE",
    "GetterContext",
    "MethodContext",
    "SetterContext",
    "custom_creator",
    "custom_getter",
    "custom_setter",
    "get_current_state",
    "get_initial_state",
    "get_params",
    "force_name",
    "get_original_fn",
    "intercept_methods",
    "maybe_get_rng_sequence_state",
    "name_like",
    "name_scope",
    "ParamContext",
    "current_name",
    "replace_rng_sequence_state",
]


class _NoFlaxInterop(_types.ModuleType):
    """``hk.experimental.flax``: Haiku's Flax interop (``lift``, ``Module``,
    ``flatten_flax_to_haiku``) is not part of pax.hk; any use raises an
    ``ImportError`` saying so, as dm-haiku does when Flax is missing.

    >>> import pax.hk as hk
    >>> try:
    ...     hk.experimental.flax.lift
    ... except ImportError as e:
    ...     print(str(e)[:60])
    `hk.experimental.flax.lift`: Haiku's Flax interop features r
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"`hk.experimental.flax.{name}`: Haiku's Flax interop features "
            "require `flax`, and pax.hk does not provide them (use native pax "
            "modules, or dm-haiku with flax installed)."
        )


flax = _NoFlaxInterop(f"{__name__}.flax", _NoFlaxInterop.__doc__)

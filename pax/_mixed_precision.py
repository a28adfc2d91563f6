"""Mixed precision with jmp: ``apply_mp_policy`` and ``unwrap_mp_policy``.

``apply_mp_policy(module, policy)`` returns the module with every submodule
wrapped (the module itself included): each wrapped module's class is swapped
for a cached subclass whose ``__call__`` casts floating inputs and the
module's own floating arrays (held directly or inside lists, tuples and dicts
it holds) to ``policy.compute_dtype``, runs the original
``__call__`` and casts floating outputs to ``policy.output_dtype``. Floating
arrays are *stored* in ``policy.param_dtype``. Modules whose class sets
``keep_float32_under_mixed_precision = True`` (the normalization layers do;
subclasses inherit it), and their submodules, keep float32 parameters,
statistics and arithmetic; their output is cast to the outer policy's compute
dtype (to its output dtype when such a module is the one the policy is
applied to). A wrapped recurrent core's
``initial_state`` returns floating leaves in the output dtype, the dtype its
steps return the state in.
"""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import jmp
import numpy as np

from ._core.module import (
    Module,
    _get_spec,
    _map_modules,
    _set_dict,
    _set_session,
    _set_spec,
    _Spec,
)

__all__ = ["apply_mp_policy", "unwrap_mp_policy"]

M = TypeVar("M", bound=Module)

_POLICY = "_pax_mp_policy"
_DTYPES = "_pax_mp_dtypes"
_WRAPPED: dict[type, type] = {}


def _keeps_float32(module: Module) -> bool:
    # read from the class: the setting is declared per class, never per instance
    return bool(type(module).keep_float32_under_mixed_precision)


def _is_float_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(
        x.dtype, jnp.floating
    )


def _holds_float_arrays(value: Any) -> bool:
    """An array, or a container (not a module) with a floating array among
    its leaves (submodules inside it are not looked into)."""
    if isinstance(value, Module):
        return False
    if isinstance(value, (jax.Array, np.ndarray)):
        return _is_float_array(value)
    leaves = jax.tree_util.tree_leaves(value, is_leaf=_is_module)
    return any(_is_float_array(x) for x in leaves)


def _own_float_arrays(module: Module) -> dict[str, Any]:
    """The module's attributes holding floating arrays of its own: arrays and
    containers of them (``[w1, w2]``, ``{"w": w}``, a list mixing submodules
    and arrays), in attribute order."""
    d = module.__dict__
    return {n: d[n] for n in _get_spec(module).child_names if _holds_float_arrays(d[n])}


def _is_module(x: Any) -> bool:
    return isinstance(x, Module)


def _cast(value: Any, dtype: Any) -> Any:
    """``value`` (an array or a container) with its floating arrays in ``dtype``."""
    if isinstance(value, (jax.Array, np.ndarray)):
        return value.astype(dtype)
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if _is_float_array(x) else x,
        value,
        is_leaf=_is_module,
    )


def _dtypes_of(value: Any) -> Any:
    """What `_cast_back` needs: the dtype name of an array, or a tuple of the
    floating leaves' dtype names (None for other leaves) of a container."""
    if isinstance(value, (jax.Array, np.ndarray)):
        return str(value.dtype)
    leaves = jax.tree_util.tree_leaves(value, is_leaf=_is_module)
    return tuple(str(x.dtype) if _is_float_array(x) else None for x in leaves)


def _cast_back(value: Any, dtypes: Any) -> Any:
    """Undo `_cast` with what `_dtypes_of` recorded. A container whose leaves
    changed in number since is returned as it is."""
    if isinstance(dtypes, str):
        return value.astype(dtypes) if _is_float_array(value) else value
    leaves, treedef = jax.tree_util.tree_flatten(value, is_leaf=_is_module)
    if len(leaves) != len(dtypes):
        return value
    leaves = [
        x.astype(dt) if dt is not None and _is_float_array(x) else x
        for x, dt in zip(leaves, dtypes)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _rebuild(cls: type, d: dict) -> Module:
    obj = object.__new__(cls)
    _set_dict(obj, d)
    _set_spec(obj, _Spec.build(cls, d))
    _set_session(obj, None)
    return obj


def _wrapped_class(cls: type) -> type:
    original = getattr(cls, "_pax_mp_original", None)
    if original is not None:
        return cls
    if cls in _WRAPPED:
        return _WRAPPED[cls]
    original_call = cls.__call__

    def __call__(self, *args, **kwargs):
        policy: jmp.Policy = self.__dict__[_POLICY]
        args, kwargs = policy.cast_to_compute((args, kwargs))
        own = _own_float_arrays(self)
        # A private copy whose own arrays are in the compute dtype; it shares
        # submodules (wrapped themselves) and the session of `self`, so a
        # stateful call needs pure exactly as without the policy.
        casted = {n: _cast(v, policy.compute_dtype) for n, v in own.items()}
        tmp = object.__new__(type(self))
        d = dict(self.__dict__)
        d.update(casted)
        _set_dict(tmp, d)
        _set_spec(tmp, _get_spec(self))
        try:
            session = self._pax_session
        except AttributeError:
            session = None
        _set_session(tmp, session)
        try:
            out = original_call(tmp, *args, **kwargs)
        finally:
            _set_session(tmp, None)
        # write back what the call changed, in the stored dtype
        for name, value in tmp.__dict__.items():
            before = casted.get(name, self.__dict__.get(name))
            if value is not before:
                if name in own:
                    value = _cast_back(value, _dtypes_of(own[name]))
                setattr(self, name, value)
        return policy.cast_to_output(out)

    namespace = {
        "__call__": __call__,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "_pax_mp_original": cls,
    }
    original_initial_state = getattr(cls, "initial_state", None)
    if inspect.isfunction(inspect.getattr_static(cls, "initial_state", None)):

        def initial_state(self, *args, **kwargs):
            # A wrapped core returns its new state in the output dtype: start
            # there too, so the state keeps one dtype (a stable scan carry).
            state = original_initial_state(self, *args, **kwargs)
            if "dtype" in kwargs:
                return state
            dtype = self.__dict__[_POLICY].output_dtype
            return jax.tree_util.tree_map(
                lambda s: s.astype(dtype) if _is_float_array(s) else s, state
            )

        initial_state.__doc__ = original_initial_state.__doc__
        namespace["initial_state"] = initial_state
    wrapped = type(cls.__name__, (cls,), namespace)
    _WRAPPED[cls] = wrapped
    return wrapped


def _wrap_one(module: Module, policy: jmp.Policy) -> Module:
    cls = getattr(type(module), "_pax_mp_original", type(module))
    d = dict(module.__dict__)
    dtypes = dict(d.pop(_DTYPES, ()))
    for name, value in _own_float_arrays(module).items():
        dtypes.setdefault(name, _dtypes_of(value))
        d[name] = _cast(value, policy.param_dtype)
    d[_POLICY] = policy
    d[_DTYPES] = tuple(sorted(dtypes.items()))
    return _rebuild(_wrapped_class(cls), d)


def _apply(module: Module, policy: jmp.Policy, outermost: bool) -> Module:
    if _keeps_float32(module):
        # Inside a network a float32 module (a norm) hands its successor the
        # compute dtype; the module the user called returns the output dtype.
        f32 = jmp.Policy(
            param_dtype=jnp.float32,
            compute_dtype=jnp.float32,
            output_dtype=policy.output_dtype if outermost else policy.compute_dtype,
        )
        return _wrap_one(module, f32)

    def sub(x):
        return _apply(x, policy, False) if isinstance(x, Module) else x

    d = dict(module.__dict__)
    for name in _get_spec(module).child_names:
        d[name] = jax.tree_util.tree_map(
            sub, d[name], is_leaf=lambda x: isinstance(x, Module)
        )
    return _wrap_one(_rebuild(type(module), d), policy)


def apply_mp_policy(module: M, mp_policy: jmp.Policy) -> M:
    """Run ``module`` (and every submodule) under a jmp mixed-precision policy.

    Floating arrays are stored in ``param_dtype``; each call casts floating
    inputs and the module's own arrays (directly or in containers it holds:
    ``self.ws = [w1, w2]``) to ``compute_dtype`` and floating
    outputs to ``output_dtype``. Modules whose class sets
    ``keep_float32_under_mixed_precision = True`` (the normalization layers
    BatchNorm, LayerNorm, InstanceNorm, GroupNorm, RMSNorm and their
    subclasses) keep float32 parameters, statistics and arithmetic, their
    submodules included, and cast their output to ``compute_dtype``
    (``output_dtype`` when such a module is ``module`` itself: the module
    given here always returns ``output_dtype``). Set the attribute on your
    own class to keep it in float32 too. Stateful calls still need
    ``pax.purecall``; state updates are stored back in the stored dtype.

    Recurrent cores: the new state a wrapped core returns is an output, in
    ``output_dtype``, so a wrapped core's ``initial_state(batch_size)`` (with
    no explicit ``dtype``) returns its floating leaves in ``output_dtype``
    too and the state keeps one dtype from step to step (what
    ``jax.lax.scan`` needs). :func:`pax.nn.dynamic_unroll` and
    :func:`pax.nn.static_unroll` keep the carry in the dtype of the initial
    state whatever the step returns, so a state built in any dtype works.

    Args:
      module: any module (containers included).
      mp_policy: a ``jmp.Policy``, e.g.
        ``jmp.get_policy("params=float32,compute=bfloat16,output=float32")``.

    Returns:
      The wrapped module (same type name, same structure and leaves);
      :func:`unwrap_mp_policy` gives back the original type and values.

    >>> import jax, jax.numpy as jnp, jmp, pax
    >>> policy = jmp.get_policy("params=float32,compute=bfloat16,output=float32")
    >>> fc = pax.Linear(3, 2, rng_key=jax.random.PRNGKey(0))
    >>> net = pax.apply_mp_policy(fc, policy)
    >>> net(jnp.ones((1, 3))).dtype, net.weight.dtype
    (dtype('float32'), dtype('float32'))
    """
    if not isinstance(module, Module):
        raise TypeError(
            f"pax.apply_mp_policy expects a pax.Module, got {type(module).__name__}"
        )
    if not isinstance(mp_policy, jmp.Policy):
        raise TypeError(
            "pax.apply_mp_policy expects a jmp.Policy, e.g. "
            "jmp.get_policy('params=float32,compute=bfloat16,output=float32'), got "
            f"{type(mp_policy).__name__}"
        )
    return _apply(module, mp_policy, True)


def _unwrap_one(module: Module) -> Module:
    original = getattr(type(module), "_pax_mp_original", None)
    if original is None:
        return module
    d = dict(module.__dict__)
    d.pop(_POLICY, None)
    for name, dtypes in d.pop(_DTYPES, ()):
        if name in d:
            d[name] = _cast_back(d[name], dtypes)
    return _rebuild(original, d)


def unwrap_mp_policy(module: M) -> M:
    """Undo :func:`apply_mp_policy`: original classes, arrays back in the dtypes
    they had when the policy was applied.

    >>> import jax, jmp, pax
    >>> fc = pax.Linear(3, 2, rng_key=jax.random.PRNGKey(0))
    >>> half = pax.apply_mp_policy(fc, jmp.get_policy("p=bf16,c=bf16,o=bf16"))
    >>> back = pax.unwrap_mp_policy(half)
    >>> type(back) is pax.Linear, back.weight.dtype
    (True, dtype('float32'))
    """
    if not isinstance(module, Module):
        raise TypeError(
            f"pax.unwrap_mp_policy expects a pax.Module, got {type(module).__name__}"
        )
    return _map_modules(module, _unwrap_one)

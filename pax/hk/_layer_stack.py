"""``hk.layer_stack``: apply a function ``num_layers`` times with one
``jax.lax.scan``, each application with its own parameters (stacked on a
leading axis). Parameters live under ``__layer_stack_no_per_layer/...`` (or
``__layer_stack_with_per_layer/...``, or ``name``) as in Haiku."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from . import _base, _lift
from ._transform import transform_with_state


class LayerStackTransparencyMapping(Protocol):
    """Maps stacked module names to per-layer (flat) names and back."""

    def stacked_to_flat(self, stacked_module_name: str, scan_idx: int) -> str: ...

    def flat_to_stacked(self, unstacked_module_name: str) -> tuple[str, int] | None: ...


class _Scanned(NamedTuple):
    params: Any
    rng: Any
    state: Any
    args_ys: Any


def _no_varargs(f):
    params = list(inspect.signature(f).parameters.values())
    if params and params[0].kind == inspect.Parameter.VAR_POSITIONAL:
        raise ValueError(
            "The function `f` should not have any `varargs` (that is *args) "
            "argument: hk.layer_stack needs its positional arguments named "
            "explicitly."
        )


def _split(stacked, num_layers, name_map):
    out = {}
    for module, values in stacked.items():
        for i in range(num_layers):
            flat = name_map.stacked_to_flat(module, i)
            if flat in out:
                raise ValueError(
                    f"Found conflicting unstacked module name for {module} at {flat}."
                )
            out[flat] = jax.tree_util.tree_map(lambda x, i=i: x[i], values)
    return out


def _stack(flat, num_layers, name_map):
    trees = [{} for _ in range(num_layers)]
    for module, values in flat.items():
        found = name_map.flat_to_stacked(module)
        if found is None:
            continue
        stacked, i = found
        bundle = trees[i].setdefault(stacked, {})
        for k, v in values.items():
            if k in bundle:
                raise ValueError(
                    f"Found conflicting values for param {stacked}/{k} at index {i}."
                )
            bundle[k] = v
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs, axis=0), *trees)


class _LayerStack:
    def __init__(self, body, count, unroll, pass_reverse, transparency_map, name):
        self._body = body
        self._count = count
        self._unroll = unroll
        self._pass_reverse = pass_reverse
        self._map = transparency_map
        self._name = name

    def __call__(self, x, *args_ys, reverse=False):
        count = self._count
        init_fn, apply_fn = transform_with_state(self._body)

        def per_layer_init(carry, a):
            c, rng = carry
            if rng is not None:
                rng, next_rng, apply_rng = jax.random.split(rng, 3)
            else:
                next_rng = apply_rng = None
            params, state = init_fn(rng, c, *a)
            (c, _), state = apply_fn(params, state, apply_rng, c, *a)
            return (c, next_rng), (params, state)

        def scanned_init(x, rng):
            _, (params, state) = jax.lax.scan(
                per_layer_init, (x, rng), args_ys, length=count
            )
            if self._map is not None:
                return _split(params, count, self._map), _split(state, count, self._map)
            return params, state

        rng = _base.maybe_next_rng_key()
        if self._map is not None:
            lifted, updater = _lift.transparent_lift_with_state(
                scanned_init, allow_reuse=True
            )
        else:
            lifted, updater = _lift.lift_with_state(
                scanned_init, allow_reuse=True, name=self._name
            )
        params, state = lifted(x, rng)

        def layer(carry, scanned: _Scanned):
            kwargs = {"reverse": reverse} if self._pass_reverse else {}
            (out, z), new_state = apply_fn(
                scanned.params,
                scanned.state,
                scanned.rng,
                carry,
                *scanned.args_ys,
                **kwargs,
            )
            return out, (z, new_state)

        rng = _base.maybe_next_rng_key()
        rngs = None if rng is None else jax.random.split(rng, count)
        if self._map is not None:
            params = _stack(params, count, self._map)
            state = _stack(state, count, self._map)
        carry, (zs, states) = jax.lax.scan(
            layer,
            x,
            _Scanned(params, rngs, state, args_ys),
            length=count,
            unroll=self._unroll,
            reverse=reverse,
        )
        updater.update(states)
        return carry, zs


def layer_stack(
    num_layers: int,
    with_per_layer_inputs: bool = False,
    unroll: int = 1,
    pass_reverse_to_layer_fn: bool = False,
    transparent: bool = False,
    transparency_map: LayerStackTransparencyMapping | None = None,
    name: str | None = None,
):
    """Decorator: call the decorated function ``num_layers`` times in a scan,
    each time with its own parameters (stacked on a leading axis).

    Without per-layer inputs ``f(*xs) -> xs`` (same structure out as in);
    with them ``f(x, *ys_i) -> (x, zs_i)`` and the call returns ``(x, zs)``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     @hk.layer_stack(3)
    ...     def block(x):
    ...         return x * hk.get_parameter("w", [], init=jnp.ones) + 1
    ...     return block(x)
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), 0.0)
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'__layer_stack_no_per_layer/~': {'w': (3,)}}
    >>> float(f.apply(params, None, 0.0))
    3.0
    """
    if transparent and transparency_map is None:
        raise ValueError("transparency_map must be provided with transparent=True.")
    if not name:
        name = (
            "__layer_stack_with_per_layer"
            if with_per_layer_inputs
            else "__layer_stack_no_per_layer"
        )

    def iterate(f: Callable):
        if with_per_layer_inputs:

            def body(x, *args, **kwargs):
                return f(x, *args, **kwargs)

            @functools.wraps(f)
            def wrapped(x, *args, **kwargs):
                for ys in jax.tree_util.tree_leaves(args):
                    if ys.shape[0] != num_layers:
                        raise ValueError(
                            f"hk.layer_stack: per-layer inputs need a leading "
                            f"axis of size {num_layers}, got shape {ys.shape}"
                        )
                stack = _LayerStack(
                    body,
                    num_layers,
                    unroll,
                    pass_reverse_to_layer_fn,
                    transparency_map,
                    name,
                )
                return stack(x, *args, **kwargs)

            return wrapped

        _no_varargs(f)

        def body(xs, **kwargs):
            out = f(*xs, **kwargs)
            return ((out,) if len(xs) == 1 else out), None

        @functools.wraps(f)
        def wrapped(*args, **kwargs):
            stack = _LayerStack(
                body,
                num_layers,
                unroll,
                pass_reverse_to_layer_fn,
                transparency_map,
                name,
            )
            out = stack(args, **kwargs)[0]
            return out[0] if len(args) == 1 else out

        return wrapped

    return iterate

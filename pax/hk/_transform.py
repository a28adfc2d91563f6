"""Haiku's transforms: a function using modules -> pure ``init`` / ``apply``.

``init(rng, *args, **kwargs)`` runs the function once, creating parameters
(and state) and returns them as ``{module_name: {name: array}}`` dicts;
``apply(params, [state,] rng, *args, **kwargs)`` runs it again reading them.
Both are pure: jit, grad and vmap them as any JAX function.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax

from . import _base
from ._typing import Params, State


class NonEmptyStateError(ValueError):
    """State was used by a function transformed without state."""


class Transformed(NamedTuple):
    """``params = init(rng, *a, **k)``; ``out = apply(params, rng, *a, **k)``."""

    init: Callable[..., dict]
    apply: Callable[..., Any]


class TransformedWithState(NamedTuple):
    """``params, state = init(rng, *a, **k)``;
    ``out, state = apply(params, state, rng, *a, **k)``."""

    init: Callable[..., tuple[dict, dict]]
    apply: Callable[..., tuple[Any, dict]]


class MultiTransformed(NamedTuple):
    """``init(rng, *a, **k) -> params``; ``apply``: a tree of functions
    ``out = apply_i(params, rng, *a, **k)``."""

    init: Callable[..., dict]
    apply: Any


class MultiTransformedWithState(NamedTuple):
    """``init(rng, *a, **k) -> (params, state)``; ``apply``: a tree of
    functions ``out, state = apply_i(params, state, rng, *a, **k)``."""

    init: Callable[..., tuple[dict, dict]]
    apply: Any


_RNG_TEMPLATE = (
    "{fn} must be called with an RNG as the {position} argument (a PRNG key "
    "such as jax.random.PRNGKey(0), an int seed, or None), the required "
    "signature is: `{signature}`."
)
_INIT_RNG = _RNG_TEMPLATE.format(
    fn="Init", position="first", signature="init(rng, *a, **k)"
)
_APPLY_RNG = _RNG_TEMPLATE.format(
    fn="Apply", position="second", signature="apply(params, rng, *a, **k)"
)
_APPLY_RNG_STATE = _RNG_TEMPLATE.format(
    fn="Apply", position="third", signature="apply(params, state, rng, *a, **k)"
)
_TRACER_HINT = (
    "An UnexpectedTracerError was raised inside a function transformed by "
    "pax.hk. Are you calling a JAX transform or control-flow function "
    "(jax.vmap, jax.lax.scan, ...) on code that uses modules? Use the hk "
    "version instead (hk.vmap, hk.scan, ...)."
)


_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


# Annotations of the leading parameters transforms add (as Haiku writes them).
_RNG_ARG = jax.Array | int | None
_ANNOTATIONS = {
    "rng": _RNG_ARG,
    "params": Params | None,
    "state": State | None,
    "param": Params,
}


def _params(*names: str) -> list[inspect.Parameter]:
    return [
        inspect.Parameter(
            n, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_ANNOTATIONS[n]
        )
        for n in names
    ]


def _without_state(returns: Any) -> Any:
    """``R`` from a ``tuple[R, State]`` return annotation, else ``Any``."""
    args = getattr(returns, "__args__", ())
    if getattr(returns, "__origin__", None) is tuple and len(args) == 2:
        return args[0]
    return Any


def _with_state(returns: Any) -> Any:
    """``tuple[R, State]`` from a return annotation ``R`` (``Any`` if none)."""
    return tuple[Any if returns is inspect.Signature.empty else returns, State]


def _signature_of(f: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(f)
    except (TypeError, ValueError):
        return None


def _with_leading(
    sig: inspect.Signature | None,
    drop: int,
    names: Sequence[str],
    returns: Any = None,
) -> inspect.Signature | None:
    """``sig`` with its first ``drop`` positional parameters replaced by
    ``names`` (what ``inspect.signature`` of a transformed function shows),
    and ``returns(sig.return_annotation)`` as return annotation (default: kept)."""
    if sig is None:
        return None
    ret = sig.return_annotation if returns is None else returns(sig.return_annotation)
    rest = list(sig.parameters.values())
    kept = 0
    while kept < drop and kept < len(rest) and rest[kept].kind in _POSITIONAL:
        kept += 1
    return inspect.Signature(
        _params(*names) + rest[kept:],
        return_annotation=ret,
        __validate_parameters__=False,
    )


def _set_signature(fn: Callable, sig: inspect.Signature | None) -> None:
    if sig is not None:
        fn.__signature__ = sig


def _tie(source: Any, *fns: Callable) -> None:
    """Record the user function behind ``source`` on each of ``fns``."""
    if isinstance(source, (Transformed, TransformedWithState)):
        source = source.init
    original = getattr(source, "_pax_hk_original", None)
    for fn in fns:
        fn._pax_hk_original = original


def _check_mapping(name: str, value: Any) -> Mapping:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(
            f"The {name} argument of `apply` should be a mapping (what `init` "
            f"returned) but is of type {type(value).__name__}. `apply` takes "
            "`(params, rng, ...)` for `hk.transform` and `(params, state, rng, "
            "...)` for `hk.transform_with_state`."
        )
    return value


def _check_not_jitted(f: Callable) -> None:
    kind = type(f).__name__
    if kind in ("PjitFunction", "PmapFunction"):
        raise ValueError(
            "hk.transform got a jit/pmap-compiled function: transform the plain "
            "function and jit the result's init/apply instead "
            "(`jax.jit(hk.transform(f).apply)`)."
        )


class _Calls(threading.local):
    def __init__(self):
        self.stack: list[list[Callable[[], None]]] = []


_calls = _Calls()


def teardown_callbacks() -> list[Callable[[], None]]:
    """Callbacks run when the innermost ``init``/``apply`` call returns
    normally (a list: append to it). Its identity names that call."""
    return _calls.stack[-1]


def _run(f: Callable, args: tuple, kwargs: dict) -> Any:
    callbacks: list[Callable[[], None]] = []
    _calls.stack.append(callbacks)
    try:
        out = f(*args, **kwargs)
    except jax.errors.UnexpectedTracerError as e:
        raise jax.errors.UnexpectedTracerError(_TRACER_HINT) from e
    finally:
        _calls.stack.pop()
    for callback in callbacks:
        callback()
    return out


def transform_with_state(f: Callable[..., Any]) -> TransformedWithState:
    """Turn ``f`` (which uses modules, parameters and state) into a pure pair.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     n = hk.get_state("n", [], jnp.int32, init=jnp.zeros)
    ...     hk.set_state("n", n + 1)
    ...     w = hk.get_parameter("w", [3, 2], init=jnp.ones)
    ...     return x @ w
    >>> f = hk.transform_with_state(f)
    >>> x = jnp.ones((1, 3))
    >>> params, state = f.init(jax.random.PRNGKey(0), x)
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'~': {'w': (3, 2)}}
    >>> y, state = f.apply(params, state, None, x)
    >>> int(state["~"]["n"])
    1
    """
    _check_not_jitted(f)
    sig = _signature_of(f)

    def init_fn(rng, *args, **kwargs):
        seq = _base.to_prng_sequence(rng, _INIT_RNG)
        frame = _base.Frame({}, {}, seq, frozen=False)
        with _base.push_frame(frame):
            _run(f, args, kwargs)
        return _base.collect_params(frame), _base.collect_state(frame, initial=True)

    def apply_fn(params, state, rng, *args, **kwargs):
        uses_state = state is not None
        params = _check_mapping("params", params)
        state = _check_mapping("state", state)
        seq = _base.to_prng_sequence(
            rng, _APPLY_RNG_STATE if uses_state else _APPLY_RNG
        )
        frame = _base.Frame(params, _base.state_from_mapping(state), seq, frozen=True)
        with _base.push_frame(frame):
            out = _run(f, args, kwargs)
        return out, _base.collect_state(frame, initial=False)

    init_sig = _with_leading(sig, 0, ["rng"], lambda _: tuple[Params, State])
    _set_signature(init_fn, init_sig)
    apply_sig = _with_leading(sig, 0, ["params", "state", "rng"], _with_state)
    _set_signature(apply_fn, apply_sig)
    init_fn._pax_hk_original = apply_fn._pax_hk_original = f
    return TransformedWithState(init_fn, apply_fn)


def transform(f: Callable[..., Any], *, apply_rng: bool = True) -> Transformed:
    """Turn ``f`` (which uses modules and parameters, no state) into a pure
    ``init`` / ``apply`` pair.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     w = hk.get_parameter("w", [3, 2], init=jnp.ones)
    ...     return x @ w
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    >>> f.apply(params, None, jnp.ones((1, 3))).shape
    (1, 2)
    """
    if not apply_rng:
        raise ValueError(
            "The apply_rng argument has been removed: use "
            "hk.without_apply_rng(hk.transform(f)) for an apply without rng."
        )
    return without_state(transform_with_state(f))


def without_state(f: TransformedWithState) -> Transformed:
    """Drop the state arguments/results of a transformed pair (raising if the
    function does use state)."""

    def init_fn(*args, **kwargs):
        params, state = f.init(*args, **kwargs)
        if state:
            raise NonEmptyStateError(
                "The function uses state (`hk.get_state` / `hk.set_state`, or a "
                "module such as BatchNorm): use `hk.transform_with_state`."
            )
        return params

    def apply_fn(params, *args, **kwargs):
        if "state" in kwargs:
            raise TypeError(
                "Haiku transforms add (params, state, rng) to apply: pass a "
                "function argument called `state` positionally."
            )
        out, state = f.apply(params, None, *args, **kwargs)
        if state:
            raise NonEmptyStateError(
                "The function uses state (`hk.get_state` / `hk.set_state`, or a "
                "module such as BatchNorm): use `hk.transform_with_state`."
            )
        return out

    init_sig = _signature_of(f.init)
    _set_signature(init_fn, _with_leading(init_sig, 0, [], _without_state))
    apply_sig = _with_leading(_signature_of(f.apply), 2, ["params"], _without_state)
    _set_signature(apply_fn, apply_sig)
    _tie(f, init_fn, apply_fn)
    return Transformed(init_fn, apply_fn)


def with_empty_state(f: Transformed) -> TransformedWithState:
    """Give a stateless transformed pair the with-state signatures (the state
    is always ``{}``)."""

    def init_fn(*args, **kwargs):
        return f.init(*args, **kwargs), {}

    def apply_fn(params, state, *args, **kwargs):
        del state
        return f.apply(params, *args, **kwargs), {}

    _set_signature(init_fn, _with_leading(_signature_of(f.init), 0, [], _with_state))
    # "param" (not "params") is the name Haiku's signature shows here
    apply_sig = _with_leading(
        _signature_of(f.apply), 1, ["param", "state"], _with_state
    )
    _set_signature(apply_fn, apply_sig)
    _tie(f, init_fn, apply_fn)
    return TransformedWithState(init_fn, apply_fn)


def without_apply_rng(f: Any) -> Any:
    """Remove the ``rng`` argument from ``apply`` (it is always ``None``).

    Works on ``Transformed``, ``TransformedWithState`` and the multi variants.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.without_apply_rng(hk.transform(lambda x: x @ hk.get_parameter(
    ...     "w", [3, 2], init=jnp.ones)))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    >>> f.apply(params, jnp.ones((1, 3))).shape
    (1, 2)
    """

    def no_rng(apply: Callable, with_state: bool) -> Callable:
        if with_state:

            def apply_fn(params, state, *args, **kwargs):
                _check_no_rng_kwarg(kwargs)
                return apply(params, state, None, *args, **kwargs)

            names = ["params", "state"]
        else:

            def apply_fn(params, *args, **kwargs):
                _check_no_rng_kwarg(kwargs)
                return apply(params, None, *args, **kwargs)

            names = ["params"]
        sig = _with_leading(_signature_of(apply), len(names) + 1, names)
        _set_signature(apply_fn, sig)
        _tie(apply, apply_fn)
        return apply_fn

    if isinstance(f, TransformedWithState):
        return TransformedWithState(f.init, no_rng(f.apply, True))
    if isinstance(f, Transformed):
        return Transformed(f.init, no_rng(f.apply, False))
    if isinstance(f, MultiTransformedWithState):
        apply = jax.tree_util.tree_map(lambda a: no_rng(a, True), f.apply)
        return MultiTransformedWithState(f.init, apply)
    if isinstance(f, MultiTransformed):
        apply = jax.tree_util.tree_map(lambda a: no_rng(a, False), f.apply)
        return MultiTransformed(f.init, apply)
    raise ValueError(
        "hk.without_apply_rng must be called with the result of hk.transform, "
        "hk.transform_with_state, hk.multi_transform or "
        f"hk.multi_transform_with_state; got {type(f)!r}."
    )


def _check_no_rng_kwarg(kwargs: Mapping[str, Any]) -> None:
    if "rng" in kwargs:
        raise TypeError(
            "This apply function was wrapped with hk.without_apply_rng: it "
            "takes no `rng` argument."
        )


class _Box:
    """A Python value carried through ``jax.tree_util`` with no leaves."""

    def __init__(self, value: Any):
        self.value = value


jax.tree_util.register_pytree_node(
    _Box, lambda b: ((), b.value), lambda value, _: _Box(value)
)


def multi_transform_with_state(
    f: Callable[[], tuple[Callable, Any]],
) -> MultiTransformedWithState:
    """Several apply functions sharing modules (and so parameters).

    ``f()`` builds the modules and returns ``(template_fn, apply_fns)``:
    ``init(rng, *a, **k)`` runs ``template_fn(*a, **k)`` to create everything;
    each leaf of ``apply_fns`` becomes ``apply(params, state, rng, *a, **k)``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> class Dense(hk.Module):
    ...     def __init__(self, size, name=None):
    ...         super().__init__(name=name)
    ...         self.size = size
    ...     def __call__(self, x):
    ...         return x @ hk.get_parameter(
    ...             "w", [x.shape[-1], self.size], init=jnp.ones)
    >>> def f():
    ...     enc, dec = Dense(2, name="enc"), Dense(3, name="dec")
    ...     return (lambda x: dec(enc(x))), (enc, dec)
    >>> f = hk.multi_transform_with_state(f)
    >>> params, state = f.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    >>> sorted(params)
    ['dec', 'enc']
    >>> z, state = f.apply[0](params, state, None, jnp.ones((1, 3)))
    >>> z.shape
    (1, 2)
    """

    def init_fn(*args, **kwargs):
        template, _ = f()
        return template(*args, **kwargs)

    transformed = transform_with_state(init_fn)

    def structure() -> _Box:
        # Build the modules once (init, then apply, as Haiku does) only to
        # learn the structure of ``apply_fns``; eval_shape computes nothing.
        key = jax.random.PRNGKey(42)
        fns = transform_with_state(lambda: _Box(jax.tree_util.tree_structure(f()[1])))
        box, _ = fns.apply(*fns.init(key), key)
        return box

    treedef = jax.eval_shape(structure).value

    def leaf_apply(i):
        def run(*args, **kwargs):
            _, apply_fns = f()
            return jax.tree_util.tree_leaves(apply_fns)[i](*args, **kwargs)

        return transform_with_state(run).apply

    leaves = [leaf_apply(i) for i in range(treedef.num_leaves)]
    return MultiTransformedWithState(
        transformed.init, jax.tree_util.tree_unflatten(treedef, leaves)
    )


def multi_transform(f: Callable[[], tuple[Callable, Any]]) -> MultiTransformed:
    """``multi_transform_with_state`` without state (see there).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> class Dense(hk.Module):
    ...     def __init__(self, size, name=None):
    ...         super().__init__(name=name)
    ...         self.size = size
    ...     def __call__(self, x):
    ...         return x @ hk.get_parameter(
    ...             "w", [x.shape[-1], self.size], init=jnp.ones)
    >>> def f():
    ...     enc, dec = Dense(2, name="enc"), Dense(3, name="dec")
    ...     return (lambda x: dec(enc(x))), (enc, dec)
    >>> f = hk.multi_transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    >>> f.apply[1](params, None, jnp.ones((1, 2))).shape
    (1, 3)
    """
    f = multi_transform_with_state(f)
    f = without_state_multi(f)
    return f


def without_state_multi(f: MultiTransformedWithState) -> MultiTransformed:
    """``multi_transform_with_state``'s result without state arguments/results
    (raising if the functions do use state)."""

    def init_fn(*args, **kwargs):
        params, state = f.init(*args, **kwargs)
        if state:
            raise NonEmptyStateError(
                "The function uses state: use `hk.multi_transform_with_state`."
            )
        return params

    def strip(apply):
        def apply_fn(params, *args, **kwargs):
            out, state = apply(params, None, *args, **kwargs)
            if state:
                raise NonEmptyStateError(
                    "The function uses state: use `hk.multi_transform_with_state`."
                )
            return out

        return apply_fn

    return MultiTransformed(init_fn, jax.tree_util.tree_map(strip, f.apply))


def get_original_fn(f: Any) -> Callable:
    """The user function behind a transformed pair (or its init/apply)."""
    if isinstance(f, (Transformed, TransformedWithState)):
        f = f.init
    return f._pax_hk_original

"""``hk.lift``: run an inner transform's ``init`` inside an outer transform,
storing its parameters (and state) in the outer dictionaries."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from . import _base, _transform
from ._module import Module


def _pack(src: Mapping, dst: MutableMapping, prefix: str, *, state: bool, check: bool):
    for key, values in src.items():
        name = f"{prefix}/{key}" if prefix else key
        if check and name in dst:
            raise ValueError(
                f"Key '{name}' already exists in the destination params. To "
                "prevent accidental parameter re-use during lift, you can't "
                "re-use a parameter already defined in the outer scope "
                "(pass allow_reuse=True to allow it)."
            )
        values = dict(values)
        if state:
            values = {k: _base.StatePair(v, v) for k, v in values.items()}
        dst.setdefault(name, {}).update(values)


def _unpack(src: Mapping, prefix: str) -> dict:
    if not prefix:
        return {k: dict(v) for k, v in src.items()}
    n = len(prefix)
    return {k[n:]: dict(v) for k, v in src.items() if k.startswith(prefix)}


class LiftingModule(Module):
    """Runs ``init_fn`` at init (storing its results under this module's
    name) and returns the stored values at apply."""

    def __init__(self, init_fn, transparent=False, allow_reuse=False, name="lifted"):
        super().__init__(name=name)
        self._init_fn = init_fn
        if transparent:
            self.prefix_name = "/".join(self.module_name.split("/")[:-1])
        else:
            self.prefix_name = self.module_name
        self._allow_reuse = allow_reuse

    def __call__(self, *args, **kwargs):
        frame = _base.current_frame()
        if not frame.frozen:
            # A transparent lift at the top of its transform has no prefix.
            prefixes = _base._local.lift_prefixes
            pushed = bool(self.prefix_name)
            if pushed:
                prefixes.append(self.prefix_name)
            try:
                params, state = self._init_fn(*args, **kwargs)
            finally:
                if pushed:
                    prefixes.pop()
            check = not self._allow_reuse
            _pack(params, frame.params, self.prefix_name, state=False, check=check)
            _pack(state, frame.state, self.prefix_name, state=True, check=check)
            return params, state
        prefix = f"{self.prefix_name}/" if self.prefix_name else ""
        params = _unpack(frame.params, prefix)
        state = {
            m: {k: p.current for k, p in values.items()}
            for m, values in _unpack(frame.state, prefix).items()
        }
        return params, state


def _add_state(init_fn):
    def wrapped(*args, **kwargs):
        params = init_fn(*args, **kwargs)
        if not isinstance(params, Mapping):
            raise ValueError(
                "hk.lift: init_fn must return params; for stateful inner "
                "functions use `hk.lift_with_state`."
            )
        return params, {}

    return wrapped


class LiftWithStateUpdater:
    """Writes the inner function's new state back into the outer state.

    Call ``update(state)`` or ``ignore_update()`` exactly once, in the same
    ``init``/``apply`` call that created the updater; an updater left unused
    when that call returns is an error.
    """

    __slots__ = ("_used", "_name", "_call")

    def __init__(self, name: str | None):
        self._used = False
        self._name = name
        self._call = _current_call()
        if self._call is not None:
            self._call.append(self._assert_used)

    def _assert_used(self) -> None:
        if not self._used:
            raise ValueError(
                "LiftWithStateUpdater (from `lift_with_state`) must be used, "
                "call `.update(..)` or `.ignore_update()` before it goes out of "
                "scope."
            )

    def _use(self):
        if self._used:
            raise ValueError("State updater must only be used once.")
        if not _base.inside_transform():
            raise ValueError(
                "State updater must be used inside hk.transform_with_state."
            )
        if _current_call() is not self._call:
            raise ValueError(
                "State updater must be used within the same call to init/apply."
            )
        self._used = True

    def ignore_update(self) -> None:
        """Leave the outer state as it is."""
        self._use()

    def update(self, state: Mapping) -> None:
        """Store ``state`` (the inner ``apply``'s new state) in the outer state."""
        self._use()
        frame = _base.current_frame()
        for module, values in state.items():
            if self._name is not None:
                module = f"{self._name}/{module}"
            bundle = frame.state.setdefault(module, {})
            for name, value in values.items():
                initial = bundle.get(name, _base.StatePair(value, value)).initial
                bundle[name] = _base.StatePair(initial, value)


def _current_call() -> list | None:
    """The teardown list naming the innermost init/apply call (or None)."""
    try:
        return _transform.teardown_callbacks()
    except IndexError:
        return None


def lift_with_state(init_fn, *, allow_reuse: bool = False, name: str = "lifted"):
    """``hk.lift`` for an inner ``init`` returning ``(params, state)``.

    Returns ``(params_and_state_fn, updater)``; pass the inner apply's new
    state to ``updater.update``.
    """
    _base.assert_context("lift_with_state")
    module = LiftingModule(init_fn, allow_reuse=allow_reuse, name=name)
    if _base.current_module() is not None:
        name = f"{_base.current_name()}/{name}"
    return (lambda *a, **k: module(*a, **k)), LiftWithStateUpdater(name)


def lift(
    init_fn: Callable[..., Any], *, allow_reuse: bool = False, name: str = "lifted"
) -> Callable[..., Any]:
    """Store an inner transform's parameters in the outer transform.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> inner = hk.transform(lambda x: x * hk.get_parameter("w", [], init=jnp.ones))
    >>> def outer(x):
    ...     params = hk.lift(inner.init, name="inner")(hk.next_rng_key(), x)
    ...     return inner.apply(params, None, x)
    >>> outer = hk.transform(outer)
    >>> params = outer.init(jax.random.PRNGKey(0), 2.0)
    >>> params
    {'inner/~': {'w': Array(1., dtype=float32)}}
    """
    _base.assert_context("lift")
    fn, updater = lift_with_state(
        _add_state(init_fn), allow_reuse=allow_reuse, name=name
    )
    updater.ignore_update()
    return lambda *a, **k: fn(*a, **k)[0]


def transparent_lift(init_fn, *, allow_reuse: bool = False):
    """``lift`` without the ``lifted`` name prefix."""
    _base.assert_context("transparent_lift")
    module = LiftingModule(
        _add_state(init_fn), transparent=True, allow_reuse=allow_reuse
    )

    def fn(*args, **kwargs):
        _base._local.closure_boundaries.append(_base.current_frame().frame_id + 1)
        try:
            return module(*args, **kwargs)[0]
        finally:
            _base._local.closure_boundaries.pop()

    return fn


def transparent_lift_with_state(init_fn, *, allow_reuse: bool = False):
    """``lift_with_state`` without the ``lifted`` name prefix."""
    _base.assert_context("lift_with_state")
    module = LiftingModule(init_fn, transparent=True, allow_reuse=allow_reuse)
    name = _base.current_name() if _base.current_module() is not None else None
    return (lambda *a, **k: module(*a, **k)), LiftWithStateUpdater(name)

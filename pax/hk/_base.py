"""The per-transform frame behind ``pax.hk``: parameters, state, randomness.

A *frame* lives for one ``init`` or ``apply`` run of a transformed function.
It holds the parameter and state dictionaries (``{module_name: {name:
value}}``), a stack of rng sequences, and the naming stacks that
``pax.hk.Module`` pushes on every method call. Frames are thread-local and
nest (lifted transforms push inner frames).

Each frame also records the JAX trace it was entered under (an opaque
token from ``jax.extend.core.get_opaque_trace_state``). With
``hk.config.check_jax_usage`` on, the Haiku APIs with side effects compare it
with the trace they run under: a raw ``jax.jit`` / ``jax.vmap`` /
``jax.lax.cond``... entered inside the transformed function shows up as a
different trace and raises `JaxUsageError`. The lifted transforms
(``hk.vmap``, ``hk.cond``...) enter a new frame inside their JAX transform, so
they pass. With the check off (the default) the APIs pay one attribute test.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as _jex_core

from . import config

Initializer = Callable[[Sequence[int], Any], jax.Array]


class _Local(threading.local):
    """Per-thread stacks: frames, creators/getters/setters, lift bookkeeping."""

    def __init__(self):
        self.frames: list[Frame] = []
        self.creators = {"params": [], "state": []}
        self.getters = {"params": [], "state": []}
        self.setters: list = []
        self.closure_boundaries: list[int] = []
        self.lift_prefixes: list[str] = []


_local = _Local()
_frame_ids = itertools.count()
_settings = config.get_config()  # one object, mutated in place by hk.config


def _trace_state() -> Any:
    """A token for the JAX trace running now (equal tokens: same trace)."""
    return _jex_core.get_opaque_trace_state(convention="haiku")


class StatePair(NamedTuple):
    """A state entry: the value given at init (``initial``) and now."""

    initial: Any
    current: Any


class ModuleState(NamedTuple):
    """One entry of the module stack: a module and the method running on it."""

    module: Any
    method_name: str


class Frame:
    """Everything one ``init``/``apply`` run of a transformed function owns."""

    __slots__ = (
        "params",
        "state",
        "rng_stack",
        "frozen",
        "module_stack",
        "counter_stack",
        "used_names_stack",
        "frame_id",
        "trace_state",
    )

    def __init__(
        self,
        params: Mapping[str, Any],
        state: dict[str, dict[str, StatePair]],
        rng: PRNGSequence | None,
        frozen: bool,
    ):
        self.params = params
        self.state = state
        self.rng_stack = [rng]
        self.frozen = frozen
        self.module_stack: list[ModuleState] = []
        self.counter_stack: list[collections.Counter] = [collections.Counter()]
        self.used_names_stack: list[set[str]] = [set()]
        self.frame_id = next(_frame_ids)
        self.trace_state = _trace_state()

    def evolve(
        self,
        params: Mapping[str, Any],
        state: dict[str, dict[str, StatePair]],
        rng: PRNGSequence | None,
        *,
        decoupled: bool = True,
    ) -> Frame:
        """A frame with new params/state/rng sharing (or copying) the naming."""
        new = Frame.__new__(Frame)
        new.params, new.state, new.frozen = params, state, self.frozen
        new.rng_stack = [*self.rng_stack, rng]
        if decoupled:
            new.module_stack = list(self.module_stack)
            new.counter_stack = [collections.Counter(c) for c in self.counter_stack]
            new.used_names_stack = [set(s) for s in self.used_names_stack]
        else:
            new.module_stack = self.module_stack
            new.counter_stack = self.counter_stack
            new.used_names_stack = self.used_names_stack
        new.frame_id = next(_frame_ids)
        new.trace_state = _trace_state()
        return new

    @contextlib.contextmanager
    def module(self, state: ModuleState) -> Iterator[None]:
        """Enter a module method: new name counters for what it creates."""
        self.module_stack.append(state)
        self.counter_stack.append(collections.Counter())
        self.used_names_stack.append(set())
        try:
            yield
        finally:
            self.module_stack.pop()
            self.counter_stack.pop()
            self.used_names_stack.pop()


def frame_stack() -> list[Frame]:
    """This thread's frames, innermost last (empty outside transforms)."""
    return _local.frames


@contextlib.contextmanager
def push_frame(frame: Frame) -> Iterator[Frame]:
    """Make ``frame`` the current one inside the ``with`` block."""
    _local.frames.append(frame)
    try:
        yield frame
    finally:
        _local.frames.pop()


def inside_transform() -> bool:
    """Whether code runs inside ``init`` or ``apply`` of a transformed function."""
    return bool(_local.frames)


def assert_context(symbol: str) -> Frame:
    """The current frame; a clear error naming ``hk.<symbol>`` outside one."""
    if not _local.frames:
        raise ValueError(
            f"`hk.{symbol}` must be used as part of an `hk.transform`: call it "
            "from the function you pass to `hk.transform` / "
            "`hk.transform_with_state` (or from a module method called there)."
        )
    return _local.frames[-1]


class JaxUsageError(ValueError):
    """A Haiku API with side effects ran inside a raw JAX transform.

    Raised only with ``hk.config.check_jax_usage`` on; see
    ``hk.experimental.check_jax_usage``.
    """


def _jax_usage_error(symbol: str) -> JaxUsageError:
    return JaxUsageError(
        "tl;dr - You need to use a Haiku overloaded transform (e.g. `hk.vmap`) "
        "or control flow operator (e.g. `hk.cond`) instead of the `jax.*` "
        "equivalent for untransformed functions using Haiku APIs.\n\n"
        f"`hk.{symbol}` was called inside a JAX transform or control-flow "
        "function (jax.jit, jax.vmap, jax.grad, jax.lax.cond, jax.lax.scan, "
        "...) that started inside the transformed function. Those expect pure "
        f"functions, and `hk.{symbol}` has a side effect (it reads or changes "
        "the parameters, state or rng of the transform), so the function "
        "passed to JAX is impure.\n\n"
        "Use the Haiku version of the JAX function (`hk.jit`, `hk.vmap`, "
        "`hk.grad`, `hk.cond`, `hk.switch`, `hk.scan`, `hk.fori_loop`, "
        "`hk.while_loop`, `hk.remat`, `hk.eval_shape`...): it makes the "
        "function pure before calling the JAX one. Or apply the JAX transform "
        "outside, to `init`/`apply` of the transformed function."
    )


def checked_frame(symbol: str) -> Frame:
    """`assert_context`, and with ``check_jax_usage`` on, that no raw JAX
    transform was entered since the frame was (raises `JaxUsageError`)."""
    frames = _local.frames
    if not frames:
        return assert_context(symbol)
    frame = frames[-1]
    if _settings.check_jax_usage and frame.trace_state != _trace_state():
        raise _jax_usage_error(symbol)
    return frame


def current_frame() -> Frame:
    """The innermost frame (call only inside a transform)."""
    return _local.frames[-1]


def params_frozen() -> bool:
    """True while running ``apply`` (parameters cannot be created)."""
    return assert_context("params_frozen").frozen


def running_init() -> bool:
    """Whether the transformed function is running ``init`` (not ``apply``).

    >>> import jax, pax.hk as hk
    >>> hk.transform(lambda: hk.running_init()).init(None)
    {}
    """
    return not assert_context("running_init").frozen


def module_name_of(module: Any) -> str:
    """``module.module_name``, checking the module may create things now."""
    name = getattr(module, "module_name", None)
    if name is None:
        raise ValueError(
            f"{type(module).__name__}: call `super().__init__()` first in "
            "`__init__`, before creating parameters or submodules."
        )
    boundaries = _local.closure_boundaries
    if boundaries and module._creation_frame_id < boundaries[-1]:
        raise ValueError(
            "You can't functionally close over a module which has been "
            "initialized outside of the function wrapped in hk.transparent_lift "
            f"or hk.layer_stack; the module is called '{name}'. Create it inside "
            "that function."
        )
    return name


def current_module() -> Any:
    """The module whose method is running (``None`` outside modules)."""
    frame = current_frame()
    return frame.module_stack[-1].module if frame.module_stack else None


def current_name() -> str:
    """The name parameters and state created here are stored under.

    ``~`` outside any module; otherwise the innermost module's (or name
    scope's) full name.

    >>> import pax.hk as hk
    >>> hk.transform(lambda: print(hk.current_name())).init(None)
    ~
    {}
    """
    assert_context("current_name")
    module = current_module()
    return "~" if module is None else module_name_of(module)


def lift_prefix() -> str | None:
    """The names of the enclosing lifted modules, while running ``init``."""
    if current_frame().frozen or not _local.lift_prefixes:
        return None
    return "/".join(_local.lift_prefixes) + "/"


# ---------------------------------------------------------------------------
# creators, getters, setters
# ---------------------------------------------------------------------------


class DoNotStore:
    """Returned by a creator/setter: keep the value out of the dictionaries.

    A getter must then supply the value (see ``hk.experimental.custom_getter``).
    """

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DO_NOT_STORE"

    @property
    def shape(self) -> Any:
        raise ValueError("DO_NOT_STORE has no shape: a custom getter must replace it")

    @property
    def dtype(self) -> Any:
        raise ValueError("DO_NOT_STORE has no dtype: a custom getter must replace it")


DO_NOT_STORE = DoNotStore()


class GetterContext(NamedTuple):
    """Where a parameter or state value is created or read.

    ``full_name`` is e.g. ``"mlp/~/linear_0/w"``; ``module_name`` and ``name``
    are its two halves.
    """

    full_name: str
    module: Any
    original_dtype: Any
    original_shape: Sequence[int] | None
    original_init: Initializer | None
    lifted_prefix_name: str | None

    @property
    def module_name(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[1]


class SetterContext(NamedTuple):
    """Where a state value is being set (see ``custom_setter``)."""

    full_name: str
    module: Any
    original_dtype: Any
    original_shape: Any
    lifted_prefix_name: str | None

    @property
    def module_name(self) -> str:
        return self.full_name.rsplit("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.rsplit("/", 1)[1]


def _chain(stack: list, call_one: Callable, last: Callable) -> Callable:
    """Run ``stack`` outermost first; each entry gets the rest as ``next``."""
    remaining = collections.deque(stack)

    def next_fn(*args):
        if not remaining:
            return last(*args)
        return call_one(remaining.popleft(), next_fn, *args)

    return next_fn


@contextlib.contextmanager
def _pushed(stacks: list[list], item: Any) -> Iterator[None]:
    for s in stacks:
        s.append(item)
    try:
        yield
    finally:
        for s in stacks:
            s.pop()


def custom_creator(
    creator: Callable[..., Any], *, params: bool = True, state: bool = False
) -> contextlib.AbstractContextManager[None]:
    """Intercept the creation of parameters (and/or state) while active.

    ``creator(next_creator, shape, dtype, init, context)`` returns the value
    (or ``DO_NOT_STORE``); ``next_creator(shape, dtype, init)`` runs the rest.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def zeros_creator(next_creator, shape, dtype, init, context):
    ...     return next_creator(shape, dtype, jnp.zeros)
    >>> def f():
    ...     with hk.custom_creator(zeros_creator):
    ...         return hk.get_parameter("w", [2], init=jnp.ones)
    >>> hk.transform(f).init(None)["~"]["w"]
    Array([0., 0.], dtype=float32)
    """
    assert_context("custom_creator")
    stacks = [
        _local.creators[k] for k, on in (("params", params), ("state", state)) if on
    ]
    return _pushed(stacks, creator)


def custom_getter(
    getter: Callable[..., Any], *, params: bool = True, state: bool = False
) -> contextlib.AbstractContextManager[None]:
    """Intercept every read of parameters (and/or state) while active.

    ``getter(next_getter, value, context)`` returns the value to use.
    """
    assert_context("custom_getter")
    stacks = [
        _local.getters[k] for k, on in (("params", params), ("state", state)) if on
    ]
    return _pushed(stacks, getter)


def custom_setter(
    setter: Callable[..., Any],
) -> contextlib.AbstractContextManager[None]:
    """Intercept ``set_state`` while active.

    ``setter(next_setter, value, context)`` returns the value to store (or
    ``DO_NOT_STORE``).
    """
    assert_context("custom_setter")
    return _pushed([_local.setters], setter)


def _create(
    kind: str, context: GetterContext, shape: Any, dtype: Any, init: Callable
) -> Any:
    """Run the ``kind`` creators (outermost first), then ``init``."""
    stack = _local.creators[kind]
    if not stack:
        return init(shape, dtype)
    run = _chain(
        stack,
        lambda creator, nxt, s, d, i: creator(nxt, s, d, i, context),
        lambda s, d, i: i(s, d),
    )
    return run(shape, dtype, init)


def _get(kind: str, context: GetterContext, value: Any) -> Any:
    """Run the ``kind`` getters (outermost first) on ``value``."""
    stack = _local.getters[kind]
    if not stack:
        return value
    run = _chain(stack, lambda getter, nxt, v: getter(nxt, v, context), lambda v: v)
    return run(value)


# ---------------------------------------------------------------------------
# parameters and state
# ---------------------------------------------------------------------------


def _no_init(shape: Any, dtype: Any) -> jax.Array:
    raise ValueError("Initializer must be specified.")


def _shape_tuple(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)


def get_parameter(
    name: str,
    shape: Sequence[int],
    dtype: Any = None,
    init: Initializer | None = None,
) -> jax.Array:
    """Create (in ``init``) or read (in ``apply``) a parameter.

    The parameter lives at ``params[current_name()][name]``; calling again with
    the same name in the same module returns the same value.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda: hk.get_parameter("w", [2], init=jnp.ones))
    >>> params = f.init(None)
    >>> params
    {'~': {'w': Array([1., 1.], dtype=float32)}}
    >>> f.apply(params, None)
    Array([1., 1.], dtype=float32)
    """
    frame = checked_frame("get_parameter")
    init = _no_init if init is None else init
    dtype = jnp.float32 if dtype is None else dtype
    bundle = current_name()
    full_name = f"{bundle}/{name}"
    context = GetterContext(
        full_name, current_module(), dtype, shape, init, lift_prefix()
    )
    values = frame.params.get(bundle)
    param = None if values is None else values.get(name)
    if param is None:
        if frame.frozen:
            param = _create_missing_at_apply(context, name, bundle, frame)
        else:
            param = _create("params", context, shape, dtype, init)
            if param is None:
                raise ValueError(
                    f"Parameters cannot be `None`: the initializer of {full_name!r} "
                    "returned None."
                )
            if param is not DO_NOT_STORE:
                frame.params.setdefault(bundle, {})[name] = param
    param = _get("params", context, param)
    if param is None or param is DO_NOT_STORE:
        raise ValueError(
            f"Parameters cannot be `None` or DO_NOT_STORE: {full_name!r} has no "
            "value (a custom getter must replace DO_NOT_STORE with an array)."
        )
    expected = _shape_tuple(shape)
    if tuple(param.shape) != expected:
        if frame.frozen:
            hint = (
                "The params given to `apply` do not fit this call: are they from "
                "another model, or were they made by `init` with inputs of "
                "another shape?"
            )
        else:
            hint = (
                "It was created earlier in this module with another shape: give "
                "each distinct parameter its own name."
            )
        raise ValueError(
            f"Parameter {full_name!r} (parameter {name!r} of module {bundle!r}) "
            f"has shape {tuple(param.shape)}, but shape {expected} (dtype "
            f"{jnp.dtype(dtype).name}) was requested. {hint}"
        )
    return param


def _create_missing_at_apply(
    context: GetterContext, name: str, bundle: str, frame: Frame
) -> Any:
    """A parameter absent from the params given to ``apply``.

    Only creators (or an initializer) that return ``DO_NOT_STORE`` may supply
    it (a custom getter then provides the value); anything else is an error
    naming the parameter and its module.
    """
    error = ValueError(
        f"Unable to retrieve parameter {name!r} for module {bundle!r}: it is not "
        f"in the params given to `apply` (modules there: "
        f"{_preview(frame.params)}). All parameters must be created as part of "
        "`init`, by the same function with the same arguments."
    )
    try:
        value = _create(
            "params",
            context,
            context.original_shape,
            context.original_dtype,
            context.original_init,
        )
    except Exception as e:  # noqa: BLE001 - the missing parameter is the cause
        raise error from e
    if value is not DO_NOT_STORE:
        raise error
    return value


def _preview(mapping: Mapping, limit: int = 8) -> str:
    names = list(mapping)
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(repr(n) for n in names[:limit]) + more or "none"


def get_state(
    name: str,
    shape: Sequence[int] | None = None,
    dtype: Any = jnp.float32,
    init: Initializer | None = None,
) -> jax.Array:
    """Read state ``name`` of the current module, creating it with ``init``.

    Needs ``hk.transform_with_state``. See ``set_state``.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> def f():
    ...     count = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
    ...     hk.set_state("count", count + 1)
    ...     return count
    >>> f = hk.transform_with_state(f)
    >>> params, state = f.init(None)
    >>> out, state = f.apply(params, state, None)
    >>> int(out), int(state["~"]["count"])
    (0, 1)
    """
    frame = checked_frame("get_state")
    bundle = current_name()
    values = frame.state.setdefault(bundle, {})
    context = GetterContext(
        f"{bundle}/{name}", current_module(), dtype, shape, init, lift_prefix()
    )
    pair = values.get(name)
    if pair is None:
        if init is None:
            raise ValueError(
                f"No value for state {name!r} in module {bundle!r}: pass an "
                "`init` (and shape, dtype) or call `hk.set_state` first."
            )
        if shape is None or dtype is None:
            raise ValueError(
                f"State {name!r} in module {bundle!r}: shape and dtype are "
                "needed to initialise it."
            )
        value = _create("state", context, shape, dtype, init)
        if value is not DO_NOT_STORE:
            values[name] = StatePair(value, value)
    else:
        value = pair.current
    if not values:
        del frame.state[bundle]
    return _get("state", context, value)


def set_state(name: str, value: Any) -> None:
    """Set state ``name`` of the current module (see ``get_state``).

    During ``init`` the first value set is the initial state ``init`` returns.
    """
    frame = checked_frame("set_state")
    bundle = current_name()
    if _local.setters:
        context = SetterContext(
            f"{bundle}/{name}",
            current_module(),
            jax.tree_util.tree_map(lambda x: getattr(x, "dtype", None), value),
            jax.tree_util.tree_map(lambda x: getattr(x, "shape", None), value),
            lift_prefix(),
        )
        run = _chain(_local.setters, lambda s, nxt, v: s(nxt, v, context), lambda v: v)
        value = run(value)
        if value is DO_NOT_STORE:
            return
    values = frame.state.setdefault(bundle, {})
    pair = values.get(name)
    values[name] = StatePair(value if pair is None else pair.initial, value)


# ---------------------------------------------------------------------------
# randomness
# ---------------------------------------------------------------------------


class MissingRNGError(ValueError):
    """Random numbers were requested but no key was given to init/apply."""


_RAW_KEY_SHAPES: dict[str, tuple[int, ...]] = {}


def _raw_key_shape() -> tuple[int, ...]:
    """The shape of a raw ``uint32`` key of the default PRNG implementation
    (``(2,)`` for threefry, ``(4,)`` for rbg)."""
    impl = jax.config.jax_default_prng_impl
    shape = _RAW_KEY_SHAPES.get(impl)
    if shape is None:
        data = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
        shape = _RAW_KEY_SHAPES[impl] = tuple(data.shape)
    return shape


def _is_typed_key(x: Any) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _is_key(x: Any) -> bool:
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        return False
    if _is_typed_key(x):
        return x.ndim == 0
    return x.dtype == jnp.uint32 and tuple(x.shape) == _raw_key_shape()


def _check_key(key: Any) -> None:
    """Raise a ValueError unless ``key`` is one PRNG key (typed or raw)."""
    if _is_key(key):
        return
    if not (hasattr(key, "shape") and hasattr(key, "dtype")):
        raise ValueError(
            f"The provided key is not a JAX PRNGKey but a {type(key)}: "
            f"{key!r:.60}. Pass jax.random.PRNGKey(seed) or jax.random.key(seed)."
        )
    actual = f"actual=(shape={tuple(key.shape)}, dtype={key.dtype})"
    if _is_typed_key(key):
        expected = f"expected=(shape=(), dtype={key.dtype})"
        hint = " Pass one key, not a batch of keys."
    else:
        expected = f"expected=(shape={_raw_key_shape()}, dtype=uint32)"
        hint = " Pass one key (jax.random.PRNGKey(seed)), not a batch of keys."
        impl = jax.config.jax_default_prng_impl
        if _raw_key_shape() != (2,):
            hint += (
                f" Note: jax_default_prng_impl is {impl!r}; a key made before "
                "that was set has another shape."
            )
    raise ValueError(
        f"Provided key did not have expected shape and/or dtype: {expected}, "
        f"{actual}.{hint}"
    )


class PRNGSequence(Iterator[jax.Array]):
    """An iterator of random keys split from one key (or an int seed).

    ``next(seq)`` splits a fresh key; ``reserve(n)`` splits ``n`` at once
    (``split(key, n + 1)``: the first becomes the new key, the others are
    handed out in order); ``take(n)`` returns ``n`` keys.

    >>> import jax, pax.hk as hk
    >>> seq = hk.PRNGSequence(42)
    >>> k1, k2 = next(seq), next(seq)
    >>> bool((k1 != k2).any())
    True
    >>> len(seq.take(3))
    3
    """

    __slots__ = ("_key", "_subkeys")

    def __init__(self, key_or_seed: Any):
        if isinstance(key_or_seed, tuple):
            key, subkeys = key_or_seed
            for k in (key, *subkeys):
                _check_key(k)
            self._key, self._subkeys = key, collections.deque(subkeys)
            return
        if isinstance(key_or_seed, (int, np.integer)) and not isinstance(
            key_or_seed, bool
        ):
            key_or_seed = jax.random.PRNGKey(key_or_seed)
        elif (
            hasattr(key_or_seed, "shape")
            and key_or_seed.shape == ()
            and getattr(key_or_seed, "dtype", None) == jnp.int32
        ):
            key_or_seed = jax.random.PRNGKey(key_or_seed)
        else:
            _check_key(key_or_seed)
        self._key = key_or_seed
        self._subkeys: collections.deque = collections.deque()

    def reserve(self, num: int) -> None:
        """Split ``num`` more keys now, for later ``next`` calls."""
        if num > 0:
            keys = tuple(jax.random.split(self._key, num + 1))
            self._key = keys[0]
            self._subkeys.extend(keys[1:])

    def reserve_up_to_full(self) -> None:
        """Hold exactly ``rng_reserve_size`` split keys (see ``hk.config``)."""
        size = config.get_config().rng_reserve_size
        if len(self._subkeys) < size:
            self.reserve(size - len(self._subkeys))
        elif len(self._subkeys) > size:
            self._subkeys = collections.deque(list(self._subkeys)[:size])

    @property
    def internal_state(self) -> tuple[Any, tuple]:
        return self._key, tuple(self._subkeys)

    def replace_internal_state(self, state: tuple[Any, tuple]) -> None:
        key, subkeys = state
        for k in (key, *subkeys):
            _check_key(k)
        self._key, self._subkeys = key, collections.deque(subkeys)

    def __next__(self) -> jax.Array:
        if not self._subkeys:
            self.reserve(config.get_config().rng_reserve_size)
        return self._subkeys.popleft()

    next = __next__

    def peek(self) -> jax.Array:
        """The key ``next`` would return, without consuming it."""
        if not self._subkeys:
            self.reserve(config.get_config().rng_reserve_size)
        return self._subkeys[0]

    def take(self, num: int) -> tuple[jax.Array, ...]:
        """``num`` keys, as a tuple."""
        self.reserve(max(num - len(self._subkeys), 0))
        return tuple(next(self) for _ in range(num))


def to_prng_sequence(rng: Any, err_msg: str) -> PRNGSequence | None:
    if rng is None:
        return None
    if isinstance(rng, PRNGSequence):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return PRNGSequence(int(rng))
    try:
        return PRNGSequence(rng)
    except ValueError as e:
        raise ValueError(f"{err_msg} {e}") from None


def _rng_seq(symbol: str) -> PRNGSequence:
    seq = checked_frame(symbol).rng_stack[-1]
    if seq is None:
        raise MissingRNGError(
            f"`hk.{symbol}` requires an RNG to be passed into the transformed "
            "function: you must pass a non-None PRNGKey to init and/or apply if "
            "you make use of random numbers, e.g. "
            "`f.init(jax.random.PRNGKey(42), ...)` / `f.apply(params, key, ...)`."
        )
    return seq


def next_rng_key() -> jax.Array:
    """A fresh random key from the key given to ``init``/``apply``.

    >>> import jax, pax.hk as hk
    >>> f = hk.transform(lambda: jax.random.uniform(hk.next_rng_key(), ()))
    >>> bool(f.apply({}, jax.random.PRNGKey(0)) < 1)
    True
    """
    return next(_rng_seq("next_rng_key"))


def next_rng_keys(num: int) -> jax.Array:
    """``num`` fresh keys stacked into one array ``[num, ...]``."""
    return jnp.stack(_rng_seq("next_rng_keys").take(num))


def maybe_next_rng_key() -> jax.Array | None:
    """``next_rng_key()`` when a key was given, else ``None``."""
    seq = assert_context("maybe_next_rng_key").rng_stack[-1]
    if seq is None:
        return None
    checked_frame("maybe_next_rng_key")
    return next(seq)


def reserve_rng_keys(num: int) -> None:
    """Split ``num`` keys at once for the next ``next_rng_key`` calls."""
    _rng_seq("reserve_rng_keys").reserve(num)


def maybe_get_rng_sequence_state() -> tuple[Any, tuple] | None:
    """The current rng sequence's internal state, or ``None`` without a key."""
    seq = assert_context("maybe_get_rng_sequence_state").rng_stack[-1]
    return None if seq is None else seq.internal_state


def replace_rng_sequence_state(state: tuple[Any, Sequence[Any]]) -> None:
    """Replace the current rng sequence's internal state."""
    _rng_seq("replace_rng_sequence_state").replace_internal_state(state)


def with_rng(key: jax.Array | int) -> contextlib.AbstractContextManager[None]:
    """Draw ``next_rng_key`` from ``key`` inside the ``with`` block.

    >>> import jax, pax.hk as hk
    >>> def f():
    ...     with hk.with_rng(jax.random.PRNGKey(428)):
    ...         return hk.next_rng_key()
    >>> k = hk.transform(f).apply({}, None)
    >>> k.shape
    (2,)
    """
    frame = checked_frame("with_rng")
    return _pushed([frame.rng_stack], PRNGSequence(key))


# ---------------------------------------------------------------------------
# collecting results
# ---------------------------------------------------------------------------


def collect_params(frame: Frame) -> dict:
    return {m: dict(v) for m, v in frame.params.items() if v}


def collect_state(frame: Frame, *, initial: bool) -> dict:
    return {
        m: {k: (p.initial if initial else p.current) for k, p in v.items()}
        for m, v in frame.state.items()
        if v
    }


def state_from_mapping(state: Mapping | None) -> dict:
    return {
        m: {k: StatePair(v, v) for k, v in values.items()}
        for m, values in (state or {}).items()
    }


def get_params() -> dict:
    """The parameters of the current transform so far (a copy)."""
    return collect_params(assert_context("get_params"))


def get_initial_state() -> dict:
    """The initial state of the current transform so far (a copy)."""
    return collect_state(assert_context("get_initial_state"), initial=True)


def get_current_state() -> dict:
    """The current state of the current transform (a copy)."""
    return collect_state(assert_context("get_current_state"), initial=False)

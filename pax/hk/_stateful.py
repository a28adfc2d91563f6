"""JAX transforms lifted into ``pax.hk``: ``scan``, ``cond``, ``vmap``, ...

Inside a transformed function, parameters, state and the rng sequence live
in a Python frame, which ``jax.lax.scan`` and friends cannot see. Each lifted
transform here packs them into a pytree (``InternalState``), threads that
through the JAX transform explicitly, and writes the result back to the
frame afterwards. ``init`` creates parameters eagerly where the loop cannot:
``scan`` / ``fori_loop`` run their first step outside the loop, ``map`` is a
``scan``, ``while_loop`` refuses to run during ``init``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _base


class InternalState(NamedTuple):
    """Parameters, state and rng of a frame, as one pytree."""

    params: Any
    state: Any
    rng: Any


def _copy(tree: Any) -> Any:
    """A copy of nested dicts (leaves shared)."""
    if isinstance(tree, Mapping):
        return {k: _copy(v) for k, v in tree.items()}
    return tree


def internal_state(*, params: bool = True) -> InternalState:
    frame = _base.current_frame()
    seq = frame.rng_stack[-1]
    return InternalState(
        _copy(frame.params) if params else None,
        _copy(frame.state),
        None if seq is None else seq.internal_state,
    )


def _update(dst: dict, src: Mapping) -> None:
    for k, v in src.items():
        if isinstance(v, Mapping):
            _update(dst.setdefault(k, {}), v)
        elif v is not None:
            dst[k] = v


def update_internal_state(state: InternalState) -> None:
    frame = _base.current_frame()
    if not frame.frozen and state.params is not None:
        _update(frame.params, state.params)
    _update(frame.state, state.state)
    if state.rng is not None:
        frame.rng_stack[-1].replace_internal_state(state.rng)


@contextlib.contextmanager
def temporary_internal_state(state: InternalState, *, share_python_state=False):
    """Run with a frame holding ``state``'s values (copies of the dicts)."""
    state = InternalState(*(_copy(x) for x in state))
    rng = None if state.rng is None else _base.PRNGSequence(state.rng)
    current = internal_state()
    params = current.params if state.params is None else state.params
    values = current.state if state.state is None else state.state
    frame = _base.current_frame().evolve(
        params, values, rng, decoupled=not share_python_state
    )
    with _base.push_frame(frame):
        yield


def reserve_up_to_full_rng_block() -> None:
    """Keep the rng sequence's shape fixed (one reserved key) across steps."""
    seq = _base.current_frame().rng_stack[-1]
    if seq is not None:
        seq.reserve_up_to_full()


class _Box:
    def __init__(self, value):
        self.value = value


def _boxed_pairs(before: Mapping, after: Mapping):
    """Two ``{module: {name: _Box}}`` trees over ``after``'s keys."""
    out_before = {m: {} for m in after}
    out_after = {m: {} for m in after}
    for m, values in after.items():
        for name, value in values.items():
            out_after[m][name] = _Box(value)
            old = before.get(m, {}).get(name) if before is not None else None
            out_before[m][name] = _Box(old)
    return out_before, out_after


def difference(before: InternalState, after: InternalState) -> InternalState:
    """Only what changed between two internal states (the rest ``None``)."""

    def changed(is_new, a, b):
        if a.value is None or is_new(a.value, b.value):
            return b.value
        return None

    def is_box(x):
        return isinstance(x, _Box)

    params = None
    if after.params is not None:
        pb, pa = _boxed_pairs(before.params or {}, after.params)
        params = jax.tree_util.tree_map(
            functools.partial(changed, lambda a, b: a is not b), pb, pa, is_leaf=is_box
        )
    sb, sa = _boxed_pairs(before.state or {}, after.state)
    state = jax.tree_util.tree_map(
        functools.partial(
            changed,
            lambda a, b: a.initial is not b.initial or a.current is not b.current,
        ),
        sb,
        sa,
        is_leaf=is_box,
    )
    rng = after.rng
    if before.rng is not None and after.rng is not None:
        (key_b, subkeys_b), (key_a, subkeys_a) = before.rng, after.rng
        same = (
            key_b is key_a
            and len(subkeys_b) == len(subkeys_a)
            and all(b is a for b, a in zip(subkeys_b, subkeys_a))
        )
        rng = None if same else after.rng
    return InternalState(params, state, rng)


def _require_transform(name: str, jax_name: str) -> None:
    if not _base.inside_transform():
        raise ValueError(
            f"hk.{name}() should not be used outside of hk.transform(): use "
            f"{jax_name}() instead."
        )


# ---------------------------------------------------------------------------
# function transforms: grad, value_and_grad, jit, remat, eval_shape
# ---------------------------------------------------------------------------


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False):
    """``jax.value_and_grad`` for code that uses state inside a transform."""
    if not _base.inside_transform():
        raise ValueError(
            "hk.value_and_grad() should not be used outside of hk.transform(): "
            "use jax.value_and_grad() instead."
        )

    def stateful_fun(*args, **kwargs):
        state_in = kwargs.pop("hk_state")
        with temporary_internal_state(state_in, share_python_state=True):
            out = fun(*args, **kwargs)
            out, aux = out if has_aux else (out, None)
            return out, (aux, difference(state_in, internal_state()))

    grad_fun = jax.value_and_grad(
        stateful_fun, argnums=argnums, has_aux=True, holomorphic=holomorphic
    )

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        kwargs["hk_state"] = internal_state()
        (value, (aux, state)), grads = grad_fun(*args, **kwargs)
        update_internal_state(state)
        return ((value, aux) if has_aux else value), grads

    return wrapper


def grad(fun, argnums=0, has_aux=False, holomorphic=False):
    """``jax.grad`` for code that uses state inside a transform.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     def g(x):
    ...         hk.set_state("last", x ** 2)
    ...         return x ** 2
    ...     return hk.grad(g)(x)
    >>> f = hk.transform_with_state(f)
    >>> params, state = f.init(None, jnp.array(3.0))
    >>> float(state["~"]["last"])
    9.0
    """
    vg = value_and_grad(fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic)

    @functools.wraps(fun)
    def grad_fn(*args, **kwargs):
        value, grads = vg(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return grad_fn


def _thread_state(name: str, transform: Callable) -> Callable:
    """Wrap a JAX function transform so Haiku state flows through it."""

    def lifted(fun, *t_args, **t_kwargs):
        _require_transform(name, f"jax.{name}")

        def stateful_fun(*args, **kwargs):
            state_in = kwargs.pop("hk_state")
            with temporary_internal_state(state_in, share_python_state=True):
                out = fun(*args, **kwargs)
                return out, difference(state_in, internal_state())

        transformed = transform(stateful_fun, *t_args, **t_kwargs)

        @functools.wraps(fun)
        def wrapper(*args, **kwargs):
            kwargs["hk_state"] = internal_state()
            out, state = transformed(*args, **kwargs)
            update_internal_state(state)
            return out

        return wrapper

    lifted.__name__ = name
    lifted.__doc__ = f"``jax.{name}`` for code that uses Haiku state."
    return lifted


jit = _thread_state("jit", jax.jit)


def _remat_transform(f, *args, **kwargs):
    def call(*a, **k):
        return jax.checkpoint(lambda *a2, **k2: f(*a2, **k2), *args, **kwargs)(*a, **k)

    return call


remat = _thread_state("remat", _remat_transform)


def eval_shape(fun, *args, **kwargs):
    """``jax.eval_shape`` of code that uses modules (nothing is stored)."""
    _require_transform("eval_shape", "jax.eval_shape")

    def stateless(state, *args, **kwargs):
        with temporary_internal_state(state):
            return fun(*args, **kwargs)

    return jax.eval_shape(stateless, internal_state(), *args, **kwargs)


# ---------------------------------------------------------------------------
# control flow: cond, switch, scan, map, fori_loop, while_loop
# ---------------------------------------------------------------------------


def _stateful_branch(branch):
    def run(operand):
        state, operands = operand
        with temporary_internal_state(state):
            out = branch(*operands)
            reserve_up_to_full_rng_block()
            return out, internal_state()

    return run


def _stateful_branches(branches: Sequence[Callable]) -> list[Callable]:
    """`_stateful_branch` of each branch, one wrapper per distinct function,
    so JAX traces a function given for several branches once (as
    ``jax.lax.cond(p, f, f, x)`` does)."""
    wrapped: dict[int, Callable] = {}
    out = []
    for branch in branches:
        fn = wrapped.get(id(branch))
        if fn is None:
            fn = wrapped[id(branch)] = _stateful_branch(branch)
        out.append(fn)
    return out


_INIT_HINT = (
    "Hint: hk.cond / hk.switch at init with branches that create different "
    "parameters or state gives branch outputs of different structure. At init "
    "create the parameters of every branch unconditionally, and use the "
    "conditional at apply only:\n\n"
    "    if hk.running_init():\n"
    "        for branch in branches:\n"
    "            out = branch(x)\n"
    "    else:\n"
    "        out = hk.switch(index, branches, x)"
)


def _with_init_hint(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except TypeError as e:
            if not _base.params_frozen() and "structure" in str(e):
                raise TypeError(f"{e}\n\n{_INIT_HINT}") from e
            raise

    return wrapper


_NO_OPERAND = object()


@_with_init_hint
def cond(pred, true_fun, false_fun, *operands, operand=_NO_OPERAND):
    """``jax.lax.cond`` for code using modules, state and rng keys.

    ``hk.cond(pred, true_fun, false_fun, *operands)``; the older form
    ``hk.cond(pred, true_operand, true_fun, false_operand, false_fun)`` (each
    branch with its own operand) is accepted too. A function given for both
    branches is traced once.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     return hk.cond(x > 0, lambda x: x * 2, lambda x: -x, x)
    >>> float(hk.transform(f).apply({}, None, jnp.array(-3.0)))
    3.0
    >>> def g(x):  # the 5-argument form
    ...     return hk.cond(x > 0, x, lambda x: x * 2, 10.0, lambda y: y + 1)
    >>> float(hk.transform(g).apply({}, None, jnp.array(-3.0)))
    11.0
    """
    _require_transform("cond", "jax.lax.cond")
    if (
        operand is _NO_OPERAND
        and len(operands) == 2
        and callable(false_fun)
        and callable(operands[1])
    ):
        # hk.cond(pred, true_operand, true_fun, false_operand, false_fun)
        true_operand, true_f, false_operand, false_f = true_fun, false_fun, *operands

        def true_fun(ops, f=true_f):
            return f(ops[0])

        def false_fun(ops, f=false_f):
            return f(ops[1])

        operands = ((true_operand, false_operand),)
    elif operand is not _NO_OPERAND:
        if operands:
            raise ValueError(
                "hk.cond: when the operand keyword argument is used you cannot "
                f"also pass operands positionally. Got operand={operand!r:.60} "
                f"and *operands={operands!r:.60}"
            )
        operands = (operand,)
    reserve_up_to_full_rng_block()
    state = internal_state()
    true_branch, false_branch = _stateful_branches([true_fun, false_fun])
    out, state = jax.lax.cond(pred, true_branch, false_branch, (state, operands))
    update_internal_state(state)
    return out


@_with_init_hint
def switch(index, branches: Sequence[Callable], *operands):
    """``jax.lax.switch`` for code using modules, state and rng keys.

    A function given for several branches is traced once.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> def f(i, x):
    ...     return hk.switch(i, [lambda x: x + 1, lambda x: x * 10], x)
    >>> float(hk.transform(f).apply({}, None, 1, jnp.array(2.0)))
    20.0
    """
    _require_transform("switch", "jax.lax.switch")
    reserve_up_to_full_rng_block()
    state = internal_state()
    out, state = jax.lax.switch(
        index, tuple(_stateful_branches(branches)), (state, operands)
    )
    update_internal_state(state)
    return out


@contextlib.contextmanager
def _no_new_parameters(where: str):
    frame = _base.current_frame()
    before = {(m, n) for m, values in frame.params.items() for n in values}
    yield
    after = {(m, n) for m, values in frame.params.items() for n in values}
    new = sorted(after - before)
    if new:
        names = ", ".join(f"{m}/{n}" for m, n in new[:5])
        raise ValueError(
            f"hk.{where}: parameters were created inside the loop body after "
            f"its first step ({names}). Create every parameter in the first "
            "step (the body must create the same modules each step)."
        )


def scan(f, init, xs, length=None, reverse=False, unroll=1):
    """``jax.lax.scan`` for code using modules.

    During ``init`` the first step runs outside the loop, so it creates the
    parameters (which every step then shares).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(xs):
    ...     def step(c, x):
    ...         w = hk.get_parameter("w", [], init=jnp.ones)
    ...         return c + w * x, c
    ...     return hk.scan(step, 0.0, xs)
    >>> f = hk.transform(f)
    >>> params = f.init(None, jnp.arange(3.0))
    >>> carry, ys = f.apply(params, None, jnp.arange(3.0))
    >>> float(carry), ys.tolist()
    (3.0, [0.0, 0.0, 1.0])
    """
    _require_transform("scan", "jax.lax.scan")
    if length is None:
        length = jax.tree_util.tree_leaves(xs)[0].shape[0]
    running_init = not _base.params_frozen()
    if running_init:
        if not length:
            x0 = jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape[1:], x.dtype), xs)
            _, y0 = f(init, x0)
            return init, jax.tree_util.tree_map(
                lambda y: jnp.zeros((0, *y.shape), y.dtype), y0
            )
        pick = -1 if reverse else 0
        x0 = jax.tree_util.tree_map(lambda x: x[pick], xs)
        xs = jax.tree_util.tree_map(lambda x: x[:-1] if reverse else x[1:], xs)
        init, y0 = f(init, x0)
        y0 = jax.tree_util.tree_map(lambda y: jnp.expand_dims(y, 0), y0)
        length -= 1
        if not length:
            return init, y0

    def step(carry, x):
        carry, state = carry
        with temporary_internal_state(state):
            with _no_new_parameters("scan"):
                carry, out = f(carry, x)
            reserve_up_to_full_rng_block()
            return (carry, internal_state(params=False)), out

    reserve_up_to_full_rng_block()
    (carry, state), ys = jax.lax.scan(
        step,
        (init, internal_state(params=False)),
        xs,
        length=length,
        reverse=reverse,
        unroll=unroll,
    )
    update_internal_state(state)
    if running_init:
        ys = jax.tree_util.tree_map(
            lambda y0, ys: jnp.concatenate([ys, y0] if reverse else [y0, ys]), y0, ys
        )
    return carry, ys


def map(f, xs):  # noqa: A001 - Haiku's name
    """``jax.lax.map`` for code using modules (a ``scan`` without carry)."""
    _, ys = scan(lambda _, x: ((), f(x)), (), xs)
    return ys


def fori_loop(lower, upper, body_fun, init_val):
    """``jax.lax.fori_loop`` for code using modules.

    During ``init`` the first iteration runs outside the loop.
    """
    _require_transform("fori_loop", "jax.lax.fori_loop")

    def body(i, val):
        state, val = val
        with temporary_internal_state(state):
            val = body_fun(i, val)
            reserve_up_to_full_rng_block()
            return internal_state(), val

    if not _base.params_frozen():
        init_val = body_fun(lower, init_val)
        lower += 1
        try:
            if upper - lower == 0:
                return init_val
        except jax.errors.ConcretizationTypeError:
            pass
    reserve_up_to_full_rng_block()
    state, val = jax.lax.fori_loop(lower, upper, body, (internal_state(), init_val))
    update_internal_state(state)
    return val


def while_loop(cond_fun, body_fun, init_val):
    """``jax.lax.while_loop`` for code using modules (apply only: at init,
    run the body unconditionally under ``hk.running_init()``)."""
    _require_transform("while_loop", "jax.lax.while_loop")
    if not _base.params_frozen():
        raise ValueError(
            "hk.while_loop does not support initialization (whether the loop "
            "runs at least once is not known statically). Run the body "
            "unconditionally at init:\n\n    if hk.running_init():\n        val "
            "= body(val)\n    else:\n        val = hk.while_loop(cond, body, val)"
        )

    def pure_cond(val):
        val, state = val
        with temporary_internal_state(state):
            before = internal_state()
            out = cond_fun(val)
            after = internal_state()
            if jax.tree_util.tree_leaves(difference(before, after)):
                raise ValueError(
                    "`hk.while_loop` does not support `hk.set_state`, "
                    "`hk.next_rng_key` (et al) in `cond_fun`: the loop "
                    "condition must not change state or draw rng keys."
                )
            return out

    def pure_body(val):
        val, state = val
        with temporary_internal_state(state):
            val = body_fun(val)
            reserve_up_to_full_rng_block()
            return val, internal_state()

    reserve_up_to_full_rng_block()
    val, state = jax.lax.while_loop(pure_cond, pure_body, (init_val, internal_state()))
    update_internal_state(state)
    return val


# ---------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------


_REQUIRED: Any = object()  # hk.vmap's split_rng when not given


def _mapped_size(args, in_axes) -> int:
    sizes = set()

    def visit(axis, arg):
        if axis is not None:
            for leaf in jax.tree_util.tree_leaves(arg):
                sizes.add(leaf.shape[axis])

    if isinstance(in_axes, int):
        for arg in args:
            visit(in_axes, arg)
    else:
        jax.tree_util.tree_map(visit, in_axes, args, is_leaf=lambda x: x is None)
    if len(sizes) != 1:
        raise ValueError(
            f"hk.vmap: arrays must have the same mapped axis size, got {sorted(sizes)}"
        )
    return sizes.pop()


def vmap(
    fun: Callable[..., Any],
    in_axes=0,
    out_axes=0,
    axis_name: str | None = None,
    axis_size: int | None = None,
    *,
    split_rng: bool = _REQUIRED,
    spmd_axis_name: Any = None,
) -> Callable[..., Any]:
    """``jax.vmap`` for code using modules: parameters and state are shared
    along the mapped axis; with ``split_rng=True`` each element draws
    different random keys.

    ``split_rng`` must be given, unless ``hk.vmap.require_split_rng`` is set
    to ``False`` (then it defaults to ``False``), as in Haiku.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     w = hk.get_parameter("w", [], init=jnp.ones)
    ...     return hk.vmap(lambda x: x * w, split_rng=False)(x)
    >>> f = hk.transform(f)
    >>> f.apply(f.init(None, jnp.arange(3.0)), None, jnp.arange(3.0))
    Array([0., 1., 2.], dtype=float32)
    """
    if split_rng is _REQUIRED:
        if vmap.require_split_rng:
            raise TypeError(
                "hk.vmap requires the split_rng argument: pass split_rng=True "
                "(each mapped element draws different keys from "
                "hk.next_rng_key) or split_rng=False (all draw the same keys). "
                "For old code you cannot change, opt out with "
                "`hk.vmap.require_split_rng = False` (split_rng then defaults "
                "to False)."
            )
        split_rng = False
    if not jax.tree_util.tree_leaves(in_axes):
        raise ValueError(
            f"{getattr(fun, '__name__', 'fun')} must have at least one non-None "
            "value in in_axes to use with `hk.vmap`."
        )
    in_axes_t = tuple(in_axes) if isinstance(in_axes, list) else in_axes
    state_axes = InternalState(None, None, 0 if split_rng else None)

    def pure_fun(args, state_in):
        if split_rng:
            rng = _base.PRNGSequence(state_in.rng).internal_state
            state_in = InternalState(state_in.params, state_in.state, rng)
        with temporary_internal_state(state_in):
            out = fun(*args)
            return out, difference(state_in, internal_state())

    @functools.wraps(fun)
    def mapped(*args):
        _base.assert_context("vmap")
        mapped_fun = jax.vmap(
            pure_fun,
            in_axes=(in_axes_t, state_axes),
            out_axes=(out_axes, state_axes),
            axis_name=axis_name,
            axis_size=axis_size,
            spmd_axis_name=spmd_axis_name,
        )
        state = internal_state()
        saved_rng = None
        if split_rng:
            size = axis_size if axis_size is not None else _mapped_size(args, in_axes_t)
            keys = _base.next_rng_keys(size)
            state = internal_state()
            saved_rng = state.rng
            state = InternalState(state.params, state.state, keys)
        try:
            out, state = mapped_fun(args, state)
        except ValueError as err:
            if split_rng and not _base.params_frozen() and "out_axes" in str(err):
                raise ValueError(
                    "hk.vmap does not support setting split_rng to True during "
                    "initialization: parameters are shared along the mapped "
                    "axis, so they cannot be created from per-element keys. "
                    "Use `split_rng=(not hk.running_init())`."
                ) from err
            raise
        if split_rng:
            state = InternalState(state.params, state.state, saved_rng)
        update_internal_state(state)
        return out

    return mapped


vmap.require_split_rng = True

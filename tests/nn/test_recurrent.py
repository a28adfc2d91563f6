"""Recurrent cores and unrolls: hand-written equations, unroll variants against
a manual loop, DeepRNN / skip connections / ResetCore, gradients, dtypes,
Haiku parity and error messages."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import (
    GRU,
    LSTM,
    DeepRNN,
    IdentityCore,
    LSTMState,
    ResetCore,
    VanillaRNN,
    deep_rnn_with_skip_connections,
    dynamic_unroll,
    static_unroll,
)
from pax.nn._linear import Linear


# jax.random compiles anew for every shape, which dominates small CPU tests:
# data and stand-in initializers come from numpy.
def normal(seed, shape, scale=1.0):
    return jnp.asarray(
        scale * np.random.default_rng(seed).normal(size=shape), jnp.float32
    )


def W_INIT(rng_key, shape, dtype=jnp.float32):
    """A random initializer (``init(rng_key, shape, dtype)``) backed by numpy."""
    seed = int(np.asarray(jax.random.key_data(rng_key)).ravel()[-1])
    return normal(seed, shape, 0.5).astype(dtype)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def f64(x):
    return np.asarray(x, np.float64)


def assert_close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=tol, atol=tol)


def assert_trees_close(a, b, tol=1e-6):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def make_lstm(key, i=3, h=4, fgb=0.0):
    lstm = LSTM(i, h, w_init=W_INIT, forget_gate_bias=fgb, rng_key=key)
    bias = normal(7, (4 * h,), 0.5)
    return lstm.replace(linear=lstm.linear.replace(bias=bias))


def make_gru(key, i=3, h=4):
    return GRU(i, h, W_INIT, W_INIT, W_INIT, rng_key=key)


def make_vanilla(key, i=3, h=4, double_bias=True):
    return VanillaRNN(
        i,
        h,
        double_bias=double_bias,
        w_i_init=W_INIT,
        w_h_init=W_INIT,
        b_init=W_INIT,
        rng_key=key,
    )


# ---------------------------------------------------------------------------
# the equations, by hand (numpy, float64)
# ---------------------------------------------------------------------------


def np_lstm(weight, bias, fgb, h, c, x):
    n = h.shape[-1]
    z = np.concatenate([x, h], axis=-1) @ f64(weight) + f64(bias)
    i, g, f, o = z[..., :n], z[..., n : 2 * n], z[..., 2 * n : 3 * n], z[..., 3 * n :]
    c_new = sigmoid(f + fgb) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def np_gru(w_i, w_h, b, h, x):
    n = h.shape[-1]
    w_i, w_h, b = f64(w_i), f64(w_h), f64(b)
    z = sigmoid(x @ w_i[:, :n] + h @ w_h[:, :n] + b[:n])
    r = sigmoid(x @ w_i[:, n : 2 * n] + h @ w_h[:, n : 2 * n] + b[n : 2 * n])
    a = np.tanh(x @ w_i[:, 2 * n :] + (r * h) @ w_h[:, 2 * n :] + b[2 * n :])
    return (1 - z) * h + z * a


@pytest.mark.parametrize("fgb", [0.0, 1.0, -0.7])
@pytest.mark.parametrize("batch", [(2,), ()])
def test_lstm_gate_equations(fgb, batch, key):
    lstm = make_lstm(key, fgb=fgb)
    x, h, c = normal(1, (*batch, 3)), normal(2, (*batch, 4)), normal(3, (*batch, 4))
    state, y = lstm(LSTMState(h, c), x)
    want_h, want_c = np_lstm(
        lstm.linear.weight, lstm.linear.bias, fgb, f64(h), f64(c), f64(x)
    )
    assert isinstance(state, LSTMState)
    assert_close(state.hidden, want_h)
    assert_close(state.cell, want_c)
    assert_close(y, want_h)
    assert lstm.linear.weight.shape == (7, 16)


def test_lstm_forget_gate_bias_changes_the_cell(key):
    x, h, c = normal(1, (2, 3)), normal(2, (2, 4)), normal(3, (2, 4))
    lstm = make_lstm(key)
    base, _ = lstm(LSTMState(h, c), x)
    shifted, _ = lstm.replace(forget_gate_bias=2.0)(LSTMState(h, c), x)
    assert not np.allclose(base.cell, shifted.cell)


@pytest.mark.parametrize("batch", [(2,), ()])
def test_gru_update_equations(batch, key):
    gru = make_gru(key)
    x, h = normal(1, (*batch, 3)), normal(2, (*batch, 4))
    state, y = gru(h, x)
    want = np_gru(gru.w_i, gru.w_h, gru.b, f64(h), f64(x))
    assert_close(state, want)
    assert_close(y, want)
    assert (gru.w_i.shape, gru.w_h.shape, gru.b.shape) == ((3, 12), (4, 12), (12,))


@pytest.mark.parametrize("double_bias", [True, False])
def test_vanilla_rnn_equations(double_bias, key):
    rnn = make_vanilla(key, double_bias=double_bias)
    x, h = normal(1, (2, 3)), normal(2, (2, 4))
    state, y = rnn(h, x)
    i2h, h2h = rnn.input_to_hidden, rnn.hidden_to_hidden
    pre = f64(x) @ f64(i2h.weight) + f64(i2h.bias) + f64(h) @ f64(h2h.weight)
    if double_bias:
        pre = pre + f64(h2h.bias)
    else:
        assert h2h.bias is None
    want = np.maximum(pre, 0.0)
    assert (want == 0).any() and (want > 0).any()  # relu is exercised
    assert_close(state, want)
    assert_close(y, want)


def test_initial_states(key):
    lstm = make_lstm(key)
    s = lstm.initial_state(3)
    assert isinstance(s, LSTMState)
    assert s.hidden.shape == s.cell.shape == (3, 4)
    assert not np.any(s.hidden) and not np.any(s.cell)
    assert lstm.initial_state(None).hidden.shape == (4,)
    assert make_gru(key).initial_state(None).shape == (4,)
    assert make_vanilla(key).initial_state(5, dtype=jnp.bfloat16).dtype == jnp.bfloat16
    assert IdentityCore().initial_state(2) == ()


def test_identity_core_forwards():
    x = {"a": normal(0, (2, 3)), "b": normal(1, (2,))}
    state, y = IdentityCore()((), x)
    assert state == ()
    assert_trees_close(y, x, 0)


# ---------------------------------------------------------------------------
# unrolls
# ---------------------------------------------------------------------------


def manual_unroll(core, xs, state, time_major, reverse):
    """A plain loop over Python indices; returns (final, states, outputs)
    with states/outputs stacked time-major."""
    if not time_major:
        xs = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), xs)
    steps = jax.tree_util.tree_leaves(xs)[0].shape[0]
    states, outputs = {}, {}
    for t in reversed(range(steps)) if reverse else range(steps):
        x_t = jax.tree_util.tree_map(lambda a, t=t: a[t], xs)
        state, outputs[t] = core(state, x_t)
        states[t] = state

    def stack(d):
        return jax.tree_util.tree_map(
            lambda *a: jnp.stack(a), *[d[t] for t in range(steps)]
        )

    return state, stack(states), stack(outputs)


def dict_core(state, x):
    """A pytree-in, pytree-out core (a plain function)."""
    new = jnp.tanh(state * x["a"] + x["b"][..., None])
    return new, {"y": new * 2.0, "b": x["b"]}


CORES = {
    "lstm": lambda k: (make_lstm(k), normal(1, (6, 2, 3))),
    "gru": lambda k: (make_gru(k), normal(1, (6, 2, 3))),
    "vanilla": lambda k: (make_vanilla(k), normal(1, (6, 2, 3))),
    "deep": lambda k: (
        DeepRNN([make_lstm(k), jax.nn.relu, make_gru(k, 4, 5)]),
        normal(1, (6, 2, 3)),
    ),
}

UNROLL_CASES = [  # time_major, reverse, return_all_states, unroll
    (True, False, False, 1),
    (False, False, False, 2),
    (True, True, False, 2),
    (False, True, True, 1),
    (True, False, True, 2),
    (False, True, False, 1),
]


# every flag combination for the DeepRNN (LSTM -> relu -> GRU), a few for the
# single cores (each case compiles a scan, so keep them few)
UNROLL_PARAMS = (
    [("deep", *case) for case in UNROLL_CASES]
    + [("lstm", *case) for case in UNROLL_CASES[2:4]]
    + [("gru", *UNROLL_CASES[1]), ("vanilla", *UNROLL_CASES[3])]
)


@pytest.mark.parametrize("name, time_major, reverse, all_states, unroll", UNROLL_PARAMS)
def test_unrolls_agree_with_a_manual_loop(
    name, time_major, reverse, all_states, unroll, key
):
    core, xs = CORES[name](key)
    if not time_major:
        xs = jnp.swapaxes(xs, 0, 1)
    s0 = jax.tree_util.tree_map(
        lambda s: s + normal(9, s.shape, 0.3), core.initial_state(2)
    )
    kw = dict(time_major=time_major, reverse=reverse, return_all_states=all_states)
    dyn = dynamic_unroll(core, xs, s0, unroll=unroll, **kw)
    sta = static_unroll(core, xs, s0, unroll=unroll, **kw)
    final, states, outputs = manual_unroll(core, xs, s0, time_major, reverse)
    if not time_major:
        outputs = jnp.swapaxes(outputs, 0, 1)
        states = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), states)
    want = (states if all_states else final, outputs)
    assert_trees_close(dyn, want)
    assert_trees_close(sta, want)
    assert outputs.shape[:2] == ((6, 2) if time_major else (2, 6))


@pytest.mark.parametrize("time_major, reverse", [(True, False), (False, True)])
def test_unrolls_take_and_return_pytrees(time_major, reverse):
    t_axis = 0 if time_major else 1
    shape = (5, 2) if time_major else (2, 5)
    xs = {"a": normal(0, (*shape, 3)), "b": normal(1, shape)}
    s0 = normal(2, (2, 3))
    dyn = dynamic_unroll(dict_core, xs, s0, time_major=time_major, reverse=reverse)
    sta = static_unroll(dict_core, xs, s0, time_major=time_major, reverse=reverse)
    final, _, outputs = manual_unroll(dict_core, xs, s0, time_major, reverse)
    if not time_major:
        outputs = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), outputs)
    assert_trees_close(dyn, (final, outputs))
    assert_trees_close(sta, (final, outputs))
    assert set(dyn[1]) == {"y", "b"}
    np.testing.assert_array_equal(dyn[1]["b"], xs["b"])  # passed through in place
    assert dyn[1]["y"].shape[t_axis] == 5


def test_reverse_runs_the_last_step_first(key):
    core = make_gru(key)
    xs, s0 = normal(1, (4, 2, 3)), normal(2, (2, 4))
    final, ys = dynamic_unroll(core, xs, s0, reverse=True)
    first_state, first_out = core(s0, xs[3])
    assert_close(ys[3], f64(first_out), 1e-6)
    # the final state is the one after consuming xs[0]
    want = first_state
    for t in (2, 1, 0):
        want, _ = core(want, xs[t])
    assert_close(final, f64(want), 1e-6)


def test_dynamic_unroll_is_one_scan(key):
    core = make_lstm(key)
    xs = normal(1, (7, 2, 3))
    jaxpr = jax.make_jaxpr(lambda x: dynamic_unroll(core, x, core.initial_state(2)))(xs)
    prims = [e.primitive.name for e in jaxpr.jaxpr.eqns]
    assert prims.count("scan") == 1
    static = jax.make_jaxpr(lambda x: static_unroll(core, x, core.initial_state(2)))(xs)
    assert "scan" not in [e.primitive.name for e in static.jaxpr.eqns]


def test_unrolls_under_jit(key):
    core = make_lstm(key)
    xs = normal(1, (5, 2, 3))
    run = jax.jit(lambda c, x: dynamic_unroll(c, x, c.initial_state(2), unroll=2))
    assert_trees_close(run(core, xs), static_unroll(core, xs, core.initial_state(2)))


# ---------------------------------------------------------------------------
# DeepRNN, skip connections, ResetCore
# ---------------------------------------------------------------------------


def test_deep_rnn_with_functions_and_modules_between_cores(key):
    k1, k2, k3 = jax.random.split(key, 3)
    lstm, gru = make_lstm(k1, 3, 4), make_gru(k2, 5, 6)
    fc = Linear(4, 5, w_init=W_INIT, rng_key=k3)
    net = DeepRNN([lstm, jnp.tanh, fc, gru])
    x = normal(1, (2, 3))
    s0 = (
        LSTMState(normal(2, (2, 4)), normal(3, (2, 4))),
        normal(4, (2, 6)),
    )
    state, y = net(s0, x)
    s_lstm, h = lstm(s0[0], x)
    s_gru, want = gru(s0[1], fc(jnp.tanh(h)))
    assert_trees_close(state, (s_lstm, s_gru))
    assert_trees_close(y, want)
    assert net.num_cores == 2
    init = net.initial_state(2)
    assert isinstance(init, tuple) and len(init) == 2
    assert isinstance(init[0], LSTMState) and init[1].shape == (2, 6)
    assert len(net.submodules()) == 4  # the function is wrapped in a Lambda


def test_deep_rnn_without_cores_has_an_empty_state():
    net = DeepRNN([jnp.tanh])
    assert net.initial_state(2) == ()
    state, y = net((), normal(0, (2, 3)))
    assert state == ()
    assert_close(y, np.tanh(f64(normal(0, (2, 3)))))


@pytest.mark.parametrize("concat", [True, False])
def test_skip_connections(concat, key):
    k1, k2, k3 = jax.random.split(key, 3)
    c0, c1 = make_lstm(k1, 3, 4), make_gru(k2, 3 + 4, 5)
    c2 = make_vanilla(k3, 3 + 5, 2)
    net = deep_rnn_with_skip_connections([c0, c1, c2], concat_final_output=concat)
    assert net.skip_connections
    x = normal(1, (2, 3))
    s0 = jax.tree_util.tree_map(
        lambda s: s + normal(5, s.shape, 0.3), net.initial_state(2)
    )
    state, y = net(s0, x)
    s_0, y0 = c0(s0[0], x)
    s_1, y1 = c1(s0[1], jnp.concatenate([x, y0], axis=-1))
    s_2, y2 = c2(s0[2], jnp.concatenate([x, y1], axis=-1))
    assert_trees_close(state, (s_0, s_1, s_2))
    if concat:
        assert y.shape == (2, 4 + 5 + 2)
        assert_trees_close(y, jnp.concatenate([y0, y1, y2], axis=-1))
    else:
        assert y.shape == (2, 2)
        assert_trees_close(y, y2)


def test_reset_core_resets_exactly_where_asked(key):
    lstm = make_lstm(key)
    core = ResetCore(lstm)
    x = normal(1, (3, 3))
    s0 = LSTMState(normal(2, (3, 4)), normal(3, (3, 4)))
    reset = jnp.array([True, False, True])
    state, y = core(s0, (x, reset))
    mask = np.array([True, False, True])[:, None]
    manual = LSTMState(
        jnp.asarray(np.where(mask, 0.0, s0.hidden)),
        jnp.asarray(np.where(mask, 0.0, s0.cell)),
    )
    want_state, want_y = lstm(manual, x)
    assert_trees_close((state, y), (want_state, want_y))
    # the row that was not reset differs from a fresh start, and matches
    # the plain core on the original state
    fresh_state, fresh_y = lstm(lstm.initial_state(3), x)
    plain_state, plain_y = lstm(s0, x)
    assert not np.allclose(y[1], fresh_y[1])
    assert_close(y[1], f64(plain_y[1]), 1e-6)
    assert_close(y[0], f64(fresh_y[0]), 1e-6)


def test_reset_core_with_a_per_leaf_signal_and_unbatched_state(key):
    lstm = make_lstm(key)
    core = ResetCore(lstm)
    x = normal(1, (2, 3))
    s0 = LSTMState(normal(2, (2, 4)), normal(3, (2, 4)))
    signal = LSTMState(jnp.array([False, False]), jnp.array([True, False]))
    _, y = core(s0, (x, signal))
    cell = np.asarray(s0.cell).copy()
    cell[0] = 0.0
    _, want = lstm(LSTMState(s0.hidden, jnp.asarray(cell)), x)
    assert_close(y, f64(want), 1e-6)
    # unbatched: a scalar flag
    s1 = LSTMState(normal(4, (4,)), normal(5, (4,)))
    _, y_reset = core(s1, (x[0], jnp.array(True)))
    _, y_keep = core(s1, (x[0], jnp.array(False)))
    assert_close(y_reset, f64(lstm(lstm.initial_state(None), x[0])[1]), 1e-6)
    assert_close(y_keep, f64(lstm(s1, x[0])[1]), 1e-6)


def test_reset_core_in_an_unroll_of_a_deep_rnn(key):
    k1, k2 = jax.random.split(key)
    deep = DeepRNN([make_lstm(k1), jax.nn.relu, make_gru(k2, 4, 5)])
    core = ResetCore(deep)
    xs = normal(1, (5, 2, 3))
    resets = jnp.asarray(np.array([[0, 0], [1, 0], [0, 0], [0, 1], [1, 1]], bool))
    s0 = jax.tree_util.tree_map(lambda s: s + normal(3, s.shape), core.initial_state(2))
    final, ys = dynamic_unroll(core, (xs, resets), s0)
    state, outs = s0, []
    for t in range(5):
        keep = ~np.asarray(resets[t])
        state = jax.tree_util.tree_map(
            lambda s, k=keep: jnp.asarray(
                np.asarray(s) * k.reshape((-1,) + (1,) * (s.ndim - 1))
            ),
            state,
        )
        state, y = deep(state, xs[t])
        outs.append(y)
    assert_trees_close((final, ys), (state, jnp.stack(outs)))


# ---------------------------------------------------------------------------
# gradients and dtypes
# ---------------------------------------------------------------------------


# every core type, in few compiles: DeepRNN holds an LSTM and a GRU, the skip
# variant both again, ResetCore a single-bias VanillaRNN
GRAD_CORES = {
    "vanilla": lambda k: make_vanilla(k),
    "deep": lambda k: DeepRNN([make_lstm(k), jax.nn.relu, make_gru(k, 4, 4)]),
    "skip": lambda k: deep_rnn_with_skip_connections([make_lstm(k), make_gru(k, 7, 4)]),
    "reset": lambda k: ResetCore(make_vanilla(k, double_bias=False)),
}


@pytest.mark.parametrize("name", sorted(GRAD_CORES))
def test_grad_through_every_core(name, key):
    core = GRAD_CORES[name](key)
    x = normal(1, (2, 3))
    if name == "reset":
        x = (x, jnp.array([False, True]))

    def loss(c, x):
        # two steps, so the recurrent weights receive gradient too
        state, _ = c(c.initial_state(2), x)
        _, y = c(state, x)
        return jnp.sum(jnp.square(y))

    grads = pax.grad(loss)(core, x)
    assert type(grads) is type(core)
    params = core.parameters()
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    leaves = jax.tree_util.tree_leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(bool(jnp.any(g != 0)) for g in leaves)


def test_grad_through_dynamic_unroll_matches_static(key):
    core = make_lstm(key)
    xs = normal(1, (4, 2, 3))

    def loss(unroll_fn):
        def f(c):
            _, ys = unroll_fn(c, xs, c.initial_state(2))
            return jnp.sum(jnp.square(ys))

        return pax.grad(f)(core)

    dyn, sta = loss(dynamic_unroll), loss(static_unroll)
    assert type(dyn) is LSTM
    assert_trees_close(dyn, sta, 1e-5)
    assert bool(jnp.all(jnp.isfinite(dyn.linear.weight)))
    # the hidden-to-gates rows of the fused weight get gradient (BPTT)
    assert bool(jnp.any(dyn.linear.weight[3:] != 0))


def test_bfloat16_inputs_and_states(key):
    lstm = make_lstm(key)
    x = normal(1, (2, 3)).astype(jnp.bfloat16)
    state, y = lstm(lstm.initial_state(2, dtype=jnp.bfloat16), x)
    assert y.dtype == state.hidden.dtype == state.cell.dtype == jnp.bfloat16
    assert lstm.linear.weight.dtype == jnp.float32
    # a float32 state keeps its dtype (the scan carry is type-stable)
    state, y = lstm(lstm.initial_state(2), x)
    assert y.dtype == jnp.bfloat16 and state.hidden.dtype == jnp.float32
    final, ys = dynamic_unroll(
        lstm, normal(2, (3, 2, 3)).astype(jnp.bfloat16), lstm.initial_state(2)
    )
    assert ys.dtype == jnp.bfloat16 and final.cell.dtype == jnp.float32
    # (every core's bfloat16 and float64 behaviour: tests/nn/test_registry.py)


# ---------------------------------------------------------------------------
# Haiku parity (params copied from Haiku into the PAX modules)
# ---------------------------------------------------------------------------


def haiku_run(make_core, x, state):
    """Haiku's ``core(x, state)`` with Haiku params replaced by numpy values."""
    f = hk.without_apply_rng(hk.transform(lambda x, s: make_core()(x, s)))
    shapes = jax.eval_shape(f.init, jax.random.PRNGKey(0), x, state)
    rng = np.random.default_rng(11)
    params = jax.tree_util.tree_map(
        lambda p: jnp.asarray(0.5 * rng.normal(size=p.shape), p.dtype), shapes
    )
    return jax.jit(f.apply)(params, x, state), params


def lstm_from(p, input_dim, hidden_dim):
    lstm = LSTM(input_dim, hidden_dim, forget_gate_bias=1.0, w_init=W_INIT)
    return lstm.replace(linear=lstm.linear.replace(weight=p["w"], bias=p["b"]))


def gru_from(p, input_dim, hidden_dim):
    gru = GRU(input_dim, hidden_dim, W_INIT, W_INIT, W_INIT)
    return gru.replace(w_i=p["w_i"], w_h=p["w_h"], b=p["b"])


def test_lstm_parity_with_haiku():
    x = normal(1, (2, 3))
    h, c = normal(2, (2, 4)), normal(3, (2, 4))
    (hk_y, hk_state), params = haiku_run(lambda: hk.LSTM(4), x, hk.LSTMState(h, c))
    lstm = lstm_from(params["lstm/linear"], 3, 4)
    state, y = lstm(LSTMState(h, c), x)
    assert_trees_close((y, tuple(state)), (hk_y, tuple(hk_state)), 1e-5)


def test_lstm_unroll_parity_with_haiku():
    xs = normal(1, (5, 2, 3))

    def f(xs):
        core = hk.LSTM(4)
        return hk.dynamic_unroll(core, xs, core.initial_state(2))

    t = hk.without_apply_rng(hk.transform(f))
    params = t.init(jax.random.PRNGKey(0), xs)
    hk_ys, hk_final = t.apply(params, xs)
    lstm = lstm_from(params["lstm/linear"], 3, 4)
    final, ys = dynamic_unroll(lstm, xs, lstm.initial_state(2))
    assert_trees_close((tuple(final), ys), (tuple(hk_final), hk_ys), 1e-5)


def test_gru_parity_with_haiku():
    x, h = normal(1, (2, 3)), normal(2, (2, 4))
    (hk_y, hk_state), params = haiku_run(lambda: hk.GRU(4), x, h)
    state, y = gru_from(params["gru"], 3, 4)(h, x)
    assert_trees_close((y, state), (hk_y, hk_state), 1e-5)


@pytest.mark.parametrize("double_bias", [True, False])
def test_vanilla_rnn_parity_with_haiku(double_bias):
    x, h = normal(1, (2, 3)), normal(2, (2, 4))
    (hk_y, hk_state), params = haiku_run(
        lambda: hk.VanillaRNN(4, double_bias=double_bias), x, h
    )
    rnn = VanillaRNN(3, 4, double_bias=double_bias, w_i_init=W_INIT, w_h_init=W_INIT)
    i2h, h2h = params["vanilla_rnn/linear"], params["vanilla_rnn/linear_1"]
    rnn = rnn.replace(
        input_to_hidden=rnn.input_to_hidden.replace(weight=i2h["w"], bias=i2h["b"]),
        hidden_to_hidden=rnn.hidden_to_hidden.replace(
            weight=h2h["w"], bias=h2h.get("b")
        ),
    )
    assert ("b" in h2h) == double_bias
    state, y = rnn(h, x)
    assert_trees_close((y, state), (hk_y, hk_state), 1e-5)


@pytest.mark.parametrize("skip", [False, True])
def test_deep_rnn_parity_with_haiku(skip):
    x = normal(1, (2, 3))
    s0 = (hk.LSTMState(normal(2, (2, 4)), normal(3, (2, 4))), normal(4, (2, 5)))
    if skip:
        make = lambda: hk.deep_rnn_with_skip_connections([hk.LSTM(4), hk.GRU(5)])
    else:
        make = lambda: hk.DeepRNN([hk.LSTM(4), jax.nn.relu, hk.GRU(5)])
    (hk_y, hk_state), params = haiku_run(make, x, s0)
    lstm = lstm_from(params["lstm/linear"], 3, 4)
    gru = gru_from(params["gru"], 3 + 4 if skip else 4, 5)
    if skip:
        net = deep_rnn_with_skip_connections([lstm, gru])
    else:
        net = DeepRNN([lstm, jax.nn.relu, gru])
    pax_s0 = (LSTMState(*s0[0]), s0[1])
    state, y = net(pax_s0, x)
    assert y.shape == ((2, 9) if skip else (2, 5))
    assert_trees_close(
        (y, tuple(state[0]), state[1]), (hk_y, tuple(hk_state[0]), hk_state[1]), 1e-5
    )


def test_default_initializers_follow_haiku(key):
    # (shapes chosen so that all three weights are [64, 192]: one compile)
    # GRU: VarianceScaling() (fan-in, truncated normal: sample std 1/sqrt(fan_in))
    gru = GRU(64, 64, rng_key=key)
    std = 1.0 / np.sqrt(64)
    for w in (gru.w_i, gru.w_h):
        assert w.shape == (64, 192)
        assert abs(float(jnp.std(w)) / std - 1) < 0.05
        assert float(jnp.max(jnp.abs(w))) <= 2 * std / 0.87962566 + 1e-6
    assert not np.any(gru.b)
    assert not np.allclose(gru.w_i, gru.w_h)
    # LSTM: Linear's TruncatedNormal(1/sqrt(fan_in)) on the fused [I + H, 4H]
    lstm = LSTM(16, 48, rng_key=key)
    w = lstm.linear.weight
    assert w.shape == (64, 192)
    assert abs(float(jnp.std(w)) / (0.87962566 * std) - 1) < 0.05
    assert float(jnp.max(jnp.abs(w))) <= 2 * std + 1e-6
    assert not np.any(lstm.linear.bias)


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_wrong_input_size_names_the_module(key):
    lstm = make_lstm(key)
    with pytest.raises(
        ValueError,
        match=r"LSTM\(input_dim=3, hidden_dim=4, .*\): expected input with last "
        r"dimension 3, got shape \(2, 5\)",
    ):
        lstm(lstm.initial_state(2), jnp.ones((2, 5)))
    for core in (make_gru(key), make_vanilla(key)):
        name = type(core).__name__
        with pytest.raises(ValueError, match=rf"{name}\(input_dim=3.*last dimension 3"):
            core(core.initial_state(2), jnp.ones((2, 5)))


def test_state_batch_mismatch_names_both(key):
    for core in (make_lstm(key), make_gru(key), make_vanilla(key)):
        with pytest.raises(
            ValueError,
            match=r"state's batch shape \(3,\) .* differs from the input's batch "
            r"shape \(2,\)",
        ):
            core(core.initial_state(3), jnp.ones((2, 3)))
    lstm = make_lstm(key)
    with pytest.raises(ValueError, match=r"batch shape \(\) .* input's batch shape"):
        lstm(lstm.initial_state(None), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected state `cell` of shape \(2, 4\)"):
        lstm(LSTMState(jnp.zeros((2, 4)), jnp.zeros((2, 5))), jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"LSTMState\(hidden, cell\)"):
        lstm(jnp.zeros((2, 4)), jnp.ones((2, 3)))


def test_deep_rnn_errors(key):
    with pytest.raises(ValueError, match="DeepRNN: `layers` must hold at least one"):
        DeepRNN([])
    with pytest.raises(ValueError, match="skip connections need every layer"):
        deep_rnn_with_skip_connections([make_lstm(key), jax.nn.relu])
    with pytest.raises(TypeError, match="layer 1 must be a core"):
        DeepRNN([make_lstm(key), 3])
    net = DeepRNN([make_lstm(key), jax.nn.relu])
    with pytest.raises(ValueError, match=r"DeepRNN\(layers=\[LSTM, relu\]\).*1 entr"):
        net((), jnp.ones((2, 3)))


def test_reset_core_errors(key):
    with pytest.raises(TypeError, match="ResetCore: `core` must be a module"):
        ResetCore(jax.nn.relu)
    core = ResetCore(make_gru(key))
    with pytest.raises(ValueError, match=r"`should_reset` of shape \(3,\) is not"):
        core(core.initial_state(2), (jnp.ones((2, 3)), jnp.ones((3,), bool)))
    with pytest.raises(TypeError, match=r"pair \(x, should_reset\)"):
        core(core.initial_state(2), jnp.ones((2, 3)))


def test_constructor_and_unroll_errors(key):
    with pytest.raises(ValueError, match="LSTM: `hidden_dim` must be a positive int"):
        LSTM(3, 0)
    with pytest.raises(TypeError, match="GRU: `input_dim` must be a positive int"):
        GRU(2.5, 3)
    with pytest.raises(TypeError, match="`batch_size` must be an int or None"):
        make_gru(key).initial_state(2.0)
    core = make_gru(key)
    xs = {"a": jnp.ones((4, 2, 3)), "b": jnp.ones((5, 2, 3))}
    with pytest.raises(ValueError, match=r"disagree on the number of time steps"):
        static_unroll(lambda s, x: (s, x), xs, ())
    with pytest.raises(ValueError, match="unroll"):
        dynamic_unroll(core, jnp.ones((4, 2, 3)), core.initial_state(2), unroll=0)
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\]"):
        dynamic_unroll(core, jnp.ones((4,)), core.initial_state(2), time_major=False)


def test_unroll_seams_keep_state_dtype_and_scan(key):
    # a core that returns its state in float32 whatever it was given
    def core(s, x):
        return (s + x).astype(jnp.float32), s

    xs = jnp.ones((3, 2), jnp.float32)
    s0 = jnp.zeros((2,), jnp.bfloat16)
    for unroll in (static_unroll, dynamic_unroll):
        kept, _ = unroll(core, xs, s0)
        assert kept.dtype == jnp.bfloat16  # default: the carry keeps its dtype
    drift, ys = static_unroll(core, xs, s0, keep_state_dtype=False)
    assert drift.dtype == jnp.float32 and ys.dtype == jnp.float32
    assert ys[0, 0].dtype == jnp.float32  # stacked: the first step's bf16 promoted

    calls = []

    def my_scan(f, init, xs, **kwargs):
        calls.append(sorted(kwargs))
        return jax.lax.scan(f, init, xs, **kwargs)

    gru = make_gru(key)
    xs = normal(2, (4, 2, 3))
    want = dynamic_unroll(gru, xs, gru.initial_state(2), reverse=True)
    got = dynamic_unroll(gru, xs, gru.initial_state(2), reverse=True, scan=my_scan)
    assert calls == [["reverse", "unroll"]]
    np.testing.assert_array_equal(got[1], want[1])


def test_dynamic_unroll_of_no_steps_static_unroll_raises(key):
    gru = make_gru(key)
    xs = jnp.ones((0, 2, 3))
    state, ys = dynamic_unroll(gru, xs, gru.initial_state(2))
    assert ys.shape == (0, 2, 4) and state.shape == (2, 4)
    with pytest.raises(ValueError, match="no time steps"):
        static_unroll(gru, xs, gru.initial_state(2))

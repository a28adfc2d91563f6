"""hk recurrent cores and unrolls (on pax.nn's cores): parity with dm-haiku."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}
B, I, T = 2, 3, 3  # noqa: E741  (batch, input size, time steps)


def _run(build, *args, seed=0, eager=False):
    """``build(hk, *args)`` under both libraries: ``{lib: (params, out)}``, with
    the same init key and Haiku's parameters fed to both applies (so outputs
    compare on equal parameters). ``init`` and ``apply`` run under
    ``jax.jit`` (fewer compilations than op-by-op); ``eager=True`` runs them
    eagerly as well."""
    results, haiku_params = {}, None
    for lib, hk in LIBS.items():
        # Haiku's own Orthogonal initializer broadcasts implicitly.
        promotion = "allow" if lib == "haiku" else "raise"
        with jax.numpy_rank_promotion(promotion):
            f = hk.transform(lambda *a, hk=hk: build(hk, *a))
            key = jax.random.PRNGKey(seed)
            params = jax.jit(f.init)(key, *args)
            haiku_params = params if haiku_params is None else haiku_params
            outs = [jax.jit(f.apply)(haiku_params, None, *args)]
            if eager:
                params = f.init(key, *args)
                outs.append(f.apply(haiku_params, None, *args))
        results[lib] = (params, *outs)
    return results


def _assert_same(res, exact=True, rtol=1e-5, atol=1e-6):
    hp, *hout = res["haiku"]
    pp, *pout = res["pax"]
    # parameters: names, shapes, dtypes and (same key) values
    assert jax.tree_util.tree_structure(hp) == jax.tree_util.tree_structure(pp)
    for a, b in zip(jax.tree_util.tree_leaves(hp), jax.tree_util.tree_leaves(pp)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.float32(a), np.float32(b))
    # outputs and states, on Haiku's parameters
    for h, p in zip(hout, pout):
        # same structure (haiku.LSTMState and pax's print alike)
        assert str(jax.tree_util.tree_structure(h)) == str(
            jax.tree_util.tree_structure(p)
        )
        for a, b in zip(jax.tree_util.tree_leaves(h), jax.tree_util.tree_leaves(p)):
            assert a.dtype == b.dtype and a.shape == b.shape
            if exact:
                np.testing.assert_array_equal(np.float32(a), np.float32(b))
            else:
                np.testing.assert_allclose(
                    np.float32(a), np.float32(b), rtol=rtol, atol=atol
                )
    return hp


def _x(*shape, dtype=jnp.float32, seed=1):
    return jax.random.normal(jax.random.PRNGKey(seed), shape).astype(dtype)


CORES = {
    "lstm": lambda hk: hk.LSTM(4),
    "vanilla": lambda hk: hk.VanillaRNN(4),
    "vanilla_single_bias": lambda hk: hk.VanillaRNN(4, double_bias=False),
    "gru": lambda hk: hk.GRU(4),
    "gru_inits": lambda hk: hk.GRU(
        4,
        w_i_init=hk.initializers.RandomNormal(0.5),
        w_h_init=hk.initializers.Orthogonal(),
        b_init=hk.initializers.Constant(0.1),
        name="my_gru",
    ),
}


def _all_cores(names, state_dtype=None, unbatched=()):
    """Build every named core, step it once on ``x`` (and on ``x[0]`` for the
    names in ``unbatched``): one transform for all, to keep compiles few."""

    def build(hk, x):
        out = {}
        for name in names:
            core = CORES[name](hk)
            state = core.initial_state(B)
            if state_dtype is not None:
                state = jax.tree_util.tree_map(lambda s: s.astype(state_dtype), state)
            out[name] = core(x, state)
            if name in unbatched:
                out[name + "_unbatched"] = core(x[0], core.initial_state(None))
        return out

    return build


def test_core_steps_match_haiku():
    build = _all_cores(sorted(CORES), unbatched=("lstm", "gru", "vanilla"))
    params = _assert_same(_run(build, _x(B, I)))
    want = {
        "lstm/linear": {"w": (I + 4, 16), "b": (16,)},
        "vanilla_rnn/linear": {"w": (I, 4), "b": (4,)},
        "vanilla_rnn/linear_1": {"w": (4, 4), "b": (4,)},
        "vanilla_rnn_1/linear": {"w": (I, 4), "b": (4,)},
        "vanilla_rnn_1/linear_1": {"w": (4, 4)},  # double_bias=False
        "gru": {"w_i": (I, 12), "w_h": (4, 12), "b": (12,)},
        "my_gru": {"w_i": (I, 12), "w_h": (4, 12), "b": (12,)},
    }
    assert jax.tree_util.tree_map(jnp.shape, params) == want


def test_bfloat16_input_and_state_match_haiku():
    names = ["lstm", "gru", "vanilla_single_bias"]
    build = _all_cores(names, state_dtype=jnp.bfloat16)
    params = _assert_same(_run(build, _x(B, I, dtype=jnp.bfloat16)))
    dtypes = {p.dtype for p in jax.tree_util.tree_leaves(params)}
    assert dtypes == {jnp.dtype(jnp.bfloat16)}


def test_bfloat16_input_float32_state():
    # Haiku's default: bf16 inputs with its float32 initial_state. LSTM
    # promotes [x, h] before its linear (float32 parameters), exactly as
    # Haiku; GRU and VanillaRNN compute the input projection in float32
    # here where Haiku rounds it to bfloat16 first, so their values agree to
    # bfloat16 precision only (dtypes and parameters are identical).
    res = _run(_all_cores(["lstm", "gru", "vanilla"]), _x(B, I, dtype=jnp.bfloat16))
    _assert_same(res, exact=False, rtol=2e-2, atol=2e-2)
    h, p = res["haiku"][1]["lstm"], res["pax"][1]["lstm"]
    for a, b in zip(jax.tree_util.tree_leaves(h), jax.tree_util.tree_leaves(p)):
        assert a.dtype == b.dtype == jnp.float32
        np.testing.assert_array_equal(a, b)


UNROLLS = [
    ("dynamic_unroll", {}),
    ("dynamic_unroll", {"time_major": False}),
    ("dynamic_unroll", {"reverse": True, "unroll": 2}),
    ("dynamic_unroll", {"return_all_states": True, "time_major": False}),
    ("static_unroll", {}),
    ("static_unroll", {"time_major": False}),
]


def test_unrolls_match_haiku():
    def build(hk, xs):
        core = hk.LSTM(4)
        out = []
        for fn, kwargs in UNROLLS:
            time_major = kwargs.get("time_major", True)
            seq = xs if time_major else jnp.swapaxes(xs, 0, 1)
            out.append(getattr(hk, fn)(core, seq, core.initial_state(B), **kwargs))
        return out

    res = _run(build, _x(T, B, I))
    params = _assert_same(res)
    assert sorted(params) == ["lstm/linear"]
    for (_, kwargs), (outs, state) in zip(UNROLLS, res["pax"][1]):
        time_major = kwargs.get("time_major", True)
        assert outs.shape == ((T, B) if time_major else (B, T)) + (4,)
        if kwargs.get("return_all_states"):
            assert state.cell.shape == (B, T, 4)


def test_unroll_deep_rnn_gru_vanilla_bfloat16():
    # float32 DeepRNN runs are covered by the skip-connection test
    def make(hk):
        return hk.DeepRNN([hk.GRU(4), jax.nn.relu, hk.VanillaRNN(3)])

    def build(hk, xs):
        core = make(hk)
        state = jax.tree_util.tree_map(
            lambda s: s.astype(xs.dtype), core.initial_state(B)
        )
        return hk.dynamic_unroll(core, xs, state)

    _assert_same(_run(build, _x(T, B, I, dtype=jnp.bfloat16)))


def test_dynamic_unroll_outside_transform_uses_lax_scan():
    def core(x, state):
        return x + state, state + 1.0

    for hk in LIBS.values():
        outs, state = hk.dynamic_unroll(core, jnp.ones((T, B)), jnp.zeros(B))
        np.testing.assert_array_equal(outs[:, 0], [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(state, [3.0, 3.0])


def test_deep_rnn_with_skip_connections_matches_haiku():
    def build(hk, x):
        core = hk.deep_rnn_with_skip_connections(
            [hk.LSTM(4), hk.GRU(2), hk.VanillaRNN(3)], name="deep"
        )
        return core(x, core.initial_state(B))

    res = _run(build, _x(B, I))
    _assert_same(res)
    assert res["pax"][1][0].shape == (B, 4 + 2 + 3)
    assert jax.tree_util.tree_map(jnp.shape, res["pax"][0])["gru"]["w_i"] == (I + 4, 6)
    for hk in LIBS.values():
        with pytest.raises(ValueError, match="RNNCore"):
            hk.transform(
                lambda x, hk=hk: hk.deep_rnn_with_skip_connections(
                    [hk.LSTM(2), jax.nn.relu]
                )
            ).init(None, _x(B, I))


def test_skip_connections_without_final_concat():
    def f(x):
        core = phk.deep_rnn_with_skip_connections(
            [phk.LSTM(4), phk.GRU(2)], concat_final_output=False
        )
        return core(x, core.initial_state(B))

    f = phk.transform(f)
    x = _x(B, I)
    out, _ = f.apply(f.init(jax.random.PRNGKey(0), x), None, x)
    assert out.shape == (B, 2)


def test_deep_rnn_without_cores_and_identity_core():
    def build(hk, x):
        core = hk.DeepRNN([jax.nn.relu, hk.IdentityCore(), jnp.tanh])
        state = core.initial_state(B)
        return core(x, state), hk.IdentityCore().initial_state(None)

    res = _run(build, _x(B, I))
    _assert_same(res)
    (out, state), empty = res["pax"][1]
    assert state == ((),) and empty == ()


@pytest.mark.parametrize("batched", [True, False])
def test_reset_core_matches_haiku(batched):
    def build(hk, x, reset):
        core = hk.ResetCore(hk.LSTM(4))
        state = core.initial_state(B if batched else None)
        state = jax.tree_util.tree_map(lambda s: s + 0.5, state)  # non-zero
        one = core((x, reset), state)
        # per-leaf flags, a pytree shaped like the state
        nest = type(state)(hidden=reset, cell=jnp.logical_not(reset))
        return one, core((x, nest), state)

    x = _x(B, I) if batched else _x(I)
    reset = jnp.array([True, False]) if batched else jnp.array(True)
    res = _run(build, x, reset)
    _assert_same(res)
    (out, state), _ = res["pax"][1]
    fresh = phk.transform(lambda x: _all_cores(["lstm"])(phk, x)["lstm"])
    ref_out = fresh.apply(res["pax"][0], None, _x(B, I))[0]
    # (a batch row and the unbatched step may differ in the last bit)
    np.testing.assert_allclose(out[0] if batched else out, ref_out[0], rtol=1e-6)


def test_lstm_called_twice_shares_parameters_and_scan_reuses_them():
    def build(hk, xs):
        core = hk.LSTM(4)
        state = core.initial_state(B)
        out, state = core(xs[0], state)
        out, state = core(xs[1], state)
        other = hk.LSTM(2, name="lstm")  # explicit names are uniquified too
        return other(out, other.initial_state(B)), hk.dynamic_unroll(core, xs, state)

    params = _assert_same(_run(build, _x(T, B, I)))
    assert sorted(params) == ["lstm/linear", "lstm_1/linear"]


def test_errors_and_abstract_base():
    for hk in LIBS.values():
        with pytest.raises(ValueError, match="rank-1 or rank-2"):
            hk.transform(
                lambda x, hk=hk: hk.LSTM(2)(x, hk.LSTM(2).initial_state(1))
            ).init(None, jnp.ones((1, 1, 2)))
        with pytest.raises(ValueError, match="rank-1 or rank-2"):
            hk.transform(lambda x, hk=hk: hk.GRU(2)(x, jnp.zeros(2))).init(
                None, jnp.ones((1, 1, 2))
            )

        class Incomplete(hk.RNNCore):
            def __call__(self, inputs, prev_state):
                return inputs, prev_state

        with pytest.raises(TypeError):
            hk.transform(lambda: Incomplete()).init(None)
    assert issubclass(phk.LSTM, phk.RNNCore) and issubclass(phk.DeepRNN, phk.RNNCore)
    assert phk.LSTMState._fields == haiku.LSTMState._fields


def test_initial_states_match_haiku():
    for batch in (None, 3):
        for make in (CORES["lstm"], CORES["gru"], CORES["vanilla"]):
            got = {}
            for lib, hk in LIBS.items():
                f = hk.transform(
                    lambda hk=hk, make=make, batch=batch: make(hk).initial_state(batch)
                )
                got[lib] = f.apply({}, None)
            for a, b in zip(*(jax.tree_util.tree_leaves(got[k]) for k in LIBS)):
                assert a.dtype == b.dtype and a.shape == b.shape


def test_eager_lstm_matches_haiku():
    _assert_same(_run(_all_cores(["lstm"]), _x(B, I), eager=True))


def test_conv_lstms_match_haiku():
    def build(hk, x1, x2, x3):
        out = {}
        for name, core, x in [
            ("1d", hk.Conv1DLSTM([5], 2, 3), x1),
            ("2d", hk.Conv2DLSTM([4, 3], 2, [3, 1], name="conv"), x2),
            ("3d", hk.Conv3DLSTM([2, 3, 2], 1, 1), x3),
        ]:
            out[name] = core(x, core.initial_state(B))
        core = hk.Conv1DLSTM([5], 2, 3)  # unrolled, and without a batch axis
        seq = jnp.stack([x1[0]] * T)
        out["unroll"] = hk.dynamic_unroll(core, seq, core.initial_state(None))
        return out

    xs = [_x(B, 5, I), _x(B, 4, 3, I), _x(B, 2, 3, 2, I)]
    params = _assert_same(_run(build, *xs))
    assert jax.tree_util.tree_map(jnp.shape, params) == {
        "conv1_dlstm/input_to_hidden": {"w": (3, I, 8), "b": (8,)},
        "conv1_dlstm/hidden_to_hidden": {"w": (3, 2, 8), "b": (8,)},
        "conv/input_to_hidden": {"w": (3, 1, I, 8), "b": (8,)},
        "conv/hidden_to_hidden": {"w": (3, 1, 2, 8), "b": (8,)},
        "conv3_dlstm/input_to_hidden": {"w": (1, 1, 1, I, 4), "b": (4,)},
        "conv3_dlstm/hidden_to_hidden": {"w": (1, 1, 1, 1, 4), "b": (4,)},
        "conv1_dlstm_1/input_to_hidden": {"w": (3, I, 8), "b": (8,)},
        "conv1_dlstm_1/hidden_to_hidden": {"w": (3, 2, 8), "b": (8,)},
    }


def test_conv_lstm_bfloat16_matches_haiku():
    def build(hk, x):
        state = hk.Conv1DLSTM([5], 2, 3).initial_state(B)
        cast = jax.tree_util.tree_map(lambda s: s.astype(x.dtype), state)
        same = hk.Conv1DLSTM([5], 2, 3)(x, cast)
        return same, hk.Conv1DLSTM([5], 2, 3)(x, state)  # Haiku's f32 state

    res = _run(build, _x(B, 5, I, dtype=jnp.bfloat16))
    params = _assert_same(res, exact=False, rtol=2e-2, atol=2e-2)
    assert {p.dtype for p in jax.tree_util.tree_leaves(params)} == {
        jnp.dtype(jnp.bfloat16),
        jnp.dtype(jnp.float32),  # hidden_to_hidden takes the float32 state's
    }
    # all-bfloat16 step: bit-identical
    for a, b in zip(*(jax.tree_util.tree_leaves(res[k][1][0]) for k in LIBS)):
        assert a.dtype == b.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.float32(a), np.float32(b))


def test_unroll_edge_cases_match_haiku():
    # a bfloat16 initial state with float32 inputs: in Haiku's static unroll
    # the state follows the core's promotion from the first step on
    def build(hk, xs):
        core = hk.LSTM(4)
        state = jax.tree_util.tree_map(
            lambda s: s.astype(jnp.bfloat16), core.initial_state(B)
        )
        return hk.static_unroll(core, xs, state)

    _assert_same(_run(build, _x(T, B, I)))

    def build_empty(hk, xs):  # no time step: empty outputs, the initial state
        core = hk.GRU(4)
        return hk.dynamic_unroll(core, xs, core.initial_state(B))

    _assert_same(_run(build_empty, jnp.zeros((0, B, I))))
    f = phk.transform(lambda xs: phk.static_unroll(phk.GRU(4), xs, jnp.zeros((B, 4))))
    with pytest.raises(ValueError, match="no time steps"):  # Haiku: a TypeError
        f.init(None, jnp.zeros((0, B, I)))


def test_deep_rnn_without_layers_matches_haiku():
    def build(hk, x):
        core = hk.DeepRNN([])
        return core(x, core.initial_state(B)), core.initial_state(None)

    _assert_same(_run(build, _x(B, I)))

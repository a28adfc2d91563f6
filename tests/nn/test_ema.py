"""EMA: averages with and without debiasing, warm-up, ints, purity, Haiku parity."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax


def values(key, n=4, shape=(3,)):
    return [jax.random.normal(k, shape) for k in jax.random.split(key, n)]


@pytest.mark.parametrize("debias", [False, True])
def test_averages_match_a_hand_loop(debias, key):
    init = np.array([5.0, -1.0, 2.0])
    ema = pax.EMA(jnp.asarray(init, jnp.float32), 0.7, debias=debias)
    hidden = np.zeros(3) if debias else init.copy()
    for t, v in enumerate(values(key), start=1):
        ema, avg = pax.purecall(ema, v)
        hidden = 0.7 * hidden + 0.3 * np.asarray(v)
        expected = hidden / (1 - 0.7**t) if debias else hidden
        np.testing.assert_allclose(avg, expected, rtol=1e-5)
        np.testing.assert_allclose(ema.averages, expected, rtol=1e-5)


def test_pytree_values_and_int_leaves(key):
    tree = {"w": jnp.zeros((2,)), "step": jnp.array(0)}
    with pytest.raises(TypeError, match="allow_int=True"):
        pax.EMA(tree, 0.5)
    ema = pax.EMA(tree, 0.5, allow_int=True)
    ema, avg = pax.purecall(ema, {"w": jnp.ones((2,)), "step": jnp.array(7)})
    np.testing.assert_allclose(avg["w"], [0.5, 0.5])
    assert int(avg["step"]) == 7 and avg["step"].dtype == jnp.int32


def test_warmup_follows_the_input_then_decays(key):
    ema = pax.EMA(jnp.zeros(()), 0.9, warmup_length=2)
    outs = []
    for v in (1.0, 2.0, 3.0):
        ema, avg = pax.purecall(ema, jnp.array(v))
        outs.append(float(avg))
    assert outs[:2] == [1.0, 2.0]  # decay 0 during warm-up
    assert outs[2] == pytest.approx(0.9 * 2.0 + 0.1 * 3.0)
    with pytest.raises(ValueError, match="exclusive"):
        pax.EMA(jnp.zeros(()), 0.9, debias=True, warmup_length=2)


def test_update_stats_false_is_a_plain_call_and_purity(key):
    ema = pax.EMA(jnp.zeros((3,)), 0.5)
    with pytest.raises(pax.MutationError):
        ema(jnp.ones((3,)))
    out = ema(jnp.ones((3,)), update_stats=False)
    np.testing.assert_allclose(out, 0.5 * np.ones(3))
    np.testing.assert_array_equal(ema.averages, np.zeros(3))
    assert ema.parameters().averages is None  # state, not trainable


def test_parity_with_haiku(key):
    vs = values(key, 5)
    f = hk.transform_with_state(
        lambda v: hk.ExponentialMovingAverage(0.8, zero_debias=True)(v)
    )
    _, state = f.init(None, vs[0])
    ema = pax.EMA(jnp.zeros((3,)), 0.8, debias=True)
    for v in vs:
        hk_avg, state = f.apply({}, state, None, v)
        ema, avg = pax.purecall(ema, v)
        np.testing.assert_allclose(avg, hk_avg, rtol=1e-6)
    s = state["exponential_moving_average"]
    np.testing.assert_allclose(ema.hidden, s["hidden"], rtol=1e-6)
    assert int(ema.counter) == int(s["counter"])


def test_errors():
    ema = pax.EMA(jnp.zeros((3,)), 0.5)
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(3,\)"):
        ema(jnp.ones((4,)), update_stats=False)
    with pytest.raises(ValueError, match="structure"):
        ema({"a": jnp.ones((3,))}, update_stats=False)
    with pytest.raises(ValueError, match="`decay_rate` must be in"):
        pax.EMA(jnp.zeros(()), 1.5)


# ---------------------------------------------------------------------------
# modes: eval changes nothing, update_stats overrides, errors name the module
# ---------------------------------------------------------------------------


def assert_same_leaves(a, b):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert x.dtype == y.dtype


@pytest.mark.parametrize("debias", [False, True])
def test_eval_plain_call_returns_the_current_average_and_changes_nothing(debias, key):
    init = np.array([5.0, -1.0, 2.0])
    ema = pax.EMA(jnp.asarray(init, jnp.float32), 0.7, debias=debias)
    hidden = np.zeros(3) if debias else init.copy()
    vs = values(key, n=3)
    for v in vs[:2]:
        ema, _ = pax.purecall(ema, v)
        hidden = 0.7 * hidden + 0.3 * np.asarray(v)
    expected = hidden / (1 - 0.7**2) if debias else hidden
    ev = ema.eval()
    out = ev(vs[2])  # a plain call: no pure needed
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    np.testing.assert_allclose(
        jax.jit(lambda m, x: m(x))(ev, vs[2]), expected, rtol=1e-5
    )
    assert_same_leaves(ev, ema.eval())
    # inside purecall too, eval mode changes nothing
    after, out2 = pax.purecall(ev, vs[2])
    np.testing.assert_allclose(out2, expected, rtol=1e-5)
    assert_same_leaves(after, ev)
    # back to training mode: the next call updates again
    trained, avg = pax.purecall(ev.train(), vs[2])
    hidden = 0.7 * hidden + 0.3 * np.asarray(vs[2])
    np.testing.assert_allclose(
        avg, hidden / (1 - 0.7**3) if debias else hidden, rtol=1e-5
    )
    assert int(trained.counter) == 3


def test_eval_mode_of_a_pytree_with_int_leaves(key):
    tree = {"w": jnp.zeros((2,)), "step": jnp.array(0, jnp.int32)}
    ema = pax.EMA(tree, 0.5, allow_int=True)
    ema, _ = pax.purecall(ema, {"w": jnp.ones((2,)), "step": jnp.array(7)})
    out = ema.eval()({"w": 9 * jnp.ones((2,)), "step": jnp.array(9)})
    np.testing.assert_allclose(out["w"], [0.5, 0.5])
    assert int(out["step"]) == 7
    with pytest.raises(ValueError, match=r"^EMA\(.*structure"):
        ema.eval()({"w": jnp.ones((2,))})  # checked in eval mode too


def test_update_stats_overrides_the_mode(key):
    v1, v2 = values(key, n=2)
    ema, _ = pax.purecall(pax.EMA(jnp.zeros((3,)), 0.5), v1)  # avg = v1 / 2
    ev = ema.eval()
    # True in eval mode: an explicit request to update (needs pure)
    with pytest.raises(pax.MutationError, match=r"^EMA\(.*purecall"):
        ev(v2, update_stats=True)
    new, avg = pax.purecall(ev, v2, update_stats=True)
    expected = 0.25 * np.asarray(v1) + 0.5 * np.asarray(v2)
    np.testing.assert_allclose(avg, expected, rtol=1e-6)
    np.testing.assert_allclose(new.averages, expected, rtol=1e-6)
    assert int(new.counter) == 2 and not new.training
    # False (either mode): Haiku's read-only call, the average it would give
    for m in (ema, ev):
        out = m(v2, update_stats=False)
        np.testing.assert_allclose(out, expected, rtol=1e-6)
    with pytest.raises(TypeError, match=r"^EMA\(.*update_stats"):
        ev(v2, update_stats="yes")


def test_training_plain_call_error_names_the_ema(key):
    ema = pax.EMA(jnp.zeros((3,)), 0.5)
    with pytest.raises(pax.MutationError, match=r"^EMA\(.*eval\(\)"):
        ema(jnp.ones((3,)))


@pytest.mark.parametrize("eval_mode", [False, True])
def test_non_array_value_is_a_type_error_naming_the_ema(eval_mode):
    # found by the property suite: a string leaf raised JAX's own TypeError
    ema = pax.EMA({"a": jnp.zeros((2,))}, 0.5)
    ema = ema.eval() if eval_mode else ema
    with pytest.raises(TypeError, match=r"^EMA\(.*expected an array input, got str"):
        ema({"a": "not an array"}, update_stats=False if not eval_mode else None)


def test_repr_of_a_tree_shows_shapes_not_values():
    # found by the property suite: a dict initial_value printed its arrays in
    # full in the repr, so in every error message naming the EMA
    ema = pax.EMA({"w": jnp.arange(6.0).reshape(2, 3), "n": (jnp.ones(2),)}, 0.5)
    text = repr(ema)
    assert text.startswith("EMA(initial_value={'n': (float32[2],), 'w': float32[2, 3]}")
    assert "Array" not in text and "5." not in text
    assert repr(pax.EMA(jnp.zeros(2), 0.5)).startswith("EMA(initial_value=float32[2],")

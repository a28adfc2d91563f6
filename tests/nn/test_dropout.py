"""Dropout: the function, the stateful module, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax


def test_function_matches_hand_formula_and_haiku(key):
    x = jax.random.normal(key, (50, 40))
    y = pax.dropout(key, 0.3, x)
    keep = jax.random.bernoulli(key, 0.7, x.shape)
    np.testing.assert_allclose(y, np.where(keep, np.asarray(x) / 0.7, 0.0), rtol=1e-6)
    np.testing.assert_array_equal(y, hk.dropout(key, 0.3, x))
    np.testing.assert_array_equal(pax.dropout(key, 0.0, x), x)


def test_drop_fraction_and_broadcast_dims(key):
    x = jnp.ones((400, 500))
    y = np.asarray(pax.dropout(key, 0.25, x))
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert np.allclose(y[y != 0], 1 / 0.75)
    z = np.asarray(pax.dropout(key, 0.5, x, broadcast_dims=(0,)))
    assert (z == z[0:1]).all()  # one decision per column


def test_module_needs_purecall_and_refreshes_its_key(key):
    drop = pax.Dropout(0.5, rng_key=key)
    x = jnp.ones((8, 8))
    with pytest.raises(pax.MutationError, match="purecall"):
        drop(x)
    drop1, y1 = pax.purecall(drop, x)
    state, sub = jax.random.split(key)
    np.testing.assert_array_equal(drop1.rng_key, state)
    np.testing.assert_array_equal(y1, pax.dropout(sub, 0.5, x))
    drop2, y2 = pax.purecall(drop1, x)
    assert not np.array_equal(y1, y2)
    assert drop.parameters().rng_key is None  # the key is state


def test_eval_mode_and_rate_zero_are_plain_identity_calls(key):
    x = jax.random.normal(key, (3, 4))
    np.testing.assert_array_equal(pax.Dropout(0.5).eval()(x), x)
    np.testing.assert_array_equal(pax.Dropout(0.0)(x), x)


def test_dropout_in_a_jitted_training_step(key):
    net = pax.Sequential(pax.Linear(4, 4, rng_key=key), pax.Dropout(0.5, rng_key=key))

    @jax.jit
    def step(net, x):
        return pax.purecall(net, x)

    net1, y1 = step(net, jnp.ones((2, 4)))
    net2, y2 = step(net1, jnp.ones((2, 4)))
    assert not np.array_equal(net1[1].rng_key, net2[1].rng_key)
    assert not np.array_equal(y1, y2)


def test_errors():
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"`dropout_rate` must be in \[0, 1\)"):
            pax.Dropout(bad)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        pax.dropout(jax.random.PRNGKey(0), 1.0, jnp.ones(3))
    with pytest.raises(TypeError, match="must be a float"):
        pax.Dropout("0.5")


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.uint8, jnp.bool_])
def test_integer_input_gives_float32_in_every_mode(dtype, key):
    # was: int32 input divided by the keep rate cast to int32 (0): inf / nan
    x = jnp.asarray(np.arange(12).reshape(3, 4) % 3, dtype)
    y = pax.dropout(key, 0.5, x)
    keep = jax.random.bernoulli(key, 0.5, x.shape)
    expected = np.where(keep, np.asarray(x, np.float32) / 0.5, 0.0)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, expected)
    drop = pax.Dropout(0.5, rng_key=key)
    _, y_train = pax.purecall(drop, x)
    assert y_train.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(y_train)))
    y_eval = drop.eval()(x)
    assert y_eval.dtype == jnp.float32
    np.testing.assert_array_equal(y_eval, np.asarray(x, np.float32))
    assert pax.dropout(key, 0.0, x).dtype == jnp.float32


def test_a_plain_training_call_names_the_dropout_and_the_fix():
    drop = pax.Dropout(0.5, rng_key=jax.random.PRNGKey(0))
    with pytest.raises(
        pax.MutationError, match=r"^Dropout\(dropout_rate=0.5.*purecall"
    ):
        drop(jnp.ones(2))
    assert bool((drop.eval()(jnp.ones(2)) == 1).all())

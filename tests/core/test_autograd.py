"""pax.grad / pax.value_and_grad: trainable parameters only, module-shaped."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax


def test_gradient_matches_hand_formula_and_skips_state(key):
    net = pax.Sequential(pax.Linear(3, 2, rng_key=key), pax.BatchNorm(2).eval())
    x = jax.random.normal(key, (5, 3))

    def loss(model, x):
        return jnp.sum(model(x))

    value, grads = pax.value_and_grad(loss)(net, x)
    assert type(grads) is pax.Sequential
    # BatchNorm statistics get no gradient (None), trainable leaves do
    assert grads[1].mean_ema.averages is None and grads[1].mean_ema.counter is None
    bn = net[1]
    # by hand: y = (x W + b) * s/sqrt(1 + eps) + o  (eval mode, mean 0, var 1)
    c = np.asarray(bn.scale) / np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(
        grads[0].weight, np.asarray(x).sum(0)[:, None] * c, rtol=1e-5
    )
    np.testing.assert_allclose(grads[0].bias, 5 * c, rtol=1e-5)
    np.testing.assert_allclose(grads[1].offset, [5.0, 5.0])
    np.testing.assert_allclose(value, loss(net, x), rtol=1e-6)


def test_grad_with_aux_and_other_arguments_not_differentiated(key):
    fc = pax.Linear(2, 1, rng_key=key)

    def loss(model, x, scale):
        out = model(x) * scale
        return out.sum(), out

    grads, aux = pax.grad(loss, has_aux=True)(fc, jnp.ones((3, 2)), 2.0)
    np.testing.assert_allclose(grads.weight, np.full((2, 1), 6.0))
    np.testing.assert_allclose(grads.bias, [6.0])
    assert aux.shape == (3, 1)


def test_rng_keys_and_int_counters_get_no_gradient(key):
    net = pax.Sequential(pax.Linear(2, 2, rng_key=key), pax.Dropout(0.5, rng_key=key))

    def loss(model, x):
        model, y = pax.purecall(model, x)
        return y.sum(), model

    (_, new), grads = pax.value_and_grad(loss, has_aux=True)(net, jnp.ones((1, 2)))
    assert grads[1].rng_key is None
    assert not np.array_equal(new[1].rng_key, net[1].rng_key)  # state advanced


def test_first_argument_must_be_a_module():
    with pytest.raises(TypeError, match="first argument must be a pax.Module"):
        pax.grad(lambda m: m.sum())(jnp.ones(3))

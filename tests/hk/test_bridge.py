"""pax.hk.to_pax: a Haiku program as a pax.Module (grad, optax, save, state)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax
import pax.hk as hk


def mlp_program():
    return hk.transform(lambda x: hk.nets.MLP([8, 1])(x))


def test_stateless_program_trains_with_pax_grad_and_optax(tmp_path):
    f = mlp_program()
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 3))
    y = x.sum(-1, keepdims=True)
    params = f.init(jax.random.PRNGKey(0), x)
    model = hk.to_pax(f, params)
    np.testing.assert_array_equal(model(x), f.apply(params, None, x))

    def loss_fn(model, x, y):
        return jnp.mean(jnp.square(model(x) - y))

    # gradients are the Haiku params' gradients, as a module
    grads = pax.grad(loss_fn)(model, x, y)
    expected = jax.grad(lambda p: jnp.mean(jnp.square(f.apply(p, None, x) - y)))(params)
    for a, b in zip(
        jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(expected)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    opt = pax.optim.from_optax(optax.adam(3e-2), model.parameters())
    first = float(loss_fn(model, x, y))

    @jax.jit
    def step(model, opt):
        grads = pax.grad(loss_fn)(model, x, y)
        opt, updates = pax.purecall(opt, grads, model.parameters())
        return pax.apply_updates(model, updates), opt

    for _ in range(100):
        model, opt = step(model, opt)
    assert float(loss_fn(model, x, y)) < 0.5 * first
    # the trained params are plain Haiku params again
    np.testing.assert_array_equal(f.apply(model.params, None, x), model(x))
    pax.save(tmp_path / "m.npz", model)
    back = pax.load(tmp_path / "m.npz", model)
    np.testing.assert_array_equal(back(x), model(x))


def test_stateful_program_updates_state_through_purecall():
    f = hk.transform_with_state(
        lambda x, training: hk.BatchNorm(True, True, 0.9)(x, training)
    )
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 3))
    params, state = f.init(None, x, True)
    model = hk.to_pax(f, params, state)
    assert jax.tree_util.tree_leaves(model.parameters().state) == []
    model2, y = pax.purecall(model, x, True)
    y_ref, state_ref = f.apply(params, state, None, x, True)
    np.testing.assert_array_equal(y, y_ref)
    for a, b in zip(
        jax.tree_util.tree_leaves(model2.state), jax.tree_util.tree_leaves(state_ref)
    ):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(pax.MutationError):
        model(x, True)  # changes state: needs pax.purecall


def test_rng_key_advances_on_every_call():
    f = hk.transform(lambda x: hk.dropout(hk.next_rng_key(), 0.5, x))
    model = hk.to_pax(f, {}, rng_key=jax.random.PRNGKey(0))
    x = jnp.ones((64,))
    model1, a = pax.purecall(model, x)
    model2, b = pax.purecall(model1, x)
    assert not np.array_equal(a, b)
    assert not np.array_equal(model1.rng_key, model2.rng_key)
    assert repr(model).startswith("HaikuModule(params: 0 arrays")
    with pytest.raises(TypeError, match="hk.transform"):
        hk.to_pax(lambda x: x, {})

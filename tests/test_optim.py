"""pax.optim.from_optax and pax.apply_updates: optax does the math."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax


def model_and_batch(key):
    k1, k2 = jax.random.split(key)
    net = pax.Sequential(
        pax.Linear(3, 4, rng_key=k1), pax.BatchNorm(4), pax.Linear(4, 1, rng_key=k2)
    )
    x = jax.random.normal(key, (8, 3))
    return net, x


def loss_fn(model, x):
    model, y = pax.purecall(model, x)
    return jnp.mean(y**2), model


@pytest.mark.parametrize(
    "tx",
    [
        optax.adam(1e-2),
        optax.adamw(1e-2, weight_decay=0.1),
        optax.chain(optax.clip_by_global_norm(0.1), optax.sgd(0.5, momentum=0.9)),
        optax.sgd(optax.exponential_decay(0.1, 1, 0.5)),
    ],
    ids=["adam", "adamw", "clip-chain", "schedule"],
)
def test_matches_optax_on_the_raw_parameter_tree(tx, key):
    net, x = model_and_batch(key)
    opt = pax.optim.from_optax(tx, net.parameters())
    # reference: optax directly on a plain dict of the trainable arrays
    ref_params = {k: v for k, v in net.parameters().state_dict().items()}
    ref_state = tx.init(ref_params)
    for _ in range(3):
        (_, new_net), grads = pax.value_and_grad(loss_fn, has_aux=True)(net, x)
        opt, updates = pax.purecall(opt, grads, net.parameters())
        ref_grads = grads.state_dict()
        ref_updates, ref_state = tx.update(ref_grads, ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, ref_updates)
        net = pax.apply_updates(new_net, updates)
    for k, v in net.parameters().state_dict().items():
        np.testing.assert_allclose(v, ref_params[k], rtol=1e-5, atol=1e-7)


def test_adamw_with_a_mask_leaves_masked_leaves_undecayed(key):
    net, x = model_and_batch(key)
    params = net.parameters()
    mask = params.map(lambda p: p.ndim > 1)  # decay matrices, not biases/scales
    tx = optax.adamw(0.0, weight_decay=0.5, mask=mask)  # lr 0: nothing moves
    opt = pax.optim.from_optax(optax.chain(tx), params)
    zero_grads = params.map(jnp.zeros_like)
    opt, updates = pax.purecall(opt, zero_grads, params)
    assert all(float(jnp.abs(u).max()) == 0 for u in jax.tree_util.tree_leaves(updates))
    tx = optax.adamw(1.0, weight_decay=0.5, mask=mask)
    opt = pax.optim.from_optax(tx, params)
    opt, updates = pax.purecall(opt, zero_grads, params)
    np.testing.assert_allclose(updates[0].weight, -0.5 * params[0].weight, rtol=1e-6)
    np.testing.assert_array_equal(updates[0].bias, np.zeros(4))


def test_optimizer_state_is_a_module_and_needs_purecall(key):
    net, _ = model_and_batch(key)
    opt = pax.optim.from_optax(optax.adam(1e-3), net.parameters())
    grads = net.parameters().map(jnp.ones_like)
    with pytest.raises(pax.MutationError):
        opt(grads, net.parameters())
    step = jax.jit(lambda o, g, p: pax.purecall(o, g, p))
    opt2, _ = step(opt, grads, net.parameters())
    assert int(opt2.state[0].count) == 1 and int(opt.state[0].count) == 0
    with pytest.raises(TypeError, match="GradientTransformation"):
        pax.optim.from_optax(lambda x: x, net.parameters())


def test_apply_updates_on_model_or_parameters(key):
    net, _ = model_and_batch(key)
    updates = net.parameters().map(jnp.ones_like)
    new = pax.apply_updates(net, updates)
    np.testing.assert_allclose(new[0].weight, net[0].weight + 1)
    np.testing.assert_array_equal(new[1].mean_ema.averages, net[1].mean_ema.averages)
    p = pax.apply_updates(net.parameters(), updates)
    assert p[1].mean_ema.averages is None
    np.testing.assert_allclose(p[2].bias, net[2].bias + 1)
    with pytest.raises(ValueError, match="differ at leaf"):
        pax.apply_updates(net, {"weight": jnp.ones(3)})


def test_a_plain_dict_of_parameters_works_with_the_frozen_optimizer_state():
    # the module stores optax's state with its dicts frozen; the gradients and
    # parameters the user passes are plain dicts
    params = {"w": jnp.ones(3), "b": jnp.zeros(2)}
    grads = {"w": jnp.full(3, 0.5), "b": jnp.ones(2)}
    tx = optax.adam(0.1)
    opt = pax.optim.from_optax(tx, params)
    step = jax.jit(lambda o, g, p: pax.purecall(o, g, p))
    raw_state = tx.init(params)
    for _ in range(2):
        opt, updates = step(opt, grads, params)
        raw_updates, raw_state = tx.update(grads, raw_state, params)
        assert type(updates) is dict
        for k in params:
            np.testing.assert_allclose(updates[k], raw_updates[k], rtol=1e-6)

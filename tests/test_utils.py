"""pax.utils.build_update_fn and pax.utils.scan."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax


def make(key):
    k1, k2 = jax.random.split(key)
    net = pax.Sequential(
        # no bias before BatchNorm: its gradient is pure rounding noise, which
        # Adam would amplify to full-size steps of random sign
        pax.Linear(3, 4, with_bias=False, rng_key=k1),
        pax.BatchNorm(4),
        pax.Dropout(0.2, rng_key=k2),
        pax.Linear(4, 1, rng_key=k2),
    )
    return net, pax.optim.from_optax(optax.adam(1e-2), net.parameters())


def loss_fn(model, x, y):
    model, out = pax.purecall(model, x)
    loss = jnp.mean((out - y) ** 2)
    return loss, (loss, model)


def test_update_fn_equals_the_steps_written_by_hand(key):
    net, opt = make(key)
    x = jax.random.normal(key, (16, 3))
    y = x.sum(-1, keepdims=True)
    update_fn = jax.jit(pax.utils.build_update_fn(loss_fn))
    model, o = net, opt
    for _ in range(3):
        model, o, loss = update_fn(model, o, x, y)
    # the same three steps by hand
    hm, ho = net, opt
    tx = optax.adam(1e-2)
    for _ in range(3):
        (_, (_, new)), grads = pax.value_and_grad(loss_fn, has_aux=True)(hm, x, y)
        updates, state = tx.update(grads, ho.state, hm.parameters())
        ho = ho.replace(state=state)
        hm = pax.apply_updates(new, updates)
    for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(hm)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # BatchNorm statistics and the dropout key moved
    assert int(model[1].mean_ema.counter) == 3
    assert not np.array_equal(model[2].rng_key, net[2].rng_key)
    # and training reduces the (training-mode) loss
    losses = []
    for _ in range(150):
        model, o, loss = update_fn(model, o, x, y)
        losses.append(float(loss))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def test_bad_loss_fn_gets_a_clear_error(key):
    net, opt = make(key)
    x, y = jnp.ones((2, 3)), jnp.ones((2, 1))
    bad = pax.utils.build_update_fn(lambda m, x, y: jnp.mean(m.eval()(x)))
    with pytest.raises(TypeError, match=r"must return `\(loss, \(aux, model\)\)`"):
        bad(net, opt, x, y)
    wrong_model = pax.utils.build_update_fn(
        lambda m, x, y: (jnp.mean(m.eval()(x)), (None, m[0]))
    )
    with pytest.raises(TypeError, match="returned model is a Linear"):
        wrong_model(net, opt, x, y)


def test_scan_updates_state_like_a_loop_of_purecalls(key):
    bn = pax.BatchNorm(3)
    xs = jax.random.normal(key, (4, 5, 3))

    def step(bn, x):
        return bn, bn(x)  # a training-mode call, no purecall needed

    final, ys = jax.jit(lambda b, xs: pax.utils.scan(step, b, xs))(bn, xs)
    loop = bn
    for i in range(4):
        loop, y = pax.purecall(loop, xs[i])
        np.testing.assert_allclose(ys[i], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        final.mean_ema.averages, loop.mean_ema.averages, rtol=1e-5, atol=1e-6
    )
    assert int(final.var_ema.counter) == 4
    with pytest.raises(pax.MutationError):
        bn(xs[0])  # outside scan/pure, still immutable

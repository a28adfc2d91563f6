"""Mixed precision with jmp: apply_mp_policy / unwrap_mp_policy."""

import jax
import jax.numpy as jnp
import jmp
import numpy as np
import optax
import pytest

import pax

HALF = jmp.get_policy("params=float32,compute=bfloat16,output=float32")


def make(key):
    k1, k2 = jax.random.split(key)
    return pax.Sequential(
        pax.Linear(3, 4, rng_key=k1),
        pax.BatchNorm(4),
        jax.nn.relu,
        pax.LayerNorm(4),
        pax.Linear(4, 2, rng_key=k2),
    )


def test_compute_in_bfloat16_output_float32_params_float32(key):
    net = make(key)
    mp = pax.apply_mp_policy(net, HALF)
    assert type(mp).__name__ == "Sequential" and isinstance(mp, pax.Sequential)
    assert mp[0].weight.dtype == jnp.float32  # stored in param dtype
    x = jax.random.normal(key, (5, 3))
    mp_bn, y = pax.purecall(mp, x)
    assert y.dtype == jnp.float32
    # the same network computed by hand: matmuls in bfloat16, norms in float32
    bf = jnp.bfloat16
    fc1, fc2 = net[0], net[4]
    h = x.astype(bf) @ fc1.weight.astype(bf) + fc1.bias.astype(bf)[None, :]
    hf = np.asarray(h.astype(jnp.float32))
    mean, var = hf.mean(0), hf.var(0)
    h = jnp.asarray((hf - mean) / np.sqrt(var + 1e-5)).astype(bf)
    h = np.asarray(jax.nn.relu(h).astype(jnp.float32))
    m, v = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    h = jnp.asarray((h - m) / np.sqrt(v + 1e-5)).astype(bf)
    out = h @ fc2.weight.astype(bf) + fc2.bias.astype(bf)[None, :]
    np.testing.assert_allclose(y, out.astype(jnp.float32), rtol=2e-2, atol=2e-2)
    # BatchNorm statistics stay float32 and were updated
    assert mp_bn[1].mean_ema.averages.dtype == jnp.float32
    np.testing.assert_allclose(mp_bn[1].mean_ema.averages, mean, rtol=2e-2, atol=2e-2)


def test_norm_layers_keep_float32_parameters_and_math(key):
    policy = jmp.get_policy("params=bfloat16,compute=bfloat16,output=bfloat16")
    mp = pax.apply_mp_policy(make(key), policy)
    assert mp[0].weight.dtype == jnp.bfloat16
    assert mp[1].scale.dtype == jnp.float32 and mp[3].scale.dtype == jnp.float32
    assert mp[1].var_ema.averages.dtype == jnp.float32
    _, y = pax.purecall(mp, jnp.ones((2, 3)))
    assert y.dtype == jnp.bfloat16


def test_unwrap_restores_types_and_values(key):
    net = make(key)
    policy = jmp.get_policy("params=bfloat16,compute=bfloat16,output=float32")
    back = pax.unwrap_mp_policy(pax.apply_mp_policy(net, policy))
    assert type(back) is pax.Sequential and type(back[0]) is pax.Linear
    assert type(back[1]) is pax.BatchNorm
    assert back[0].weight.dtype == jnp.float32
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(net)
    # bfloat16 storage rounded the weights; float32 policies keep them exactly
    np.testing.assert_allclose(back[0].weight, net[0].weight, rtol=1e-2)
    exact = pax.unwrap_mp_policy(pax.apply_mp_policy(net, HALF))
    for a, b in zip(jax.tree_util.tree_leaves(exact), jax.tree_util.tree_leaves(net)):
        np.testing.assert_array_equal(a, b)


def test_training_with_dynamic_loss_scaling(key):
    policy = jmp.get_policy("params=float32,compute=float16,output=float32")
    model = pax.apply_mp_policy(make(key), policy)
    opt = pax.optim.from_optax(optax.adam(1e-2), model.parameters())
    x = jax.random.normal(key, (16, 3))
    y = jnp.concatenate([x.sum(-1, keepdims=True), x[:, :1]], axis=-1)

    def loss_fn(model, x, y, scale):
        model, out = pax.purecall(model, x)
        loss = jnp.mean((out - y) ** 2)
        return scale.scale(loss), (loss, model)

    @jax.jit
    def step(model, opt, scale, x, y):
        grads, (loss, model_new) = pax.grad(loss_fn, has_aux=True)(model, x, y, scale)
        grads = scale.unscale(grads)
        finite = jmp.all_finite(grads)
        scale = scale.adjust(finite)
        opt_new, updates = pax.purecall(opt, grads, model.parameters())
        model_new = pax.apply_updates(model_new, updates)
        model, opt = jmp.select_tree(finite, (model_new, opt_new), (model, opt))
        return model, opt, scale, loss, finite

    # start with an absurd scale: the first steps overflow in float16 and are skipped
    scale = jmp.DynamicLossScale(jnp.float32(2.0**40), period=5)
    finites, losses = [], []
    for _ in range(40):
        model, opt, scale, loss, finite = step(model, opt, scale, x, y)
        finites.append(bool(finite))
        losses.append(float(loss))
    assert not finites[0]  # overflow detected, update skipped
    assert float(scale.loss_scale) < 2.0**40  # and the scale came down
    assert any(finites)
    assert losses[-1] < losses[0]


def test_errors(key):
    with pytest.raises(TypeError, match="expects a jmp.Policy"):
        pax.apply_mp_policy(make(key), "bf16")
    with pytest.raises(TypeError, match="expects a pax.Module"):
        pax.apply_mp_policy(jnp.ones(3), HALF)
    with pytest.raises(pax.MutationError):
        pax.apply_mp_policy(make(key), HALF)(jnp.ones((2, 3)))  # BN trains: pure

"""nets.MLP: numerics, reverse, dropout, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nets._mlp import MLP
from tests.programs import count_programs


def hand_mlp(mlp, x, activate_final=False, activation=np.tanh, masks=None):
    """The MLP written out with numpy and the module's own weights."""
    out = np.asarray(x, np.float64)
    n = len(mlp.layers)
    for i, layer in enumerate(mlp.layers):
        out = out @ np.asarray(layer.weight, np.float64)
        if layer.bias is not None:
            out = out + np.asarray(layer.bias, np.float64)
        if i < n - 1 or activate_final:
            if masks is not None:
                out = out * masks[i]
            out = activation(out)
    return out


@pytest.mark.parametrize("activate_final", [False, True])
def test_mlp_matches_hand_formula(activate_final, key):
    k1, k2 = jax.random.split(key)
    mlp = MLP(
        3,
        [6, 5, 2],
        b_init=pax.initializers.RandomNormal(),
        activation=jnp.tanh,
        activate_final=activate_final,
        rng_key=k1,
    )
    x = jax.random.normal(k2, (4, 3))
    np.testing.assert_allclose(
        mlp(x), hand_mlp(mlp, x, activate_final), rtol=1e-5, atol=1e-6
    )
    assert [(f.in_dim, f.out_dim) for f in mlp.layers] == [(3, 6), (6, 5), (5, 2)]
    assert mlp.output_size == 2
    assert len(jax.tree_util.tree_leaves(mlp.parameters())) == 6
    no_bias = MLP(3, [4, 4], with_bias=False, rng_key=k1)
    assert all(layer.bias is None for layer in no_bias.layers)
    assert len(jax.tree_util.tree_leaves(no_bias.parameters())) == 2


def test_mlp_reverse(key):
    mlp = MLP(3, [7, 5, 2], activate_final=True, activation=jnp.tanh, rng_key=key)
    rev = mlp.reverse(rng_key=jax.random.PRNGKey(1))
    assert rev.in_dim == 2 and rev.output_sizes == (5, 7, 3)
    assert rev.activate_final and rev.activation is jnp.tanh
    x = jnp.ones((4, 3))
    assert rev(mlp(x)).shape == x.shape
    assert mlp.reverse(activate_final=False).activate_final is False


def test_mlp_dropout_in_training_only(key):
    mlp = MLP(3, [16, 16, 4], activation=np.tanh, rng_key=key)
    x = jax.random.normal(key, (8, 3))
    drop_key = jax.random.PRNGKey(7)
    y = mlp(x, 0.5, drop_key)
    # independent computation: the same per-layer keys, Haiku's inverted dropout
    keys = jax.random.split(drop_key, 3)
    masks = [
        np.asarray(jax.random.bernoulli(keys[i], 0.5, (8, 16)), np.float64) / 0.5
        for i in range(2)
    ]
    np.testing.assert_allclose(y, hand_mlp(mlp, x, masks=masks), rtol=1e-5, atol=1e-6)
    assert not np.allclose(y, mlp(x))
    # eval mode: no dropout and no key needed
    np.testing.assert_allclose(mlp.eval()(x, 0.5), mlp(x), rtol=1e-6)
    with pytest.raises(ValueError, match="needs a key"):
        mlp(x, 0.5)
    with pytest.raises(ValueError, match="only used with `dropout_rate`"):
        mlp(x, rng_key=drop_key)


@pytest.mark.parametrize("with_bias", [True, False])
def test_mlp_parity_with_haiku(with_bias, key):
    x = jax.random.normal(key, (4, 3))

    def f(x, rate=None, rng=None):
        return hk.nets.MLP([5, 6, 2], with_bias=with_bias)(x, rate, rng)

    f = hk.transform(f)
    params = f.init(key, x)
    assert sorted(params) == ["mlp/~/linear_0", "mlp/~/linear_1", "mlp/~/linear_2"]
    mlp = MLP(3, [5, 6, 2], with_bias=with_bias, rng_key=key)
    layers = []
    for i, layer in enumerate(mlp.layers):
        p = params[f"mlp/~/linear_{i}"]
        assert p["w"].shape == layer.weight.shape
        layers.append(layer.replace(weight=p["w"], bias=p.get("b")))
    mlp = mlp.replace(layers=tuple(layers))
    np.testing.assert_allclose(mlp(x), f.apply(params, None, x), rtol=1e-5, atol=1e-6)


def test_mlp_errors(key):
    with pytest.raises(ValueError, match="b_init"):
        MLP(3, [4], with_bias=False, b_init=pax.initializers.zeros, rng_key=key)
    with pytest.raises(ValueError, match="at least one layer"):
        MLP(3, [], rng_key=key)
    with pytest.raises(ValueError, match="positive"):
        MLP(3, [4, 0], rng_key=key)
    with pytest.raises(TypeError, match="callable"):
        MLP(3, [4], activation="relu", rng_key=key)
    mlp = MLP(3, [4], rng_key=key)
    with pytest.raises(ValueError, match=r"MLP\(in_dim=3.*last dimension 3.*\(2, 5\)"):
        mlp(jnp.ones((2, 5)))


def test_eager_mlp_is_one_program_per_layer_and_activation(key):
    # issue 17: each layer dispatched three programs (dot, bias broadcast,
    # add); now one, plus one per activation. Odd sizes: not compiled before.
    mlp = MLP(11, [17, 19, 23], activation=jnp.tanh, rng_key=key)
    x = jax.device_put(np.random.default_rng(0).standard_normal((3, 11), np.float32))
    with count_programs() as n:
        y = mlp(x)
    assert n() <= 3 + 2
    with count_programs() as n:
        mlp(x)
    assert n() == 0
    np.testing.assert_allclose(y, hand_mlp(mlp, x), rtol=1e-5, atol=1e-5)


def test_mlp_errors_on_every_call_after_a_good_one(key):
    mlp = MLP(3, [4, 2], rng_key=key)
    mlp(jnp.ones((2, 3)))
    for _ in range(2):
        with pytest.raises(
            ValueError, match=r"MLP\(in_dim=3.*last dimension 3.*\(2, 5\)"
        ):
            mlp(jnp.ones((2, 5)))
        with pytest.raises(ValueError, match=r"MLP\(in_dim=3.*needs a key"):
            mlp(jnp.ones((2, 3)), dropout_rate=0.5)
        with pytest.raises(ValueError, match=r"MLP\(in_dim=3.*pass both or neither"):
            mlp(jnp.ones((2, 3)), rng_key=key)
        with pytest.raises(TypeError, match=r"MLP\(in_dim=3.*expected an array"):
            mlp(None)

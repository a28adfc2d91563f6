"""Sequential, Lambda, Identity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax


def make(key):
    k1, k2 = jax.random.split(key)
    return pax.Sequential(
        pax.Linear(2, 3, rng_key=k1), jax.nn.relu, pax.Linear(3, 4, rng_key=k2)
    )


def test_sequential_applies_layers_in_order(key):
    net = make(key)
    x = jax.random.normal(key, (5, 2))
    a, b = net[0], net[2]
    h = np.maximum(np.asarray(x) @ np.asarray(a.weight) + np.asarray(a.bias), 0)
    expected = h @ np.asarray(b.weight) + np.asarray(b.bias)
    np.testing.assert_allclose(net(x), expected, rtol=1e-5, atol=1e-6)


def test_indexing_slicing_set_and_append(key):
    net = make(key)
    assert len(net) == 3 and isinstance(net[1], pax.Lambda)
    assert list(net) == list(net.layers)
    tail = net[1:]
    assert isinstance(tail, pax.Sequential) and len(tail) == 2 and tail[1] is net[2]
    new_last = pax.Linear(3, 5, rng_key=key)
    changed = net.set(-1, new_last)
    assert changed[-1] is new_last and net[-1].out_dim == 4
    assert changed(jnp.ones((1, 2))).shape == (1, 5)
    longer = net >> jnp.tanh
    assert len(longer) == 4 and isinstance(longer[3], pax.Lambda)


def test_summary_and_keys_as_the_seed_shows(key):
    net = make(key)
    assert net.summary() == "\n".join(
        [
            "Sequential",
            "├── Linear(in_dim=2, out_dim=3, with_bias=True)",
            "├── x => relu(x)",
            "└── Linear(in_dim=3, out_dim=4, with_bias=True)",
        ]
    )
    replaced = net.replace_node(net[-1], pax.Linear(3, 5, rng_key=key))
    assert replaced.summary().splitlines()[-1] == (
        "└── Linear(in_dim=3, out_dim=5, with_bias=True)"
    )
    assert list(net.state_dict()) == [
        ".layers[0].weight",
        ".layers[0].bias",
        ".layers[2].weight",
        ".layers[2].bias",
    ]


def test_lambda_and_identity(key):
    x = jax.random.normal(key, (3,))
    np.testing.assert_array_equal(pax.Lambda(jnp.tanh)(x), jnp.tanh(x))
    assert pax.Lambda(jnp.tanh, name="squash").summary() == "x => squash(x)"
    assert pax.Identity()(x) is x
    assert jax.tree_util.tree_leaves(pax.Lambda(jnp.tanh)) == []


def test_errors():
    with pytest.raises(TypeError, match="layer 1 must be a pax.Module or a function"):
        pax.Sequential(jnp.tanh, 3)
    with pytest.raises(TypeError, match="must be callable"):
        pax.Lambda(3)

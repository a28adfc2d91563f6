"""Property tests: round trips over random module shapes."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pax

from .modules import Affine, Chain, Stats

dims = st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=5)


def build(sizes, with_bias, with_fn, seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes))
    layers = []
    for k, a, b in zip(keys, sizes[:-1], sizes[1:]):
        layers.append(Affine(a, b, with_bias=with_bias, rng_key=k))
        if with_fn:
            layers.append(jnp.tanh)
    layers.append(Stats(sizes[-1]))
    return Chain(*layers)


@settings(max_examples=25, deadline=None)
@given(dims, st.booleans(), st.booleans(), st.integers(0, 1000))
def test_round_trips_preserve_everything(sizes, with_bias, with_fn, seed):
    net = build(sizes, with_bias, with_fn, seed)
    leaves, treedef = jax.tree_util.tree_flatten(net)
    n_affine = len(sizes) - 1
    assert len(leaves) == n_affine * (2 if with_bias else 1) + 2
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert jax.tree_util.tree_structure(again) == treedef
    assert all(a is b for a, b in zip(jax.tree_util.tree_leaves(again), leaves))
    # parameters -> update_parameters is the identity on values
    same = net.update_parameters(net.parameters())
    for a, b in zip(jax.tree_util.tree_leaves(same), leaves):
        np.testing.assert_array_equal(a, b)
    # state_dict -> load_state_dict too, and keys are unique paths
    sd = net.state_dict()
    assert len(sd) == len(leaves)
    loaded = net.load_state_dict(sd)
    assert jax.tree_util.tree_structure(loaded) == treedef
    # trainable leaves: every Affine's arrays plus Stats.scale
    n_trainable = len(jax.tree_util.tree_leaves(net.parameters()))
    assert n_trainable == n_affine * (2 if with_bias else 1) + 1
    frozen = pax.freeze_parameters(net)
    assert jax.tree_util.tree_leaves(frozen.parameters()) == []

"""freeze/unfreeze/select parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

from .modules import Affine, Chain, Stats


def test_freeze_makes_nothing_trainable(key):
    net = Chain(Affine(2, 3, rng_key=key), Stats(3))
    frozen = pax.freeze_parameters(net)
    assert jax.tree_util.tree_leaves(frozen.parameters()) == []
    # values and leaves unchanged; the original still has its parameters
    assert len(jax.tree_util.tree_leaves(frozen)) == len(jax.tree_util.tree_leaves(net))
    assert len(jax.tree_util.tree_leaves(net.parameters())) == 3


def test_frozen_body_with_a_new_trainable_head(key):
    k1, k2 = jax.random.split(key)
    body = pax.freeze_parameters(Affine(2, 3, rng_key=k1))
    net = Chain(body, Affine(3, 1, rng_key=k2))
    keys = [
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_leaves_with_path(net.parameters())
    ]
    assert keys == [".layers[1].weight", ".layers[1].bias"]


def test_unfreeze_without_origin_restores_all(key):
    net = Chain(Affine(2, 3, rng_key=key))
    again = pax.unfreeze_parameters(pax.freeze_parameters(net))
    assert len(jax.tree_util.tree_leaves(again.parameters())) == 2
    assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(net)


def test_unfreeze_with_origin_keeps_origins_classification_and_new_values(key):
    k1, k2 = jax.random.split(key)
    origin = Chain(
        pax.freeze_parameters(Affine(2, 3, rng_key=k1)), Affine(3, 1, rng_key=k2)
    )
    frozen = pax.freeze_parameters(origin).map(lambda x: x + 1)
    restored = pax.unfreeze_parameters(frozen, origin=origin)
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(
        origin
    )
    np.testing.assert_array_equal(
        restored.layers[1].weight, origin.layers[1].weight + 1
    )
    # layer 0 was frozen in origin and stays frozen
    assert restored.parameters().layers[0].weight is None
    assert restored.parameters().layers[1].weight is not None
    with pytest.raises(ValueError, match="does not match"):
        pax.unfreeze_parameters(frozen, origin=Chain(Affine(2, 3, rng_key=k1)))


def test_select_parameters_equals_parameters():
    s = Stats(2)
    sel = pax.select_parameters(s)
    assert sel.mean is None
    np.testing.assert_array_equal(sel.scale, jnp.ones(2))
    with pytest.raises(TypeError, match="expects a pax.Module"):
        pax.select_parameters({"a": 1})

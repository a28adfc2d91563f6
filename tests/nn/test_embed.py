"""Embed: lookups, styles, defaults, Haiku parity, errors."""

import haiku as hk
import jax.numpy as jnp
import numpy as np
import pytest

import pax


def test_lookup_returns_rows(key):
    embed = pax.Embed(7, 3, rng_key=key)
    ids = np.array([[0, 6, 2], [2, 2, 1]])
    expected = np.asarray(embed.weight)[ids]
    np.testing.assert_array_equal(embed(ids), expected)
    one_hot = pax.Embed(7, 3, lookup_style="one_hot", rng_key=key)
    np.testing.assert_allclose(one_hot(ids), expected, rtol=1e-6)
    assert one_hot.lookup_style == "ONE_HOT"


def test_default_init_is_truncated_normal_one(key):
    w = np.asarray(pax.Embed(1000, 200, rng_key=key).weight)
    assert np.abs(w).max() <= 2.0
    assert abs(w.std() - 0.8796) < 0.01


def test_parity_with_haiku(key):
    ids = jnp.array([[1, 2], [3, 0]])
    f = hk.transform(lambda i: hk.Embed(5, 4)(i))
    params = f.init(key, ids)
    table = params["embed"]["embeddings"]
    embed = pax.Embed(5, 4, rng_key=key)
    assert embed.weight.shape == table.shape
    np.testing.assert_array_equal(
        embed.replace(weight=table)(ids), f.apply(params, None, ids)
    )


def test_errors(key):
    embed = pax.Embed(5, 4, rng_key=key)
    with pytest.raises(TypeError, match="expected integer ids, got dtype float32"):
        embed(jnp.ones((2,)))
    with pytest.raises(ValueError, match="`lookup_style` must be one of"):
        pax.Embed(5, 4, lookup_style="GATHER")
    with pytest.raises(ValueError, match="`vocab_size` must be a positive int"):
        pax.Embed(0, 4)

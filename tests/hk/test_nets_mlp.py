"""hk.nets.MLP: the same params, outputs, dropout and reverse as dm-haiku."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


def assert_same_trees(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("with_bias", [True, False])
def test_mlp_matches_haiku_with_dropout_and_reverse(with_bias):
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    out = {}
    for lib, hk in LIBS.items():

        def f(x, hk=hk):
            mlp = hk.nets.MLP([5, 6, 2], with_bias=with_bias, activate_final=True)
            y = mlp(x)
            y_drop = mlp(x, 0.3, hk.next_rng_key())
            back = mlp.reverse()(y)
            return y, y_drop, back

        f = hk.transform(f)
        params = f.init(jax.random.PRNGKey(0), x)
        out[lib] = (params, jax.jit(f.apply)(params, jax.random.PRNGKey(2), x))
    assert_same_trees(out["haiku"], out["pax"])
    params = out["pax"][0]
    assert (
        "mlp/~/linear_0" in params and "mlp/~reverse/mlp_reversed/~/linear_2" in params
    )
    assert params["mlp/~reverse/mlp_reversed/~/linear_2"]["w"].shape == (5, 3)


def test_mlp_errors_match_haiku():
    for hk in LIBS.values():
        with pytest.raises(ValueError, match="b_init must not be set"):
            hk.transform(
                lambda hk=hk: hk.nets.MLP([2], with_bias=False, b_init=jnp.zeros)
            ).init(None)
        f = hk.transform(lambda x, hk=hk: hk.nets.MLP([2])(x, 0.5))
        with pytest.raises(ValueError, match="rng key must be passed"):
            f.init(None, jnp.ones((1, 2)))
        g = hk.transform(lambda hk=hk: hk.nets.MLP([2]).reverse())
        with pytest.raises(ValueError, match="until it has been called"):
            g.init(None)

"""hk.initializers: the same values as dm-haiku's for the same key."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

CASES = [
    ("Constant", (0.3,), (2, 3)),
    ("RandomNormal", (0.5, 1.0), (4, 3)),
    ("TruncatedNormal", (0.5, 0.1), (4, 3)),
    ("TruncatedNormal", (1.0, 0.0, -1.0, 1.5), (5,)),
    ("RandomUniform", (-1.0, 2.0), (3, 3)),
    ("VarianceScaling", (2.0, "fan_avg", "uniform"), (3, 3, 4, 5)),
    ("VarianceScaling", (1.0, "fan_in", "truncated_normal"), (6, 7)),
    ("VarianceScaling", (1.0, "fan_out", "normal"), (6, 7)),
    ("UniformScaling", (2.0,), (6, 7)),
    ("Orthogonal", (1.5,), (4, 6)),
    ("Identity", (2.0,), (3, 4)),
]


@pytest.mark.parametrize("name,args,shape", CASES, ids=[c[0] for c in CASES])
def test_initializer_matches_haiku_bit_for_bit(name, args, shape):
    out = {}
    for lib, hk in (("haiku", haiku), ("pax", phk)):

        def f(hk=hk):
            init = getattr(hk.initializers, name)(*args)
            a = hk.get_parameter("a", shape, init=init)
            # a second draw: the key sequence continues identically
            b = hk.get_parameter("b", [2], init=hk.initializers.RandomNormal())
            return a, b

        # Haiku's Orthogonal broadcasts implicitly: allow it for Haiku only
        promotion = "allow" if hk is haiku else "raise"
        with jax.numpy_rank_promotion(promotion):
            out[lib] = hk.transform(f).init(jax.random.PRNGKey(7))
    assert jax.tree_util.tree_structure(out["haiku"]) == jax.tree_util.tree_structure(
        out["pax"]
    )
    for x, y in zip(
        jax.tree_util.tree_leaves(out["haiku"]), jax.tree_util.tree_leaves(out["pax"])
    ):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_initializers_need_a_transform_when_random():
    with pytest.raises(ValueError, match="hk.transform"):
        phk.initializers.RandomNormal()((2,), jnp.float32)
    # Constant draws no key: it works anywhere
    np.testing.assert_array_equal(
        phk.initializers.Constant(2.0)((2,), jnp.float32), [2, 2]
    )

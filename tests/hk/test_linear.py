"""hk.Linear (on pax.nn.Linear): parameters, values and outputs as dm-haiku."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_linear_matches_haiku(with_bias, dtype):
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 3)).astype(dtype)
    out = {}
    for lib, hk in LIBS.items():

        def f(x, hk=hk):
            a = hk.Linear(4, with_bias=with_bias)(x)
            return hk.Linear(2, name="head")(jax.nn.relu(a))

        f = hk.transform(f)
        params = f.init(jax.random.PRNGKey(0), x)
        out[lib] = (params, f.apply(params, None, x), jax.jit(f.apply)(params, None, x))
    for a, b in zip(
        jax.tree_util.tree_leaves(out["haiku"]), jax.tree_util.tree_leaves(out["pax"])
    ):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(
            np.asarray(a, np.float32), np.asarray(b, np.float32)
        )
    params = out["pax"][0]
    assert sorted(params) == ["head", "linear"]
    assert ("b" in params["linear"]) == with_bias
    assert (
        params["linear"]["w"].dtype == dtype
    )  # Haiku: parameters take the input dtype


def test_linear_output_is_the_hand_formula_and_scalar_input_fails():
    f = phk.transform(lambda x: phk.Linear(3)(x))
    x = jnp.arange(4.0).reshape(2, 2)
    params = f.init(jax.random.PRNGKey(0), x)
    w, b = params["linear"]["w"], params["linear"]["b"]
    np.testing.assert_allclose(f.apply(params, None, x), x @ w + b[None, :], rtol=1e-6)
    with pytest.raises(ValueError, match="scalar"):
        f.init(None, jnp.array(1.0))

"""hk.MultiHeadAttention (on pax.nn.MultiHeadAttention): parameter names,
shapes, dtypes, values and outputs as dm-haiku."""

import warnings

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


def run_both(make, *args):
    """init under both libraries (same key); apply both to Haiku's params."""
    out = {}
    ref = None
    for lib, hk in LIBS.items():
        f = hk.transform(make(hk))
        with jax.numpy_rank_promotion("allow" if lib == "haiku" else "raise"):
            params = f.init(jax.random.PRNGKey(0), *args)
            ref = params if ref is None else ref
            yj = jax.jit(f.apply)(ref, None, *args)
            # eager apply checked for pax.hk only (Haiku's is the same code)
            out[lib] = (params, f.apply(ref, None, *args) if lib == "pax" else yj, yj)
    return out


def compare(out, rtol=1e-5, atol=1e-6):
    (pa, *ya), (pb, *yb) = out["haiku"], out["pax"]
    assert jax.tree_util.tree_structure(pa) == jax.tree_util.tree_structure(pb)
    for x, y in zip(jax.tree_util.tree_leaves(pa), jax.tree_util.tree_leaves(pb)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(
            np.asarray(x, np.float32), np.asarray(y, np.float32)
        )
    for x, y in zip(jax.tree_util.tree_leaves(ya), jax.tree_util.tree_leaves(yb)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_allclose(
            np.asarray(x, np.float32), np.asarray(y, np.float32), rtol=rtol, atol=atol
        )
    return pb


Q = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 5))
KV = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 6))


@pytest.mark.parametrize("with_bias", [True, False])
def test_mha_matches_haiku(with_bias):
    mask = jax.random.bernoulli(jax.random.PRNGKey(3), 0.6, (2, 1, 3, 4))
    mask = mask.at[0, 0, 0].set(False)  # a query that attends to nothing

    def make(hk):
        def f(q, kv, mask):
            mha = hk.MultiHeadAttention(
                2,
                3,
                w_init=hk.initializers.VarianceScaling(1.0),
                b_init=hk.initializers.RandomNormal() if with_bias else None,
                with_bias=with_bias,
                value_size=4,
                model_size=7,
            )
            return mha(q, kv, kv, mask=mask), mha(q, kv, kv), mha(q, kv, kv)

        return f

    params = compare(run_both(make, Q, KV, mask))
    names = ["key", "linear", "query", "value"]
    assert sorted(params) == [f"multi_head_attention/{n}" for n in names]
    shapes = {"query": (5, 6), "key": (6, 6), "value": (6, 8), "linear": (8, 7)}
    for n, shape in shapes.items():
        p = params[f"multi_head_attention/{n}"]
        assert p["w"].shape == shape and ("b" in p) == with_bias


def test_mha_unbatched_broadcast_mask_w_init_scale_and_bfloat16():
    q = Q[0].astype(jnp.bfloat16)
    causal = jnp.tril(jnp.ones((1, 3, 3), bool))

    def make(hk):
        def f(q):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                mha = hk.MultiHeadAttention(4, 2, w_init_scale=2.0, name="attn")
            return mha(q, q, q, mask=causal)

        return f

    # Haiku computes logits and softmax in bfloat16, PAX in float32.
    params = compare(run_both(make, q), rtol=5e-2, atol=5e-2)
    assert params["attn/query"]["w"].dtype == jnp.bfloat16
    compare(run_both(make, Q[0]))


def test_mha_errors():
    for hk in LIBS.values():

        def bad(hk=hk, **kw):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                hk.transform(lambda: hk.MultiHeadAttention(2, 3, **kw)).init(None)

        with pytest.raises(ValueError, match="w_init"):
            bad()
        with pytest.raises(ValueError, match="only"):
            bad(w_init_scale=1.0, w_init=jnp.zeros)

        def f(q, hk=hk):
            mha = hk.MultiHeadAttention(2, 3, w_init=hk.initializers.Constant(0.1))
            return mha(q, q, q, mask=jnp.ones((3, 3), bool))

        with pytest.raises(ValueError, match="imensionality"):
            hk.transform(f).init(jax.random.PRNGKey(0), Q)

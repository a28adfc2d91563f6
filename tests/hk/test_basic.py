"""hk.Sequential, Bias, Embed, Reshape, Flatten, BatchApply, expand_apply:
parameter names, shapes, dtypes, values and outputs as dm-haiku."""

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
    ref_params = None
    for lib, hk in LIBS.items():
        f = hk.transform(make(hk))
        params = f.init(jax.random.PRNGKey(0), *args)
        if ref_params is None:
            ref_params = params
        yj = jax.jit(f.apply)(ref_params, None, *args)
        # eager apply checked for pax.hk only (Haiku's is the same code)
        y = f.apply(ref_params, None, *args) if lib == "pax" else yj
        out[lib] = (params, y, yj)
    return out


def assert_params_identical(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(
            np.asarray(x, np.float32), np.asarray(y, np.float32)
        )


def assert_same(out, rtol=1e-5, atol=1e-6):
    (pa, ya, yja), (pb, yb, yjb) = out["haiku"], out["pax"]
    assert_params_identical(pa, pb)
    for a, b in ((ya, yb), (yja, yjb)):
        assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
        for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
            assert x.shape == y.shape and x.dtype == y.dtype
            np.testing.assert_allclose(
                np.asarray(x, np.float32),
                np.asarray(y, np.float32),
                rtol=rtol,
                atol=atol,
            )
    return pb


X = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 4))


def test_sequential_names_and_extra_args():
    def make(hk):
        def f(x):
            seq = hk.Sequential([hk.Linear(3), jax.nn.relu, hk.Linear(2, name="out")])
            inner = hk.Sequential([lambda x, s: x * s, hk.Linear(5)], name="inner")
            return seq(x), inner(x, 2.0)

        return f

    params = assert_same(run_both(make, X))
    assert sorted(params) == ["linear", "linear_1", "out"]  # named where built


@pytest.mark.parametrize(
    "bias_dims,multiplier", [(None, None), ([], -1.0), ([-1], None), ([1], 2.0)]
)
def test_bias_matches_haiku(bias_dims, multiplier):
    def make(hk):
        def f(x):
            init = hk.initializers.RandomNormal()
            return hk.Bias(bias_dims=bias_dims, b_init=init)(x, multiplier)

        return f

    params = assert_same(run_both(make, X))
    b = params["bias"]["b"]
    expected = {None: (3, 4), (): (), (-1,): (4,), (1,): (3, 1)}
    assert b.shape == expected[None if bias_dims is None else tuple(bias_dims)]


def test_bias_bfloat16_output_size_and_errors():
    x = X.astype(jnp.bfloat16)

    def make(hk):
        return lambda x: hk.Bias(output_size=(3, 4), b_init=jnp.ones)(x)

    params = assert_same(run_both(make, x))
    assert params["bias"]["b"].dtype == jnp.bfloat16
    for hk in LIBS.values():
        for bad in (dict(output_size=(4, 4)), dict(bias_dims=[0]), dict(bias_dims=[5])):
            with pytest.raises(ValueError):
                hk.transform(lambda x, hk=hk, bad=bad: hk.Bias(**bad)(x)).init(None, X)


@pytest.mark.parametrize("style", ["ARRAY_INDEX", "one_hot", "ENUM"])
def test_embed_matches_haiku(style):
    ids = jnp.array([[0, 3, 9], [2, 2, 1]])

    def make(hk):
        def f(ids):
            s = hk.EmbedLookupStyle.ONE_HOT if style == "ENUM" else style
            a = hk.Embed(10, 4, lookup_style=s)(ids)
            b = hk.Embed(10, 4, name="other")(ids, lookup_style="ONE_HOT")
            return a, b

        return f

    params = assert_same(run_both(make, ids))
    assert params["embed"]["embeddings"].dtype == jnp.float32
    assert sorted(params) == ["embed", "other"]


def test_embed_matrix_and_errors():
    matrix = jnp.arange(12.0).reshape(6, 2)
    ids = jnp.array([5, 0])

    def make(hk):
        return lambda ids: hk.Embed(embedding_matrix=matrix, name="e")(ids)

    params = assert_same(run_both(make, ids))
    np.testing.assert_array_equal(params["e"]["embeddings"], matrix)
    for hk in LIBS.values():
        with pytest.raises(ValueError):
            hk.transform(lambda ids, hk=hk: hk.Embed(3)(ids)).init(None, ids)
        with pytest.raises(ValueError):
            hk.transform(lambda x, hk=hk: hk.Embed(3, 2)(x)).init(None, X)


@pytest.mark.parametrize(
    "shape,preserve", [((-1, 2), 1), ((6, 2), 1), ((-1,), 2), ((2, -1), -2)]
)
def test_reshape_and_flatten(shape, preserve):
    def make(hk):
        def f(x):
            return (
                hk.Reshape(shape, preserve_dims=preserve)(x),
                hk.Flatten(preserve_dims=preserve)(x),
                hk.Flatten()(x[0, 0]),
            )

        return f

    assert assert_same(run_both(make, X)) == {}
    for hk in LIBS.values():
        with pytest.raises(ValueError, match="once"):
            hk.transform(lambda hk=hk: hk.Reshape((-1, -1))).init(None)
        with pytest.raises(ValueError, match="non-zero"):
            hk.transform(lambda hk=hk: hk.Flatten(preserve_dims=0)).init(None)


def test_batch_apply_and_expand_apply():
    def make(hk):
        def f(x):
            ba = hk.BatchApply(hk.Linear(3))
            assert not isinstance(ba, hk.Module)
            y = ba(x)
            z = hk.BatchApply(lambda a, b: (a * b, a.sum(-1)), num_dims=1)(x, 2.0)
            step = hk.expand_apply(lambda s: jnp.cumsum(s, axis=0))(x[0])
            last = hk.expand_apply(lambda s: s * 2, axis=-1)(x[0])
            return y, z, step, last

        return f

    params = assert_same(run_both(make, X))
    assert sorted(params) == ["linear"]
    with pytest.raises(ValueError):
        phk.expand_apply(jnp.sum, axis=1)
    with pytest.raises(ValueError):
        phk.BatchApply(jnp.sum, num_dims=3)(jnp.ones((2, 2)))

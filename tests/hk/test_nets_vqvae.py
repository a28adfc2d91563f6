"""hk.nets.VectorQuantizer / VectorQuantizerEMA: the same params, state and
outputs as dm-haiku, in training (two steps) and eval applies."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


def assert_same_trees(a, b, exact=False):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.dtype == y.dtype and x.shape == y.shape
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(
                np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6
            )


def _run(hk, make, xs, eval_x):
    """init in training mode, two training applies, one eval apply."""

    def f(x, is_training):
        vq = make(hk)
        out = vq(x, is_training=is_training)
        return out, vq.quantize(out["encoding_indices"])

    f = hk.transform_with_state(f)
    apply = f.apply

    params, state = f.init(jax.random.PRNGKey(0), xs[0], True)
    init = (params, state)
    outs = []
    for x in xs:
        out, state = apply(params, state, None, x, True)
        outs.append((out, state))
    eval_out, eval_state = apply(params, state, None, eval_x, False)
    return init, outs, (eval_out, eval_state)


def _check(make, shape):
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    xs = [jax.random.normal(k, shape) for k in keys[:2]]
    eval_x = jax.random.normal(keys[2], shape)
    res = {lib: _run(hk, make, xs, eval_x) for lib, hk in LIBS.items()}
    # same initial params and state (names, shapes, dtypes, values)
    assert_same_trees(res["haiku"][0], res["pax"][0], exact=True)
    assert_same_trees(res["haiku"][1], res["pax"][1])
    assert_same_trees(res["haiku"][2], res["pax"][2])
    return res["pax"]


def test_vector_quantizer_matches_haiku():
    (params, state), outs, (eval_out, _) = _check(
        lambda hk: hk.nets.VectorQuantizer(3, 5, 0.25), (2, 4, 3)
    )
    assert params["vector_quantizer"]["embeddings"].shape == (3, 5)
    assert not state
    out, quantized = eval_out
    np.testing.assert_allclose(out["quantize"], quantized, rtol=1e-6)
    assert out["encoding_indices"].shape == (2, 4)
    assert out["encodings"].shape == out["distances"].shape == (8, 5)


def test_vector_quantizer_ema_matches_haiku():
    (params, state), outs, _ = _check(
        lambda hk: hk.nets.VectorQuantizerEMA(3, 5, 0.25, decay=0.9, name="vq"),
        (6, 3),
    )
    assert not params
    assert sorted(state) == ["vq", "vq/~/ema_cluster_size", "vq/~/ema_dw"]
    assert sorted(state["vq/~/ema_dw"]) == ["average", "counter", "hidden"]
    assert state["vq/~/ema_dw"]["hidden"].shape == (3, 5)
    # training applies change the codebook
    new_state = outs[0][1]
    assert not np.array_equal(state["vq"]["embeddings"], new_state["vq"]["embeddings"])
    assert int(outs[1][1]["vq/~/ema_cluster_size"]["counter"]) == 2


def test_vector_quantizer_ema_eval_only_init_and_errors():
    for hk in LIBS.values():
        f = hk.transform_with_state(
            lambda x, hk=hk: hk.nets.VectorQuantizerEMA(2, 3, 0.25, 0.5)(x, False)
        )
        _, state = f.init(jax.random.PRNGKey(0), jnp.ones((4, 2)))
        assert list(state) == ["vector_quantizer_ema"]
        with pytest.raises(ValueError, match=r"decay must be in range \[0, 1\]"):
            hk.transform(
                lambda hk=hk: hk.nets.VectorQuantizerEMA(2, 3, 0.25, 1.5)
            ).init(None)

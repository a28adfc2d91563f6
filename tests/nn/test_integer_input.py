"""Integer input to layers that compute in floating point (DESIGN §8 "Integer
input"): the output is floating (float32) and equal to the float32 computation
of the same values; nothing is truncated back to the integer dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

KEY = jax.random.PRNGKey(3)
RANDOM = pax.initializers.RandomNormal(1.0, 0.5)


def ints(shape, dtype, high=10):
    """Integer test data 0..high-1 (non-constant, so norms are not degenerate)."""
    return np.random.default_rng(0).integers(0, high, size=shape).astype(dtype)


def plain(module, *args):
    return module, module(*args)


def training(module, *args):
    return pax.purecall(module, *args)


def core_step(core, x):
    state = core.initial_state(x.shape[0])
    return core, core(state, x)


def attention(mha, x):
    return mha, mha(x, x, x, pax.nn.causal_mask(x.shape[-2]))


# name -> (make module, run(module, x) -> (module after, outputs), input shape)
CASES = {
    "BatchNorm-train": (
        lambda: pax.BatchNorm2D(3, scale_init=RANDOM, offset_init=RANDOM, rng_key=KEY),
        training,
        (2, 4, 4, 3),
    ),
    "BatchNorm-eval": (
        lambda: pax.BatchNorm1D(3, scale_init=RANDOM, rng_key=KEY).eval(),
        plain,
        (2, 5, 3),
    ),
    "LayerNorm": (
        lambda: pax.LayerNorm(3, -1, scale_init=RANDOM, rng_key=KEY),
        plain,
        (4, 3),
    ),
    "GroupNorm": (
        lambda: pax.GroupNorm(2, 4, scale_init=RANDOM, rng_key=KEY),
        plain,
        (2, 3, 4),
    ),
    "InstanceNorm": (
        lambda: pax.InstanceNorm(3, offset_init=RANDOM, rng_key=KEY),
        plain,
        (2, 4, 4, 3),
    ),
    "RMSNorm": (lambda: pax.RMSNorm(3, scale_init=RANDOM, rng_key=KEY), plain, (4, 3)),
    "MultiHeadAttention": (
        lambda: pax.MultiHeadAttention(2, 3, rng_key=KEY),
        attention,
        (2, 4, 6),
    ),
    "VanillaRNN": (lambda: pax.VanillaRNN(3, 4, rng_key=KEY), core_step, (2, 3)),
    "LSTM": (lambda: pax.LSTM(3, 4, rng_key=KEY), core_step, (2, 3)),
    "GRU": (lambda: pax.GRU(3, 4, rng_key=KEY), core_step, (2, 3)),
    "Conv2DLSTM": (
        lambda: pax.nn.Conv2DLSTM((4, 4, 2), 3, 3, rng_key=KEY),
        core_step,
        (2, 4, 4, 2),
    ),
    "VectorQuantizer": (
        lambda: pax.nets.VectorQuantizer(3, 5, 0.25, rng_key=KEY),
        plain,
        (2, 4, 3),
    ),
    "VectorQuantizerEMA-train": (
        lambda: pax.nets.VectorQuantizerEMA(3, 5, 0.25, 0.9, rng_key=KEY),
        training,
        (2, 4, 3),
    ),
    "VectorQuantizerEMA-eval": (
        lambda: pax.nets.VectorQuantizerEMA(3, 5, 0.25, 0.9, rng_key=KEY).eval(),
        plain,
        (2, 4, 3),
    ),
}


@pytest.mark.parametrize("dtype", [np.int32, np.uint8], ids=["int32", "uint8"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_integer_input_gives_float32_output(case, dtype):
    make, run, shape = CASES[case]
    # values up to 200 (uint8-safe) make squares overflow uint8 arithmetic
    x = ints(shape, dtype, high=200 if "VectorQuantizer" in case else 10)
    got_module, got = jax.jit(run)(make(), jnp.asarray(x))
    ref_module, ref = jax.jit(run)(make(), jnp.asarray(x, jnp.float32))
    leaves = jax.tree_util.tree_leaves(got)
    ref_leaves = jax.tree_util.tree_leaves(ref)
    assert len(leaves) == len(ref_leaves)
    for a, b in zip(leaves, ref_leaves):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)  # float32 where floating
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    floating = [a for a in leaves if jnp.issubdtype(a.dtype, jnp.floating)]
    assert floating and all(a.dtype == jnp.float32 for a in floating)
    # updated state (BatchNorm's averages, the VQ codebook) as float32 input
    for a, b in zip(
        jax.tree_util.tree_leaves(got_module), jax.tree_util.tree_leaves(ref_module)
    ):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_layer_norm_of_small_integers_is_not_truncated():
    # the example; Haiku gives [[-0.83, -0.58, 1.41]]
    y = pax.LayerNorm(3, -1)(jnp.array([[1, 2, 10]]))
    assert y.dtype == jnp.float32
    x = np.array([1.0, 2.0, 10.0])
    expected = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
    np.testing.assert_allclose(np.asarray(y)[0], expected, rtol=1e-5)

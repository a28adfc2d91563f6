"""A few optax training steps per Haiku layer family: dm-haiku and ``pax.hk``
start from the same initial parameters (and state) and must produce the same
per-step losses, final parameters and final state.

Each case is written once as ``make(hk)``, returning a function ``f(x, y)``
that computes a scalar loss of the model output ``x -> out`` against a fixed
random target ``y``; it is transformed with ``transform_with_state`` under both
libraries (stateless cases simply have an empty state).
"""

from __future__ import annotations

import functools

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax.hk as phk

from .core_parity import APPLY_KEY, KEY, assert_identical

LIBS = {"haiku": haiku, "pax": phk}
STEPS = 3
LR = 1e-2
OPT = optax.adam(LR)
B = 2  # batch size used by most cases
# XLA's CPU backend spends seconds optimising these (init + training) programs;
# at -O0 it compiles them 2-5x faster. Both libraries get the same options.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _normal(seed, *shape):
    # NumPy, not jax.random: no compilation per shape at collection time.
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def mse(out, y):
    assert out.shape == y.shape, (out.shape, y.shape)
    return jnp.mean(jnp.square(out - y))


def xent(logits, labels):
    assert logits.shape[:-1] == labels.shape, (logits.shape, labels.shape)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


# --- the cases: make(hk) -> f(x, y) -> scalar loss ----------------------------


def make_mlp(hk):
    def f(x, y):
        return mse(hk.nets.MLP([8, 8, 3], activate_final=False)(x), y)

    return f


def make_conv_pool(hk):
    def f(x, y):
        h = jax.nn.relu(hk.Conv2D(4, kernel_shape=3)(x))
        h = hk.avg_pool(h, window_shape=(2, 2, 1), strides=(2, 2, 1), padding="VALID")
        h = hk.MaxPool(window_shape=(2, 2, 1), strides=1, padding="SAME")(h)
        return mse(hk.Linear(3)(hk.Flatten()(h)), y)

    return f


def make_conv_transpose(hk):
    def f(x, y):
        h = hk.Conv1DTranspose(4, kernel_shape=3, stride=2)(x)
        return mse(hk.Conv1D(2, kernel_shape=3)(jnp.tanh(h)), y)

    return f


def make_depthwise(hk):
    def f(x, y):
        h = hk.DepthwiseConv2D(channel_multiplier=2, kernel_shape=3)(x)
        return mse(hk.Conv2D(3, kernel_shape=1)(jnp.tanh(h)), y)

    return f


def make_batchnorm(hk):
    def f(x, y):
        # No bias before BatchNorm: it would get only rounding noise as gradient
        # (the batch mean removes it), which Adam amplifies (see NOISE_DRIVEN).
        h = hk.Linear(4, with_bias=False)(x)
        h = hk.BatchNorm(True, True, decay_rate=0.9)(h, is_training=True)
        return mse(hk.Linear(3)(jax.nn.relu(h)), y)

    return f


def make_norms(hk):
    def f(x, y):
        h = hk.Linear(4)(x)
        h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
        h = hk.GroupNorm(groups=2)(jax.nn.gelu(h))
        h = hk.RMSNorm(axis=-1)(h)
        return mse(hk.Linear(3)(h), y)

    return f


def make_attention(hk):
    def f(tokens, labels):
        h = hk.Embed(vocab_size=7, embed_dim=8)(tokens)
        attn = hk.MultiHeadAttention(
            num_heads=2, key_size=4, w_init=hk.initializers.VarianceScaling(1.0)
        )
        h = h + attn(h, h, h)
        return xent(hk.Linear(7)(h), labels)

    return f


def make_recurrent(hk):
    def f(x, y):
        lstm, gru = hk.LSTM(4), hk.GRU(4)
        h, _ = hk.dynamic_unroll(lstm, x, lstm.initial_state(B))
        h, _ = hk.dynamic_unroll(gru, h, gru.initial_state(B))
        return mse(hk.Linear(3)(h), y)

    return f


def make_spectral_norm(hk):
    def f(x, y):
        w = hk.get_parameter(
            "w", [4, 5], x.dtype, init=hk.initializers.RandomNormal(1.0)
        )
        w = hk.SpectralNorm()(w)
        return mse(hk.Linear(3)(jnp.tanh(x @ w)), y)

    return f


def make_resnet(hk):
    def f(x, labels):
        net = hk.nets.ResNet(
            blocks_per_group=(1, 1, 1, 1),
            num_classes=3,
            bottleneck=False,
            channels_per_group=(4, 4, 4, 4),
            use_projection=(True,) * 4,
        )
        return xent(net(x, is_training=True), labels)

    return f


def make_vq_ema(hk):
    def f(x, y):
        h = hk.Linear(4)(x)
        vq = hk.nets.VectorQuantizerEMA(
            embedding_dim=4, num_embeddings=5, commitment_cost=0.25, decay=0.9
        )
        out = vq(h, is_training=True)
        return mse(hk.Linear(3)(out["quantize"]), y) + out["loss"]

    return f


def _labels(seed, shape, n):
    return np.random.default_rng(seed).integers(0, n, shape).astype(np.int32)


# name: (make, x, y)
CASES = {
    "mlp": (make_mlp, _normal(1, B, 5), _normal(2, B, 3)),
    "conv_pool": (make_conv_pool, _normal(1, B, 6, 6, 3), _normal(2, B, 3)),
    "conv1d_transpose": (
        make_conv_transpose,
        _normal(1, B, 5, 3),
        _normal(2, B, 10, 2),
    ),
    "depthwise_conv2d": (
        make_depthwise,
        _normal(1, B, 5, 5, 3),
        _normal(2, B, 5, 5, 3),
    ),
    "batchnorm": (make_batchnorm, _normal(1, 4, 5), _normal(2, 4, 3)),
    "layer_group_rms_norm": (
        make_norms,
        _normal(1, B, 3, 5),
        _normal(2, B, 3, 3),
    ),
    "embed_attention": (
        make_attention,
        _labels(1, (B, 4), 7),
        _labels(2, (B, 4), 7),
    ),
    "lstm_gru_unroll": (
        make_recurrent,
        _normal(1, 3, B, 5),  # [T, B, features]
        _normal(2, 3, B, 3),
    ),
    "spectral_norm": (make_spectral_norm, _normal(1, B, 4), _normal(2, B, 3)),
    # Batch 8: the last block groups run at 1x1 spatial size, where a batch of
    # 2 would leave BatchNorm's output (and gradients) degenerate.
    "resnet": (make_resnet, _normal(1, 8, 8, 8, 3), _labels(2, (8,), 3)),
    "vq_ema": (make_vq_ema, _normal(1, 4, 5), _normal(2, 4, 3)),
}


def train(f, params, state, x, y):
    """``STEPS`` Adam steps of ``f``'s loss (under ``lax.scan``): returns the
    per-step losses, final params and final state."""

    def step(carry, _):
        params, state, opt_state = carry

        def loss_fn(p):
            return f.apply(p, state, APPLY_KEY, x, y)

        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = OPT.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), state, opt_state), loss

    carry = (params, state, OPT.init(params))
    (params, state, _), losses = jax.lax.scan(step, carry, None, length=STEPS)
    return losses, params, state


def run_both(make, x, y):
    """``make`` under both libraries, as one jitted program (one compilation
    per case): each library's ``init`` on ``KEY``, then training under each
    library from Haiku's initial params and state.

    Returns ``{lib: (init params, init state, losses, final params, state)}``.
    """
    fs = {lib: hk.transform_with_state(make(hk)) for lib, hk in LIBS.items()}

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def program():
        inits = {lib: f.init(KEY, x, y) for lib, f in fs.items()}
        return {
            lib: (*inits[lib], *train(f, *inits["haiku"], x, y))
            for lib, f in fs.items()
        }

    return program()


# Parameters whose true gradient is exactly zero, so what they receive is
# rounding noise -- which Adam normalises into steps of up to ~LR each, in
# whatever direction the noise points. Their final values are only compared
# to within the STEPS * LR that Adam can move them (both libraries).
# - The attention key bias b_k: q . (k_j + b_k) shifts every key's logit for a
#   query by the same q . b_k, which the softmax cancels.
NOISE_DRIVEN = {"multi_head_attention/key/b"}


def param_name(path):
    """``"module/name"`` for a key path into a params (or state) dict."""
    return "/".join(str(k.key) for k in path)


def assert_close_trees(a, b, what, rtol=1e-4, atol=1e-6):
    """Same structure, dtypes and shapes; values within rtol/atol (except the
    ``NOISE_DRIVEN`` parameters, see there)."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b), what
    leaves_a = jax.tree_util.tree_leaves_with_path(a)
    for (path, x), y in zip(leaves_a, jax.tree_util.tree_leaves(b)):
        where = f"{what}{jax.tree_util.keystr(path)}"
        assert x.dtype == y.dtype and x.shape == y.shape, where
        tol = {"rtol": rtol, "atol": atol}
        if param_name(path) in NOISE_DRIVEN:
            tol = {"rtol": 0, "atol": 2 * STEPS * LR}
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol, err_msg=where)


def assert_changed(before, after, what):
    """Some leaf of ``after`` differs from ``before`` (same structure)."""
    assert jax.tree_util.tree_structure(before) == jax.tree_util.tree_structure(after)
    pairs = zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(after))
    assert any(not np.array_equal(a, b) for a, b in pairs), f"{what} unchanged"


@pytest.mark.parametrize("name", list(CASES))
def test_training_steps_match_haiku(name):
    make, x, y = CASES[name]
    results = run_both(make, x, y)
    params0, state0, ref_losses, ref_params, ref_state = results["haiku"]
    init_params, init_state, losses, params, state = results["pax"]
    # Same key: bit-identical initial parameters and state.
    assert_identical(params0, init_params, "init params")
    assert_identical(state0, init_state, "init state")
    assert jax.tree_util.tree_leaves(params0), "case has no parameters"
    # The same training trajectory from Haiku's initial parameters and state.
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5, atol=1e-6)
    assert_close_trees(ref_params, params, "params")
    assert_close_trees(ref_state, state, "state")
    # Training did something under pax.hk: the loss went down, every parameter
    # (but the NOISE_DRIVEN ones) moved, and state (if any) was updated.
    assert losses[-1] < losses[0], losses
    moved = zip(
        jax.tree_util.tree_leaves_with_path(params0), jax.tree_util.tree_leaves(params)
    )
    for (path, leaf0), leaf in moved:
        if param_name(path) not in NOISE_DRIVEN:
            assert not np.array_equal(leaf0, leaf), param_name(path)
    if jax.tree_util.tree_leaves(state0):
        assert_changed(state0, state, "state")

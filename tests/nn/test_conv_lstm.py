"""Convolutional LSTMs: gate equations with a hand-written convolution,
locality, unrolls, gradients, Haiku parity and error messages."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import (
    Conv1DLSTM,
    Conv2DLSTM,
    Conv3DLSTM,
    ConvNDLSTM,
    LSTMState,
    dynamic_unroll,
    static_unroll,
)


def normal(seed, shape, scale=1.0):
    return jnp.asarray(
        scale * np.random.default_rng(seed).normal(size=shape), jnp.float32
    )


def W_INIT(rng_key, shape, dtype=jnp.float32):
    """A random initializer backed by numpy (jax.random compiles per shape)."""
    seed = int(np.asarray(jax.random.key_data(rng_key)).ravel()[-1])
    return normal(seed, shape, 0.3).astype(dtype)


CLASSES = {1: Conv1DLSTM, 2: Conv2DLSTM, 3: Conv3DLSTM}
# lax's string dimension numbers, written out independently of the module
SPECS = {
    1: ("NWC", "WIO", "NWC"),
    2: ("NHWC", "HWIO", "NHWC"),
    3: ("NDHWC", "DHWIO", "NDHWC"),
}
SPATIAL = {1: (7,), 2: (5, 6), 3: (4, 3, 5)}


def make(n, key, c=2, o=3, kernel=3, fgb=1.0):
    core = CLASSES[n](
        (*SPATIAL[n], c),
        o,
        kernel,
        forget_gate_bias=fgb,
        w_i_init=W_INIT,
        w_h_init=W_INIT,
        b_init=W_INIT,
        rng_key=key,
    )
    return core


def conv(x, w, n):
    """A SAME, stride-1 convolution, straight from lax."""
    return jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=(1,) * n,
        padding="SAME",
        dimension_numbers=SPECS[n],
        precision=jax.lax.Precision.HIGHEST,
    )


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("fgb", [0.0, 1.0])
def test_gate_equations_by_hand(n, fgb, key):
    core = make(n, key, fgb=fgb)
    assert isinstance(core, ConvNDLSTM) and core.num_spatial_dims == n
    x = normal(1, (2, *SPATIAL[n], 2))
    h, c = normal(2, (2, *SPATIAL[n], 3)), normal(3, (2, *SPATIAL[n], 3))
    state, y = core(LSTMState(h, c), x)
    i2h, h2h = core.input_to_hidden, core.hidden_to_hidden
    assert i2h.weight.shape == (*(3,) * n, 2, 12)
    assert h2h.weight.shape == (*(3,) * n, 3, 12)
    gates = np.asarray(
        conv(x, i2h.weight, n) + conv(h, h2h.weight, n), np.float64
    ) + np.asarray(i2h.bias + h2h.bias, np.float64)
    i, g, f, o = (gates[..., k * 3 : (k + 1) * 3] for k in range(4))
    want_c = sigmoid(f + fgb) * np.asarray(c, np.float64) + sigmoid(i) * np.tanh(g)
    want_h = sigmoid(o) * np.tanh(want_c)
    np.testing.assert_allclose(state.cell, want_c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state.hidden, want_h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, want_h, rtol=1e-5, atol=1e-5)


def test_unbatched_input_matches_a_batch_of_one(key):
    core = make(2, key)
    x = normal(1, (5, 6, 2))
    s = LSTMState(normal(2, (5, 6, 3)), normal(3, (5, 6, 3)))
    state, y = core(s, x)
    batched_state, batched_y = core(
        jax.tree_util.tree_map(lambda a: a[None], s), x[None]
    )
    assert y.shape == (5, 6, 3)
    np.testing.assert_allclose(y, batched_y[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state.cell, batched_state.cell[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel, reach", [(3, (1, 1)), ((3, 5), (1, 2))])
def test_locality(kernel, reach, key):
    """A change of the input at one pixel changes only outputs within the
    kernel's reach (and all of them); after two steps, within twice that."""
    core = Conv2DLSTM(
        (9, 9, 2), 3, kernel, w_i_init=W_INIT, w_h_init=W_INIT, rng_key=key
    )
    x = normal(1, (2, 9, 9, 2))
    s0 = LSTMState(normal(2, (2, 9, 9, 3)), normal(3, (2, 9, 9, 3)))
    x2 = np.asarray(x).copy()
    x2[:, 4, 4, :] += 1.0
    x2 = jnp.asarray(x2)

    def changed(a, b):
        return np.any(np.abs(np.asarray(a) - np.asarray(b)) > 1e-6, axis=(0, 3))

    rows, cols = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")

    def window(k):
        return (np.abs(rows - 4) <= k * reach[0]) & (np.abs(cols - 4) <= k * reach[1])

    (_, y1), (_, y2) = core(s0, x), core(s0, x2)
    np.testing.assert_array_equal(changed(y1, y2), window(1))
    # two steps: the perturbation at t=0 spreads through the hidden state
    xs = jnp.stack([x, x])
    xs2 = jnp.stack([x2, x])
    _, ys = dynamic_unroll(core, xs, s0)
    _, ys2 = dynamic_unroll(core, xs2, s0)
    np.testing.assert_array_equal(changed(ys[1], ys2[1]), window(2))


def test_initial_state_shapes(key):
    core = make(2, key)
    s = core.initial_state(4)
    assert isinstance(s, LSTMState)
    assert s.hidden.shape == s.cell.shape == (4, 5, 6, 3)
    assert not np.any(s.hidden)
    assert core.initial_state(None).cell.shape == (5, 6, 3)
    assert core.initial_state(1, dtype=jnp.bfloat16).hidden.dtype == jnp.bfloat16
    assert core.forget_gate_bias == 1.0  # Haiku's constant is the default


@pytest.mark.parametrize("n", [1, 3])
def test_unrolls_agree(n, key):
    core = make(n, key)
    xs = normal(1, (4, 2, *SPATIAL[n], 2))
    s0 = core.initial_state(2)
    dyn = dynamic_unroll(core, xs, s0, reverse=True, return_all_states=True, unroll=2)
    sta = static_unroll(core, xs, s0, reverse=True, return_all_states=True)
    state, ys = s0, [None] * 4
    states = [None] * 4
    for t in (3, 2, 1, 0):
        state, ys[t] = core(state, xs[t])
        states[t] = state
    want = (jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states), jnp.stack(ys))
    for got in (dyn, sta):
        for a, b in zip(
            jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
        ):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_grad(key):
    core = make(2, key)
    x = normal(1, (2, 5, 6, 2))

    def loss(c, x):
        state, _ = c(c.initial_state(2), x)
        _, y = c(state, x)
        return jnp.sum(jnp.square(y))

    grads = pax.grad(loss)(core, x)
    assert type(grads) is Conv2DLSTM
    leaves = jax.tree_util.tree_leaves(grads)
    assert len(leaves) == 4  # two weights, two biases
    assert all(bool(jnp.all(jnp.isfinite(g))) and bool(jnp.any(g != 0)) for g in leaves)


def test_bfloat16(key):
    core = make(1, key)
    x = normal(1, (2, 7, 2)).astype(jnp.bfloat16)
    state, y = core(core.initial_state(2, dtype=jnp.bfloat16), x)
    assert y.dtype == state.hidden.dtype == state.cell.dtype == jnp.bfloat16
    assert core.input_to_hidden.weight.dtype == jnp.float32


@pytest.mark.parametrize("n", [1, 2])
def test_parity_with_haiku(n):
    spatial = SPATIAL[n]
    x = normal(1, (2, *spatial, 2))
    h, c = normal(2, (2, *spatial, 3)), normal(3, (2, *spatial, 3))
    hk_cls = {1: hk.Conv1DLSTM, 2: hk.Conv2DLSTM}[n]
    f = hk.without_apply_rng(hk.transform(lambda x, s: hk_cls(spatial, 3, 3)(x, s)))
    shapes = jax.eval_shape(f.init, jax.random.PRNGKey(0), x, hk.LSTMState(h, c))
    rng = np.random.default_rng(5)
    params = jax.tree_util.tree_map(
        lambda p: jnp.asarray(0.3 * rng.normal(size=p.shape), p.dtype), shapes
    )
    hk_y, hk_state = jax.jit(f.apply)(params, x, hk.LSTMState(h, c))
    prefix = {1: "conv1_dlstm", 2: "conv2_dlstm"}[n]
    i2h, h2h = params[f"{prefix}/input_to_hidden"], params[f"{prefix}/hidden_to_hidden"]
    core = CLASSES[n]((*spatial, 2), 3, 3, w_i_init=W_INIT, w_h_init=W_INIT)
    core = core.replace(
        input_to_hidden=core.input_to_hidden.replace(weight=i2h["w"], bias=i2h["b"]),
        hidden_to_hidden=core.hidden_to_hidden.replace(weight=h2h["w"], bias=h2h["b"]),
    )
    state, y = core(LSTMState(h, c), x)
    for a, b in (
        (y, hk_y),
        (state.hidden, hk_state.hidden),
        (state.cell, hk_state.cell),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_errors(key):
    with pytest.raises(ValueError, match=r"Conv2DLSTM: `input_shape` must list 3"):
        Conv2DLSTM((8, 8), 4, 3)
    with pytest.raises(ValueError, match="`output_channels` must be a positive int"):
        Conv1DLSTM((8, 2), 0, 3)
    with pytest.raises(ValueError, match="`kernel_shape` must be an int or"):
        Conv2DLSTM((8, 8, 2), 4, (3, 3, 3))
    with pytest.raises(TypeError, match="`input_shape` must be a sequence"):
        ConvNDLSTM(2, 8, 4, 3)
    core = make(2, key)
    with pytest.raises(
        ValueError,
        match=r"Conv2DLSTM\(input_shape=\(5, 6, 2\).*\): expected input of shape "
        r"\[batch, 5, 6, 2\], got shape \(2, 5, 6, 3\)",
    ):
        core(core.initial_state(2), jnp.ones((2, 5, 6, 3)))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 5, 6, 2\)"):
        core(core.initial_state(2), jnp.ones((1, 2, 5, 6, 2)))
    with pytest.raises(
        ValueError,
        match=r"state's batch shape \(3,\) .* differs from the input's batch "
        r"shape \(2,\)",
    ):
        core(core.initial_state(3), jnp.ones((2, 5, 6, 2)))
    with pytest.raises(ValueError, match=r"expected state `hidden` of shape"):
        bad = LSTMState(jnp.zeros((2, 5, 6, 4)), jnp.zeros((2, 5, 6, 3)))
        core(bad, jnp.ones((2, 5, 6, 2)))

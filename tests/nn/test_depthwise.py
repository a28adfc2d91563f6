"""DepthwiseConv1-3D and SeparableDepthwiseConv2D: numerics, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax.nn import (
    ConvND,
    DepthwiseConv1D,
    DepthwiseConv2D,
    DepthwiseConv3D,
    DepthwiseConvND,
    SeparableDepthwiseConv2D,
)
from pax.nn.pad import causal

from .test_conv import HK_INIT, W_INIT, haiku_default_stddev, jit_call, normal

DEPTHWISE = {1: DepthwiseConv1D, 2: DepthwiseConv2D, 3: DepthwiseConv3D}
CHANNELS_LAST = {"NWC", "NHWC", "NDHWC", "channels_last"}


def same_pads(size, k, s, r):
    """'SAME' padding by its definition: output ceil(L / s), extra pad after."""
    eff = (k - 1) * r + 1
    total = max((-(-size // s) - 1) * s + eff - size, 0)
    return (total // 2, total - total // 2)


def depthwise_reference(x, w, stride, rate, pads):
    """Depthwise correlation by explicit loops (numpy, float64, channels last).

    ``w`` is ``[*k, 1, C * M]``; output channel ``c * M + m`` is input channel
    ``c`` correlated with kernel ``w[..., 0, c * M + m]``.
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n = x.ndim - 2
    kernel, c = w.shape[:n], x.shape[-1]
    w = w[..., 0, :].reshape(*kernel, c, -1)  # [*k, C, M]
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    sizes = [
        (size - (k - 1) * r - 1) // s + 1
        for size, k, s, r in zip(x.shape[1:-1], kernel, stride, rate)
    ]
    y = np.zeros((x.shape[0], *sizes, *w.shape[-2:]))
    for q in np.ndindex(*sizes):
        for j in np.ndindex(*kernel):
            at = tuple(qi * s + ji * r for qi, ji, s, r in zip(q, j, stride, rate))
            y[(slice(None), *q)] += x[(slice(None), *at)][..., None] * w[j]
    return y.reshape(*y.shape[:-2], -1)


def to_last(x, last):
    return np.asarray(x) if last else np.moveaxis(np.asarray(x), 1, -1)


def from_last(y, last):
    return y if last else np.moveaxis(y, -1, 1)


# (n, data_format, kernel, stride, rate, padding, multiplier, with_bias)
CASES = [
    (1, "NWC", 3, 1, 2, "SAME", 2, True),
    (1, "NCW", 4, 2, 1, "VALID", 1, True),
    (2, "NHWC", (3, 2), (2, 1), 1, "SAME", 2, False),
    (2, "NCHW", 3, 1, (1, 2), [(1, 0), (2, 1)], 3, True),
    (3, "NDHWC", 2, 2, 1, "same", 1, True),
    (3, "NCDHW", 3, 1, 1, causal, 2, True),
]


@pytest.mark.parametrize("n, fmt, kernel, stride, rate, padding, mult, bias", CASES)
def test_depthwise_matches_loop_reference(
    n, fmt, kernel, stride, rate, padding, mult, bias, key, seed
):
    last = fmt in CHANNELS_LAST
    dw = DEPTHWISE[n](
        3, mult, kernel, stride, rate, padding, bias, W_INIT, W_INIT, fmt, rng_key=key
    )
    assert dw.weight.shape == (*dw.kernel_shape, 1, 3 * mult)
    assert dw.feature_group_count == 3 and dw.out_features == 3 * mult
    size = 6
    x = normal(seed, (2, *(size,) * n, 3) if last else (2, 3, *(size,) * n))
    if padding in ("SAME", "same"):
        pads = [same_pads(size, k, s, r) for k, s, r in zip(*_per_dim(dw))]
    elif padding is causal:
        pads = [((k - 1) * r, 0) for k, _, r in zip(*_per_dim(dw))]
    elif padding == "VALID":
        pads = [(0, 0)] * n
    else:
        pads = padding
    expected = depthwise_reference(
        to_last(x, last), dw.weight, dw.stride, dw.rate, pads
    )
    if bias:
        expected = expected + np.asarray(dw.bias)
    expected = from_last(expected, last)
    # under jit here; the Haiku parity tests below call eagerly
    np.testing.assert_allclose(jit_call(dw, x), expected, rtol=1e-5, atol=1e-5)
    unbatched = jit_call(dw, np.asarray(x)[0])
    np.testing.assert_allclose(unbatched, expected[0], rtol=1e-5, atol=1e-5)


def _per_dim(dw):
    return dw.kernel_shape, dw.stride, dw.rate


@pytest.mark.parametrize(
    "fmt, kernel, stride, padding, mult, with_bias",
    [
        ("NHWC", 3, 1, "SAME", 2, True),
        ("NCHW", (3, 2), 2, "VALID", 1, True),
        ("NHWC", (2, 4), (2, 1), "SAME", 3, False),
    ],
)
def test_separable_matches_two_loop_references(
    fmt, kernel, stride, padding, mult, with_bias, key, seed
):
    last = fmt in CHANNELS_LAST
    sep = SeparableDepthwiseConv2D(
        2, mult, kernel, stride, padding, with_bias, W_INIT, W_INIT, fmt, rng_key=key
    )
    kh, kw = sep.kernel_shape
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    assert sep.conv1.weight.shape == (kh, 1, 1, 2 * mult) and sep.conv1.bias is None
    assert sep.conv2.weight.shape == (1, kw, 1, 2 * mult)
    assert (sep.conv2.bias is not None) == with_bias
    x = normal(seed, (2, 7, 6, 2) if last else (2, 2, 7, 6))
    h = to_last(x, last)
    # first: kernel (kh, 1), stride (sh, sw); second: kernel (1, kw), stride 1
    for conv, ks, strides in (
        (sep.conv1, (kh, 1), (sh, sw)),
        (sep.conv2, (1, kw), (1, 1)),
    ):
        sizes = h.shape[1:3]
        if padding == "SAME":
            pads = [same_pads(n, k, s, 1) for n, k, s in zip(sizes, ks, strides)]
        else:
            pads = [(0, 0), (0, 0)]
        h = depthwise_reference(h, conv.weight, strides, (1, 1), pads)
    if with_bias:
        h = h + np.asarray(sep.conv2.bias)
    expected = from_last(h, last)
    np.testing.assert_allclose(sep(x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jit_call(sep, x), expected, rtol=1e-5, atol=1e-5)
    params = jax.tree_util.tree_leaves(sep.parameters())
    assert len(params) == (3 if with_bias else 2)


def _haiku(fn, x, key):
    f = hk.transform(lambda x: fn()(x))
    params = f.init(key, x)
    return f, params


HAIKU_CASES = [  # (n, data_format, stride, rate, padding, multiplier, with_bias)
    (1, "NWC", 2, 1, "SAME", 2, True),
    (2, "NHWC", 1, 2, "VALID", 1, True),
    (2, "NCHW", 2, 1, "SAME", 3, True),
    (3, "NDHWC", 1, 1, "SAME", 2, False),
]


@pytest.mark.parametrize("n, fmt, stride, rate, padding, mult, bias", HAIKU_CASES)
def test_depthwise_parity_with_haiku(n, fmt, stride, rate, padding, mult, bias, seed):
    last = fmt in CHANNELS_LAST
    x = normal(seed, (2, *(6,) * n, 3) if last else (2, 3, *(6,) * n))
    hk_cls = {1: hk.DepthwiseConv1D, 2: hk.DepthwiseConv2D, 3: hk.DepthwiseConv3D}[n]
    f, params = _haiku(
        lambda: hk_cls(
            mult, 3, stride=stride, rate=rate, padding=padding, with_bias=bias,
            w_init=HK_INIT, b_init=HK_INIT, data_format=fmt,
        ),
        x,
        jax.random.PRNGKey(seed),
    )  # fmt: skip
    (p,) = params.values()
    dw = DEPTHWISE[n](3, mult, 3, stride, rate, padding, bias, W_INIT, data_format=fmt)
    assert dw.weight.shape == p["w"].shape
    dw = dw.replace(weight=p["w"], bias=p["b"].reshape(-1) if bias else None)
    np.testing.assert_allclose(dw(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "fmt, kernel, stride, padding, mult, with_bias",
    [("NHWC", 3, 2, "SAME", 2, True), ("NCHW", (2, 3), 1, "VALID", 1, False)],
)
def test_separable_parity_with_haiku(
    fmt, kernel, stride, padding, mult, with_bias, seed
):
    last = fmt in CHANNELS_LAST
    x = normal(seed, (2, 7, 6, 3) if last else (2, 3, 7, 6))
    f, params = _haiku(
        lambda: hk.SeparableDepthwiseConv2D(
            mult, kernel, stride=stride, padding=padding, with_bias=with_bias,
            w_init=HK_INIT, b_init=HK_INIT, data_format=fmt,
        ),
        x,
        jax.random.PRNGKey(seed),
    )  # fmt: skip
    first, second = (params[k] for k in sorted(params))  # ".../depthwise_conv2_d[_1]"
    sep = SeparableDepthwiseConv2D(
        3, mult, kernel, stride, padding, with_bias, W_INIT, data_format=fmt
    )
    assert sep.conv1.weight.shape == first["w"].shape and "b" not in first
    assert sep.conv2.weight.shape == second["w"].shape
    sep = sep.replace(
        conv1=sep.conv1.replace(weight=first["w"]),
        conv2=sep.conv2.replace(
            weight=second["w"], bias=second["b"].reshape(-1) if with_bias else None
        ),
    )
    np.testing.assert_allclose(sep(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


def test_default_init_follows_haiku(key):
    dw = DepthwiseConv2D(64, 4, 3, rng_key=key)
    shape, stddev = haiku_default_stddev(
        lambda: hk.DepthwiseConv2D(4, 3), jnp.ones((1, 5, 5, 64)), key
    )
    assert dw.weight.shape == shape == (3, 3, 1, 256)
    np.testing.assert_allclose(stddev, 1 / 3, rtol=1e-6)  # fan_in = 3 * 3 * 1
    w = np.asarray(dw.weight)
    assert np.abs(w).max() <= 2 * stddev + 1e-6
    assert abs(w.std() / (0.87962566 * stddev) - 1) < 0.05
    np.testing.assert_array_equal(dw.bias, np.zeros(256))


def test_structure_and_signature(key):
    dw = DepthwiseConvND(2, 4, 2, 3, rng_key=key, w_init=W_INIT)
    assert isinstance(dw, ConvND) and dw.channel_multiplier == 2
    dw1 = DepthwiseConv1D(4, 1, 3, 2, 3, "VALID", False, W_INIT, None, "NCW")
    assert (dw1.stride, dw1.rate, dw1.padding, dw1.bias) == ((2,), (3,), "VALID", None)
    assert not dw1.channels_last
    assert repr(dw1).startswith(
        "DepthwiseConv1D(in_features=4, channel_multiplier=1, kernel_shape=3, "
        "stride=2, rate=3,"
    )
    sep = SeparableDepthwiseConv2D(2, 3, (5, 3), 2, w_init=W_INIT, rng_key=key)
    assert sep.conv1.kernel_shape == (5, 1) and sep.conv1.stride == (2, 2)
    assert sep.conv2.kernel_shape == (1, 3) and sep.conv2.stride == (1, 1)
    assert sep.conv2.in_features == 6 and sep.conv2.channel_multiplier == 1
    assert [type(m) for m in sep.submodules()] == [DepthwiseConv2D] * 2


def test_errors(key):
    dw = DepthwiseConv2D(3, 2, 3, w_init=W_INIT, rng_key=key)
    with pytest.raises(
        ValueError,
        match=r"^DepthwiseConv2D\(in_features=3, channel_multiplier=2, .*\): "
        r"expected input with 3 channels on axis -1, got shape \(1, 5, 5, 4\)",
    ):
        dw(jnp.ones((1, 5, 5, 4)))
    with pytest.raises(ValueError, match=r"channels-last input of rank 3 or 4"):
        dw(jnp.ones((5, 5)))
    with pytest.raises(ValueError, match=r"`channel_multiplier` must be a positive"):
        DepthwiseConv2D(3, 0, 3)
    with pytest.raises(
        ValueError, match=r"DepthwiseConv1D: `in_features` must be a po"
    ):
        DepthwiseConv1D(-3, 1, 3)
    with pytest.raises(ValueError, match=r"unknown `data_format` 'NHWC' for 3 spatial"):
        DepthwiseConv3D(3, 1, 3, data_format="NHWC")
    with pytest.raises(ValueError, match=r"DepthwiseConv2D: unknown `padding` 'FULL'"):
        DepthwiseConv2D(3, 1, 3, padding="FULL")
    with pytest.raises(ValueError, match=r"`kernel_shape` must be an int or a seq"):
        SeparableDepthwiseConv2D(3, 1, (3, 3, 3))
    with pytest.raises(ValueError, match=r"SeparableDepthwiseConv2D: unknown `padd"):
        SeparableDepthwiseConv2D(3, 1, 3, padding="FULL")
    with pytest.raises(ValueError, match=r"SeparableDepthwiseConv2D: `stride` must"):
        SeparableDepthwiseConv2D(3, 1, 3, stride=(1, 0))
    with pytest.raises(ValueError, match=r"SeparableDepthwiseConv2D: unknown `data_f"):
        SeparableDepthwiseConv2D(3, 1, 3, data_format="NCW")
    sep = SeparableDepthwiseConv2D(3, 1, 3, w_init=W_INIT, data_format="NCHW")
    with pytest.raises(
        ValueError,
        match=r"^SeparableDepthwiseConv2D\(in_features=3, .*\): expected input with "
        r"3 channels on axis 1, got shape \(1, 5, 5, 3\)",
    ):
        sep(jnp.ones((1, 5, 5, 3)))

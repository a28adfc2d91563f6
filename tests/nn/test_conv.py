"""ConvND / Conv1-3D and transposes: numerics, Haiku parity, defaults, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax.nn import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    ConvND,
    ConvNDTranspose,
    DepthwiseConv2D,
)
from pax.nn.pad import causal, full, same
from tests.programs import count_programs


# jax.random compiles anew for every shape, which dominates the run time of
# small CPU tests; test data and stand-in initializers come from numpy instead.
# (The default initializer is tested on its own, on one shape.)
def normal(seed, shape):
    """Standard normal float32 array from numpy."""
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def W_INIT(rng_key, shape, dtype=jnp.float32):
    """A random initializer (``init(rng_key, shape, dtype)``) backed by numpy."""
    seed = int(np.asarray(jax.random.key_data(rng_key)).ravel()[-1])
    return normal(seed, shape).astype(dtype)


_HK_RNG = np.random.default_rng(0)


def HK_INIT(shape, dtype):
    """The same, in Haiku's ``init(shape, dtype)`` form."""
    return jnp.asarray(_HK_RNG.normal(size=shape), dtype)


CONV = {1: Conv1D, 2: Conv2D, 3: Conv3D}
TRANSPOSE = {1: Conv1DTranspose, 2: Conv2DTranspose, 3: Conv3DTranspose}
# lax's string dimension numbers, written out independently of the module.
LAX_SPECS = {
    (1, True): ("NWC", "WIO", "NWC"),
    (1, False): ("NCW", "WIO", "NCW"),
    (2, True): ("NHWC", "HWIO", "NHWC"),
    (2, False): ("NCHW", "HWIO", "NCHW"),
    (3, True): ("NDHWC", "DHWIO", "NDHWC"),
    (3, False): ("NCDHW", "DHWIO", "NCDHW"),
    (4, True): ("NTDHWC", "TDHWIO", "NTDHWC"),
}
CHANNELS_LAST = {"NWC", "NHWC", "NDHWC", "channels_last"}


@jax.jit
def jit_call(module, x):
    return module(x)


def call_both(module, x):
    """Eager and jitted outputs (checked equal) of ``module(x)``."""
    eager = module(x)
    jitted = jit_call(module, x)
    np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6)
    return eager


def add_bias(y, bias, last):
    if bias is None:
        return y
    b = np.asarray(bias)
    return y + (b if last else b.reshape((-1,) + (1,) * (y.ndim - 2)))


def random_input(seed, n, c, last, spatial=7, batch=2):
    shape = (batch, *(spatial,) * n, c) if last else (batch, c, *(spatial,) * n)
    return normal(seed, shape)


# (n, data_format, kwargs, explicit padding given to lax by hand, masked)
CONV_CASES = [
    (1, "NWC", dict(stride=2, padding="VALID"), "VALID", False),
    (1, "NCW", dict(rate=2, padding=causal), [(4, 0)], True),
    (2, "NHWC", dict(stride=(2, 1), padding=[(1, 2), (0, 1)]), [(1, 2), (0, 1)], False),
    (2, "NCHW", dict(rate=(1, 2), feature_group_count=2), "SAME", True),
    (2, "channels_first", dict(stride=2, padding=(2, 0)), [(2, 0), (2, 0)], False),
    (
        2,
        "NHWC",
        dict(kernel_shape=(2, 3), padding=[same, full]),
        [(0, 1), (2, 2)],
        False,
    ),
    (3, "NDHWC", dict(padding=full), [(2, 2)] * 3, True),
    (3, "NCDHW", dict(stride=2, padding="same", with_bias=False), "SAME", False),
    (4, "channels_last", dict(kernel_shape=2, stride=(1, 2, 1, 1)), "SAME", False),
]


@pytest.mark.parametrize("n, fmt, kwargs, lax_padding, masked", CONV_CASES)
def test_conv_matches_lax_by_hand(n, fmt, kwargs, lax_padding, masked, key, seed):
    last = fmt in CHANNELS_LAST
    kwargs = dict(kernel_shape=3, **kwargs) if "kernel_shape" not in kwargs else kwargs
    groups = kwargs.get("feature_group_count", 1)
    if masked:
        kernel = np.broadcast_to(kwargs["kernel_shape"], (n,))
        kwargs["mask"] = normal(seed + 1, (*kernel, 4 // groups, 6)) > 0
    args = dict(w_init=W_INIT, b_init=W_INIT, data_format=fmt, rng_key=key, **kwargs)
    conv = CONV[n](4, 6, **args) if n in CONV else ConvND(n, 4, 6, **args)
    if masked:
        assert conv.mask.shape == conv.weight.shape
        assert conv.parameters().mask is None  # state, not trainable
    x = random_input(seed, n, 4, last, spatial=6 if n == 4 else 7)
    w = conv.weight * (conv.mask.astype(jnp.float32) if masked else 1.0)
    expected = jax.lax.conv_general_dilated(
        x,
        w,
        window_strides=conv.stride,
        padding=lax_padding,
        rhs_dilation=conv.rate,
        dimension_numbers=LAX_SPECS[n, last],
        feature_group_count=groups,
    )
    expected = add_bias(np.asarray(expected), conv.bias, last)
    got = call_both(conv, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    unbatched = jit_call(conv, np.asarray(x)[0])  # batch axis omitted
    np.testing.assert_allclose(unbatched, expected[0], rtol=1e-5, atol=1e-5)


def test_feature_groups_are_independent_blocks(key, seed):
    conv = Conv2D(6, 4, 3, feature_group_count=2, with_bias=False, w_init=W_INIT)
    assert conv.weight.shape == (3, 3, 3, 4)
    x = normal(seed, (2, 5, 5, 6))
    blocks = [
        jax.lax.conv_general_dilated(
            x[..., 3 * g : 3 * g + 3],
            conv.weight[..., 2 * g : 2 * g + 2],
            (1, 1),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        for g in range(2)
    ]
    np.testing.assert_allclose(
        conv(x), np.concatenate(blocks, axis=-1), rtol=1e-5, atol=1e-5
    )


def test_injected_weights_and_dtypes(key):
    conv = Conv1D(1, 1, 3, padding="VALID", w_init=W_INIT, rng_key=key)
    conv = conv.replace(weight=jnp.array([1.0, 2.0, 3.0])[:, None, None], bias=None)
    x = jnp.arange(5.0)[None, :, None]
    # cross-correlation, not convolution: y[t] = x[t] + 2 x[t+1] + 3 x[t+2]
    np.testing.assert_allclose(conv(x)[0, :, 0], [8.0, 14.0, 20.0])
    assert conv(x.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    assert conv(jnp.arange(5)[None, :, None]).dtype == jnp.float32
    hi = conv(x, precision=jax.lax.Precision.HIGHEST)
    np.testing.assert_allclose(hi[0, :, 0], [8.0, 14.0, 20.0])


def transposed_reference(x, w, stride, crops):
    """Transposed convolution, channels last, by scattering (float64 numpy).

    Every input element adds ``x[p] * flip(w)`` at offset ``p * stride`` of the
    full output ``(L - 1) * stride + k`` long; ``crops`` gives, per dimension,
    ``(start, size)`` of the window kept (zeros outside the full output).
    """
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n = x.ndim - 2
    kernel = w.shape[:n]
    w = w[(slice(None, None, -1),) * n]  # [*k, O, C], flipped
    full_shape = [(i - 1) * s + k for i, s, k in zip(x.shape[1:-1], stride, kernel)]
    z = np.zeros((x.shape[0], *full_shape, w.shape[n]))
    for p in np.ndindex(*x.shape[1:-1]):
        window = tuple(slice(q * s, q * s + k) for q, s, k in zip(p, stride, kernel))
        z[(slice(None), *window)] += np.einsum(
            "bc,...oc->b...o", x[(slice(None), *p)], w
        )
    pads = [(max(0, -a), max(0, a + m - f)) for (a, m), f in zip(crops, full_shape)]
    z = np.pad(z, [(0, 0), *pads, (0, 0)])
    keep = tuple(slice(a + lo, a + lo + m) for (a, m), (lo, _) in zip(crops, pads))
    return z[(slice(None), *keep)]


def expected_crop(i, k, s, padding, output_size=None):
    """(start, size) of the kept window, from TensorFlow's documented rules."""
    if isinstance(padding, tuple):
        lo, hi = padding
        return k - 1 - lo, (i - 1) * s + lo + hi - k + 2
    if padding == "SAME":
        o = i * s if output_size is None else output_size
        return max(0, (i - 1) * s + k - o) // 2, o
    o = max(i * s, (i - 1) * s + k) if output_size is None else output_size
    return 0, o


# (n, data_format, kernel, stride, padding, output_shape, in spatial size)
TRANSPOSE_CASES = [
    (1, "NWC", 3, 2, "SAME", None, 5, False),
    (1, "NCW", 4, 3, "VALID", None, 4, True),
    (1, "NWC", 2, 3, "VALID", None, 4, False),  # kernel < stride: trailing zeros
    (1, "NWC", 3, 2, (2, 0), None, 5, False),
    (2, "NHWC", (3, 2), (2, 1), "SAME", (10, 5), 5, True),
    (2, "NHWC", 4, 2, "SAME", (9, 9), 5, False),
    (2, "NCHW", 3, 2, "VALID", (12, 12), 5, False),
    (2, "channels_last", 3, 2, ((1, 2), (2, 0)), None, 4, True),
    (3, "NCDHW", 2, 2, "SAME", None, 3, False),
    (3, "NDHWC", 3, (1, 2, 2), "valid", None, 3, False),
]


@pytest.mark.parametrize(
    "n, fmt, kernel, stride, padding, out_shape, size, masked", TRANSPOSE_CASES
)
def test_transpose_matches_scatter_formula(
    n, fmt, kernel, stride, padding, out_shape, size, masked, key, seed
):
    last = fmt in CHANNELS_LAST
    mask = None
    if masked:
        w_shape = (*np.broadcast_to(kernel, (n,)), 4, 3)
        mask = normal(seed + 1, w_shape) > -0.3
    conv = TRANSPOSE[n](
        3,
        4,
        kernel,
        stride,
        padding,
        w_init=W_INIT,
        b_init=W_INIT,
        data_format=fmt,
        mask=mask,
        output_shape=out_shape,
        rng_key=key,
    )
    x = random_input(seed, n, 3, last, spatial=size)
    x_last = x if last else jnp.moveaxis(x, 1, -1)
    pads = padding if isinstance(padding, list | tuple) else [padding.upper()] * n
    if isinstance(padding, tuple) and isinstance(padding[0], int):
        pads = [padding] * n
    outs = [None] * n if out_shape is None else out_shape
    crops = [
        expected_crop(size, k, s, p, o)
        for k, s, p, o in zip(conv.kernel_shape, conv.stride, pads, outs)
    ]
    w = np.asarray(conv.weight) * (1.0 if mask is None else np.asarray(mask))
    expected = transposed_reference(x_last, w, conv.stride, crops)
    expected = add_bias(expected, conv.bias, True)
    if not last:
        expected = np.moveaxis(expected, -1, 1)
    got = jit_call(conv, x)  # eager calls: test_conv_matches_lax_by_hand, parity
    if out_shape is not None:
        assert (got.shape[1:-1] if last else got.shape[2:]) == tuple(out_shape)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    unbatched = jit_call(conv, np.asarray(x)[0])  # batch axis omitted
    np.testing.assert_allclose(unbatched, expected[0], rtol=1e-5, atol=1e-5)


def test_conv_nd_transpose_matches_2d(key):
    a = ConvNDTranspose(2, 3, 4, 3, 2, (9, 10), "SAME", w_init=W_INIT, rng_key=key)
    b = Conv2DTranspose(
        3, 4, 3, 2, "SAME", w_init=W_INIT, output_shape=(9, 10), rng_key=key
    )
    x = jnp.ones((1, 5, 5, 3))
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_allclose(a(x), b(x))
    assert b(x).shape == (1, 9, 10, 4)


def _haiku_params(fn, x, key):
    f = hk.transform(lambda x: fn()(x))
    params = f.init(key, x)
    (inner,) = params.values()
    return f, params, inner


HAIKU_CONV = [  # (n, data_format, stride, padding, with_bias, rate)
    (1, "NWC", 1, "SAME", True, 1),
    (1, "NCW", 2, "VALID", False, 1),
    (2, "NHWC", 2, "SAME", True, 2),
    (2, "NCHW", 1, "VALID", True, 1),
    (2, "NHWC", 1, "causal", True, 2),
    (3, "NDHWC", 2, "VALID", True, 1),
    (3, "NCDHW", 1, "SAME", False, 1),
]


@pytest.mark.parametrize("n, fmt, stride, padding, with_bias, rate", HAIKU_CONV)
def test_conv_parity_with_haiku(n, fmt, stride, padding, with_bias, rate, key, seed):
    last = fmt in CHANNELS_LAST
    x = random_input(seed, n, 3, last, spatial=6)
    hk_pad = hk.pad.causal if padding == "causal" else padding
    pax_pad = causal if padding == "causal" else padding
    hk_cls = {1: hk.Conv1D, 2: hk.Conv2D, 3: hk.Conv3D}[n]
    f, params, p = _haiku_params(
        lambda: hk_cls(
            5, 3, stride=stride, rate=rate, padding=hk_pad,
            with_bias=with_bias, data_format=fmt, w_init=HK_INIT, b_init=HK_INIT,
        ),
        x,
        key,
    )  # fmt: skip
    conv = CONV[n](3, 5, 3, stride, rate, pax_pad, with_bias, W_INIT, data_format=fmt)
    assert conv.weight.shape == p["w"].shape
    if with_bias:
        assert conv.bias.size == p["b"].size
    conv = conv.replace(weight=p["w"], bias=p["b"].reshape(-1) if with_bias else None)
    np.testing.assert_allclose(conv(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


HAIKU_TRANSPOSE = [  # (n, data_format, kernel, stride, padding, output_shape, bias)
    (1, "NWC", 3, 2, "SAME", None, True),
    (1, "NCW", 4, 2, "VALID", 15, True),
    (2, "NHWC", 3, 2, "SAME", (11, 12), False),
    (2, "NCHW", 3, 1, "VALID", None, True),
    (2, "NCHW", 3, 2, "SAME", 12, True),
    (2, "NHWC", 2, 3, "VALID", None, True),
    (3, "NDHWC", 2, 2, "SAME", None, False),
    (3, "NCDHW", 3, (1, 2, 1), "VALID", None, True),
]


@pytest.mark.parametrize(
    "n, fmt, kernel, stride, padding, out_shape, with_bias", HAIKU_TRANSPOSE
)
def test_transpose_parity_with_haiku(
    n, fmt, kernel, stride, padding, out_shape, with_bias, key, seed
):
    last = fmt in CHANNELS_LAST
    x = random_input(seed, n, 3, last, spatial=6)
    hk_cls = {1: hk.Conv1DTranspose, 2: hk.Conv2DTranspose, 3: hk.Conv3DTranspose}[n]
    f, params, p = _haiku_params(
        lambda: hk_cls(
            4, kernel, stride=stride, output_shape=out_shape, padding=padding,
            with_bias=with_bias, data_format=fmt, w_init=HK_INIT, b_init=HK_INIT,
        ),
        x,
        key,
    )  # fmt: skip
    conv = TRANSPOSE[n](
        3, 4, kernel, stride, padding, with_bias, W_INIT, data_format=fmt,
        output_shape=out_shape,
    )  # fmt: skip
    assert conv.weight.shape == p["w"].shape
    conv = conv.replace(weight=p["w"], bias=p["b"].reshape(-1) if with_bias else None)
    np.testing.assert_allclose(conv(x), f.apply(params, None, x), rtol=1e-5, atol=1e-5)


def haiku_default_stddev(make_hk, x, key):
    """The weight shape and the ``TruncatedNormal`` stddev Haiku picks for ``w``."""
    seen = {}

    def creator(next_creator, shape, dtype, init, context):
        if context.name == "w":
            assert isinstance(init, hk.initializers.TruncatedNormal)
            seen["shape"], seen["stddev"] = tuple(shape), float(init.stddev)
        return jnp.zeros(shape, dtype)  # no need to run the initializer

    def f(x):
        with hk.custom_creator(creator):
            return make_hk()(x)

    hk.transform(f).init(key, x)
    return seen["shape"], seen["stddev"]


# Same weight shape (3, 3, 16, 64) everywhere: one initializer compilation.
@pytest.mark.parametrize(
    "make_pax, make_hk, in_features, fan_in",
    [
        (lambda k: Conv2D(16, 64, 3, rng_key=k), lambda: hk.Conv2D(64, 3), 16, 144),
        (
            lambda k: Conv2D(64, 64, 3, feature_group_count=4, rng_key=k),
            lambda: hk.Conv2D(64, 3, feature_group_count=4),
            64,
            144,
        ),
        # transposes: fan_in = prod(kernel) * in_features, not prod(shape[:-1])
        (
            lambda k: Conv2DTranspose(64, 16, 3, rng_key=k),
            lambda: hk.Conv2DTranspose(16, 3),
            64,
            576,
        ),
    ],
)
def test_default_init_follows_haiku(make_pax, make_hk, in_features, fan_in, key):
    conv = make_pax(key)
    hk_shape, hk_stddev = haiku_default_stddev(
        make_hk, jnp.ones((1, 4, 4, in_features)), key
    )
    assert conv.weight.shape == hk_shape == (3, 3, 16, 64)
    np.testing.assert_allclose(hk_stddev, 1 / np.sqrt(fan_in), rtol=1e-6)
    w = np.asarray(conv.weight)
    # TruncatedNormal(s) at 2 sigma: |w| <= 2 s, empirical std 0.8796 s
    assert np.abs(w).max() <= 2 * hk_stddev + 1e-6
    assert abs(w.std() / (0.87962566 * hk_stddev) - 1) < 0.03
    np.testing.assert_array_equal(conv.bias, np.zeros(conv.out_features))


def test_with_bias_false_and_parameters(key):
    conv = Conv2D(2, 3, 3, with_bias=False, w_init=W_INIT, rng_key=key)
    assert conv.bias is None
    params = conv.parameters()
    assert len(jax.tree_util.tree_leaves(params)) == 1
    a = Conv2D(2, 3, 3, w_init=W_INIT, rng_key=key)
    b = Conv2D(2, 3, 3, w_init=W_INIT, rng_key=key)
    np.testing.assert_array_equal(a.weight, b.weight)


def test_channels_first_bias_broadcasts_per_channel(key):
    conv = Conv2D(1, 3, 1, data_format="NCHW", w_init=W_INIT, rng_key=key)
    conv = conv.replace(weight=jnp.zeros_like(conv.weight), bias=jnp.array([1.0, 2, 3]))
    y = conv(jnp.ones((2, 1, 4, 5)))
    assert y.shape == (2, 3, 4, 5)
    for c in range(3):
        np.testing.assert_array_equal(y[:, c], np.full((2, 4, 5), c + 1.0))


def test_conv_input_errors(key):
    conv = Conv2D(3, 4, 3, w_init=W_INIT, rng_key=key)
    with pytest.raises(
        ValueError,
        match=r"^Conv2D\(in_features=3, out_features=4, .*\): expected input with 3 "
        r"channels on axis -1, got shape \(2, 8, 8, 5\)",
    ):
        conv(jnp.ones((2, 8, 8, 5)))
    with pytest.raises(
        ValueError, match=r"expected channels-last input of rank 3 or 4"
    ):
        conv(jnp.ones((8, 8)))
    with pytest.raises(ValueError, match=r"rank 3 or 4, got shape \(1, 2, 8, 8, 3\)"):
        conv(jnp.ones((1, 2, 8, 8, 3)))
    first = Conv1D(3, 4, 3, data_format="NCW", w_init=W_INIT, rng_key=key)
    with pytest.raises(
        ValueError, match=r"3 channels on axis 1, got shape \(2, 4, 3\)"
    ):
        first(jnp.ones((2, 4, 3)))
    with pytest.raises(ValueError, match=r"3 channels on axis 0, got shape \(4, 3\)"):
        first(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="3 channels on axis -1"):  # at trace time
        jax.jit(lambda m, x: m(x))(conv, jnp.ones((2, 8, 8, 5)))
    up = Conv2DTranspose(3, 4, 3, 2, w_init=W_INIT, output_shape=(10, 10))
    with pytest.raises(
        ValueError, match=r"^Conv2DTranspose\(.*\): expected input with 3"
    ):
        up(jnp.ones((1, 5, 5, 4)))
    with pytest.raises(
        ValueError,
        match=r"input of spatial size 6 cannot give `output_shape` size 10 .* "
        r"expected input size 5",
    ):
        up(jnp.ones((1, 6, 5, 3)))


def test_constructor_errors():
    with pytest.raises(ValueError, match=r"Conv2D: unknown `padding` 'half'"):
        Conv2D(3, 4, 3, padding="half")
    with pytest.raises(ValueError, match=r"Conv2D: `padding` must have 1 or 2 entries"):
        Conv2D(3, 4, 3, padding=[(1, 1), (1, 1), (1, 1)])
    with pytest.raises(TypeError, match=r"Conv1D: each `padding` entry must be"):
        Conv1D(3, 4, 3, padding=[(1, 2, 3)])
    with pytest.raises(TypeError, match=r"Conv3D: `padding` must be 'SAME'"):
        Conv3D(3, 4, 3, padding=None)
    with pytest.raises(ValueError, match=r"Conv1D: unknown `data_format` 'NCHW' for 1"):
        Conv1D(3, 4, 3, data_format="NCHW")
    with pytest.raises(
        ValueError, match=r"unknown `data_format` 'NHCW'.*'NHWC', 'NCHW'"
    ):
        Conv2D(3, 4, 3, data_format="NHCW")
    with pytest.raises(ValueError, match=r"ConvND: unknown `data_format` 'NHWC' for 4"):
        ConvND(4, 3, 4, 3, data_format="NHWC")
    with pytest.raises(TypeError, match=r"`data_format` must be a str"):
        Conv2D(3, 4, 3, data_format=None)
    with pytest.raises(ValueError, match=r"`feature_group_count` \(=3\) must divide "):
        Conv2D(8, 6, 3, feature_group_count=3)
    with pytest.raises(ValueError, match=r"\(=3\) must divide `out_features` \(=8\)"):
        Conv2D(6, 8, 3, feature_group_count=3)
    with pytest.raises(ValueError, match=r"`feature_group_count` must be a positive"):
        Conv2D(6, 8, 3, feature_group_count=0)
    with pytest.raises(
        ValueError, match=r"Conv2D: `in_features` must be a positive int"
    ):
        Conv2D(0, 4, 3)
    with pytest.raises(
        ValueError, match=r"`out_features` must be a positive int, got -2"
    ):
        Conv2D(3, -2, 3)
    with pytest.raises(ValueError, match=r"`kernel_shape` must be a positive int"):
        Conv2D(3, 4, (3, -1))
    with pytest.raises(
        ValueError, match=r"`kernel_shape` must be an int or a sequence"
    ):
        Conv2D(3, 4, (3, 3, 3))
    with pytest.raises(ValueError, match=r"`stride` must be a positive int, got 0"):
        Conv2D(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match=r"`rate` must be a positive int"):
        Conv1D(3, 4, 3, rate=-1)
    with pytest.raises(TypeError, match=r"`kernel_shape` must be an int or a seq"):
        Conv1D(3, 4, 2.5)
    with pytest.raises(ValueError, match=r"ConvND: `num_spatial_dims` must be a posit"):
        ConvND(0, 3, 4, 3)
    with pytest.raises(
        ValueError,
        match=r"Conv2D: `mask` must have the weight's shape \(3, 3, 3, 4\), "
        r"got \(3, 3, 4, 3\)",
    ):
        Conv2D(3, 4, 3, mask=jnp.ones((3, 3, 4, 3)))
    with pytest.raises(ValueError, match=r"weight's shape \(3, 3, 4, 3\)"):
        Conv2DTranspose(3, 4, 3, mask=jnp.ones((3, 3, 3, 4)))
    with pytest.raises(ValueError, match=r"with `output_shape`, `padding` must be"):
        Conv2DTranspose(3, 4, 3, padding=[(1, 1), (1, 1)], output_shape=8)
    with pytest.raises(TypeError, match=r"padding functions are not supported"):
        Conv1DTranspose(3, 4, 3, padding=causal)
    with pytest.raises(ValueError, match=r"`output_shape` must be a positive int"):
        Conv1DTranspose(3, 4, 3, output_shape=0)
    with pytest.raises(ValueError, match=r"unknown `data_format` 'NCW' for 2"):
        Conv2DTranspose(3, 4, 3, data_format="NCW")


def test_signatures_keep_the_seed_order(key):
    # seed: (in, out, kernel, stride, padding, with_bias, w_init, b_init, data_format)
    up = Conv1DTranspose(2, 3, 3, 2, "VALID", False, W_INIT, None, "NCW", rng_key=key)
    assert up.padding == "VALID" and up.bias is None and not up.channels_last
    assert up.output_shape is None
    conv = Conv2D(2, 3, 3, 1, 1, "VALID", False, W_INIT, None, "NCHW", rng_key=key)
    assert conv.padding == "VALID" and conv.bias is None and not conv.channels_last
    assert repr(up).startswith("Conv1DTranspose(in_features=2, out_features=3,")


def test_eager_conv_call_is_one_program(key):
    # issue 17: an eager call dispatched up to five programs (batch axis,
    # mask product, convolution, bias broadcast and add, unbatching); now one,
    # reused by a repeated call. Odd sizes: no other test compiled them.
    mask = np.random.default_rng(1).integers(0, 2, (3, 5, 7)).astype(np.float32)
    cases = [
        (Conv2D(5, 7, 3, w_init=W_INIT, rng_key=key), (3, 9, 9, 5)),
        (Conv2D(5, 7, 3, w_init=W_INIT, rng_key=key), (9, 9, 5)),  # unbatched
        (Conv1D(5, 7, 3, data_format="NCW", mask=mask, rng_key=key), (5, 11)),
        (Conv3D(5, 7, 2, stride=2, with_bias=False, rng_key=key), (1, 6, 6, 6, 5)),
        (DepthwiseConv2D(5, 3, 3, rng_key=key), (3, 9, 9, 5)),
    ]
    for conv, shape in cases:
        x = jax.device_put(np.ones(shape, np.float32))
        with count_programs() as n:
            conv(x)
        assert n() <= 1, conv
        with count_programs() as n:
            conv(x)
        assert n() == 0, conv
    conv, shape = cases[2]  # channels first, masked, unbatched: against lax
    x = normal(3, shape)
    b = np.asarray(conv.bias)[:, None]
    y = jax.lax.conv_general_dilated(
        x[None], conv.weight * mask, (1,), "SAME", dimension_numbers=LAX_SPECS[1, False]
    )[0]
    np.testing.assert_allclose(conv(x), np.asarray(y) + b, rtol=1e-5, atol=1e-5)


def test_conv_errors_on_every_call_after_a_good_one(key):
    conv = Conv2D(3, 4, 3, w_init=W_INIT, rng_key=key)
    conv(jnp.ones((2, 8, 8, 3)))
    for _ in range(2):
        with pytest.raises(
            ValueError,
            match=r"^Conv2D\(in_features=3, out_features=4, .*\): expected input "
            r"with 3 channels on axis -1, got shape \(2, 8, 8, 5\)",
        ):
            conv(jnp.ones((2, 8, 8, 5)))
        with pytest.raises(
            ValueError,
            match=r"^Conv2D\(in_features=3.*\): expected channels-last input of rank "
            r"3 or 4, got shape \(8, 8\)",
        ):
            conv(jnp.ones((8, 8)))
        with pytest.raises(TypeError, match=r"^Conv2D\(.*expected an array input"):
            conv(None)


def test_conv_precision_may_be_a_pair_in_a_list_or_tuple(key):
    conv = Conv2D(3, 4, 3, w_init=W_INIT, rng_key=key)
    x = normal(0, (1, 5, 5, 3))
    expected = conv(x, precision="highest")
    for precision in (["highest", "highest"], ("highest", "highest")):
        np.testing.assert_allclose(conv(x, precision=precision), expected, rtol=1e-6)

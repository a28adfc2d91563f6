"""avg_pool / max_pool / AvgPool / MaxPool: numerics, Haiku parity, errors."""

import itertools
import math
import warnings

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax.nn import AvgPool, MaxPool, avg_pool, max_pool


def normal(seed, shape):
    """Test input from NumPy (cheap for many shapes; jax.random compiles)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def reference_pool(x, window, strides, padding, kind):
    """Pooling by an explicit loop over output positions (full-rank shapes)."""
    x = np.asarray(x)
    out_shape, starts = [], []
    for n, w, s in zip(x.shape, window, strides):
        if padding == "VALID":
            out = (n - w) // s + 1
            lo = 0
        else:
            out = -(-n // s)
            lo = max((out - 1) * s + w - n, 0) // 2
        out_shape.append(out)
        starts.append([i * s - lo for i in range(out)])
    y = np.zeros(out_shape, np.float64)
    for idx in itertools.product(*(range(o) for o in out_shape)):
        region = tuple(
            slice(max(st[i], 0), min(st[i] + w, n))
            for st, i, w, n in zip(starts, idx, window, x.shape)
        )
        patch = x[region].astype(np.float64)
        y[idx] = patch.max() if kind == "max" else patch.mean()
    return y


# (input shape, window arg, strides arg, padding, channel_axis,
#  full window, full strides) -- the full shapes are written out by hand.
CASES = [
    ((2, 5, 6, 3), 2, 2, "VALID", -1, (1, 2, 2, 1), (1, 2, 2, 1)),
    ((2, 5, 6, 3), 3, 2, "SAME", -1, (1, 3, 3, 1), (1, 2, 2, 1)),
    ((2, 3, 5, 6), 2, 1, "SAME", 1, (1, 1, 2, 2), (1, 1, 1, 1)),
    ((2, 3, 5, 6), 3, 2, "VALID", 1, (1, 1, 3, 3), (1, 1, 2, 2)),
    ((2, 5, 6, 3), (3, 2, 1), (2, 1, 1), "SAME", -1, (1, 3, 2, 1), (1, 2, 1, 1)),
    ((2, 5, 6, 3), (1, 2, 3, 1), (1, 1, 2, 1), "VALID", -1, (1, 2, 3, 1), (1, 1, 2, 1)),
    ((2, 3, 5, 6), (2, 2), (2, 3), "SAME", 1, (1, 1, 2, 2), (1, 1, 2, 3)),
    ((2, 5, 6, 3), (2, 2, 1), 1, "SAME", -1, (1, 2, 2, 1), (1, 1, 1, 1)),
    ((2, 7, 3), 4, 3, "SAME", None, (1, 4, 4), (1, 3, 3)),
    ((3, 7), 3, 2, "VALID", None, (1, 3), (1, 2)),
]
IDS = [f"{c[0]}-{c[1]}-{c[2]}-{c[3]}-ch{c[4]}" for c in CASES]


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_pool_matches_loop_reference(case, kind, seed):
    shape, window, strides, padding, channel_axis, full_w, full_s = case
    x = normal(seed, shape)
    expected = reference_pool(x, full_w, full_s, padding, kind)
    fn = avg_pool if kind == "avg" else max_pool
    cls = AvgPool if kind == "avg" else MaxPool
    module = cls(window, strides, padding, channel_axis)
    outputs = {
        "function": fn(x, window, strides, padding, channel_axis),
        "module": module(x),
    }
    for how, y in outputs.items():
        assert y.shape == expected.shape, how
        assert y.dtype == x.dtype, how
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6, err_msg=how)


@pytest.mark.parametrize("case", [CASES[1], CASES[4]], ids=[IDS[1], IDS[4]])
def test_jit_matches_reference(case, seed):
    shape, window, strides, padding, channel_axis, full_w, full_s = case
    x = normal(seed, shape)
    pools = (AvgPool, MaxPool)
    modules = [cls(window, strides, padding, channel_axis) for cls in pools]
    ys = jax.jit(lambda ms, v: [m(v) for m in ms])(modules, x)
    for y, kind in zip(ys, ["avg", "max"]):
        expected = reference_pool(x, full_w, full_s, padding, kind)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_same_average_ignores_padding():
    # A corner window of a 3x3 SAME pool on ones sees 4 real elements: the
    # mean must still be 1 (a zero-padded mean would give 4/9).
    x = jnp.ones((1, 4, 4, 1))
    y = avg_pool(x, 3, 1, "SAME")
    np.testing.assert_allclose(y, np.ones((1, 4, 4, 1)), rtol=1e-6)
    x = jnp.arange(5.0).reshape(1, 5, 1)
    y = avg_pool(x, 2, 2, "SAME")[0, :, 0]
    # windows: [0, 1], [2, 3], [4] (+ one padded position)
    np.testing.assert_allclose(y, [0.5, 2.5, 4.0], rtol=1e-6)


def test_max_pool_integer_and_negative_inputs():
    # Padding must never win, also for integers below zero.
    x = -jnp.arange(1, 11, dtype=jnp.int32).reshape(1, 10, 1)
    y = max_pool(x, 3, 2, "SAME")
    assert y.dtype == jnp.int32
    np.testing.assert_array_equal(
        y, reference_pool(x, (1, 3, 1), (1, 2, 1), "SAME", "max")
    )
    z = avg_pool(x, 3, 2, "SAME")
    assert jnp.issubdtype(z.dtype, jnp.floating)
    np.testing.assert_allclose(
        z, reference_pool(x, (1, 3, 1), (1, 2, 1), "SAME", "avg"), rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_dtype_is_kept(dtype, seed):
    x = normal(seed, (2, 4, 4, 3)).astype(dtype)
    for fn in (avg_pool, max_pool):
        y = fn(x, 2, 2, "SAME")
        assert y.dtype == dtype
        kind = "avg" if fn is avg_pool else "max"
        expected = reference_pool(
            x.astype(np.float32), (1, 2, 2, 1), (1, 2, 2, 1), "SAME", kind
        )
        np.testing.assert_allclose(y.astype(np.float32), expected, rtol=2e-2, atol=2e-2)


def test_max_pool_gradient_routes_to_the_maximum(seed):
    x = normal(seed, (2, 4, 6, 3))  # distinct values almost surely
    g = jax.grad(lambda v: max_pool(v, 2, 2, "VALID").sum())(x)
    xn = np.asarray(x)
    expected = np.zeros_like(xn)
    for b, i, j, c in itertools.product(range(2), range(2), range(3), range(3)):
        patch = xn[b, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c]
        di, dj = np.unravel_index(np.argmax(patch), patch.shape)
        expected[b, 2 * i + di, 2 * j + dj, c] += 1.0
    np.testing.assert_array_equal(g, expected)


def test_avg_pool_gradient_counts_windows():
    x = jnp.ones((1, 5, 1))
    g = jax.grad(lambda v: avg_pool(v, 3, 1, "VALID").sum())(x)
    # element k is in min(k + 1, 3, 5 - k) windows, each weighting it by 1/3
    np.testing.assert_allclose(g[0, :, 0], np.array([1, 2, 3, 2, 1]) / 3, rtol=1e-6)


def test_per_example_sequences_work_under_vmap(seed):
    x = normal(seed, (4, 5, 6, 3))
    for cls in (AvgPool, MaxPool):
        pool = cls((2, 3, 1), (2, 2, 1), "SAME")
        batched = pool(x)
        mapped = jax.vmap(pool)(x)
        np.testing.assert_allclose(mapped, batched, rtol=1e-6)
        assert batched.shape == (4, 3, 3, 3)


def test_int_window_under_vmap_follows_the_documented_rule(seed):
    # Under vmap the example [H, W, C] is pooled as if H were a batch axis: an
    # int window covers only W (documented; Haiku warns instead).
    x = normal(seed, (2, 4, 6, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PAX does not warn
        y = jax.vmap(lambda v: avg_pool(v, 2, 2, "VALID"))(x)
    expected = reference_pool(x, (1, 1, 2, 1), (1, 1, 2, 1), "VALID", "avg")
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


HAIKU_CASES = [
    ((2, 5, 6, 3), 3, 2, "SAME", -1),
    ((2, 3, 5, 6), 2, 1, "VALID", 1),
    ((2, 5, 6, 3), (3, 2, 1), (2, 1, 1), "SAME", -1),
    ((2, 7, 3), 4, 3, "SAME", None),
]


@pytest.mark.parametrize("case", HAIKU_CASES, ids=[str(c) for c in HAIKU_CASES])
def test_parity_with_haiku(case, seed):
    shape, window, strides, padding, channel_axis = case
    x = normal(seed, shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Haiku's int warning
        hk_avg = hk.avg_pool(x, window, strides, padding, channel_axis)
        hk_max = hk.max_pool(x, window, strides, padding, channel_axis)
    np.testing.assert_allclose(
        avg_pool(x, window, strides, padding, channel_axis), hk_avg, rtol=1e-6
    )
    np.testing.assert_array_equal(
        MaxPool(window, strides, padding, channel_axis)(x), hk_max
    )


def test_module_is_a_parameterless_pytree():
    pool = MaxPool((2, 2, 1), 2, "VALID", name="pool")
    assert jax.tree_util.tree_leaves(pool) == []
    assert pool.window_shape == (2, 2, 1) and pool.strides == 2
    assert pool.padding == "VALID" and pool.channel_axis == -1
    assert "MaxPool(" in repr(pool) and "padding='VALID'" in repr(pool)


# -- errors -------------------------------------------------------------------


def test_bad_padding():
    x = jnp.ones((1, 4, 4, 1))
    with pytest.raises(
        ValueError, match=r"avg_pool: `padding` must be 'SAME' or 'VALID', got 'same'"
    ):
        avg_pool(x, 2, 2, "same")
    with pytest.raises(
        ValueError, match=r"MaxPool: `padding` must be 'SAME' or 'VALID', got 'FULL'"
    ):
        MaxPool(2, 2, "FULL")


def test_bad_channel_axis():
    x = jnp.ones((1, 4, 4, 1))
    with pytest.raises(
        ValueError,
        match=r"max_pool: `channel_axis` 4 is out of range .* \(1, 4, 4, 1\)",
    ):
        max_pool(x, 2, 2, "VALID", channel_axis=4)
    pool = AvgPool(2, 2, "VALID", channel_axis=-5)
    with pytest.raises(
        ValueError, match=r"AvgPool\(window_shape=2.*`channel_axis` -5 is out of range"
    ):
        pool(x)
    with pytest.raises(
        TypeError, match=r"AvgPool: `channel_axis` must be an int or None"
    ):
        AvgPool(2, 2, "VALID", channel_axis="C")


@pytest.mark.parametrize("window", [0, -2, (2, 0, 1)])
def test_non_positive_window(window):
    with pytest.raises(
        ValueError, match=r"max_pool: `window_shape` must be a positive int"
    ):
        max_pool(jnp.ones((1, 4, 4, 1)), window, 1, "VALID")
    with pytest.raises(
        ValueError, match=r"AvgPool: `window_shape` must be a positive int"
    ):
        AvgPool(window, 1, "VALID")


def test_bad_strides_and_shapes():
    x = jnp.ones((1, 4, 4, 1))
    with pytest.raises(
        ValueError, match=r"MaxPool: `strides` must be a positive int, got 0"
    ):
        MaxPool(2, 0, "SAME")
    with pytest.raises(
        TypeError,
        match=r"avg_pool: `window_shape` must be a positive int or a non-empty",
    ):
        avg_pool(x, "2", 1, "SAME")
    with pytest.raises(
        ValueError,
        match=r"avg_pool: `window_shape` \(1, 1, 2, 2, 1\) has more entries than "
        r"the input has axes \(shape \(1, 4, 4, 1\)\)",
    ):
        avg_pool(x, (1, 1, 2, 2, 1), 1, "SAME")
    with pytest.raises(ValueError, match=r"max_pool: expected an input of rank >= 1"):
        max_pool(jnp.float32(1.0), 1, 1, "SAME")


def test_window_count_is_exact_for_each_output():
    # Independent check of the SAME divisor: sum pooling / avg pooling.
    x = jnp.ones((1, 7, 5, 2))
    avg = avg_pool(x * 3.0, (4, 3, 1), (3, 2, 1), "SAME")
    np.testing.assert_allclose(avg, 3.0 * np.ones((1, 3, 3, 2)), rtol=1e-6)
    assert avg.shape == (1, math.ceil(7 / 3), math.ceil(5 / 2), 2)


def test_avg_pool_of_uint8_images_does_not_overflow():
    # was: the window sum in uint8 wrapped around (4 * 200 -> 32 -> mean 8.0)
    x = jnp.full((1, 4, 4, 1), 200, jnp.uint8)
    for padding in ("VALID", "SAME"):
        y = AvgPool((2, 2, 1), (2, 2, 1), padding)(x)
        assert y.dtype == jnp.float32
        np.testing.assert_array_equal(y, np.full((1, 2, 2, 1), 200.0, np.float32))


def test_avg_pool_of_booleans_is_the_fraction_of_trues():
    # was: JAX's "operand to reduce_window_sum must have a number dtype"
    x = jnp.asarray([[True, False, True, True]])
    y = avg_pool(x, (1, 2), (1, 2), "VALID", channel_axis=None)
    assert y.dtype == jnp.float32
    np.testing.assert_array_equal(y, [[0.5, 1.0]])
    # max pooling keeps integer and boolean dtypes (exact)
    assert max_pool(x, (1, 2), (1, 2), "VALID").dtype == jnp.bool_
    xi = jnp.asarray([[3, 7, 2, 9]], jnp.int32)
    np.testing.assert_array_equal(max_pool(xi, (1, 2), (1, 2), "VALID"), [[7, 9]])

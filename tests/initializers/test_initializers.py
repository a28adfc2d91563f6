"""pax.initializers: statistics, fans, orthogonality, errors, Haiku parity."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax import initializers as init

N = 200_000  # samples for the statistics checks


def sample(initializer, key, shape=(N,), dtype=jnp.float32):
    return np.asarray(initializer(key, shape, dtype))


def test_constant_zeros_ones(key):
    np.testing.assert_array_equal(
        sample(init.Constant(2.5), key, (2, 3)), np.full((2, 3), 2.5)
    )
    assert init.zeros(key, (3,), jnp.bfloat16).dtype == jnp.bfloat16
    np.testing.assert_array_equal(sample(init.ones, key, (4,)), np.ones(4))


def test_random_normal_statistics(key):
    x = sample(init.RandomNormal(stddev=0.5, mean=1.0), key)
    assert abs(x.mean() - 1.0) < 0.01
    assert abs(x.std() - 0.5) < 0.01


def test_truncated_normal_bounds_and_statistics(key):
    x = sample(init.TruncatedNormal(stddev=0.5, mean=1.0), key)
    assert x.min() >= 0.0 and x.max() <= 2.0  # mean ± 2 stddev
    assert abs(x.mean() - 1.0) < 0.01
    # stddev is that of the untruncated normal: truncation at ±2σ shrinks it
    assert abs(x.std() - 0.5 * 0.8796) < 0.01
    y = sample(init.TruncatedNormal(stddev=1.0, lower=-1.0, upper=0.5), key)
    assert y.min() >= -1.0 and y.max() <= 0.5


def test_random_uniform_statistics(key):
    x = sample(init.RandomUniform(-2.0, 4.0), key)
    assert x.min() >= -2.0 and x.max() < 4.0
    assert abs(x.mean() - 1.0) < 0.02
    assert abs(x.var() - 36 / 12) < 0.05


def test_compute_fans():
    assert init.compute_fans(()) == (1, 1)
    assert init.compute_fans((7,)) == (7, 7)
    assert init.compute_fans((3, 5)) == (3, 5)
    assert init.compute_fans((3, 3, 16, 32)) == (3 * 3 * 16, 3 * 3 * 32)
    assert init.compute_fans((5, 4, 8), fan_in_axes=(0,)) == (5, 32)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_std_follows_the_fan(mode, distribution, key):
    shape = (3, 3, 64, 128)  # fan_in 576, fan_out 1152
    fan = {"fan_in": 576, "fan_out": 1152, "fan_avg": (576 + 1152) / 2}[mode]
    scale = 2.0
    x = sample(init.VarianceScaling(scale, mode, distribution), key, shape)
    expected_std = np.sqrt(scale / fan)
    assert abs(x.std() / expected_std - 1) < 0.02
    assert abs(x.mean()) < 0.05 * expected_std
    if distribution == "uniform":
        assert np.abs(x).max() <= np.sqrt(3) * expected_std + 1e-6
    if distribution == "truncated_normal":
        assert np.abs(x).max() <= 2 * expected_std / 0.8796 + 1e-6


def test_presets_are_documented_configurations():
    cases = {
        init.glorot_uniform: (1.0, "fan_avg", "uniform"),
        init.glorot_normal: (1.0, "fan_avg", "truncated_normal"),
        init.lecun_uniform: (1.0, "fan_in", "uniform"),
        init.lecun_normal: (1.0, "fan_in", "truncated_normal"),
        init.he_uniform: (2.0, "fan_in", "uniform"),
        init.he_normal: (2.0, "fan_in", "truncated_normal"),
    }
    for preset, (scale, mode, dist) in cases.items():
        vs = preset()
        assert (vs.scale, vs.mode, vs.distribution) == (scale, mode, dist)


def test_uniform_scaling_bounds(key):
    x = sample(init.UniformScaling(scale=2.0), key, (30, 1000))
    limit = 2.0 * np.sqrt(3 / 30)
    assert np.abs(x).max() <= limit and np.abs(x).max() > 0.99 * limit


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3), (2, 3, 4)])
def test_orthogonal(shape, key):
    q = sample(init.Orthogonal(scale=1.0), key, shape)
    assert q.shape == shape
    m = q.reshape(-1, shape[-1])  # rows: all other axes, columns: the last axis
    if m.shape[0] <= m.shape[1]:
        np.testing.assert_allclose(m @ m.T, np.eye(m.shape[0]), atol=1e-5)
    else:
        np.testing.assert_allclose(m.T @ m, np.eye(m.shape[1]), atol=1e-5)
    q2 = sample(init.Orthogonal(scale=3.0), key, (4, 4))
    np.testing.assert_allclose(q2 @ q2.T, 9 * np.eye(4), atol=1e-4)


def test_identity(key):
    np.testing.assert_array_equal(
        sample(init.Identity(2.0), key, (2, 3)), 2 * np.eye(2, 3)
    )
    batched = sample(init.Identity(), key, (4, 3, 3))
    np.testing.assert_array_equal(batched, np.broadcast_to(np.eye(3), (4, 3, 3)))


def test_argument_errors(key):
    with pytest.raises(ValueError, match="`mode` must be one of"):
        init.VarianceScaling(mode="fan_max")
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        init.VarianceScaling(distribution="cauchy")
    with pytest.raises(ValueError, match="`scale` must be a positive float"):
        init.VarianceScaling(scale=-1.0)
    with pytest.raises(ValueError, match="rank >= 2"):
        init.Orthogonal()(key, (3,))
    with pytest.raises(ValueError, match="rank >= 2"):
        init.Identity()(key, (3,))
    with pytest.raises(ValueError, match="must not exceed"):
        init.RandomUniform(1.0, 0.0)
    with pytest.raises(ValueError, match="`stddev` must be >= 0"):
        init.TruncatedNormal(-1.0)
    with pytest.raises(ValueError, match="negative sizes"):
        init.RandomNormal()(key, (2, -1))


def test_jax_nn_initializers_are_accepted_by_layers(key):
    fc = pax.Linear(3, 4, w_init=jax.nn.initializers.orthogonal(), rng_key=key)
    w = np.asarray(fc.weight)
    np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-5)
    fc = pax.Linear(3, 4, b_init=jax.nn.initializers.constant(0.5), rng_key=key)
    np.testing.assert_array_equal(fc.bias, np.full(4, 0.5))


@pytest.mark.parametrize(
    "name, pax_init, hk_init",
    [
        ("truncated", init.TruncatedNormal(0.3), hk.initializers.TruncatedNormal(0.3)),
        ("normal", init.RandomNormal(0.3), hk.initializers.RandomNormal(0.3)),
        ("uniform", init.RandomUniform(-1, 1), hk.initializers.RandomUniform(-1, 1)),
        (
            "vs",
            init.VarianceScaling(2.0, "fan_avg"),
            hk.initializers.VarianceScaling(2.0, "fan_avg"),
        ),
        ("us", init.UniformScaling(1.5), hk.initializers.UniformScaling(1.5)),
    ],
)
def test_same_distribution_as_haiku(name, pax_init, hk_init, key):
    shape = (40, 5000)
    ours = sample(pax_init, key, shape)
    theirs = np.asarray(
        hk.transform(lambda: hk_init(shape, jnp.float32)).apply({}, key)
    )
    scale = theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 0.01 * scale
    assert abs(ours.std() / scale - 1) < 0.01
    for q in (1, 25, 50, 75, 99):
        a, b = np.percentile(ours, q), np.percentile(theirs, q)
        assert abs(a - b) < 0.02 * scale, (q, a, b)
    if name != "normal":  # bounded distributions share their bounds
        assert abs(ours.max() - theirs.max()) < 0.1 * scale


def test_random_normal_accepts_a_complex_stddev(key):
    """A complex ``stddev`` scales a complex normal sample (as in Haiku)."""
    stddev = 2.0 - 3.0j
    got = init.RandomNormal(stddev)(key, (4, 3), jnp.complex64)
    want = stddev * jax.random.normal(key, (4, 3), jnp.complex64)
    assert got.dtype == jnp.complex64
    np.testing.assert_allclose(got, want, rtol=1e-6)

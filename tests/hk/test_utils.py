"""Parity of ``pax.hk``'s ``one_hot``, ``multinomial`` and ``dropout`` with dm-haiku."""

import subprocess
import sys

import haiku as hk_ref
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax.hk._utils import dropout, multinomial, one_hot
from pax.nn._dropout import dropout as nn_dropout


def assert_bitwise_equal(actual, expected):
    """Same dtype, shape and bytes (so NaNs and signed zeros must match too)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.tobytes() == expected.tobytes()


# --- one_hot ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [None, jnp.int32, jnp.bfloat16, jnp.bool_])
def test_one_hot(dtype):
    x = jnp.array([[0, 2, -1], [5, 1, 3]])
    kwargs = {} if dtype is None else {"dtype": dtype}
    out = one_hot(x, 4, **kwargs)
    assert_bitwise_equal(out, hk_ref.one_hot(x, 4, **kwargs))
    assert out.shape == (2, 3, 4)
    assert out.dtype == (jnp.float32 if dtype is None else dtype)
    np.testing.assert_array_equal(out[0, 0], [1, 0, 0, 0])
    np.testing.assert_array_equal(out[0, 2], [0, 0, 0, 0])  # out of range: zeros


# --- multinomial --------------------------------------------------------------
# Logits of shape (2, 3) throughout, so jax.random.categorical compiles rarely.


@pytest.mark.parametrize("num_samples", [1, 4])
def test_multinomial_matches_haiku(key, num_samples):
    logits = jax.random.normal(jax.random.fold_in(key, 1), (2, 3))
    out = multinomial(key, logits, num_samples)
    assert_bitwise_equal(out, hk_ref.multinomial(key, logits, num_samples))
    assert out.shape == (2, num_samples)
    assert jnp.issubdtype(out.dtype, jnp.integer)


def test_multinomial_unbatched_and_typed_key():
    logits = jnp.zeros((3,))
    for key in (jax.random.PRNGKey(7), jax.random.key(7)):
        out = multinomial(key, logits, 4)
        assert_bitwise_equal(out, hk_ref.multinomial(key, logits, 4))
        assert out.shape == (4,)


def test_multinomial_follows_the_logits(key):
    logits = jnp.log(jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    out = multinomial(key, logits, 4)
    np.testing.assert_array_equal(out, [[2, 2, 2, 2], [0, 0, 0, 0]])
    # Independent samples along the last axis, not one sample repeated.
    mixed = multinomial(key, jnp.zeros((2, 3)), 4)
    assert len(set(mixed.ravel().tolist())) > 1


# --- dropout ------------------------------------------------------------------
# Inputs of shape (4, 5, 6) throughout, so jax compiles each step once.

SHAPE = (4, 5, 6)


@pytest.mark.parametrize("rate", [0.2, 0.8])
@pytest.mark.parametrize("broadcast_dims", [(), (0,), (-1, 0)])
def test_dropout_matches_haiku(key, rate, broadcast_dims):
    x = jax.random.normal(jax.random.fold_in(key, 1), SHAPE)
    x = x.at[0, 0].set(jnp.nan).at[1, 1].set(-0.0)
    out = dropout(key, rate, x, broadcast_dims=broadcast_dims)
    assert_bitwise_equal(out, hk_ref.dropout(key, rate, x, broadcast_dims))
    # Where the mask drops and keeps: drop out a tensor of ones.
    scaled = np.asarray(dropout(key, rate, jnp.ones_like(x), broadcast_dims))
    dropped = scaled == 0
    np.testing.assert_allclose(scaled[~dropped], 1 / (1 - rate), rtol=1e-6)
    finite = ~dropped & np.isfinite(np.asarray(x))
    np.testing.assert_allclose(out[finite], x[finite] / (1 - rate), rtol=1e-6)
    for dim in broadcast_dims:  # one decision shared along each broadcast axis
        assert (np.take(dropped, [0], axis=dim) == dropped).all()


def test_dropout_drops_at_the_given_rate(key):
    for rate in (0.2, 0.5, 0.8):
        out = dropout(key, rate, jnp.ones(SHAPE))
        assert abs(float((out == 0).mean()) - rate) < 0.15
        shared = dropout(key, rate, jnp.ones(SHAPE), (0,))
        assert abs(float((shared == 0).mean()) - rate) < 0.3


@pytest.mark.parametrize(
    "rate", [np.float16(0.3), np.float32(0.3), jnp.array(0.3, jnp.float16)]
)
def test_dropout_rate_types(key, rate):
    x = jax.random.normal(key, SHAPE)
    assert_bitwise_equal(dropout(key, rate, x), hk_ref.dropout(key, rate, x))


def test_dropout_low_precision_rate_changes_the_draw(key):
    x = jnp.ones(SHAPE)
    assert not np.array_equal(dropout(key, np.float16(0.3), x), dropout(key, 0.3, x))


def test_dropout_traced_rate(key):
    x = jax.random.normal(key, SHAPE)
    fn = jax.jit(lambda r, x: dropout(key, r, x))
    fn_ref = jax.jit(lambda r, x: hk_ref.dropout(key, r, x))
    assert_bitwise_equal(fn(0.25, x), fn_ref(0.25, x))
    np.testing.assert_allclose(fn(0.25, x), hk_ref.dropout(key, 0.25, x), rtol=1e-6)
    assert_bitwise_equal(fn(0.0, x), x)  # a traced zero keeps everything
    # A Python-float rate inside jit is still checked.
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        jax.jit(lambda x: dropout(key, 1.0, x))(x)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.int32])
def test_dropout_dtypes(key, dtype):
    x = (10 * jax.random.normal(key, SHAPE)).astype(dtype)
    out = dropout(key, 0.5, x)
    assert_bitwise_equal(out, hk_ref.dropout(key, 0.5, x))
    assert out.dtype == (jnp.bfloat16 if dtype == jnp.bfloat16 else jnp.float32)


def test_dropout_rate_zero_is_identity_without_rng():
    x = jnp.arange(4.0)
    assert dropout(None, 0.0, x) is x
    assert dropout(None, 0, x) is x
    assert hk_ref.dropout(None, 0.0, x) is x


@pytest.mark.parametrize("rate", [1.0, 1, -0.1, 1.5])
def test_dropout_bad_rate(key, rate):
    x = jnp.ones(3)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        hk_ref.dropout(key, rate, x)
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        dropout(key, rate, x)


def test_dropout_rng_none():
    x = jnp.ones(3)
    with pytest.raises(TypeError):
        hk_ref.dropout(None, 0.5, x)
    with pytest.raises(TypeError, match="rng"):
        dropout(None, 0.5, x)


@pytest.mark.parametrize("dim", [2, 3, -3])
def test_dropout_bad_broadcast_dim(key, dim):
    x = jnp.ones((2, 3))
    with pytest.raises(ValueError, match="Broadcast dimension does not exist"):
        dropout(key, 0.5, x, broadcast_dims=(dim,))
    if dim == 3:  # Haiku reports dim > ndim like this (dim == ndim: IndexError)
        with pytest.raises(ValueError, match="Broadcast dimension does not exist"):
            hk_ref.dropout(key, 0.5, x, broadcast_dims=(dim,))


def test_dropout_typed_key_and_array_like_input():
    key = jax.random.key(3)
    x = jax.random.normal(jax.random.PRNGKey(0), SHAPE)
    assert_bitwise_equal(dropout(key, 0.4, x), hk_ref.dropout(key, 0.4, x))
    # NumPy arrays and nested lists are accepted (Haiku needs `.shape`).
    assert_bitwise_equal(dropout(key, 0.4, np.asarray(x)), dropout(key, 0.4, x))
    assert_bitwise_equal(
        dropout(key, 0.4, np.asarray(x).tolist()), dropout(key, 0.4, x)
    )


def test_dropout_agrees_with_pax_nn_dropout_on_float_inputs(key):
    x = jax.random.normal(key, SHAPE)
    for rate in (0.2, 0.7):
        for dims in ((), (0,)):
            assert_bitwise_equal(
                dropout(key, rate, x, dims), nn_dropout(key, rate, x, dims)
            )


def test_library_does_not_import_haiku():
    code = (
        "import sys, pax.hk.data_structures, pax.hk._utils; "
        "assert 'haiku' not in sys.modules, 'haiku was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

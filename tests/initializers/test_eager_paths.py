"""Initializers' eager fast paths: ``TruncatedNormal`` as one jitted program,
``Constant`` filled on the host. Values must be bit-identical to the op-by-op
formula (checked here against hand-written ``jax.random`` / ``jnp``
computations), the arrays ordinary, and the number of programs compiled for a
new shape small (one, or none for a constant)."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax import initializers as init

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Counts the XLA compilations in the block (``jax.monitoring``)."""
    count = [0]

    def listener(event, duration, **kwargs):
        if event == _COMPILE_EVENT:
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def bits(x) -> np.ndarray:
    """The bytes of an array (so -0.0 differs from 0.0, NaN payloads count)."""
    return np.frombuffer(np.asarray(x).tobytes(), np.uint8)


def assert_same_array(got, want):
    assert isinstance(got, jax.Array)
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    assert got.weak_type == want.weak_type
    np.testing.assert_array_equal(bits(got), bits(want))


def op_by_op_truncated_normal(key, shape, dtype, stddev, mean, lower, upper):
    """``stddev * truncated_normal + mean``, one eager op at a time."""
    real = jnp.finfo(dtype).dtype
    s = jax.lax.convert_element_type(stddev, real)
    m = jax.lax.convert_element_type(mean, dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        parts = jax.random.truncated_normal(key, lower, upper, (2, *shape), real)
        unscaled = parts[0] + 1j * parts[1]
    else:
        unscaled = jax.random.truncated_normal(key, lower, upper, shape, real)
    return s * unscaled + m


@pytest.mark.parametrize(
    "dtype", [jnp.float32, jnp.bfloat16, jnp.float16, jnp.complex64]
)
@pytest.mark.parametrize(
    "stddev, mean, lower, upper",
    [
        (0.1, 0.0, -2.0, 2.0),  # the layers' default (mean added in-program)
        (0.02, 0.3, -2.0, 2.0),  # a non-zero mean (added by a separate op)
        (np.float32(1.7), -1.0, -1.5, 3.0),
        (0.5, -0.0, -2.0, 2.0),
    ],
)
def test_truncated_normal_is_bit_identical_to_op_by_op(
    dtype, stddev, mean, lower, upper, seed
):
    initializer = init.TruncatedNormal(stddev, mean, lower, upper)
    for i, shape in enumerate([(), (3, 5), (3, 3, 16, 32)]):
        key = jax.random.PRNGKey(seed + i)
        want = op_by_op_truncated_normal(key, shape, dtype, stddev, mean, lower, upper)
        assert_same_array(initializer(key, shape, dtype), want)


def test_truncated_normal_with_a_typed_key_is_bit_identical(seed):
    key = jax.random.key(seed)
    want = op_by_op_truncated_normal(key, (5, 7), jnp.float32, 0.3, 0.0, -2.0, 2.0)
    assert_same_array(init.TruncatedNormal(0.3)(key, (5, 7)), want)


@pytest.mark.parametrize("mode", ["fan_in", "fan_avg"])
def test_variance_scaling_truncated_normal_is_bit_identical(mode, key):
    # the convolutions' and Linear's default weights go through this path
    for shape in [(3, 3, 16, 32), (1, 1, 64, 256), (7, 7, 3, 64), (40, 24)]:
        fan_in, fan_out = init.compute_fans(shape)
        n = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2
        stddev = np.sqrt(2.0 / n) / np.asarray(0.87962566103423978, np.float32)
        want = op_by_op_truncated_normal(
            key, shape, jnp.float32, stddev, 0.0, -2.0, 2.0
        )
        got = init.VarianceScaling(2.0, mode)(key, shape, jnp.float32)
        assert_same_array(got, want)


def test_truncated_normal_under_jit_and_vmap_matches_eager(key):
    tn = init.TruncatedNormal(0.2, 0.1)
    eager = tn(key, (4, 6))
    assert_same_array(jax.jit(lambda k: tn(k, (4, 6)))(key), eager)
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: tn(k, (4, 6)))(keys)
    for i in range(3):
        np.testing.assert_array_equal(bits(batched[i]), bits(tn(keys[i], (4, 6))))


def test_truncated_normal_of_a_new_shape_compiles_one_program(key):
    tn = init.TruncatedNormal(0.05)
    with count_compiles() as n:
        tn(key, (3, 1, 7, 13))  # a shape no other test uses
    # one program for the sample, its scale and its shift (op by op: three)
    assert n[0] <= 1


CONSTANTS = [0.0, -0.0, 1.0, 0.1, 1, True, np.float32(0.5), np.int8(-3), 2 + 1j]
DTYPES = [jnp.float32, jnp.bfloat16, jnp.int32, jnp.uint8, jnp.bool_, jnp.complex64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_is_bit_identical_to_op_by_op(dtype, key):
    # 0.0 and -0.0 (and 1, 1.0, True) are equal and hash alike: a cache of
    # fill values must still keep them apart, so they run in one process here
    for c in CONSTANTS:
        if isinstance(c, complex) and not jnp.issubdtype(dtype, jnp.complexfloating):
            continue  # op by op this warns (imaginary part discarded)
        for shape in [(), (3,), (2, 5)]:
            want = jnp.broadcast_to(jnp.asarray(c), shape).astype(dtype)
            assert_same_array(init.Constant(c)(key, shape, dtype), want)


def test_constant_is_an_ordinary_array(key):
    for initializer, dtype in [
        (init.zeros, jnp.float32),
        (init.ones, jnp.bfloat16),
        (init.Constant(3), jnp.int32),
    ]:
        x = initializer(key, (4, 3), dtype)
        ref = jnp.zeros((4, 3), dtype)
        assert type(x) is type(ref)
        assert x.dtype == dtype and not x.weak_type
        assert not x.committed  # follows the computation, like jnp.zeros
        assert x.sharding == ref.sharding
        assert x.is_fully_addressable


def test_constant_of_a_new_shape_compiles_nothing(key):
    init.Constant(0.25)(key, (2,), jnp.float32)  # the fill values, once
    init.zeros(key, (2,), jnp.bfloat16)
    with count_compiles() as n:
        x = init.Constant(0.25)(key, (5, 11, 3), jnp.float32)  # a new shape
        y = init.zeros(key, (11, 5, 3), jnp.bfloat16)
    assert n[0] == 0
    np.testing.assert_array_equal(x, np.full((5, 11, 3), 0.25, np.float32))
    np.testing.assert_array_equal(y, np.zeros((11, 5, 3)))


def test_constant_while_tracing_stays_a_traced_op():
    # a constant built on the host while tracing would be baked into the
    # program as a literal; the traced path keeps one broadcast
    jaxpr = jax.make_jaxpr(lambda: init.zeros(None, (256, 256), jnp.float32))()
    assert all(np.size(c) <= 1 for c in jaxpr.consts)
    assert (
        jax.jit(lambda: init.ones(None, (2, 3), jnp.float32))().tolist()
        == [[1.0] * 3] * 2
    )

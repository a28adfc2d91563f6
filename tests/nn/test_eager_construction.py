"""Eager construction of layers: keys split in one dispatch, constant state
(batch-norm scale/offset, EMA averages, hidden state and counters) built on
the host. The results must be the arrays the op-by-op code gave (same keys,
values, dtypes, weak types, placement), each its own buffer, and building a
layer of a new size must not compile programs for its constants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn._utils import init_keys, split_key

from ..initializers.test_eager_paths import bits, count_compiles


@pytest.mark.parametrize("make_key", [jax.random.PRNGKey, jax.random.key])
@pytest.mark.parametrize("num", [1, 2, 3, 8])
def test_split_key_gives_jax_random_split_keys(make_key, num, seed):
    key = make_key(seed)
    got = split_key(key, num)
    want = jax.random.split(key, num)
    assert isinstance(got, tuple) and len(got) == num
    for i, k in enumerate(got):
        assert k.dtype == want.dtype and k.shape == want.shape[1:]
        np.testing.assert_array_equal(
            jax.random.key_data(k), jax.random.key_data(want[i])
        )


def test_init_keys_split_only_for_random_initializers(key):
    ones, zeros = pax.initializers.ones, pax.initializers.zeros
    # constants ignore their key: nothing to split
    assert init_keys(key, (ones, zeros)) == (key, key)
    assert init_keys(key, (zeros, None)) == (key, key)
    w_key, b_key = init_keys(key, (pax.initializers.TruncatedNormal(), zeros))
    want = jax.random.split(key)
    np.testing.assert_array_equal(w_key, want[0])
    np.testing.assert_array_equal(b_key, want[1])


def test_layers_keep_their_key_derivation(key):
    # Linear/Conv: weight from split(key)[0], bias from split(key)[1]
    k_w, k_b = jax.random.split(key)
    normal = pax.initializers.RandomNormal(0.5)
    fc = pax.Linear(3, 4, w_init=normal, b_init=normal, rng_key=key)
    np.testing.assert_array_equal(bits(fc.weight), bits(normal(k_w, (3, 4))))
    np.testing.assert_array_equal(bits(fc.bias), bits(normal(k_b, (4,))))
    conv = pax.Conv2D(2, 5, 3, rng_key=key)
    stddev = np.float32(1 / np.sqrt(3 * 3 * 2))
    want = stddev * jax.random.truncated_normal(k_w, -2.0, 2.0, (3, 3, 2, 5))
    np.testing.assert_array_equal(bits(conv.weight), bits(want + np.float32(0)))
    bn = pax.BatchNorm(3, scale_init=normal, rng_key=key)
    np.testing.assert_array_equal(bits(bn.scale), bits(normal(k_w, (3,))))


def state_arrays(bn):
    return {
        "scale": bn.scale,
        "offset": bn.offset,
        "mean.averages": bn.mean_ema.averages,
        "mean.hidden": bn.mean_ema.hidden,
        "mean.counter": bn.mean_ema.counter,
        "var.averages": bn.var_ema.averages,
        "var.hidden": bn.var_ema.hidden,
        "var.counter": bn.var_ema.counter,
    }


def test_batch_norm_constants_are_ordinary_distinct_arrays(key):
    bn = pax.BatchNorm(6, rng_key=key)
    ones, zeros = jnp.ones((6,), jnp.float32), jnp.zeros((6,), jnp.float32)
    want = {
        "scale": ones,
        "offset": zeros,
        "mean.averages": zeros,
        "mean.hidden": zeros,
        "mean.counter": jnp.array(0, jnp.int32),
        "var.averages": ones,
        "var.hidden": zeros,
        "var.counter": jnp.array(0, jnp.int32),
    }
    got = state_arrays(bn)
    for name, x in got.items():
        w = want[name]
        assert type(x) is type(w), name
        assert (x.shape, x.dtype, x.weak_type) == (w.shape, w.dtype, False), name
        assert not x.committed and x.sharding == w.sharding, name
        np.testing.assert_array_equal(bits(x), bits(w))
    # each its own buffer: donating one (jit donate_argnums) leaves the others
    pointers = {x.unsafe_buffer_pointer() for x in got.values()}
    assert len(pointers) == len(got)


def test_batch_norm_of_a_new_size_compiles_nothing(key):
    pax.BatchNorm(4, rng_key=key)  # the constants' fill values, once
    with count_compiles() as n:
        bn = pax.BatchNorm(23, rng_key=key)  # a size no other test uses
    assert n[0] == 0
    np.testing.assert_array_equal(bn.var_ema.averages, np.ones(23))


def test_ema_copies_a_numpy_initial_value():
    # jax.device_put reads a NumPy buffer after it returns (jnp.asarray may
    # alias it): the EMA must not see later writes to the caller's array
    initial = np.zeros(100_000, np.float32)
    ema = pax.EMA(initial, 0.9, debias=True)
    initial[0] = 5.0
    assert float(ema.averages[0]) == 0.0
    assert float(ema.hidden[0]) == 0.0


def test_ema_state_matches_jnp_asarray_and_zeros_like():
    initial = {
        "f64": np.linspace(0, 1, 3),  # canonicalized to float32
        "bf16": np.ones(2, jnp.bfloat16),
        "py": 0.5,  # a Python scalar stays weakly typed
        "jax": jnp.full((2,), 3.0),
        "int": np.int64(7),
    }
    ema = pax.EMA(initial, 0.9, debias=True, allow_int=True, warmup_length=0)
    for name, x in initial.items():
        want = jnp.asarray(x)
        for got, w in [
            (ema.averages[name], want),
            (ema.hidden[name], want if name == "int" else jnp.zeros_like(want)),
        ]:
            assert (got.shape, got.dtype, got.weak_type) == (
                w.shape,
                w.dtype,
                w.weak_type,
            ), name
            assert not got.committed, name
            np.testing.assert_array_equal(bits(got), bits(w))
    assert ema.counter.dtype == jnp.int32 and int(ema.counter) == 0
    warm = pax.EMA(np.zeros(2), 0.9, warmup_length=3)
    assert int(warm.counter) == -3 and warm.hidden is None


def test_ema_of_a_committed_array_keeps_its_placement():
    device = jax.devices()[0]
    x = jax.device_put(jnp.ones(3), device)  # committed
    ema = pax.EMA(x, 0.9, debias=True)
    assert ema.hidden.committed and ema.hidden.sharding == x.sharding

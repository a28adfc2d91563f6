"""Global key sequence and pax.RngSeq."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

from .modules import Affine


def test_same_seed_same_keys_and_same_model():
    pax.seed_rng_key(7)
    k1, k2 = pax.next_rng_key(), pax.next_rng_key()
    m1 = Affine(3, 4)
    pax.seed_rng_key(7)
    np.testing.assert_array_equal(pax.next_rng_key(), k1)
    np.testing.assert_array_equal(pax.next_rng_key(), k2)
    m2 = Affine(3, 4)
    np.testing.assert_array_equal(m1.weight, m2.weight)
    assert not np.array_equal(k1, k2)


def test_sequence_follows_split_chain():
    pax.seed_rng_key(3)
    state, expected = jax.random.split(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(pax.next_rng_key(), expected)
    _, expected2 = jax.random.split(state)
    np.testing.assert_array_equal(pax.next_rng_key(), expected2)


def test_seed_must_be_int():
    with pytest.raises(TypeError, match="int seed"):
        pax.seed_rng_key(1.5)


def test_next_rng_key_is_concrete_inside_jit():
    pax.seed_rng_key(0)
    seen = []

    @jax.jit
    def f(x):
        seen.append(pax.next_rng_key())
        return x

    f(1.0)
    assert isinstance(seen[0], type(jnp.zeros(())))  # not a tracer


def test_next_rng_key_is_thread_safe():
    pax.seed_rng_key(11)
    drawn = []
    lock = threading.Lock()

    def worker():
        keys = [tuple(np.asarray(pax.next_rng_key())) for _ in range(25)]
        with lock:
            drawn.extend(keys)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pax.seed_rng_key(11)
    sequential = {tuple(np.asarray(pax.next_rng_key())) for _ in range(200)}
    assert len(drawn) == 200
    assert set(drawn) == sequential  # same keys, none drawn twice


def test_rng_seq_draws_like_split_and_carries_state():
    seq = pax.RngSeq(seed=5)
    seq, key = pax.module_and_value(seq.next_rng_key)()
    state, expected = jax.random.split(jax.random.PRNGKey(5))
    np.testing.assert_array_equal(key, expected)
    seq, keys = pax.module_and_value(seq.next_rng_key)(3)
    expected = jax.random.split(state, 4)
    np.testing.assert_array_equal(keys, expected[1:])
    np.testing.assert_array_equal(seq._rng_key, expected[0])
    # the key is state, not a trainable parameter
    assert seq.parameters()._rng_key is None


def test_rng_seq_accepts_typed_keys_and_needs_pure():
    seq = pax.RngSeq(rng_key=jax.random.key(0))
    with pytest.raises(pax.MutationError):
        seq.next_rng_key()
    seq2, k = pax.module_and_value(seq.next_rng_key)()
    assert jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key)
    assert jax.random.uniform(k).shape == ()
    with pytest.raises(ValueError, match="num_keys"):
        pax.module_and_value(seq.next_rng_key)(0)


def test_rng_seq_inside_jit():
    @jax.jit
    def draw(seq):
        return pax.module_and_value(seq.next_rng_key)()

    seq = pax.RngSeq(seed=1)
    seq1, k1 = draw(seq)
    seq2, k2 = draw(seq1)
    assert not np.array_equal(k1, k2)
    _, k1_eager = pax.module_and_value(seq.next_rng_key)()
    np.testing.assert_array_equal(k1, k1_eager)

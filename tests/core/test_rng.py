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

    with pytest.warns(pax.TracedRngWarning):
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


def _dropout_with_global_key(x):
    # called through a fresh lambda each time, so no trace cache hides a draw
    return pax.dropout(pax.next_rng_key(), 0.5, x)


@pytest.mark.parametrize("transform", ["jit", "vmap", "scan", "eval_shape"])
def test_drawing_a_key_while_tracing_warns(transform):
    x = jnp.ones((3, 16))
    run = {
        "jit": lambda: jax.jit(lambda x: _dropout_with_global_key(x))(x),
        "vmap": lambda: jax.vmap(lambda x: _dropout_with_global_key(x))(x),
        "scan": lambda: jax.lax.scan(
            lambda c, row: (c, _dropout_with_global_key(row)), 0, x
        ),
        "eval_shape": lambda: jax.eval_shape(lambda x: _dropout_with_global_key(x), x),
    }[transform]
    with pytest.warns(pax.TracedRngWarning, match="constant of the compiled"):
        run()


def test_the_warning_describes_real_frozen_randomness():
    # what the warning is about: under jit every call gets the same mask, under
    # vmap every row does; eagerly each draw differs.
    x = jnp.ones((4, 64))
    with pytest.warns(pax.TracedRngWarning):
        f = jax.jit(lambda x: _dropout_with_global_key(x))
        a, b = f(x[0]), f(x[0])
        rows = jax.vmap(lambda x: _dropout_with_global_key(x))(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rows[0], rows[1])
    assert not np.array_equal(
        _dropout_with_global_key(x[0]), _dropout_with_global_key(x[0])
    )


def test_building_modules_while_tracing_is_silent(recwarn):
    shapes = jax.eval_shape(lambda: pax.nets.ResNet50(3, 1000))
    assert shapes.logits.weight.shape == (2048, 1000)
    built = jax.jit(lambda: pax.Linear(3, 4))()
    assert built.weight.shape == (3, 4)
    pax.next_rng_key()  # eager: silent
    assert not [w for w in recwarn if issubclass(w.category, pax.TracedRngWarning)]


def test_the_warning_can_be_filtered():
    import warnings

    def traced_warnings(ignore):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if ignore:
                warnings.filterwarnings("ignore", category=pax.TracedRngWarning)
            jax.jit(lambda x: _dropout_with_global_key(x))(jnp.ones(8))
        return [w for w in caught if issubclass(w.category, pax.TracedRngWarning)]

    assert len(traced_warnings(ignore=False)) == 1
    assert traced_warnings(ignore=True) == []


@pytest.mark.parametrize(
    "bad, got",
    [
        (5, "got 5 \\(int\\); to seed, pass `rng_key=jax.random.PRNGKey\\(5\\)`"),
        ("key", "got 'key' \\(str\\)"),
        (jnp.ones(2), "dtype float32 and shape \\(2,\\)"),
        (jnp.array([1, 2], jnp.int32), "dtype int32"),
        (True, "got True"),
    ],
)
def test_a_non_key_rng_key_is_a_clear_error(bad, got):
    with pytest.raises(
        TypeError, match="Linear: `rng_key` must be a JAX PRNG key.*" + got
    ):
        pax.Linear(3, 4, rng_key=bad)
    with pytest.raises(TypeError, match="RngSeq: `rng_key` must be a JAX PRNG key"):
        pax.RngSeq(rng_key=bad)


def test_rng_seq_checks_its_seed():
    with pytest.raises(TypeError, match="RngSeq: `seed` must be an int"):
        pax.RngSeq(seed="0")
    with pytest.raises(TypeError, match="RngSeq: `seed` must be an int"):
        pax.RngSeq(seed=1.5)


def test_keys_of_every_accepted_kind_work():
    for key in (jax.random.PRNGKey(0), jax.random.key(0), np.array([0, 1], np.uint32)):
        assert pax.Linear(3, 4, rng_key=key).weight.shape == (3, 4)
    # traced keys are fine too
    w = jax.jit(lambda k: pax.Linear(3, 4, rng_key=k).weight)(jax.random.PRNGKey(0))
    assert w.shape == (3, 4)

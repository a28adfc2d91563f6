"""Parity with dm-haiku: random keys are bit-identical for the same input key."""

from __future__ import annotations

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk
from tests.hk.core_parity import (
    KEY,
    LIBS,
    assert_identical,
    assert_same_as_haiku,
    assert_same_errors,
    rand_init,
)


def key_param(hk, name, draw):
    """A parameter holding the key(s) ``draw()`` returns during ``init``."""
    value = draw()
    return hk.get_parameter(name, value.shape, value.dtype, init=lambda s, d: value)


def test_key_sequence_matches_haiku():
    def make(hk):
        def draws():
            out = [hk.next_rng_key(), hk.next_rng_key()]
            out.append(hk.next_rng_keys(3))
            hk.reserve_rng_keys(2)
            out += [hk.next_rng_key(), hk.next_rng_key(), hk.next_rng_key()]
            out.append(hk.maybe_next_rng_key())
            out.append(hk.next_rng_keys(1))
            with hk.with_rng(jax.random.PRNGKey(428)):
                out += [hk.next_rng_key(), hk.next_rng_keys(2)]
            out.append(hk.next_rng_key())
            with hk.with_rng(5):
                out.append(hk.next_rng_key())
            return out

        def f():
            # the keys drawn during init become parameters; apply returns them
            keys = draws()
            stored = [key_param(hk, f"k{i}", lambda k=k: k) for i, k in enumerate(keys)]
            return draws(), hk.running_init(), len(stored)

        return f

    ref = assert_same_as_haiku(make)
    assert len(ref.params["~"]) == 12


@pytest.mark.parametrize(
    "rng",
    [KEY, 3, np.int32(3), jnp.array(3, jnp.int32), jax.random.key(3)],
    ids=["raw_key", "int", "np_int32", "jnp_int32", "typed_key"],
)
def test_rng_forms_accepted_by_init_and_apply(rng):
    def make(hk):
        def f(x):
            w = hk.get_parameter("w", [3], init=rand_init(hk))
            return x * w, hk.next_rng_key()

        return f

    assert_same_as_haiku(make, jnp.ones(3), rng=rng, apply_rng=rng)


def test_initializer_values_depend_on_key_sequence():
    def make(hk):
        def init(shape, dtype):
            k1, k2 = hk.next_rng_keys(2)
            return jax.random.uniform(k1, shape, dtype) + jax.random.normal(
                k2, shape, dtype
            )

        def f():
            a = hk.get_parameter("a", [2, 3], init=init)
            b = hk.get_parameter("b", [4], jnp.bfloat16, init=rand_init(hk))
            c = hk.get_parameter("c", [], jnp.float16, init=rand_init(hk))
            return a.sum() + b.sum() + c

        return f

    assert_same_as_haiku(make)


def test_maybe_next_rng_key_without_key_is_none():
    def make(hk):
        return lambda: (hk.maybe_next_rng_key(), hk.maybe_get_rng_sequence_state())

    ref = assert_same_as_haiku(make, rng=None, apply_rng=None)
    assert ref.out == (None, None)


def test_rng_sequence_state_round_trip():
    def make(hk):
        def f():
            hk.reserve_rng_keys(3)
            saved = hk.maybe_get_rng_sequence_state()
            a = hk.next_rng_key()
            hk.next_rng_key()
            hk.replace_rng_sequence_state(saved)
            b = hk.next_rng_key()
            return saved, a, b

        return f

    ref = assert_same_as_haiku(make)
    assert_identical(ref.out[1], ref.out[2])


@pytest.mark.parametrize(
    "symbol", ["next_rng_key", "next_rng_keys", "reserve_rng_keys", "replace"]
)
def test_random_numbers_without_a_key(symbol):
    def call(hk):
        def f():
            if symbol == "next_rng_key":
                hk.next_rng_key()
            elif symbol == "next_rng_keys":
                hk.next_rng_keys(2)
            elif symbol == "reserve_rng_keys":
                hk.reserve_rng_keys(2)
            else:
                hk.replace_rng_sequence_state((KEY, ()))

        hk.transform(f).init(None)

    ref, got = assert_same_errors(call)
    assert isinstance(got, pax.hk.MissingRNGError)
    assert isinstance(got, ValueError)
    if symbol != "replace":
        assert "PRNGKey" in str(ref) and "PRNGKey" in str(got)


def test_initializer_without_key():
    def call(hk):
        f = hk.transform(lambda: hk.get_parameter("w", [2], init=rand_init(hk)))
        f.init(None)

    _, got = assert_same_errors(call, "PRNGKey")
    assert "init" in str(got)


@pytest.mark.parametrize("symbol", ["next_rng_key", "with_rng", "reserve_rng_keys"])
def test_random_outside_transform(symbol):
    def call(hk):
        if symbol == "with_rng":
            return hk.with_rng(KEY)
        return getattr(hk, symbol)(*([2] if symbol == "reserve_rng_keys" else []))

    assert_same_errors(call, f"hk.{symbol}", "hk.transform")


def test_keys_identical_under_jit():
    def make(hk):
        return lambda: (hk.next_rng_key(), hk.next_rng_keys(2))

    ref = haiku.transform(make(haiku)).apply({}, KEY)
    for hk in LIBS.values():
        f = hk.transform(make(hk))
        assert_identical(ref, jax.jit(f.apply)({}, KEY))


# ---------------------------------------------------------------------------
# PRNGSequence
# ---------------------------------------------------------------------------


def sequence_ops(seq):
    out = [next(seq), seq.next()]
    seq.reserve(3)
    out.append(seq.internal_state)
    out += list(seq.take(5))
    seq.reserve(0)
    out += [next(seq), seq.take(0)]
    out.append(seq.internal_state)
    return out


@pytest.mark.parametrize(
    "seed", [42, KEY, jnp.array(5, jnp.int32), jax.random.key(9)], ids=str
)
def test_prng_sequence_matches_haiku(seed):
    assert_identical(
        sequence_ops(haiku.PRNGSequence(seed)), sequence_ops(pax.hk.PRNGSequence(seed))
    )


def test_prng_sequence_from_internal_state():
    state = haiku.PRNGSequence(1).internal_state
    ref, got = haiku.PRNGSequence(state), pax.hk.PRNGSequence(state)
    assert_identical(sequence_ops(ref), sequence_ops(got))
    ref, got = haiku.PRNGSequence(2), pax.hk.PRNGSequence(2)
    ref.reserve(2)
    got.reserve(2)
    new = (jax.random.PRNGKey(3), (jax.random.PRNGKey(4),))
    ref.replace_internal_state(new)
    got.replace_internal_state(new)
    assert_identical(sequence_ops(ref), sequence_ops(got))


def test_prng_sequence_peek():
    seq = pax.hk.PRNGSequence(0)
    peeked = seq.peek()
    assert_identical(peeked, seq.peek())
    assert_identical(peeked, next(seq))
    seq.reserve(2)
    assert_identical(seq.peek(), next(seq))
    ref = haiku.PRNGSequence(0)
    assert_identical(next(ref), peeked)


@pytest.mark.parametrize(
    "bad",
    [
        jnp.zeros(3, jnp.uint32),
        jnp.zeros(2, jnp.float32),
        jnp.zeros((2, 2), jnp.uint32),
        "seed",
        1.5,
        jax.random.split(jax.random.key(0), 2),
    ],
    ids=["shape3", "float", "rank2", "str", "float_seed", "typed_batch"],
)
def test_prng_sequence_rejects_non_keys(bad):
    assert_same_errors(lambda hk: hk.PRNGSequence(bad))


@pytest.mark.parametrize("which", ["init", "apply"])
def test_transform_rejects_bad_rng(which):
    def call(hk):
        f = hk.transform(lambda: None)
        if which == "init":
            f.init("not a key")
        else:
            f.apply({}, jnp.zeros(3))

    signature = "init(rng, *a, **k)" if which == "init" else "apply(params, rng, *a"
    assert_same_errors(call, signature)


@pytest.mark.parametrize("size", [1, 3])
def test_rng_reserve_size(size):
    def make(hk):
        def f():
            keys = [hk.next_rng_key() for _ in range(4)]
            return keys, hk.maybe_get_rng_sequence_state()

        return f

    previous = {
        name: hk.experimental.rng_reserve_size(size) for name, hk in LIBS.items()
    }
    try:
        assert_same_as_haiku(make)
        seqs = [hk.PRNGSequence(0) for hk in LIBS.values()]
        for seq in seqs:
            next(seq)
            seq.reserve_up_to_full()
        assert_identical(seqs[0].internal_state, seqs[1].internal_state)
    finally:
        for name, hk in LIBS.items():
            hk.experimental.rng_reserve_size(previous[name])
    assert previous == {"haiku": 1, "pax": 1}
    assert_same_errors(lambda hk: hk.experimental.rng_reserve_size(0), "more than 0")


@pytest.mark.parametrize(
    "symbol, wording",
    [
        ("next_rng_key", "must pass a non-None PRNGKey"),
        ("replace", "requires an RNG to be passed into the transformed function"),
    ],
)
def test_missing_rng_wording_matches_haiku(symbol, wording):
    def call(hk):
        def f():
            if symbol == "next_rng_key":
                hk.next_rng_key()
            else:
                hk.replace_rng_sequence_state((KEY, ()))

        hk.transform(f).init(None)

    assert_same_errors(call, wording)


@pytest.mark.parametrize(
    "bad, wording",
    [
        ("nonsense", "not a JAX PRNGKey"),
        (jax.random.split(KEY, 2), "key did not have expected shape and/or dtype"),
        (
            jax.random.split(jax.random.key(0), 2),
            "key did not have expected shape and/or dtype",
        ),
    ],
    ids=["str", "raw_batch", "typed_batch"],
)
def test_prng_sequence_wording_matches_haiku(bad, wording):
    assert_same_errors(lambda hk: hk.PRNGSequence(bad), wording)


@pytest.mark.parametrize("which", ["init", "apply"])
def test_transform_bad_rng_wording_matches_haiku(which):
    def call(hk):
        f = hk.transform(lambda: None)
        if which == "init":
            f.init([1, 2])
        else:
            f.apply({}, jnp.zeros(3))

    assert_same_errors(call, f"{which.capitalize()} must be called with an RNG")


def test_rbg_default_impl_keys_match_haiku():
    with jax.default_prng_impl("rbg"):
        key = jax.random.PRNGKey(42)
        assert key.shape == (4,)
        outs = {
            name: hk.transform(lambda hk=hk: hk.next_rng_keys(3)).apply({}, key)
            for name, hk in LIBS.items()
        }
    assert outs["pax"].shape == (3, 4)
    assert_identical(outs["haiku"], outs["pax"])


def test_rbg_default_impl_rejects_threefry_shaped_key():
    with jax.default_prng_impl("rbg"):
        key = jax.random.PRNGKey(42)[:2]
        _, got = assert_same_errors(
            lambda hk: hk.transform(hk.next_rng_key).init(key),
            "Init must be called with an RNG",
        )
    assert "shape=(4,)" in str(got)

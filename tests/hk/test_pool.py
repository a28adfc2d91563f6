"""hk.max_pool / avg_pool / MaxPool / AvgPool and hk.pad: outputs
bit-identical to dm-haiku, same warnings and errors."""

import warnings

import haiku
import jax
import jax.numpy as jnp
import pytest

import pax.hk as phk
from tests.hk.core_parity import assert_identical, assert_same_as_haiku, catch

LIBS = {"haiku": haiku, "pax": phk}
X = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 6, 3))  # [N, H, W, C]

POOL_ARGS = {
    "int": (3, 2, "SAME", -1),
    "int-valid": (2, 2, "VALID", -1),
    "int-channel-1": (2, 1, "SAME", 1),
    "int-channel-3": (3, 2, "VALID", 3),
    "int-channel-none": (2, 2, "SAME", None),
    "int-channel-0": (2, 3, "SAME", 0),
    "int-window-seq-stride": (2, (1, 2, 1), "SAME", -1),
    "seq": ((3, 3, 1), (2, 2, 1), "SAME", -1),
    "seq-valid-short": ((2, 3), (1, 2), "VALID", -1),
    "seq-full-rank": ((1, 2, 2, 3), (1, 1, 2, 1), "SAME", -1),
    "seq-bad-channel-axis": ((2, 2, 1), (2, 2, 1), "VALID", 9),  # not consulted
    "ones": (1, 1, "VALID", -1),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("case", list(POOL_ARGS))
def test_pool_functions_match_haiku(kind, case):
    args = POOL_ARGS[case]
    want = getattr(haiku, kind)(X, *args)
    assert_identical(want, getattr(phk, kind)(X, *args))
    assert_identical(want, jax.jit(lambda x: getattr(phk, kind)(x, *args))(X))


@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_pool_dtypes_match_haiku(kind, dtype):
    args = ((3, 3, 1), (2, 2, 1), "SAME")
    x = X.astype(dtype)
    want = getattr(haiku, kind)(x, *args)
    assert want.dtype == dtype
    assert_identical(want, getattr(phk, kind)(x, *args))


def test_pool_modules_match_haiku_and_vmap():
    def make(hk):
        def f(x):
            y = hk.MaxPool((3, 3, 1), (2, 2, 1), "SAME")(x)
            z = hk.AvgPool((2, 2, 1), 1, "VALID", name="smooth")(y)
            per_example = hk.vmap(
                hk.AvgPool((2, 2, 1), (2, 2, 1), "SAME"), split_rng=False
            )
            return z, per_example(x)

        return f

    ref = assert_same_as_haiku(make, X)
    assert ref.out[1].shape == (2, 4, 3, 3)


@pytest.mark.parametrize(
    "window, strides, warns",
    [(3, 2, True), ((3, 3, 1), 2, True), (2, (2, 2, 1), True), ((3, 3, 1), 1, False)],
)
def test_int_window_or_stride_warns_as_haiku(window, strides, warns):
    def calls(hk):
        yield lambda: hk.max_pool(X, window, strides, "SAME")
        module = lambda x: hk.AvgPool(window, strides, "SAME")(x)  # noqa: E731
        yield lambda: hk.transform(module).apply({}, None, X)

    for hk in LIBS.values():
        for call in calls(hk):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                call()
            kinds = [w.category for w in caught]
            assert kinds == ([DeprecationWarning] if warns else []), (hk, kinds)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "args, message",
    [
        ((2, 2, "same"), "Invalid padding"),
        (((2, 2, 1), (2, 2, 1), "FULL"), "Invalid padding"),
        ((2, 2, "SAME", 4), "Invalid channel axis"),
        ((2, 2, "SAME", -4), "Invalid channel axis"),
    ],
)
def test_pool_errors_match_haiku(args, message):
    for hk in LIBS.values():
        for fn in (hk.max_pool, hk.avg_pool):
            error = catch(lambda fn=fn: fn(X, *args))
            assert type(error) is ValueError and message in str(error), (hk, error)
        # modules check their arguments when called, as Haiku's
        f = hk.transform(lambda x, hk=hk: hk.MaxPool(*args)(x))
        error = catch(lambda f=f: f.apply({}, None, X))
        assert type(error) is ValueError and message in str(error), (hk, error)


def test_pad_module_exports_match_haiku():
    assert sorted(phk.pad.__all__) == sorted(haiku.pad.__all__)
    for name in haiku.pad.__all__:
        assert hasattr(phk.pad, name), name


@pytest.mark.parametrize("fn", ["valid", "same", "full", "causal", "reverse_causal"])
def test_pad_functions_match_haiku(fn):
    for k in range(1, 8):
        assert getattr(phk.pad, fn)(k) == getattr(haiku.pad, fn)(k)


@pytest.mark.parametrize(
    "padding, kernel, rate, n",
    [
        ("same", 3, 1, 2),
        ("causal", (3, 4), 2, 2),
        (["full"], 5, (1, 3), 2),
        (["same", "reverse_causal", "valid"], (2, 3, 4), (3, 2, 1), 3),
    ],
)
def test_create_from_padfn_matches_haiku(padding, kernel, rate, n):
    def fns(hk):
        if isinstance(padding, str):
            return getattr(hk.pad, padding)
        return [getattr(hk.pad, p) for p in padding]

    want = haiku.pad.create_from_padfn(fns(haiku), kernel, rate, n)
    assert phk.pad.create_from_padfn(fns(phk), kernel, rate, n) == want
    assert phk.pad.create(fns(phk), kernel, rate, n) == want


def test_create_from_tuple_and_is_padfn_match_haiku():
    for padding, n in [((1, 2), 3), ([(0, 1)], 2), (((1, 1), (2, 3)), 2)]:
        got = phk.pad.create_from_tuple(padding, n)
        assert got == tuple(haiku.pad.create_from_tuple(padding, n))
    for hk in LIBS.values():
        with pytest.raises(TypeError, match="Padding"):
            hk.pad.create_from_tuple([(1, 1), (2, 2)], 3)
    for value in [phk.pad.same, [phk.pad.causal], "SAME", [(1, 1)], (1, 2), None]:
        assert phk.pad.is_padfn(value) == haiku.pad.is_padfn(value), value

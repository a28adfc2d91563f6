"""Padding functions and the parsing of convolution ``padding`` arguments."""

import haiku as hk
import numpy as np
import pytest

from pax.nn import _pad
from pax.nn._pad import resolve_padding
from pax.nn.pad import causal, full, reverse_causal, same, valid

FNS = [valid, same, full, causal, reverse_causal]


@pytest.mark.parametrize("fn", FNS, ids=lambda f: f.__name__)
def test_padding_functions_match_haiku(fn):
    hk_fn = getattr(hk.pad, fn.__name__)
    for k in range(1, 9):
        assert fn(k) == tuple(hk_fn(k)), (fn.__name__, k)


def test_padding_functions_meaning():
    # Output length of a stride-1 correlation: L + low + high - k + 1.
    L = 10
    for k in (1, 2, 3, 4, 7):
        assert L + sum(same(k)) - k + 1 == L
        assert L + sum(valid(k)) - k + 1 == L - k + 1
        assert L + sum(full(k)) - k + 1 == L + k - 1
        assert causal(k)[1] == 0 and sum(causal(k)) == k - 1
        assert reverse_causal(k)[0] == 0 and sum(reverse_causal(k)) == k - 1
    assert same(4) == (1, 2)  # odd element after, like 'SAME'


def test_strings_are_case_insensitive_and_upper_cased():
    for s in ("same", "SAME", "Same"):
        assert resolve_padding(s, (3, 3), (1, 1), "Conv2D") == "SAME"
    assert resolve_padding("valid", (3,), (1,), "Conv1D") == "VALID"


def test_padding_functions_use_effective_kernel_size():
    # effective size (k - 1) * rate + 1: (3-1)*2+1 = 5 and (4-1)*1+1 = 4
    assert resolve_padding(full, (3, 4), (2, 1), "X") == ((4, 4), (3, 3))
    assert resolve_padding([causal, same], (3, 4), (2, 1), "X") == ((4, 0), (1, 2))
    assert resolve_padding([reverse_causal], (2, 2), (1, 3), "X") == ((0, 1), (0, 3))
    # a hand-written padding function
    assert resolve_padding(lambda k: (k, 0), (3,), (2,), "X") == ((5, 0),)


def test_pairs():
    assert resolve_padding((1, 2), (3, 3, 3), (1, 1, 1), "X") == ((1, 2),) * 3
    assert resolve_padding([(1, 2)], (3, 3), (1, 1), "X") == ((1, 2), (1, 2))
    assert resolve_padding([(0, 1), [2, 3]], (3, 3), (1, 1), "X") == ((0, 1), (2, 3))
    np_pair = (np.int64(1), np.int32(0))
    assert resolve_padding([np_pair], (3,), (1,), "X") == ((1, 0),)
    # pairs and padding functions can be mixed, one entry per dimension
    assert resolve_padding([(1, 1), causal], (3, 3), (1, 1), "X") == ((1, 1), (2, 0))


def test_bad_padding():
    with pytest.raises(ValueError, match=r"Conv2D: unknown `padding` 'HALF'"):
        resolve_padding("HALF", (3, 3), (1, 1), "Conv2D")
    with pytest.raises(ValueError, match=r"Conv2D: `padding` must have 1 or 2 entries"):
        resolve_padding([(1, 1)] * 3, (3, 3), (1, 1), "Conv2D")
    with pytest.raises(ValueError, match=r"1 or 2 entries .*got 3"):
        resolve_padding([same, same, same], (3, 3), (1, 1), "Conv2D")
    with pytest.raises(TypeError, match=r"Conv1D: `padding` must be 'SAME', 'VALID'"):
        resolve_padding(3, (3,), (1,), "Conv1D")
    with pytest.raises(TypeError, match=r"`padding` must be"):
        resolve_padding([], (3,), (1,), "Conv1D")
    with pytest.raises(
        TypeError, match=r"each `padding` entry must be a \(low, high\)"
    ):
        resolve_padding([(1, 2, 3)], (3,), (1,), "Conv1D")
    with pytest.raises(TypeError, match=r"each `padding` entry"):
        resolve_padding([(1.5, 1)], (3,), (1,), "Conv1D")
    with pytest.raises(TypeError, match=r"each `padding` entry"):
        resolve_padding([(True, 1)], (3,), (1,), "Conv1D")
    with pytest.raises(TypeError, match=r"padding function <lambda> must return"):
        resolve_padding(lambda k: k, (3,), (1,), "Conv1D")


def test_padding_functions_can_be_refused():
    assert resolve_padding((1, 1), (3,), (1,), "T", allow_fns=False) == ((1, 1),)
    for bad in (same, [same], [(1, 1), causal]):
        with pytest.raises(TypeError, match="padding functions are not supported"):
            resolve_padding(bad, (3, 3), (1, 1), "T", allow_fns=False)


def test_is_padding_fn():
    assert _pad.is_padding_fn(same) and _pad.is_padding_fn([same, causal])
    assert not _pad.is_padding_fn("SAME") and not _pad.is_padding_fn([(1, 1)])
    assert not _pad.is_padding_fn([])

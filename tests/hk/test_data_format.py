"""Every ``data_format`` spelling dm-haiku accepts, for every ``pax.hk``
family that takes one: the result equals the channels-last result of the
same parameters on transposed input, and the parser is Haiku's."""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
import pax.hk as hk
from tests.hk.core_parity import assert_same_as_haiku

SPELLINGS = [
    "channels_last", "channels_first", "NWC", "NCW", "NHWC", "NCHW", "NDHWC",
    "NCDHW", "N...C", "NC...", "NC", "BTD", "TBD", "BTHWD",
]  # fmt: skip
X = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 4))  # [N, H, W, C]


def _families(lib):
    """``name -> make(fmt)`` for the families of ``lib`` (``pax.hk`` or
    ``haiku``), with random biases, scales and offsets."""

    def rn():
        return lib.initializers.RandomNormal(stddev=0.5)

    def norm(fmt):
        return dict(scale_init=rn(), offset_init=rn(), data_format=fmt)

    return {
        "Conv2D": lambda fmt: lib.Conv2D(3, 3, b_init=rn(), data_format=fmt),
        "Conv2DTranspose": lambda fmt: lib.Conv2DTranspose(
            3, 3, stride=2, b_init=rn(), data_format=fmt
        ),
        "DepthwiseConv2D": lambda fmt: lib.DepthwiseConv2D(
            2, 3, b_init=rn(), data_format=fmt
        ),
        "BatchNorm": lambda fmt: lib.BatchNorm(True, True, 0.9, **norm(fmt)),
        "GroupNorm": lambda fmt: lib.GroupNorm(2, **norm(fmt)),
        "InstanceNorm": lambda fmt: lib.InstanceNorm(True, True, **norm(fmt)),
    }


FAMILIES = sorted(_families(hk))


def _call(lib, family, fmt):
    """``x -> layer(x)`` (a BatchNorm in training mode)."""

    def f(x):
        layer = _families(lib)[family](fmt)
        if family == "BatchNorm":
            return layer(x, is_training=True)
        return layer(x)

    return f


def _transformed(family, fmt):
    return hk.transform_with_state(_call(hk, family, fmt))


@pytest.mark.parametrize("fmt", SPELLINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_spelling_matches_channels_last(family, fmt):
    first = haiku.get_channel_index(fmt) == 1
    assert hk.get_channel_index(fmt) == pax.nn.channel_index(fmt)
    assert (hk.get_channel_index(fmt) == 1) == first
    x = jnp.moveaxis(X, -1, 1) if first else X
    f = _transformed(family, fmt)
    params, state = f.init(jax.random.PRNGKey(1), x)
    y, _ = f.apply(params, state, None, x)
    if first:
        y = jnp.moveaxis(y, 1, -1)
    g = _transformed(family, "channels_last")
    params_last, state_last = g.init(jax.random.PRNGKey(1), X)
    # Haiku shapes channels-first biases/scales [C, 1, 1] or [1, C, 1, 1]:
    # the same values, moved to the channels-last shape.
    moved = jax.tree.map(lambda p, q: p.reshape(q.shape), params, params_last)
    want, _ = g.apply(moved, state_last, None, X)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_refused_spelling_names_the_layer(family):
    with pytest.raises(
        ValueError,
        match=rf"^hk\.{family}: unknown `data_format` 'CHW'\. Unable to extract "
        r"channel information from 'CHW': .*'NCW', 'NCHW', 'NCDHW', 'NC\.\.\.', 'NC'",
    ):
        _transformed(family, "CHW").init(jax.random.PRNGKey(0), X)


@pytest.mark.parametrize("fmt", SPELLINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_spelling_same_as_haiku(family, fmt):
    x = jnp.moveaxis(X, -1, 1) if haiku.get_channel_index(fmt) == 1 else X
    assert_same_as_haiku(lambda lib: _call(lib, family, fmt), x)


@pytest.mark.parametrize(
    "fmt, ndim", [("NHWC", 4), ("NCW", 3), ("BTHWD", 5), ("N...C", None)]
)
def test_to_haiku_params_reads_the_rank_a_format_spells(fmt, ndim):
    bn = pax.nn.BatchNorm(3, data_format=fmt)
    if ndim is None:  # "N...C" fits any rank: the caller says which
        with pytest.raises(ValueError, match="pass input_ndim="):
            hk.to_haiku_params(bn)
        ndim = 4
        params, _ = hk.to_haiku_params(bn, input_ndim=ndim)
    else:
        params, _ = hk.to_haiku_params(bn)
    assert params["batch_norm"]["scale"].ndim == ndim

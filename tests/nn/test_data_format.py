"""``pax.nn.channel_index``, the one ``data_format`` parser, and every
``pax.nn`` layer family that takes a ``data_format``: each accepted spelling
gives the channels-last result of the same weights on transposed input (an
independent check: the channels-last path is compared with hand-written
``jax.lax`` elsewhere); each refused one fails in ``__init__`` naming the
layer and what is accepted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.initializers import RandomNormal

# Every spelling Haiku's get_channel_index accepts, with its meaning.
HAIKU_SPELLINGS = {
    "channels_last": -1,
    "channels_first": 1,
    "NWC": -1,
    "NCW": 1,
    "NHWC": -1,
    "NCHW": 1,
    "NDHWC": -1,
    "NCDHW": 1,
    "N...C": -1,
    "NC...": 1,
    "NC": 1,  # fits both spatial rules; channels first is tried first
    "NXYC": -1,
    "BTD": -1,
    "TBD": -1,
    "BTHWD": -1,
}
REFUSED = ["CHW", "HWC", "NCHWC", "nhwc", "", "channels", "BTC", "HWCN", "N", "C"]
# A layer of 2 spatial dimensions takes these (letter forms of 4 letters)...
RANKED_2D = ["channels_last", "channels_first", "NHWC", "NCHW", "N...C", "NC..."]
RANKED_2D += ["NXYC", "BTWD"]
# ... and refuses these, which Haiku would read as another rank's layout.
WRONG_RANK_2D = ["NWC", "NCW", "NDHWC", "NCDHW", "NC", "BTHWD"]

RN = RandomNormal(stddev=0.5)
X = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 4))  # [N, H, W, C]


@pytest.mark.parametrize("fmt", sorted(HAIKU_SPELLINGS))
def test_channel_index_spellings(fmt):
    assert pax.nn.channel_index(fmt) == HAIKU_SPELLINGS[fmt]
    assert pax.channel_index is pax.nn.channel_index


@pytest.mark.parametrize("fmt", [*HAIKU_SPELLINGS, *REFUSED])
def test_channel_index_matches_haiku(fmt):
    import haiku  # in the test extra: a missing install must fail, not skip

    try:
        want = haiku.get_channel_index(fmt)
    except ValueError:
        with pytest.raises(ValueError, match="Unable to extract channel information"):
            pax.nn.channel_index(fmt)
    else:
        assert pax.nn.channel_index(fmt) == want


@pytest.mark.parametrize("fmt", REFUSED)
def test_channel_index_refuses(fmt):
    with pytest.raises(
        ValueError,
        match=rf"^Conv2D: unknown `data_format` {fmt!r}\. Unable to extract channel "
        rf"information from {fmt!r}: `data_format` must be 'channels_last', "
        r"'channels_first' or a format string: 'N', letters other than 'C', "
        r"then 'C' is channels last \('NWC', 'NHWC', 'NDHWC', 'N\.\.\.C'\); 'NC' then",
    ):
        pax.nn.channel_index(fmt, "Conv2D")


def test_channel_index_rank():
    for fmt in RANKED_2D:
        got = pax.nn.channel_index(fmt, num_spatial_dims=2)
        assert got == pax.nn.channel_index(fmt)
    assert pax.nn.channel_index("NC...", num_spatial_dims=5) == 1
    assert pax.nn.channel_index("NCW", num_spatial_dims=1) == 1
    for fmt in WRONG_RANK_2D:
        with pytest.raises(
            ValueError,
            match=rf"^BatchNorm2D: unknown `data_format` {fmt!r} for 2 spatial "
            rf"dimension\(s\) \({len(fmt)} letters, expected 4\): `data_format` must "
            r"be one of 'channels_last', 'channels_first', 'NHWC', 'NCHW', 'N\.\.\.C'",
        ):
            pax.nn.channel_index(fmt, "BatchNorm2D", num_spatial_dims=2)
    with pytest.raises(
        ValueError, match=r"for 4 spatial .* 'channels_first', 'N\.\.\."
    ):
        pax.nn.channel_index("NCHW", "ConvND", num_spatial_dims=4)
    with pytest.raises(ValueError, match=r"'HWC' for 1 spatial .* 'NWC', 'NCW', "):
        pax.nn.channel_index("HWC", "Conv1D", num_spatial_dims=1)


@pytest.mark.parametrize("bad", [None, -1, ["NHWC"], b"NHWC"])
def test_channel_index_type_error(bad):
    with pytest.raises(
        TypeError, match=r"^GroupNorm: `data_format` must be a string such as"
    ):
        pax.nn.channel_index(bad, "GroupNorm")


def _conv(fmt, key):
    return pax.Conv2D(4, 3, 3, b_init=RN, data_format=fmt, rng_key=key)


def _conv_nd(fmt, key):
    return pax.ConvND(
        2, 4, 3, (3, 2), stride=2, b_init=RN, data_format=fmt, rng_key=key
    )


def _conv_transpose(fmt, key):
    return pax.Conv2DTranspose(4, 3, 3, 2, b_init=RN, data_format=fmt, rng_key=key)


def _depthwise(fmt, key):
    return pax.DepthwiseConv2D(4, 2, 3, b_init=RN, data_format=fmt, rng_key=key)


def _separable(fmt, key):
    return pax.SeparableDepthwiseConv2D(
        4, 2, 3, b_init=RN, data_format=fmt, rng_key=key
    )


def _norm_kwargs(fmt, key):
    return dict(scale_init=RN, offset_init=RN, data_format=fmt, rng_key=key)


def _batch_norm_2d(fmt, key):
    return pax.BatchNorm2D(4, **_norm_kwargs(fmt, key))


def _batch_norm(fmt, key):
    return pax.BatchNorm(4, **_norm_kwargs(fmt, key))


def _group_norm(fmt, key):
    return pax.GroupNorm(2, 4, **_norm_kwargs(fmt, key))


def _instance_norm(fmt, key):
    return pax.InstanceNorm(4, **_norm_kwargs(fmt, key))


RANKED = {
    "Conv2D": _conv,
    "ConvND": _conv_nd,
    "Conv2DTranspose": _conv_transpose,
    "DepthwiseConv2D": _depthwise,
    "SeparableDepthwiseConv2D": _separable,
    "BatchNorm2D": _batch_norm_2d,
}
ANY_RANK = {
    "BatchNorm": _batch_norm,
    "GroupNorm": _group_norm,
    "InstanceNorm": _instance_norm,
}


def _run(layer, x):
    """Call ``layer``; a BatchNorm in training mode (batch statistics)."""
    if isinstance(layer, pax.BatchNorm):
        return pax.purecall(layer, x)[1]
    return layer(x)


def _check_against_channels_last(make, fmt):
    key = jax.random.PRNGKey(1)
    layer, reference = make(fmt, key), make("channels_last", key)
    assert layer.data_format == fmt
    for a, b in zip(jax.tree.leaves(layer), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)  # the format does not change weights
    first = pax.nn.channel_index(fmt) == 1
    y = _run(layer, jnp.moveaxis(X, -1, 1) if first else X)
    if first:
        y = jnp.moveaxis(y, 1, -1)
    np.testing.assert_allclose(y, _run(reference, X), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt", RANKED_2D)
@pytest.mark.parametrize("family", sorted(RANKED))
def test_ranked_layer_spellings(family, fmt):
    _check_against_channels_last(RANKED[family], fmt)


@pytest.mark.parametrize("fmt", sorted(HAIKU_SPELLINGS))
@pytest.mark.parametrize("family", sorted(ANY_RANK))
def test_any_rank_layer_spellings(family, fmt):
    _check_against_channels_last(ANY_RANK[family], fmt)


@pytest.mark.parametrize("fmt", WRONG_RANK_2D + ["HWCN"])
@pytest.mark.parametrize("family", sorted(RANKED))
def test_ranked_layer_refuses(family, fmt):
    with pytest.raises(
        ValueError,
        match=rf"^{family}: unknown `data_format` {fmt!r} for 2 spatial dimension"
        r".*'channels_last', 'channels_first', 'NHWC', 'NCHW', 'N\.\.\.C', 'NC\.\.\.'",
    ):
        RANKED[family](fmt, jax.random.PRNGKey(0))


@pytest.mark.parametrize("family", sorted(ANY_RANK))
def test_any_rank_layer_refuses(family):
    with pytest.raises(
        ValueError,
        match=rf"^{family}: unknown `data_format` 'CHW'\. Unable to extract channel",
    ):
        ANY_RANK[family]("CHW", jax.random.PRNGKey(0))


def test_nc_is_channels_first():
    """``"NC"`` names axis 1 as Haiku does (PAX's norms used to read it as
    channels last): on ``[N, C, L]`` input the statistics are per axis 1."""
    x = jax.random.normal(jax.random.PRNGKey(2), (4, 3, 5))
    bn = pax.BatchNorm(3, data_format="NC")
    assert bn.channel_axis == 1
    _, y = pax.purecall(bn, x)
    np.testing.assert_allclose(y.mean((0, 2)), np.zeros(3), atol=1e-5)

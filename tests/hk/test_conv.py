"""hk.ConvND / Conv1D-3D, transposes, depthwise and separable convolutions,
hk.get_channel_index: parameter names, shapes, dtypes, values and outputs
bit-identical to dm-haiku; errors of the same class."""

import haiku
import jax
import jax.numpy as jnp
import jmp
import numpy as np
import pytest

import pax.hk as phk
from tests.hk.core_parity import (
    assert_identical,
    assert_same_as_haiku,
    assert_same_errors,
    shapes,
)

X1 = jax.random.normal(jax.random.PRNGKey(1), (2, 9, 6))  # [N, W, C]
X2 = jax.random.normal(jax.random.PRNGKey(2), (2, 7, 9, 6))  # [N, H, W, C]
X3 = jax.random.normal(jax.random.PRNGKey(3), (2, 5, 4, 6, 6))  # [N, D, H, W, C]


def channels_first(x):
    return jnp.moveaxis(x, -1, 1)


class PerLib:
    """A keyword value computed from the library: ``PerLib(lambda hk: ...)``."""

    def __init__(self, fn):
        self.fn = fn


def layer(cls_name, *args, call_kwargs=None, **kwargs):
    """``make_fn`` for assert_same_as_haiku: build
    ``hk.<cls_name>(*args, **kwargs)`` and call it (``PerLib`` values are
    computed for each library)."""

    def make(hk):
        resolved = {
            k: v.fn(hk) if isinstance(v, PerLib) else v for k, v in kwargs.items()
        }

        def f(x):
            return getattr(hk, cls_name)(*args, **resolved)(x, **(call_kwargs or {}))

        return f

    return make


rand_b = PerLib(lambda hk: hk.initializers.RandomNormal(stddev=0.5))


MASK = (np.arange(3 * 3 * 6 * 4).reshape(3, 3, 6, 4) % 3 != 0).astype(np.float32)

CONV_CASES = {
    "2d-default": (layer("Conv2D", 4, 3), X2),
    "2d-nchw": (layer("Conv2D", 4, 3, data_format="NCHW"), channels_first(X2)),
    "2d-nchw-rand-bias": (
        layer("Conv2D", 4, (3, 2), stride=2, data_format="NCHW", b_init=rand_b),
        channels_first(X2),
    ),
    "2d-channels_first": (
        layer("Conv2D", 4, 3, data_format="channels_first", rate=2),
        channels_first(X2),
    ),
    "2d-stride-valid": (layer("Conv2D", 5, (3, 2), stride=(2, 1), padding="VALID"), X2),
    "2d-rate-lowercase-same": (layer("Conv2D", 4, 3, rate=(2, 1), padding="same"), X2),
    "2d-pair": (layer("Conv2D", 4, 3, padding=(1, 2)), X2),
    "2d-pairs": (layer("Conv2D", 4, 3, padding=[(0, 1), [2, 0]]), X2),
    "2d-padfn": (
        layer("Conv2D", 4, 3, rate=2, padding=PerLib(lambda hk: hk.pad.causal)),
        X2,
    ),
    "2d-padfns": (
        layer(
            "Conv2D",
            4,
            3,
            padding=PerLib(lambda hk: [hk.pad.full, hk.pad.reverse_causal]),
        ),
        X2,
    ),
    "2d-no-bias": (layer("Conv2D", 4, 3, with_bias=False), X2),
    "2d-groups": (layer("Conv2D", 4, 3, feature_group_count=2), X2),
    "2d-groups-nchw": (
        layer("Conv2D", 6, 3, feature_group_count=3, data_format="NCHW"),
        channels_first(X2),
    ),
    "2d-mask": (layer("Conv2D", 4, 3, mask=jnp.asarray(MASK)), X2),
    "2d-kernel-1-seq": (layer("Conv2D", 4, [3], stride=[2]), X2),
    "2d-unbatched": (layer("Conv2D", 4, 3), X2[0]),
    "2d-unbatched-nchw": (
        layer("Conv2D", 4, 3, data_format="NCHW"),
        channels_first(X2)[0],
    ),
    "2d-bf16": (layer("Conv2D", 4, 3), X2.astype(jnp.bfloat16)),
    "2d-precision": (
        layer("Conv2D", 4, 3, call_kwargs={"precision": jax.lax.Precision.HIGHEST}),
        X2,
    ),
    "1d-default": (layer("Conv1D", 4, 3), X1),
    "1d-ncw-causal": (
        layer(
            "Conv1D",
            4,
            3,
            rate=2,
            padding=PerLib(lambda hk: hk.pad.causal),
            data_format="NCW",
        ),
        channels_first(X1),
    ),
    "1d-nhwc-spelling": (layer("Conv1D", 4, 3, data_format="NHWC"), X1),
    "3d-default": (layer("Conv3D", 4, (2, 3, 1), stride=2), X3),
    "3d-ncdhw": (
        layer("Conv3D", 4, 3, data_format="NCDHW", b_init=rand_b),
        channels_first(X3),
    ),
    "nd-1": (layer("ConvND", 1, 3, 2, data_format="NC..."), channels_first(X1)),
    "nd-2-spelling": (layer("ConvND", 2, 3, 2, data_format="N...C"), X2),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv_matches_haiku(case):
    make, x = CONV_CASES[case]
    assert_same_as_haiku(make, x)


def test_conv2d_bias_shape_follows_data_format():
    nhwc = assert_same_as_haiku(layer("Conv2D", 4, 3), X2)
    nchw = assert_same_as_haiku(
        layer("Conv2D", 4, 3, data_format="NCHW"), channels_first(X2)
    )
    assert shapes(nhwc.params) == {"conv2_d": {"b": (4,), "w": (3, 3, 6, 4)}}
    assert shapes(nchw.params) == {"conv2_d": {"b": (4, 1, 1), "w": (3, 3, 6, 4)}}
    # the same weights give the same outputs in both layouts
    f = phk.transform(lambda x: phk.Conv2D(4, 3, data_format="NCHW")(x))
    params = {"conv2_d": {"w": nhwc.params["conv2_d"]["w"], "b": jnp.ones((4, 1, 1))}}
    y = f.apply(params, None, channels_first(X2))
    np.testing.assert_allclose(channels_first(nhwc.out + 1.0), y, rtol=1e-5, atol=1e-5)


def test_conv_names_and_jit():
    def make(hk):
        def f(x):
            y = hk.Conv2D(4, 3, name="stem")(x)
            y = hk.Conv2D(4, 3)(jax.nn.relu(y))
            return hk.Conv2D(2, 1)(y)

        return f

    ref = assert_same_as_haiku(make, X2)
    assert sorted(ref.params) == ["conv2_d", "conv2_d_1", "stem"]
    for hk in (haiku, phk):
        f = hk.transform(make(hk))
        assert_identical(ref.out, jax.jit(f.apply)(ref.params, None, X2))


def test_conv_under_mixed_precision_policy():
    policy = jmp.get_policy("p=f32,c=bf16,o=f32")
    out = {}
    for lib, hk in {"haiku": haiku, "pax": phk}.items():
        hk.mixed_precision.set_policy(hk.Conv2D, policy)
        try:
            f = hk.transform(lambda x, hk=hk: hk.Conv2D(4, 3)(x))
            params = f.init(jax.random.PRNGKey(0), X2)
            out[lib] = (params, f.apply(params, None, X2))
        finally:
            hk.mixed_precision.clear_policy(hk.Conv2D)
    assert_identical(out["haiku"], out["pax"])
    assert out["pax"][0]["conv2_d"]["w"].dtype == jnp.float32
    assert out["pax"][1].dtype == jnp.float32


TRANSPOSE_CASES = {
    "2d-default": (layer("Conv2DTranspose", 4, 3, stride=2), X2),
    "2d-nchw": (
        layer("Conv2DTranspose", 4, 3, stride=2, data_format="NCHW", b_init=rand_b),
        channels_first(X2),
    ),
    "2d-valid": (
        layer("Conv2DTranspose", 4, (3, 2), stride=(2, 3), padding="VALID"),
        X2,
    ),
    "2d-output-shape-same": (
        layer("Conv2DTranspose", 4, 4, stride=2, output_shape=(13, 17)),
        X2,
    ),
    "2d-output-shape-valid": (
        layer("Conv2DTranspose", 4, 3, stride=2, output_shape=[16], padding="VALID"),
        X2[:, :7, :7],
    ),
    "2d-pairs": (
        layer("Conv2DTranspose", 4, 3, stride=2, padding=((1, 2), (0, 1))),
        X2,
    ),
    "2d-no-bias-mask": (
        layer(
            "Conv2DTranspose",
            6,
            3,
            with_bias=False,
            mask=jnp.asarray(MASK),
        ),
        X2[..., :4],
    ),
    "2d-unbatched": (layer("Conv2DTranspose", 4, 3, stride=2), X2[0]),
    "2d-bf16": (layer("Conv2DTranspose", 4, 3, stride=2), X2.astype(jnp.bfloat16)),
    "1d": (layer("Conv1DTranspose", 4, 3, stride=2), X1),
    "1d-ncw": (
        layer("Conv1DTranspose", 4, 5, stride=3, output_shape=25, data_format="NCW"),
        channels_first(X1),
    ),
    "3d": (layer("Conv3DTranspose", 4, 2, stride=(1, 2, 2)), X3),
    "3d-ncdhw": (
        layer("Conv3DTranspose", 4, 3, data_format="NCDHW"),
        channels_first(X3),
    ),
    "nd": (
        layer("ConvNDTranspose", 2, 4, 3, stride=2, data_format="NC..."),
        channels_first(X2),
    ),
}


@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv_transpose_matches_haiku(case):
    make, x = TRANSPOSE_CASES[case]
    assert_same_as_haiku(make, x)


def test_conv_transpose_default_init_uses_input_channels():
    ref = assert_same_as_haiku(layer("Conv2DTranspose", 40, 3, stride=2), X2)
    w = ref.params["conv2_d_transpose"]["w"]
    assert w.shape == (3, 3, 40, 6)
    # TruncatedNormal(1 / sqrt(3 * 3 * 6)) truncated at 2 sigma: |w| < 2 / sqrt(54)
    assert float(jnp.abs(w).max()) <= 2 / np.sqrt(54)
    assert float(jnp.abs(w).max()) > 2 / np.sqrt(3 * 3 * 40)


DEPTHWISE_CASES = {
    "2d-default": (layer("DepthwiseConv2D", 2, 3), X2),
    "2d-nchw": (
        layer("DepthwiseConv2D", 2, 3, stride=2, data_format="NCHW", b_init=rand_b),
        channels_first(X2),
    ),
    "2d-valid-rate": (
        layer("DepthwiseConv2D", 1, (3, 2), rate=(1, 2), padding="VALID"),
        X2,
    ),
    "2d-pairs": (layer("DepthwiseConv2D", 3, 3, padding=((1, 0), (2, 2))), X2),
    "2d-no-bias-bf16": (
        layer("DepthwiseConv2D", 2, 3, with_bias=False),
        X2.astype(jnp.bfloat16),
    ),
    "1d": (layer("DepthwiseConv1D", 2, 3, stride=2), X1),
    "3d": (layer("DepthwiseConv3D", 1, 2, rate=2), X3),
    "separable": (layer("SeparableDepthwiseConv2D", 2, (3, 2), stride=2), X2),
    "separable-nchw": (
        layer("SeparableDepthwiseConv2D", 1, 3, data_format="NCHW", b_init=rand_b),
        channels_first(X2),
    ),
    "separable-valid-no-bias": (
        layer("SeparableDepthwiseConv2D", 2, [3], padding="VALID", with_bias=False),
        X2,
    ),
}


@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
def test_depthwise_matches_haiku(case):
    make, x = DEPTHWISE_CASES[case]
    assert_same_as_haiku(make, x)


def test_separable_names():
    ref = assert_same_as_haiku(layer("SeparableDepthwiseConv2D", 2, (3, 5)), X2)
    assert shapes(ref.params) == {
        "separable_depthwise_conv2_d/~/depthwise_conv2_d": {"w": (3, 1, 1, 12)},
        "separable_depthwise_conv2_d/~/depthwise_conv2_d_1": {
            "b": (12,),
            "w": (1, 5, 1, 12),
        },
    }


@pytest.mark.parametrize("fmt", ["NCW", "NCDHW"])
def test_depthwise_channels_first_1d_3d_where_haiku_fails(fmt):
    """Haiku shapes this bias [M*C, 1, 1] and fails to broadcast it; ours is
    [M*C, 1, ..., 1] and the output is the grouped convolution."""
    x = channels_first(X1 if fmt == "NCW" else X3)
    n = x.ndim - 2
    cls = phk.DepthwiseConv1D if n == 1 else phk.DepthwiseConv3D
    f = phk.transform(lambda x: cls(2, 3, data_format=fmt, b_init=rand_b.fn(phk))(x))
    params = f.init(jax.random.PRNGKey(0), x)
    (name,) = params
    w, b = params[name]["w"], params[name]["b"]
    assert b.shape == (12,) + (1,) * n
    spatial = "DHW"[-n:]
    want = jax.lax.conv_general_dilated(
        x, w, (1,) * n, "SAME",
        dimension_numbers=("NC" + spatial, spatial + "IO", "NC" + spatial),
        feature_group_count=6,
    ) + b[None]  # fmt: skip
    np.testing.assert_allclose(f.apply(params, None, x), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        f.apply(params, None, x[0]), want[0], rtol=1e-6, atol=1e-6
    )  # unbatched input works too


DATA_FORMATS = [
    "channels_last", "channels_first", "NHWC", "NCHW", "NWC", "NCW", "NDHWC",
    "NCDHW", "N...C", "NC...", "NC", "BTHWD", "TBD", "BTD", "NCHWC", "HWC",
    "nhwc", "", "channels", "BTC",
]  # fmt: skip


@pytest.mark.parametrize("fmt", DATA_FORMATS)
def test_get_channel_index_matches_haiku(fmt):
    try:
        want = haiku.get_channel_index(fmt)
    except ValueError:
        with pytest.raises(ValueError, match="Unable to extract channel information"):
            phk.get_channel_index(fmt)
    else:
        assert phk.get_channel_index(fmt) == want


ERRORS = {
    "rank": (
        lambda hk: hk.Conv2D(4, 3)(jnp.ones((2, 2, 7, 9, 6))),
        ("needs to have rank in [3, 4]",),
    ),
    "groups": (
        lambda hk: hk.Conv2D(4, 3, feature_group_count=4)(X2),
        ("should be a multiple of feature_group_count 4",),
    ),
    "mask": (
        lambda hk: hk.Conv2D(4, 3, mask=jnp.ones((3, 3, 5, 4)))(X2),
        ("Mask needs to have the same shape as weights",),
    ),
    "transpose-mask": (
        lambda hk: hk.Conv2DTranspose(4, 3, mask=jnp.ones((3, 3, 6, 4)))(X2),
        ("Mask needs to have the same shape as weights",),
    ),
    "num_spatial_dims": (lambda hk: hk.ConvND(0, 4, 3), ("num_spatial_dims",)),
    "transpose-num_spatial_dims": (
        lambda hk: hk.ConvNDTranspose(0, 4, 3),
        ("num_spatial_dims",),
    ),
    "data_format": (
        lambda hk: hk.Conv2D(4, 3, data_format="HWCN"),
        ("Unable to extract channel information", "HWCN"),
    ),
    "kernel-length": (lambda hk: hk.Conv2D(4, (3, 3, 3)), ("kernel_shape", "scalar")),
    "padding-length": (lambda hk: hk.Conv2D(4, 3, padding=[(1, 1)] * 3), ("Padding",)),
    "output_shape-padding": (
        lambda hk: hk.Conv2DTranspose(4, 3, output_shape=8, padding=[(1, 1)] * 2),
        ("output_shape",),
    ),
    "output_shape-input": (
        lambda hk: hk.Conv2DTranspose(4, 3, stride=2, output_shape=20)(X2),
        ("expected input size",),
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors_match_haiku(case):
    build, must_name = ERRORS[case]
    assert_same_errors(
        lambda hk: hk.transform(lambda: build(hk)).init(jax.random.PRNGKey(0)),
        *must_name,
    )


def test_conv_attributes_as_haiku():
    def make(hk):
        def f():
            conv = hk.Conv2D(4, [3], rate=2, padding=hk.pad.full, data_format="NCHW")
            tr = hk.Conv1DTranspose(2, 3, output_shape=[5])
            dw = hk.DepthwiseConv3D(2, 3, rate=[2])
            names = [
                "num_spatial_dims", "output_channels", "kernel_shape", "stride",
                "kernel_dilation", "lhs_dilation", "padding", "channel_index",
                "with_bias", "feature_group_count",
            ]  # fmt: skip
            return (
                [getattr(conv, a) for a in names],
                tuple(conv.dimension_numbers),
                [tr.kernel_shape, tr.output_shape, tr.stride, tr.padding],
                tuple(tr.dimension_numbers),
                [dw.kernel_shape, dw.rhs_dilation, dw.stride, dw.channel_index],
            )

        return f

    got = [hk.transform(make(hk)).apply({}, None) for hk in (haiku, phk)]
    assert got[0] == got[1]


FAMILY = [
    "ConvND", "Conv1D", "Conv2D", "Conv3D", "ConvNDTranspose", "Conv1DTranspose",
    "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
    "DepthwiseConv3D", "SeparableDepthwiseConv2D", "get_channel_index", "pad",
    "max_pool", "avg_pool", "MaxPool", "AvgPool",
]  # fmt: skip


@pytest.mark.parametrize("name", FAMILY)
def test_family_is_exported_as_in_haiku(name):
    assert hasattr(haiku, name)  # SeparableDepthwiseConv2D is not in its __all__
    assert name in phk.__all__ and hasattr(phk, name)


def test_depthwise_takes_padding_functions_as_conv():
    """An extension over Haiku (whose depthwise layers take strings/pairs only):
    a padding function gives the pairs it gives hk.ConvND."""
    f = phk.transform(
        lambda x: phk.DepthwiseConv1D(1, 3, rate=2, padding=phk.pad.causal)(x)
    )
    g = phk.transform(lambda x: phk.DepthwiseConv1D(1, 3, rate=2, padding=[(4, 0)])(x))
    params = f.init(jax.random.PRNGKey(0), X1)
    y = f.apply(params, None, X1)
    assert y.shape == X1.shape
    assert_identical(y, g.apply(params, None, X1))

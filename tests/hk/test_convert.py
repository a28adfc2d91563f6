"""hk.to_haiku_params / hk.from_haiku_params: native pax.nn and pax.nets
modules <-> dm-haiku params dicts.

For every supported module: the exported dicts have exactly the names,
shapes and dtypes dm-haiku's ``init`` creates for the matching program;
dm-haiku's ``apply`` with the exported arrays gives the native module's
outputs (and, for stateful modules, the native updated state); the round
trip is exact; and dm-haiku's own randomly initialised params loaded into a
native module give Haiku's outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
import pax.hk as phk
from pax import nn

KEY = jax.random.PRNGKey(3)
OTHER = jax.random.PRNGKey(4)


def _x(*shape):
    return jax.random.normal(jax.random.PRNGKey(5), shape)


def _plain(m, *inputs):
    """Native call, returning (updated module, output)."""
    return pax.purecall(m, *inputs)


def _core(m, x, state):
    """Native RNN core: (state, x) -> (state, out); Haiku's order swapped."""
    m, (state, out) = pax.purecall(m, state, x)
    return m, (out, state)


@dataclasses.dataclass
class Case:
    id: str
    native: Callable[[jax.Array], Any]
    haiku_fn: Callable[[Any], Callable]  # hk -> the function to transform
    inputs: Callable[[], tuple]
    call: Callable = _plain
    kwargs: dict = dataclasses.field(default_factory=dict)
    rtol: float = 1e-5

    def __repr__(self):
        return self.id


def _lstm_state(batch, size):
    return nn.LSTMState(jnp.zeros((batch, size)), jnp.zeros((batch, size)))


class Tower(pax.Module):
    """A user's module: two layers built in __init__ and a parameter."""

    parameters = pax.parameters_method("scale")

    def __init__(self, rng_key):
        super().__init__()
        k1, k2 = jax.random.split(rng_key)
        self.hidden = nn.Linear(3, 4, rng_key=k1)
        self.out = nn.Linear(4, 2, rng_key=k2)
        self.scale = jax.random.uniform(k2, (2,))

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x))) * self.scale[None]


def _haiku_tower(hk):
    class Tower(hk.Module):
        def __init__(self):
            super().__init__()
            self.hidden = hk.Linear(4)
            self.out = hk.Linear(2)

        def __call__(self, x):
            scale = hk.get_parameter("scale", [2], init=jnp.ones)
            return self.out(jax.nn.relu(self.hidden(x))) * scale[None]

    return lambda x: Tower()(x)


def _tiny_resnet(v2, bottleneck):
    def native(k):
        return pax.nets.ResNet(
            3,
            (1, 1, 1, 1),
            5,
            resnet_v2=v2,
            bottleneck=bottleneck,
            channels_per_group=(4, 4, 8, 8),
            use_projection=(True, False, True, False),
            initial_conv_config={"out_features": 4},
            strides=(1, 1, 2, 1),
            rng_key=k,
        )

    def haiku_fn(hk):
        return lambda x: hk.nets.ResNet(
            (1, 1, 1, 1),
            5,
            resnet_v2=v2,
            bottleneck=bottleneck,
            channels_per_group=(4, 4, 8, 8),
            use_projection=(True, False, True, False),
            initial_conv_config={"output_channels": 4},
            strides=(1, 1, 2, 1),
        )(x, is_training=True)

    return native, haiku_fn


CASES = [
    Case(
        "linear",
        lambda k: nn.Linear(3, 4, rng_key=k),
        lambda hk: lambda x: hk.Linear(4)(x),
        lambda: (_x(2, 3),),
    ),
    Case(
        "linear_no_bias",
        lambda k: nn.Linear(3, 4, with_bias=False, rng_key=k),
        lambda hk: lambda x: hk.Linear(4, with_bias=False)(x),
        lambda: (_x(2, 3),),
    ),
    Case(
        "bias",
        lambda k: nn.Bias((5, 3), b_init=pax.initializers.RandomNormal(), rng_key=k),
        lambda hk: lambda x: hk.Bias()(x),
        lambda: (_x(2, 5, 3),),
    ),
    Case(
        "embed",
        lambda k: nn.Embed(10, 4, rng_key=k),
        lambda hk: lambda ids: hk.Embed(10, 4)(ids),
        lambda: (jnp.array([[1, 2], [9, 0]]),),
    ),
    Case(
        "conv2d",
        lambda k: nn.Conv2D(3, 4, 3, rng_key=k),
        lambda hk: lambda x: hk.Conv2D(4, 3)(x),
        lambda: (_x(2, 6, 6, 3),),
    ),
    Case(
        "conv2d_nchw",
        lambda k: nn.Conv2D(
            3,
            4,
            3,
            data_format="NCHW",
            b_init=pax.initializers.RandomNormal(),
            rng_key=k,
        ),
        lambda hk: lambda x: hk.Conv2D(4, 3, data_format="NCHW")(x),
        lambda: (_x(2, 3, 6, 6),),
    ),
    Case(
        "conv1d_transpose",
        lambda k: nn.Conv1DTranspose(3, 4, 3, stride=2, rng_key=k),
        lambda hk: lambda x: hk.Conv1DTranspose(4, 3, stride=2)(x),
        lambda: (_x(2, 5, 3),),
    ),
    Case(
        "depthwise_conv2d",
        lambda k: nn.DepthwiseConv2D(3, 2, 3, rng_key=k),
        lambda hk: lambda x: hk.DepthwiseConv2D(2, 3)(x),
        lambda: (_x(2, 6, 6, 3),),
    ),
    Case(
        "separable_depthwise_conv2d",
        lambda k: nn.SeparableDepthwiseConv2D(3, 2, 3, rng_key=k),
        lambda hk: lambda x: hk.SeparableDepthwiseConv2D(2, 3)(x),
        lambda: (_x(2, 6, 6, 3),),
    ),
    Case(
        "batch_norm_2d",
        lambda k: nn.BatchNorm2D(3, decay_rate=0.9),
        lambda hk: lambda x: hk.BatchNorm(True, True, 0.9)(x, is_training=True),
        lambda: (_x(4, 5, 5, 3),),
    ),
    Case(
        "batch_norm_rank2",
        lambda k: nn.BatchNorm(3, True, False, 0.5),
        lambda hk: lambda x: hk.BatchNorm(True, False, 0.5)(x, is_training=True),
        lambda: (_x(6, 3),),
        kwargs={"input_ndim": 2},
    ),
    Case(
        "layer_norm",
        lambda k: nn.LayerNorm(4, -1),
        lambda hk: lambda x: hk.LayerNorm(-1, True, True)(x),
        lambda: (_x(2, 4),),
    ),
    Case(
        "instance_norm_nchw",
        lambda k: nn.InstanceNorm(3, data_format="NCHW"),
        lambda hk: lambda x: hk.InstanceNorm(True, True, data_format="NCHW")(x),
        lambda: (_x(2, 3, 4, 4),),
        kwargs={"input_ndim": 4},
    ),
    Case(
        "rms_norm",
        lambda k: nn.RMSNorm(4, -1),
        lambda hk: lambda x: hk.RMSNorm(-1)(x),
        lambda: (_x(2, 4),),
    ),
    Case(
        "layer_norm_two_param_axes",
        lambda k: nn.LayerNorm((2, 4), -1, param_axis=(0, -1)),
        lambda hk: lambda x: hk.LayerNorm(-1, True, True, param_axis=(-1, 0))(x),
        lambda: (_x(2, 3, 4),),
        kwargs={"input_ndim": 3},
    ),
    Case(
        "rms_norm_two_param_axes",
        lambda k: nn.RMSNorm((3, 4), 1, param_axis=(1, 2)),
        lambda hk: lambda x: hk.RMSNorm(1, param_axis=slice(1, None))(x),
        lambda: (_x(2, 3, 4),),
        kwargs={"input_ndim": 3},
    ),
    Case(
        "group_norm_nchw",
        lambda k: nn.GroupNorm(2, 4, data_format="NCHW"),
        lambda hk: lambda x: hk.GroupNorm(2, data_format="NCHW")(x),
        lambda: (_x(2, 4, 3, 3),),
        kwargs={"input_ndim": 4},
    ),
    Case(
        "ema",
        lambda k: nn.EMA(jnp.zeros(3), 0.8, debias=True),
        lambda hk: lambda x: hk.ExponentialMovingAverage(0.8)(x),
        lambda: (_x(3),),
    ),
    Case(
        "ema_no_debias",
        lambda k: nn.EMA(jnp.zeros(3), 0.8),
        lambda hk: lambda x: hk.ExponentialMovingAverage(0.8, zero_debias=False)(x),
        lambda: (_x(3),),
    ),
    Case(
        "spectral_norm",
        lambda k: nn.SpectralNorm((3, 4), rng_key=k),
        lambda hk: lambda w: hk.SpectralNorm()(w),
        lambda: (_x(3, 4),),
    ),
    Case(
        "multi_head_attention",
        lambda k: nn.MultiHeadAttention(
            2, 3, query_size=5, key_input_size=5, value_input_size=5, rng_key=k
        ),
        lambda hk: lambda q: hk.MultiHeadAttention(2, 3, w_init_scale=1.0)(q, q, q),
        lambda: (_x(2, 4, 5),),
        call=lambda m, q: pax.purecall(m, q, q, q),
    ),
    Case(
        "vanilla_rnn",
        lambda k: nn.VanillaRNN(3, 4, rng_key=k),
        lambda hk: lambda x, h: hk.VanillaRNN(4)(x, h),
        lambda: (_x(2, 3), _x(2, 4)),
        call=_core,
    ),
    Case(
        "lstm",
        lambda k: nn.LSTM(3, 4, forget_gate_bias=1.0, rng_key=k),
        lambda hk: lambda x, s: hk.LSTM(4)(x, s),
        lambda: (_x(2, 3), _lstm_state(2, 4)),
        call=_core,
    ),
    Case(
        "gru",
        lambda k: nn.GRU(3, 4, rng_key=k),
        lambda hk: lambda x, h: hk.GRU(4)(x, h),
        lambda: (_x(2, 3), _x(2, 4)),
        call=_core,
    ),
    Case(
        "conv2d_lstm",
        lambda k: nn.Conv2DLSTM((5, 5, 3), 4, 3, rng_key=k),
        lambda hk: lambda x, s: hk.Conv2DLSTM((5, 5), 4, 3)(x, s),
        lambda: (
            _x(2, 5, 5, 3),
            nn.LSTMState(jnp.zeros((2, 5, 5, 4)), jnp.zeros((2, 5, 5, 4))),
        ),
        call=_core,
    ),
    Case(
        "deep_rnn",
        lambda k: nn.DeepRNN(
            [
                nn.LSTM(3, 4, forget_gate_bias=1.0, rng_key=k),
                jax.nn.relu,
                nn.GRU(4, 4, rng_key=OTHER),
            ]
        ),
        lambda hk: lambda x, s: hk.DeepRNN([hk.LSTM(4), jax.nn.relu, hk.GRU(4)])(x, s),
        lambda: (_x(2, 3), (_lstm_state(2, 4), jnp.zeros((2, 4)))),
        call=_core,
    ),
    Case(
        "sequential",
        lambda k: nn.Sequential(
            nn.Linear(3, 4, rng_key=k), jax.nn.relu, nn.Linear(4, 2, rng_key=OTHER)
        ),
        lambda hk: (
            lambda x: hk.Sequential([hk.Linear(4), jax.nn.relu, hk.Linear(2)])(x)
        ),
        lambda: (_x(2, 3),),
    ),
    Case(
        "user_module",
        Tower,
        _haiku_tower,
        lambda: (_x(2, 3),),
    ),
    Case(
        "mlp",
        lambda k: pax.nets.MLP(3, [4, 5, 2], rng_key=k),
        lambda hk: lambda x: hk.nets.MLP([4, 5, 2])(x),
        lambda: (_x(2, 3),),
    ),
    # The ResNets stack ten layers of all-positive random weights: float32
    # rounding (BatchNorm's reduction order differs) reaches ~2e-5.
    Case(
        "resnet_v1",
        *_tiny_resnet(False, False),
        lambda: (_x(2, 8, 8, 3),),
        rtol=1e-4,
    ),
    Case(
        "resnet_v2_bottleneck",
        *_tiny_resnet(True, True),
        lambda: (_x(2, 8, 8, 3),),
        rtol=1e-4,
    ),
    Case(
        "mobilenet_v1",
        lambda k: pax.nets.MobileNetV1(
            3, strides=(1, 2), channels=(8, 16), num_classes=5, rng_key=k
        ),
        lambda hk: (
            lambda x: hk.nets.MobileNetV1(
                strides=(1, 2), channels=(8, 16), num_classes=5
            )(x, is_training=True)
        ),
        lambda: (_x(2, 8, 8, 3),),
    ),
    Case(
        "vector_quantizer",
        lambda k: pax.nets.VectorQuantizer(4, 6, 0.25, rng_key=k),
        lambda hk: (
            lambda x: hk.nets.VectorQuantizer(4, 6, 0.25)(x, is_training=True)[
                "quantize"
            ]
        ),
        lambda: (_x(2, 3, 4),),
        call=lambda m, x: (m, m(x)["quantize"]),
    ),
    Case(
        "vector_quantizer_ema",
        lambda k: pax.nets.VectorQuantizerEMA(4, 6, 0.25, 0.9, rng_key=k),
        lambda hk: (
            lambda x: hk.nets.VectorQuantizerEMA(4, 6, 0.25, 0.9)(x, is_training=True)[
                "quantize"
            ]
        ),
        lambda: (_x(2, 3, 4),),
        call=lambda m, x: (lambda r: (r[0], r[1]["quantize"]))(pax.purecall(m, x)),
    ),
]


def assert_same_names_shapes(ours, theirs):
    assert list(ours) == sorted(theirs), (list(ours), sorted(theirs))
    for mod in theirs:
        assert sorted(ours[mod]) == sorted(theirs[mod]), mod
        for name, ref in theirs[mod].items():
            got = ours[mod][name]
            assert got.shape == ref.shape, (mod, name, got.shape, ref.shape)
            assert got.dtype == ref.dtype, (mod, name, got.dtype, ref.dtype)


def assert_close(a, b, rtol=1e-5, atol=1e-6):
    # Leaf by leaf: pax's and Haiku's LSTMState are different namedtuples.
    leaves_a, leaves_b = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def assert_leaves_identical(a, b):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def filled(template, seed):
    """``template``'s structure with random arrays: floats in [0.1, 1) (safe
    for variances and cluster sizes), integers (step counters) 2."""
    rng = np.random.default_rng(seed)

    def fill(leaf):
        if jnp.issubdtype(leaf.dtype, jnp.integer):
            return jnp.full(leaf.shape, 2, leaf.dtype)
        return jnp.asarray(rng.uniform(0.1, 1.0, leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map(fill, template)


def _haiku(case):
    return haiku.transform_with_state(case.haiku_fn(haiku))


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_native_and_haiku_params_are_interchangeable(case):
    inputs = case.inputs()
    f = _haiku(case)
    # Both sides get independent random arrays (no initializer compiles).
    native = filled(jax.eval_shape(lambda: case.native(KEY)), seed=1)
    native_call = jax.jit(case.call)
    haiku_apply = jax.jit(f.apply)
    with jax.numpy_rank_promotion("allow"):
        ref_params, ref_state = filled(jax.eval_shape(f.init, KEY, *inputs), seed=2)

    # Exported: exactly the names, shapes and dtypes Haiku creates.
    params, state = phk.to_haiku_params(native, **case.kwargs)
    assert_same_names_shapes(params, ref_params)
    assert_same_names_shapes(state, ref_state)

    # Haiku's apply with the exported arrays computes what the native module
    # computes, and updates its state as the native module does.
    with jax.numpy_rank_promotion("allow"):
        out, new_state = haiku_apply(params, state, None, *inputs)
    updated, expected = native_call(native, *inputs)
    assert_close(out, expected, case.rtol)
    assert_close(new_state, phk.to_haiku_params(updated, **case.kwargs)[1], case.rtol)

    # Round trip into a structure-only template: exact.
    template = jax.eval_shape(lambda: case.native(OTHER))
    back = phk.from_haiku_params(template, params, state, **case.kwargs)
    assert_leaves_identical(back, native)

    # Haiku's params, loaded into the native module.
    loaded = phk.from_haiku_params(native, ref_params, ref_state, **case.kwargs)
    assert_close(phk.to_haiku_params(loaded, **case.kwargs)[0], ref_params, 0, 0)
    with jax.numpy_rank_promotion("allow"):
        ref_out, ref_new_state = haiku_apply(ref_params, ref_state, None, *inputs)
    updated, got = native_call(loaded, *inputs)
    assert_close(got, ref_out, case.rtol)
    assert_close(
        phk.to_haiku_params(updated, **case.kwargs)[1], ref_new_state, case.rtol
    )


def test_resnet18_names_match_haiku_without_computing():
    native = jax.eval_shape(lambda: pax.nets.ResNet18(3, 10, rng_key=KEY))
    params, state = phk.to_haiku_params(native)
    f = haiku.transform_with_state(
        lambda x: haiku.nets.ResNet18(10)(x, is_training=True)
    )
    ref_params, ref_state = jax.eval_shape(f.init, KEY, jnp.ones((1, 32, 32, 3)))
    assert_same_names_shapes(params, ref_params)
    assert_same_names_shapes(state, ref_state)
    assert "res_net18/~/block_group_1/~/block_0/~/shortcut_conv" in params


def test_name_overrides_the_default():
    fc = nn.Linear(3, 4, rng_key=KEY)
    params, _ = phk.to_haiku_params(fc, name="logits")
    assert list(params) == ["logits"]
    assert phk.from_haiku_params(fc, params, name="logits").weight is not None
    with pytest.raises(KeyError, match="linear"):
        phk.from_haiku_params(fc, params)


def test_missing_extra_and_misshaped_arrays_are_errors():
    bn = nn.BatchNorm2D(3)
    params, state = phk.to_haiku_params(bn)
    with pytest.raises(KeyError, match="state have no 'batch_norm/~/mean_ema'"):
        phk.from_haiku_params(bn, params)
    extra = {**params, "linear": {"w": jnp.ones((2, 2))}}
    with pytest.raises(ValueError, match=r"\['linear/w'\] have no place"):
        phk.from_haiku_params(bn, extra, state)
    wrong = {"batch_norm": {**params["batch_norm"], "scale": jnp.ones((4,))}}
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(1, 1, 1, 3\)"):
        phk.from_haiku_params(bn, wrong, state)


def test_rank_dependent_shapes_need_input_ndim():
    with pytest.raises(ValueError, match="pass input_ndim="):
        phk.to_haiku_params(nn.BatchNorm(3))
    params, _ = phk.to_haiku_params(nn.BatchNorm(3), input_ndim=3)
    assert params["batch_norm"]["scale"].shape == (1, 1, 3)


def test_modules_without_a_haiku_twin_are_refused():
    stack = jax.eval_shape(
        lambda: nn.LayerStack(lambda k: nn.Linear(2, 2, rng_key=k), 3, rng_key=KEY)
    )
    with pytest.raises(ValueError, match="LayerStack: no Haiku counterpart"):
        phk.to_haiku_params(stack)
    ema_tree = nn.EMA({"a": jnp.zeros(2)}, 0.9)
    with pytest.raises(ValueError, match="single array"):
        phk.to_haiku_params(ema_tree)
    sn_tree = nn.SNParamsTree({"w": jnp.ones((2, 3))}, rng_key=KEY)
    with pytest.raises(ValueError, match="no Haiku counterpart for the leaves"):
        phk.to_haiku_params(sn_tree)


@pytest.mark.parametrize(
    "build",
    [
        lambda bias: nn.LSTM(3, 4, forget_gate_bias=bias, rng_key=KEY),
        lambda bias: nn.Conv2DLSTM((5, 5, 3), 4, 3, forget_gate_bias=bias, rng_key=KEY),
    ],
    ids=["LSTM", "Conv2DLSTM"],
)
def test_lstm_weights_cross_only_with_haikus_forget_gate_bias(build):
    # Haiku adds a fixed 1.0 to the forget gate: weights moved to or from an
    # LSTM with another bias would compute a different recurrence.
    params, state = phk.to_haiku_params(build(1.0))
    assert params
    for bias in (0.0, 0.5):
        with pytest.raises(ValueError, match=f"forget_gate_bias={bias}"):
            phk.to_haiku_params(build(bias))
        with pytest.raises(ValueError, match="forget_gate_bias=1.0"):
            phk.from_haiku_params(build(bias), params, state)


class Backbone(pax.Module):
    """An image net next to a rank-2 BatchNorm: each keeps its own rank."""

    def __init__(self, rng_key):
        super().__init__()
        self.net = pax.nets.MobileNetV1(
            3, strides=(1,), channels=(8,), num_classes=5, rng_key=rng_key
        )
        self.norm = nn.BatchNorm(5)


def test_nets_inside_a_module_keep_rank_4_while_input_ndim_sets_the_rest():
    template = jax.eval_shape(lambda: Backbone(KEY))
    params, state = phk.to_haiku_params(template, input_ndim=2)
    assert params["backbone/~/batch_norm"]["scale"].shape == (1, 5)
    block = "backbone/~/mobile_net_v1/mobile_net_v1_block/batch_norm_1"
    assert params[block]["scale"].shape == (1, 1, 1, 8)
    assert state["backbone/~/batch_norm/~/mean_ema"]["average"].shape == (1, 5)

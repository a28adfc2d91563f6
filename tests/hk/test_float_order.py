"""``pax.hk`` follows dm-haiku's order of floating-point operations.

Whole nets at batch 2, in training mode and in eval mode (dm-haiku's eval needs
the moving averages, so: init with ``is_training=True``, one training apply,
then an eval apply with the updated state), with parameters moved away from
their initial values (batch-norm scales and offsets not 1 and 0, zero-started
weights made non-zero) so that the order of operations shows: outputs and
updated state agree with dm-haiku to rtol/atol 1e-5. Single layers are
compared bit for bit. The native side is checked too: ``pax.nets.ResNet18``
moved into dm-haiku with ``pax.hk.to_haiku_params`` computes the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}
KEY = jax.random.PRNGKey(0)


def perturb(tree: Any, seed: int, scale: float = 0.3) -> Any:
    """Every floating leaf plus ``scale`` times standard normal noise."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_unflatten(
        treedef,
        [
            leaf + (scale * rng.standard_normal(leaf.shape)).astype(leaf.dtype)
            if jnp.issubdtype(leaf.dtype, jnp.floating)
            else leaf
            for leaf in leaves
        ],
    )


def assert_trees_close(got: Any, expected: Any, what: str, rtol=1e-5, atol=1e-5):
    # same paths (the libraries' own namedtuple classes are equal by field)
    paths = jax.tree_util.tree_flatten_with_path(expected)[0]
    got_paths = jax.tree_util.tree_flatten_with_path(got)[0]
    assert [p for p, _ in got_paths] == [p for p, _ in paths], what
    for (path, e), (_, g) in zip(paths, got_paths):
        where = f"{what}{jax.tree_util.keystr(path)}"
        assert g.shape == e.shape and g.dtype == e.dtype, where
        np.testing.assert_allclose(
            np.asarray(g), np.asarray(e), rtol=rtol, atol=atol, err_msg=where
        )


def assert_train_then_eval_match_haiku(
    make: Callable[[Any], Callable],
    x: jax.Array,
    *,
    seed: int = 1,
    eval_kwargs: dict | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> dict:
    """``make(hk)(x, is_training, **kw)`` under both libraries, from the same
    initial params (perturbed) and state: a jitted training apply, then a
    jitted eval apply with the updated state. Compares everything; returns
    the results per library.

    The initial values come from ``pax.hk``'s init, whose names, shapes and
    dtypes are checked against dm-haiku's here (its values are checked bit
    for bit in ``test_nets_*``; dm-haiku's eager init of a whole net takes
    ~10 s to compile op by op)."""
    eval_kwargs = eval_kwargs or {}
    results = {}
    for name, lib in LIBS.items():
        f = lib.transform_with_state(lambda x, t, lib=lib, **kw: make(lib)(x, t, **kw))
        results[name] = {"f": f}
    shapes = jax.eval_shape(lambda k, x: results["haiku"]["f"].init(k, x, True), KEY, x)
    params, state = results["pax"]["f"].init(KEY, x, True)
    assert jax.tree_util.tree_map(jnp.shape, (params, state)) == (
        jax.tree_util.tree_map(jnp.shape, shapes)
    )
    params = perturb(params, seed)
    for name in LIBS:
        f = results[name]["f"]
        train = jax.jit(lambda p, s, x, f=f: f.apply(p, s, None, x, True))
        evaluate = jax.jit(
            lambda p, s, x, f=f: f.apply(p, s, None, x, False, **eval_kwargs)
        )
        out, new_state = train(params, state, x)
        eval_out, eval_state = evaluate(params, new_state, x)
        results[name].update(
            train=out, state=new_state, eval=eval_out, eval_state=eval_state
        )
    ref, got = results["haiku"], results["pax"]
    for part in ("train", "state", "eval", "eval_state"):
        assert_trees_close(got[part], ref[part], part, rtol, atol)
    return results


def image(shape, seed=1):
    return jax.random.normal(jax.random.PRNGKey(seed), shape)


# -- whole nets ----------------------------------------------------------------


def resnet18_depth(hk, resnet_v2=False):
    # ResNet-18's depth and structure (basic blocks, 2 per group, projections
    # where the width or stride changes) at a small width
    return hk.nets.ResNet(
        blocks_per_group=(2, 2, 2, 2),
        num_classes=10,
        bottleneck=False,
        channels_per_group=(8, 16, 16, 32),
        use_projection=(False, True, True, True),
        resnet_v2=resnet_v2,
        initial_conv_config={"output_channels": 8},
        name="res_net18",
    )


@pytest.mark.parametrize(
    "resnet_v2",
    [False, pytest.param(True, marks=pytest.mark.slow)],  # ~7 s each
    ids=["v1", "v2"],
)
def test_resnet18_depth_matches_haiku(resnet_v2):
    results = assert_train_then_eval_match_haiku(
        lambda hk: resnet18_depth(hk, resnet_v2), image((2, 16, 16, 3))
    )
    assert results["pax"]["train"].shape == (2, 10)
    state = results["pax"]["state"]
    assert (
        int(
            state["res_net18/~/block_group_3/~/block_1/~/batchnorm_1/~/var_ema"][
                "counter"
            ]
        )
        == 1
    )


@pytest.mark.slow  # full width: ~30 s of compiling under both libraries
def test_full_width_resnet18_matches_haiku():
    assert_train_then_eval_match_haiku(
        lambda hk: hk.nets.ResNet18(10), image((2, 16, 16, 3))
    )


def mobilenet_v1_depth(hk, **kw):
    # MobileNetV1's 13 depthwise-separable blocks and strides at 1/8 width
    channels = (8, 16, 32, 32, 64, 64, 64, 64, 64, 64, 64, 128, 128)
    return hk.nets.MobileNetV1(channels=channels, num_classes=10, **kw)


def test_mobilenet_v1_matches_haiku():
    results = assert_train_then_eval_match_haiku(
        mobilenet_v1_depth, image((2, 32, 32, 3))
    )
    assert results["pax"]["train"].shape == (2, 10)


@pytest.mark.slow  # full width: ~20 s of compiling under both libraries
def test_full_width_mobilenet_v1_matches_haiku():
    assert_train_then_eval_match_haiku(
        lambda hk: hk.nets.MobileNetV1(num_classes=10), image((2, 32, 32, 3))
    )


def test_mlp_matches_haiku():
    def make(hk):
        mlp = hk.nets.MLP([16, 16, 5], activation=jnp.tanh, activate_final=True)
        return lambda x, is_training: mlp(x)

    assert_train_then_eval_match_haiku(make, image((2, 7)))


@pytest.mark.parametrize("ema", [False, True], ids=["VectorQuantizer", "EMA"])
def test_vector_quantizers_match_haiku(ema):
    def make(hk):
        if ema:
            vq = hk.nets.VectorQuantizerEMA(4, 6, 0.25, decay=0.8)
        else:
            vq = hk.nets.VectorQuantizer(4, 6, 0.25)
        return lambda x, is_training: vq(x, is_training=is_training)

    x = image((2, 5, 4))
    results = assert_train_then_eval_match_haiku(make, x)
    out = results["pax"]["train"]
    assert out["quantize"].shape == (2, 5, 4) and out["distances"].shape == (10, 6)


# -- single layers: bit for bit -----------------------------------------------------


def assert_identical(got: Any, expected: Any, what: str) -> None:
    assert_trees_close(got, expected, what, 0, 0)


RANDOM = dict(
    scale_init=lambda hk: hk.initializers.RandomNormal(0.5, 1.0),
    offset_init=lambda hk: hk.initializers.RandomNormal(0.5, 0.0),
)


def layer_case(name: str):
    """``make(hk)``, the input and whether it is stateful, for one layer."""
    x3 = image((2, 5, 6)) * 3 + 1
    if name == "BatchNorm":
        return (
            lambda hk: (
                lambda x, t: hk.BatchNorm(
                    True, True, 0.9, **{k: v(hk) for k, v in RANDOM.items()}
                )(x, is_training=t)
            ),
            x3,
        )
    if name == "BatchNorm-call-time-scale":
        return (
            lambda hk: (
                lambda x, t: hk.BatchNorm(False, False, 0.9)(
                    x,
                    is_training=t,
                    scale=jnp.linspace(0.5, 2.0, 6).reshape(1, 1, 6),
                    offset=0.5,
                )
            ),
            x3,
        )
    if name == "LayerNorm":
        return (
            lambda hk: (
                lambda x, t: hk.LayerNorm(
                    -1, True, True, **{k: v(hk) for k, v in RANDOM.items()}
                )(x)
            ),
            x3,
        )
    if name == "LayerNorm-axes":
        return (
            lambda hk: (
                lambda x, t: hk.LayerNorm(
                    (1, 2),
                    True,
                    True,
                    param_axis=1,
                    **{k: v(hk) for k, v in RANDOM.items()},
                )(x)
            ),
            x3,
        )
    if name == "InstanceNorm":
        return (
            lambda hk: (
                lambda x, t: hk.InstanceNorm(
                    True, True, **{k: v(hk) for k, v in RANDOM.items()}
                )(x)
            ),
            image((2, 4, 4, 3)) * 2,
        )
    if name == "RMSNorm":
        return (
            lambda hk: (
                lambda x, t: hk.RMSNorm(-1, scale_init=RANDOM["scale_init"](hk))(x)
            ),
            x3,
        )
    if name == "GroupNorm":
        return (
            lambda hk: (
                lambda x, t: hk.GroupNorm(3, **{k: v(hk) for k, v in RANDOM.items()})(x)
            ),
            x3,
        )
    if name == "MultiHeadAttention":
        w_init = lambda hk: hk.initializers.VarianceScaling(1.0)  # noqa: E731
        return (
            lambda hk: (
                lambda x, t: hk.MultiHeadAttention(
                    3, 5, w_init=w_init(hk), value_size=4, model_size=6
                )(x, x, x, jnp.tril(jnp.ones((1, 1, 5, 5), bool)))
            ),
            x3,
        )
    if name in ("LSTM", "GRU", "VanillaRNN"):

        def make(hk, name=name):
            def run(x, t):
                core = getattr(hk, name)(7)
                return hk.dynamic_unroll(
                    core, x, core.initial_state(2), time_major=False
                )

            return run

        return make, x3
    raise ValueError(name)


LAYERS = [
    "BatchNorm",
    "BatchNorm-call-time-scale",
    "LayerNorm",
    "LayerNorm-axes",
    "InstanceNorm",
    "RMSNorm",
    "GroupNorm",
    "MultiHeadAttention",
    "LSTM",
    "GRU",
    "VanillaRNN",
]


@pytest.mark.parametrize("name", LAYERS)
def test_layers_are_bit_identical_to_haiku(name):
    make, x = layer_case(name)
    results = {}
    for lib_name, lib in LIBS.items():
        f = lib.transform_with_state(lambda x, t, lib=lib: make(lib)(x, t))
        results[lib_name] = f
    params, state = jax.jit(lambda k, x: results["haiku"].init(k, x, True))(KEY, x)
    params = perturb(params, 2, scale=0.1)
    outs = {}
    for lib_name, f in results.items():
        train = jax.jit(lambda p, s, x, f=f: f.apply(p, s, None, x, True))
        out, new_state = train(params, state, x)
        if name.startswith("BatchNorm"):
            evaluate = jax.jit(lambda p, s, x, f=f: f.apply(p, s, None, x, False))
            eval_out, _ = evaluate(params, new_state, x)
        else:
            eval_out = None
        outs[lib_name] = (out, new_state, eval_out)
    for i, part in enumerate(("out", "state", "eval out")):
        assert_identical(outs["pax"][i], outs["haiku"][i], part)


# -- native pax.nets.ResNet18 inside dm-haiku ------------------------------------


def assert_native_resnet_matches_haiku(native, make_haiku, x, name=None):
    """``native`` (perturbed) moved into dm-haiku with ``to_haiku_params``:
    training step, updated state and eval output as dm-haiku's."""
    params, state = phk.to_haiku_params(native, name=name)
    native = phk.from_haiku_params(native, perturb(params, 3), state, name=name)
    params, state = phk.to_haiku_params(native, name=name)

    f = haiku.transform_with_state(
        lambda x, is_training: make_haiku(haiku)(x, is_training=is_training)
    )
    with jax.numpy_rank_promotion("allow"):
        out, new_state = jax.jit(lambda p, s, x: f.apply(p, s, None, x, True))(
            params, state, x
        )
        eval_out, _ = jax.jit(lambda p, s, x: f.apply(p, s, None, x, False))(
            params, new_state, x
        )
    updated, got = jax.jit(pax.purecall)(native, x)
    got_eval = jax.jit(lambda m, x: m.eval()(x))(updated, x)
    assert_trees_close(got, out, "train")
    assert_trees_close(phk.to_haiku_params(updated, name=name)[1], new_state, "state")
    assert_trees_close(got_eval, eval_out, "eval")


def test_native_resnet18_depth_matches_haiku_via_to_haiku_params():
    native = pax.nets.ResNet(
        3,
        (2, 2, 2, 2),
        10,
        bottleneck=False,
        channels_per_group=(8, 16, 16, 32),
        use_projection=(False, True, True, True),
        initial_conv_config={"out_features": 8},
        rng_key=jax.random.PRNGKey(4),
    )
    assert_native_resnet_matches_haiku(
        native, resnet18_depth, image((2, 16, 16, 3)), name="res_net18"
    )


@pytest.mark.slow  # full-width ResNet-18, compiled natively and under dm-haiku
def test_native_resnet18_matches_haiku_via_to_haiku_params():
    native = pax.nets.ResNet18(3, 10, rng_key=jax.random.PRNGKey(4))
    assert_native_resnet_matches_haiku(
        native, lambda hk: hk.nets.ResNet18(10), image((2, 16, 16, 3))
    )


# -- integer input: float output, as dm-haiku ----------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda hk: lambda x, t: hk.BatchNorm(True, True, 0.9)(x, is_training=t),
        lambda hk: lambda x, t: hk.LayerNorm(-1, True, True)(x),
        lambda hk: lambda x, t: hk.RMSNorm(-1)(x),
        lambda hk: lambda x, t: hk.GroupNorm(3)(x),
    ],
    ids=["BatchNorm", "LayerNorm", "RMSNorm", "GroupNorm"],
)
def test_integer_input_matches_haiku(make):
    # training mode; dm-haiku creates integer params (the input's dtype) and
    # float statistics
    x = jnp.asarray(np.random.default_rng(0).integers(0, 10, (2, 4, 6)), jnp.int32)
    results = {}
    for name, lib in LIBS.items():
        f = lib.transform_with_state(lambda x, t, lib=lib: make(lib)(x, t))
        params, state = f.init(KEY, x, True)
        out, new_state = f.apply(params, state, None, x, True)
        results[name] = (params, state, out, new_state)
        # (dm-haiku's eval-mode BatchNorm casts its averages to the integer
        # input dtype and fails in rsqrt; pax.hk's returns float32)
    assert results["pax"][2].dtype == jnp.float32
    for i, (got, expected) in enumerate(zip(results["pax"], results["haiku"])):
        assert_identical(got, expected, f"result {i}")

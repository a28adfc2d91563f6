"""hk.nets.ResNet* and MobileNetV1: the same params, state and outputs as
dm-haiku (training-mode and eval-mode applies from the same params)."""

import haiku
import jax
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


def assert_same_structure(a, b):
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.dtype == y.dtype and x.shape == y.shape


def assert_same_trees(a, b, exact=False):
    assert_same_structure(a, b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(
                np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6
            )


def run_both(make_net, x, call_kwargs_eval):
    """Init under both libraries; apply both with Haiku's params in training
    mode and in eval mode (one jit). Returns {lib: (params, state, train, eval)}."""
    inits, applies = {}, {}
    for lib, hk in LIBS.items():

        def f(x, is_training, hk=hk, **kw):
            return make_net(hk)(x, is_training, **kw)

        f = hk.transform_with_state(f)
        inits[lib] = f.init(jax.random.PRNGKey(0), x, True)

        def both(params, state, f=f):
            train = f.apply(params, state, None, x, True)
            evaluated = f.apply(params, state, None, x, False, **call_kwargs_eval)
            return train, evaluated

        applies[lib] = jax.jit(both)
    ref_params, ref_state = inits["haiku"]
    return {lib: (*inits[lib], *applies[lib](ref_params, ref_state)) for lib in LIBS}


def check(results):
    hk_p, hk_s, hk_train, hk_eval = results["haiku"]
    pax_p, pax_s, pax_train, pax_eval = results["pax"]
    assert_same_trees(hk_p, pax_p, exact=True)
    assert_same_trees(hk_s, pax_s, exact=True)
    assert_same_trees(hk_train, pax_train)
    assert_same_trees(hk_eval, pax_eval)


@pytest.mark.slow  # full-width ResNet-18: ~20 s of compiling under both libraries
def test_resnet18_matches_haiku():
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
    results = run_both(lambda hk: hk.nets.ResNet18(10), x, {})
    check(results)
    params, state = results["pax"][:2]
    assert "res_net18/~/initial_conv" in params
    assert "res_net18/~/block_group_0/~/block_0/~/conv_0" in params
    assert "res_net18/~/block_group_1/~/block_0/~/shortcut_batchnorm" in params
    assert "res_net18/~/block_group_0/~/block_0/~/shortcut_conv" not in params
    assert params["res_net18/~/logits"]["w"].shape == (512, 10)
    assert "res_net18/~/initial_batchnorm/~/mean_ema" in state
    assert results["pax"][2][0].shape == (2, 10)


def test_resnet_v2_bottleneck_matches_haiku():
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 16, 16, 3))

    def make(hk):
        return hk.nets.ResNet(
            blocks_per_group=(1, 1, 1, 1),
            num_classes=5,
            bn_config={"decay_rate": 0.8},
            resnet_v2=True,
            bottleneck=True,
            channels_per_group=(8, 16, 16, 32),
            use_projection=(True, True, False, True),
            logits_config={"w_init": hk.initializers.RandomNormal()},
            initial_conv_config={"output_channels": 8, "kernel_shape": 3},
            strides=(1, 2, 1, 2),
            name="net",
        )

    results = run_both(make, x, {"test_local_stats": True})
    check(results)
    params = results["pax"][0]
    assert "net/~/final_batchnorm" in params and "net/~/initial_batchnorm" not in params
    assert "net/~/block_group_0/~/block_0/~/conv_2" in params
    assert "net/~/block_group_0/~/block_0/~/shortcut_batchnorm" not in params


def test_resnet_v1_bottleneck_zero_scale_and_blocks_match_haiku():
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 16, 16, 4))

    def make(hk):
        def net(x, is_training, test_local_stats=False):
            y = hk.nets.ResNet.BlockV1(
                channels=8,
                stride=2,
                use_projection=True,
                bn_config={},
                bottleneck=True,
            )(x, is_training, test_local_stats)
            return hk.nets.ResNet.BlockGroup(
                channels=8,
                num_blocks=2,
                stride=1,
                bn_config={"eps": 1e-3, "decay_rate": 0.9},
                resnet_v2=True,
                bottleneck=False,
                use_projection=False,
            )(y, is_training, test_local_stats)

        return net

    results = run_both(make, x, {})
    check(results)
    params = results["pax"][0]
    np.testing.assert_array_equal(params["block_v1/~/batchnorm_2"]["scale"], 0.0)
    assert "block_group/~/block_1/~/conv_1" in params


@pytest.mark.parametrize("use_bn", [True, False])
def test_mobilenet_v1_matches_haiku(use_bn):
    x = jax.random.normal(jax.random.PRNGKey(4), (2, 32, 32, 3))

    def make(hk):
        return hk.nets.MobileNetV1(
            strides=(1, 2, 2), channels=(8, 16, 16), num_classes=7, use_bn=use_bn
        )

    results = run_both(make, x, {})
    check(results)
    params = results["pax"][0]
    assert "mobile_net_v1/conv2_d" in params
    assert "mobile_net_v1/mobile_net_v1_block_2/pointwise_conv" in params
    assert ("mobile_net_v1/batch_norm" in params) == use_bn
    assert params["mobile_net_v1/logits"]["w"].shape == (16, 7)


def test_errors_match_haiku():
    for hk in LIBS.values():
        with pytest.raises(ValueError, match="must be of length 4 not 3"):
            hk.transform(lambda hk=hk: hk.nets.ResNet((1, 1, 1), 2)).init(None)
        with pytest.raises(ValueError, match="must have the same length"):
            hk.transform(lambda hk=hk: hk.nets.MobileNetV1((1,), (8, 8))).init(None)

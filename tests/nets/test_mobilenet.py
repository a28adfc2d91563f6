"""nets.MobileNetV1: parameter counts (formula and dm-haiku), Haiku's
structure and numerics, a block against a hand-written lax computation,
training/eval modes, shapes, errors."""

import re

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nets._mobilenet import MobileNetV1, MobileNetV1Block

HIGHEST = jax.lax.Precision.HIGHEST
ATOL = 2e-4
STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)  # Haiku's defaults, written out
CHANNELS = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
TINY = dict(strides=(1, 1), channels=(32, 32), num_classes=5)  # as the registry


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


def normal(rng, shape, scale=1.0, mean=0.0):
    """Test data from numpy (jax.random would compile a kernel per shape)."""
    return jnp.asarray(mean + scale * rng.standard_normal(shape), jnp.float32)


def param_shapes(make):
    """{keystr path: shape} of the trainable parameters, without allocating."""
    params = jax.eval_shape(lambda k: make(k).parameters(), jax.random.PRNGKey(0))
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(p): tuple(x.shape) for p, x in flat}


def random_module(make, rng):
    """``make(rng_key)``'s structure with random trainable leaves and zero
    state (Haiku's initial state), built without running the initializers."""
    key = jax.random.PRNGKey(0)
    shapes = jax.eval_shape(make, key)
    trainable = set(param_shapes(make))

    def fill(path, s):
        if jax.tree_util.keystr(path) in trainable:
            return normal(rng, s.shape, 0.5)
        return jnp.zeros(s.shape, s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def mobilenet_formula(cin, channels, classes, use_bn):
    """Trainable parameters of Haiku's MobileNetV1, counted by hand: each
    convolution has a batch norm (scale and offset) or else a bias."""
    per_channel = 2 if use_bn else 1
    n = 3 * 3 * cin * 32 + per_channel * 32
    c = 32
    for out in channels:
        n += 3 * 3 * c + per_channel * c  # depthwise
        n += c * out + per_channel * out  # pointwise
        c = out
    return n + c * classes + classes


def haiku_shapes(in_shape, **kwargs):
    f = hk.transform_with_state(
        lambda x: hk.nets.MobileNetV1(**kwargs)(x, is_training=True)
    )
    x = jax.ShapeDtypeStruct(in_shape, jnp.float32)
    return jax.eval_shape(f.init, jax.random.PRNGKey(0), x)


_NAMES = {
    "initial_conv": "conv2_d",
    "initial_batchnorm": "batch_norm",
    "depthwise_batchnorm": "batch_norm",
    "pointwise_batchnorm": "batch_norm_1",
}


def haiku_name(path):
    """``.blocks[1].pointwise_batchnorm.scale`` ->
    (``mobile_net_v1/mobile_net_v1_block_1/batch_norm_1``, ``scale``)."""
    s = path.lstrip(".")
    prefix = "mobile_net_v1"
    m = re.fullmatch(r"blocks\[(\d+)\]\.(.*)", s)
    if m:
        i = int(m[1])
        prefix += "/mobile_net_v1_block" + (f"_{i}" if i else "")
        s = m[2]
    *modules, leaf = s.split(".")
    module = _NAMES.get(modules[0], modules[0])
    if len(modules) == 2:  # batch-norm state: .../batch_norm/~/mean_ema
        module += f"/~/{modules[1]}"
        leaf = {"averages": "average"}.get(leaf, leaf)
    leaf = {"weight": "w", "bias": "b"}.get(leaf, leaf)
    return f"{prefix}/{module}", leaf


def to_haiku(tree, like):
    out = {}
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        module, leaf = haiku_name(jax.tree_util.keystr(path))
        if module in like and leaf in like[module]:
            out.setdefault(module, {})[leaf] = jnp.reshape(x, like[module][leaf].shape)
    return out


def flat_haiku(tree):
    return {(m, k): tuple(v.shape) for m, d in tree.items() for k, v in d.items()}


train_step = jax.jit(pax.purecall)
eval_call = jax.jit(lambda m, x: m(x))


@pytest.fixture(scope="module")
def tiny():
    """The registry's tiny network, random weights (built without compiling)."""
    make = lambda k: MobileNetV1(3, rng_key=k, **TINY)  # noqa: E731
    return random_module(make, np.random.default_rng(0))


# -- parameter counts and structure --------------------------------------------


@pytest.mark.parametrize("use_bn", [True, False], ids=["bn", "bias"])
def test_parameter_count_matches_formula_and_haiku(use_bn):
    ours = param_shapes(lambda k: MobileNetV1(3, use_bn=use_bn, rng_key=k))
    n = sum(int(np.prod(s)) for s in ours.values())
    assert n == mobilenet_formula(3, CHANNELS, 1000, use_bn)
    params, _ = haiku_shapes((1, 224, 224, 3), use_bn=use_bn)
    assert n == sum(x.size for x in jax.tree_util.tree_leaves(params))
    if use_bn:
        assert n == 4_231_976  # the published MobileNet v1 (1.0, 224) count


@pytest.mark.parametrize("use_bn", [True, False], ids=["bn", "bias"])
def test_structure_maps_one_to_one_onto_haiku(use_bn):
    config = dict(strides=(1, 2, 2), channels=(16, 24, 8), num_classes=7)
    make = lambda k: MobileNetV1(2, use_bn=use_bn, rng_key=k, **config)  # noqa: E731
    ours = {haiku_name(p): s for p, s in param_shapes(make).items()}
    params, state = haiku_shapes((1, 32, 32, 2), use_bn=use_bn, **config)
    theirs = flat_haiku(params)
    assert set(ours) == set(theirs)
    for name, shape in theirs.items():
        # Haiku keeps batch-norm parameters as [1, 1, 1, C]
        assert ours[name] == (shape if name[1] in ("w", "b") else shape[-1:]), name
    module = jax.eval_shape(make, jax.random.PRNGKey(0))
    flat = jax.tree_util.tree_flatten_with_path(module)[0]
    ours_state = {
        haiku_name(jax.tree_util.keystr(p)): tuple(x.shape)
        for p, x in flat
        if haiku_name(jax.tree_util.keystr(p)) not in ours
    }
    assert set(ours_state) == set(flat_haiku(state))
    assert bool(ours_state) == use_bn


# -- a block against the hand-written reference --------------------------------


def ref_block(b, x, stride, use_bn, stats=None):
    """Depthwise 3x3 (zero padding 1), [batch norm], relu, pointwise 1x1,
    [batch norm], relu. Returns the output and the batch statistics used."""
    record = stats is None
    stats = [] if record else list(stats)

    def norm(y, bn):
        if record:
            mean = jnp.mean(y, (0, 1, 2), keepdims=True)
            var = jnp.mean(jnp.square(y - mean), (0, 1, 2), keepdims=True)
            stats.append((mean, var))
        else:
            mean, var = stats.pop(0)
        scale, offset = bn.scale.reshape(1, 1, 1, -1), bn.offset.reshape(1, 1, 1, -1)
        return (y - mean) / jnp.sqrt(var + 1e-5) * scale + offset

    c = x.shape[-1]
    dims = ("NHWC", "HWIO", "NHWC")
    y = jax.lax.conv_general_dilated(
        x, b.depthwise_conv.weight, (stride, stride), ((1, 1), (1, 1)),
        dimension_numbers=dims, feature_group_count=c, precision=HIGHEST,
    )  # fmt: skip
    bias = lambda conv: conv.bias.reshape(1, 1, 1, -1)  # noqa: E731
    y = norm(y, b.depthwise_batchnorm) if use_bn else y + bias(b.depthwise_conv)
    y = jax.lax.conv_general_dilated(
        jax.nn.relu(y), b.pointwise_conv.weight, (1, 1), "VALID",
        dimension_numbers=dims, precision=HIGHEST,
    )  # fmt: skip
    y = norm(y, b.pointwise_batchnorm) if use_bn else y + bias(b.pointwise_conv)
    return jax.nn.relu(y), stats


def test_block_with_batchnorm_matches_reference(rng):
    block = random_module(lambda k: MobileNetV1Block(4, 6, 2, rng_key=k), rng)
    assert block.depthwise_conv.weight.shape == (3, 3, 1, 4)
    assert block.pointwise_conv.weight.shape == (1, 1, 4, 6)
    assert block.depthwise_conv.bias is None and block.pointwise_conv.bias is None
    x = normal(rng, (3, 7, 7, 4), 2.0, 1.0)
    new, y = train_step(block, x)
    expected, stats = ref_block(block, x, 2, True)
    assert y.shape == (3, 4, 4, 6)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=ATOL)
    stored = [new.depthwise_batchnorm, new.pointwise_batchnorm]
    for bn, (mean, var) in zip(stored, stats):  # first update stores them exactly
        np.testing.assert_allclose(bn.mean_ema.averages, mean.ravel(), atol=1e-4)
        np.testing.assert_allclose(bn.var_ema.averages, var.ravel(), atol=1e-4)
    assert bn.decay_rate == 0.999  # Haiku's MobileNet batch norms
    x2 = normal(rng, (3, 7, 7, 4))
    expected2, _ = ref_block(block, x2, 2, True, stats)
    np.testing.assert_allclose(eval_call(new.eval(), x2), expected2, atol=ATOL)


def test_block_without_batchnorm_matches_reference_as_a_plain_call(rng):
    block = random_module(
        lambda k: MobileNetV1Block(4, 6, 1, use_bn=False, rng_key=k), rng
    )
    assert block.depthwise_batchnorm is None and block.pointwise_batchnorm is None
    x = normal(rng, (2, 5, 5, 4))
    assert block.training
    y = eval_call(block, x)  # training mode, but nothing to update
    expected, _ = ref_block(block, x, 1, False)
    assert y.shape == (2, 5, 5, 6)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=ATOL)


# -- the whole network against dm-haiku -----------------------------------------


@pytest.mark.parametrize("use_bn", [True, False], ids=["bn", "bias"])
def test_network_matches_haiku_in_training_and_eval(use_bn, rng):
    config = dict(strides=(1, 2, (2, 1)), channels=(8, 16, 16), num_classes=5)
    net = random_module(
        lambda k: MobileNetV1(3, use_bn=use_bn, rng_key=k, **config), rng
    )
    f = hk.transform_with_state(
        lambda x, t: hk.nets.MobileNetV1(use_bn=use_bn, **config)(x, is_training=t)
    )
    xs = normal(rng, (3, 4, 17, 17, 3))
    hk_params, hk_state = jax.eval_shape(
        lambda x: f.init(jax.random.PRNGKey(0), x, True), xs[0]
    )
    hk_state = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), hk_state)
    params = to_haiku(net, hk_params)
    assert flat_haiku(params) == flat_haiku(hk_params)  # every parameter copied
    apply = jax.jit(f.apply, static_argnums=4)

    for x in xs[:2]:  # two steps: the running averages depend on decay_rate
        net, y = train_step(net, x)
        y_hk, hk_state = apply(params, hk_state, None, x, True)
        np.testing.assert_allclose(y, y_hk, rtol=1e-4, atol=ATOL)
    state = to_haiku(net, hk_state)
    assert flat_haiku(state) == flat_haiku(hk_state)
    for module, d in hk_state.items():
        np.testing.assert_allclose(
            state[module]["average"], d["average"], rtol=1e-4, atol=1e-5
        )
    y = eval_call(net.eval(), xs[2])
    y_hk, _ = apply(params, hk_state, None, xs[2], False)
    np.testing.assert_allclose(y, y_hk, rtol=1e-4, atol=ATOL)


# -- defaults, modes, shapes ------------------------------------------------------


def test_haiku_defaults():
    shapes = param_shapes(lambda k: MobileNetV1(3, rng_key=k))
    assert shapes[".initial_conv.weight"] == (3, 3, 3, 32)
    assert ".initial_conv.bias" not in shapes
    assert len([p for p in shapes if p.endswith("depthwise_conv.weight")]) == 13
    assert shapes[".blocks[12].pointwise_conv.weight"] == (1, 1, 1024, 1024)
    assert shapes[".logits.weight"] == (1024, 1000)
    tiny = MobileNetV1(3, rng_key=jax.random.PRNGKey(0), **TINY)
    assert tiny.strides == (1, 1) and tiny.channels == (32, 32)
    # the logits layer keeps Haiku's default (random) initializer
    assert np.any(tiny.logits.weight) and not np.any(tiny.logits.bias)
    bns = [tiny.initial_batchnorm]
    bns += [
        m for b in tiny.blocks for m in (b.depthwise_batchnorm, b.pointwise_batchnorm)
    ]
    assert {(bn.decay_rate, bn.eps) for bn in bns} == {(0.999, 1e-5)}
    for bn in bns:
        np.testing.assert_array_equal(bn.scale, 1.0)
        np.testing.assert_array_equal(bn.offset, 0.0)


def test_training_call_updates_only_batchnorm_statistics(tiny, rng):
    x = normal(rng, (2, 9, 9, 3))
    with pytest.raises(pax.MutationError):
        tiny(x)  # training mode with batch norm: needs purecall
    new, y = train_step(tiny, x)
    assert y.shape == (2, 5)

    def leaves(m):
        flat = jax.tree_util.tree_flatten_with_path(m)[0]
        return {jax.tree_util.keystr(p): v for p, v in flat}

    before, after = leaves(tiny), leaves(new)
    trainable = set(leaves(tiny.parameters()))
    for path in trainable:
        np.testing.assert_array_equal(before[path], after[path], err_msg=path)
    state = before.keys() - trainable
    assert len(state) == 5 * 2 * 3  # 5 batch norms x 2 averages x 3 leaves
    for path in state:
        assert re.search(r"batchnorm\.(mean|var)_ema\.(averages|hidden|counter)$", path)
        assert np.any(before[path] != after[path]), path

    net = new.eval()  # eval: plain call, nothing changes
    y1 = eval_call(net, x)
    same, y2 = train_step(net, x)
    np.testing.assert_array_equal(y1, y2)
    for a, b in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(same)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "strides, in_shape, spatial",
    [
        ((1, 1), (2, 9, 9, 3), (4, 4)),  # 9 -> (9 - 3) // 2 + 1 = 4
        ((2, 2), (1, 32, 32, 3), (4, 4)),  # 15 -> 8 -> 4
        (((2, 1), 1), (3, 3, 20, 3), (1, 9)),
    ],
)
def test_output_shape(strides, in_shape, spatial, key):
    config = dict(strides=strides, channels=(8, 16), num_classes=4)
    net = jax.eval_shape(lambda k: MobileNetV1(3, rng_key=k, **config), key)
    out = jax.eval_shape(lambda m, x: m.eval()(x), net, jnp.zeros(in_shape))
    assert out.shape == (in_shape[0], 4) and out.dtype == jnp.float32

    def features(m, x):
        m = m.eval()
        return m.blocks[1](m.blocks[0](m.initial_conv(x)))

    feats = jax.eval_shape(features, net, jnp.zeros(in_shape))
    assert feats.shape == (in_shape[0], *spatial, 16)


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(strides=(1, 2), channels=(8,)), ValueError,
         r"MobileNetV1: `strides` and `channels` must have the same length, got 2 "
         r"and 1"),
        (dict(strides=(1, 0), channels=(8, 8)), ValueError,
         r"MobileNetV1: `strides` must be a positive int, got 0"),
        (dict(strides=(1, (1, 2, 3)), channels=(8, 8)), ValueError,
         r"`strides` must be an int or a sequence of length 2"),
        (dict(strides=(1,), channels=(-8,)), ValueError,
         r"`channels` must be a positive int, got -8"),
        (dict(strides=1, channels=(8,)), TypeError, r"`strides` must be a sequence"),
        (dict(input_channels=0), ValueError, r"`input_channels` must be a positive"),
        (dict(num_classes=0), ValueError, r"`num_classes` must be a positive int"),
    ],
)  # fmt: skip
def test_bad_arguments(kwargs, error, match):
    args = {"input_channels": 3, **kwargs}
    with pytest.raises(error, match=match):
        MobileNetV1(**args, rng_key=jax.random.PRNGKey(0))


@pytest.mark.parametrize(
    "shape, match",
    [
        (
            (9, 9, 3),
            r"expected NHWC input of shape \[N, H, W, 3\], got shape \(9, 9, 3\)",
        ),
        ((2, 9, 9, 1), r"\[N, H, W, 3\], got shape \(2, 9, 9, 1\)"),
        ((2, 2, 9, 3), r"needs height and width >= 3, got shape \(2, 2, 9, 3\)"),
    ],
)
def test_bad_input(tiny, shape, match):
    with pytest.raises(
        ValueError, match=r"MobileNetV1\(input_channels=3, .*\): .*" + match
    ):
        tiny.eval()(jnp.zeros(shape))


# -- full size (slow) -----------------------------------------------------------


@pytest.mark.slow
def test_full_size_network_matches_haiku_on_imagenet_shapes(rng):
    net = random_module(lambda k: MobileNetV1(3, rng_key=k), rng)
    f = hk.transform_with_state(lambda x, t: hk.nets.MobileNetV1()(x, is_training=t))
    x = normal(rng, (2, 224, 224, 3))
    hk_params, hk_state = jax.eval_shape(
        lambda x: f.init(jax.random.PRNGKey(0), x, True), x
    )
    hk_state = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), hk_state)
    params = to_haiku(net, hk_params)
    apply = jax.jit(f.apply, static_argnums=4)
    net, y = train_step(net, x)
    y_hk, hk_state = apply(params, hk_state, None, x, True)
    assert y.shape == (2, 1000)
    np.testing.assert_allclose(y, y_hk, rtol=1e-3, atol=1e-3)
    y = eval_call(net.eval(), x)
    y_hk, _ = apply(params, hk_state, None, x, False)
    np.testing.assert_allclose(y, y_hk, rtol=1e-3, atol=1e-3)

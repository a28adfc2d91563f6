"""nets.ResNet: parameter counts (formula and dm-haiku), Haiku's structure
and numerics, blocks against a hand-written lax computation, training/eval
modes, shapes, errors."""

import re

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nets._resnet import (
    BlockGroup,
    BlockV1,
    BlockV2,
    ResNet,
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet101,
    ResNet152,
    ResNet200,
)

PRESETS = {
    18: ResNet18,
    34: ResNet34,
    50: ResNet50,
    101: ResNet101,
    152: ResNet152,
    200: ResNet200,
}
# Haiku's configurations, written out here (not read from the code under test)
ARCH = {
    18: ((2, 2, 2, 2), (64, 128, 256, 512), False, (False, True, True, True)),
    34: ((3, 4, 6, 3), (64, 128, 256, 512), False, (False, True, True, True)),
    50: ((3, 4, 6, 3), (256, 512, 1024, 2048), True, (True,) * 4),
    101: ((3, 4, 23, 3), (256, 512, 1024, 2048), True, (True,) * 4),
    152: ((3, 8, 36, 3), (256, 512, 1024, 2048), True, (True,) * 4),
    200: ((3, 24, 36, 3), (256, 512, 1024, 2048), True, (True,) * 4),
}
HIGHEST = jax.lax.Precision.HIGHEST
ATOL = 2e-4


def param_shapes(make):
    """{keystr path: shape} of the trainable parameters, without allocating."""
    params = jax.eval_shape(lambda k: make(k).parameters(), jax.random.PRNGKey(0))
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(p): tuple(x.shape) for p, x in flat}


def count(shapes):
    return sum(int(np.prod(s)) for s in shapes.values())


def haiku_init_shapes(build, in_shape):
    """(params, state) shapes of a Haiku network, under eval_shape."""
    f = hk.transform_with_state(lambda x: build()(x, is_training=True))
    x = jax.ShapeDtypeStruct(in_shape, jnp.float32)
    return jax.eval_shape(f.init, jax.random.PRNGKey(0), x)


def resnet_formula(cin, classes, blocks, channels, bottleneck, projection, v2):
    """Trainable parameters of Haiku's ResNet, counted by hand."""
    n = 7 * 7 * cin * 64 + (0 if v2 else 2 * 64)  # initial conv (+ bn)
    c = 64
    for num, ch, proj in zip(blocks, channels, projection):
        inner = ch // 4 if bottleneck else ch
        for j in range(num):
            if bottleneck:
                n += c * inner + 9 * inner * inner + inner * ch
                n += 2 * (c + inner + inner if v2 else inner + inner + ch)
            else:
                n += 9 * c * ch + 9 * ch * ch
                n += 2 * (c + ch if v2 else ch + ch)
            if j == 0 and proj:
                n += c * ch + (0 if v2 else 2 * ch)
            c = ch
    if v2:
        n += 2 * c  # final batch norm
    return n + c * classes + classes


# -- PAX attribute paths <-> Haiku names ------------------------------------


def haiku_name(path, prefix):
    """``.block_groups[1].blocks[0].proj_conv.weight`` ->
    (``prefix/~/block_group_1/~/block_0/~/shortcut_conv``, ``w``)."""
    s = re.sub(r"block_groups\[(\d+)\]", r"block_group_\1", path.lstrip("."))
    s = re.sub(r"blocks\[(\d+)\]", r"block_\1", s)
    s = s.replace("proj_conv", "shortcut_conv").replace("proj_batch", "shortcut_batch")
    *modules, leaf = s.split(".")
    if leaf in ("averages", "hidden", "counter"):  # batch-norm state
        *modules, ema = modules
        modules[-1] += f"/~/{ema}"
        leaf = {"averages": "average", "hidden": "hidden", "counter": "counter"}[leaf]
    leaf = {"weight": "w", "bias": "b"}.get(leaf, leaf)
    return "/~/".join([prefix, *modules]), leaf


def to_haiku(tree, prefix, like):
    """A Haiku params/state dict from a PAX module's leaves (shaped as ``like``)."""
    out = {}
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
        module, leaf = haiku_name(jax.tree_util.keystr(path), prefix)
        if module in like and leaf in like[module]:
            out.setdefault(module, {})[leaf] = jnp.reshape(x, like[module][leaf].shape)
    return out


def flat_haiku(tree):
    return {(m, k): tuple(v.shape) for m, d in tree.items() for k, v in d.items()}


# -- a hand-written reference -------------------------------------------------


def conv(x, w, stride):
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    return jax.lax.conv_general_dilated(
        x, w, stride, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=HIGHEST,
    )  # fmt: skip


class RefBatchNorm:
    """Batch norm by hand: records batch statistics in training, reuses them
    (by call order) in evaluation."""

    def __init__(self, stats=None):
        self.train = stats is None
        self.stats = [] if stats is None else list(stats)
        self.i = 0

    def __call__(self, x, bn):
        if self.train:
            mean = jnp.mean(x, (0, 1, 2), keepdims=True)
            var = jnp.mean(jnp.square(x - mean), (0, 1, 2), keepdims=True)
            self.stats.append((mean, var))
        else:
            mean, var = self.stats[self.i]
            self.i += 1
        scale = bn.scale.reshape(1, 1, 1, -1)
        offset = bn.offset.reshape(1, 1, 1, -1)
        return (x - mean) / jnp.sqrt(var + 1e-5) * scale + offset


def ref_block_v1(b, x, stride, bottleneck, norm):
    relu = jax.nn.relu
    shortcut = x
    if b.proj_conv is not None:
        shortcut = norm(conv(x, b.proj_conv.weight, stride), b.proj_batchnorm)
    if bottleneck:
        y = relu(norm(conv(x, b.conv_0.weight, 1), b.batchnorm_0))
        y = relu(norm(conv(y, b.conv_1.weight, stride), b.batchnorm_1))
        y = norm(conv(y, b.conv_2.weight, 1), b.batchnorm_2)
    else:
        y = relu(norm(conv(x, b.conv_0.weight, stride), b.batchnorm_0))
        y = norm(conv(y, b.conv_1.weight, 1), b.batchnorm_1)
    return relu(y + shortcut)


def ref_block_v2(b, x, stride, bottleneck, norm):
    relu = jax.nn.relu
    y = relu(norm(x, b.batchnorm_0))
    shortcut = x if b.proj_conv is None else conv(y, b.proj_conv.weight, stride)
    if bottleneck:
        y = conv(y, b.conv_0.weight, 1)
        y = conv(relu(norm(y, b.batchnorm_1)), b.conv_1.weight, stride)
        y = conv(relu(norm(y, b.batchnorm_2)), b.conv_2.weight, 1)
    else:
        y = conv(y, b.conv_0.weight, stride)
        y = conv(relu(norm(y, b.batchnorm_1)), b.conv_1.weight, 1)
    return y + shortcut


def normal(rng, shape, scale=1.0, mean=0.0):
    """Test data from numpy (jax.random would compile a kernel per shape)."""
    return jnp.asarray(mean + scale * rng.standard_normal(shape), jnp.float32)


def random_module(make, rng):
    """``make(rng_key)``'s structure with random trainable leaves and zero
    state (Haiku's initial state: empty moving averages), built without running
    the initializers (each would compile a kernel per shape)."""
    key = jax.random.PRNGKey(0)
    shapes = jax.eval_shape(make, key)
    trainable = {
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_flatten_with_path(
            jax.eval_shape(lambda k: make(k).parameters(), key)
        )[0]
    }

    def fill(path, s):
        if jax.tree_util.keystr(path) in trainable:
            return normal(rng, s.shape, 0.5)
        return jnp.zeros(s.shape, s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def batchnorm_stats(module):
    """(mean, var) running averages of every BatchNorm, in attribute order."""
    out = []

    def visit(m):
        if isinstance(m, pax.nn.BatchNorm):
            out.append((m.mean_ema.averages, m.var_ema.averages))
        for sub in m.submodules():
            visit(sub)

    visit(module)
    return out


@pytest.fixture
def rng(seed):
    return np.random.default_rng(seed)


train_step = jax.jit(pax.purecall)
eval_call = jax.jit(lambda m, x: m(x))

TINY = dict(
    blocks_per_group=(1, 1, 1, 1),
    channels_per_group=(8, 8, 8, 8),
    use_projection=(True, False, False, False),
    initial_conv_config={"out_features": 8, "kernel_shape": 3},
    strides=(1, 1, 1, 1),
)


@pytest.fixture(scope="module")
def tiny():
    """The registry's tiny network, random weights (built without compiling)."""
    make = lambda k: ResNet(3, num_classes=5, rng_key=k, **TINY)  # noqa: E731
    return random_module(make, np.random.default_rng(0))


# -- parameter counts ---------------------------------------------------------


@pytest.mark.parametrize(
    "depth, v2",
    [(18, False), (34, False), (50, False), (101, False), (152, False),
     (200, False), (18, True), (50, True)],
)  # fmt: skip
def test_parameter_count_matches_formula_and_haiku(depth, v2):
    ours = count(
        param_shapes(lambda k: PRESETS[depth](3, 1000, resnet_v2=v2, rng_key=k))
    )
    assert ours == resnet_formula(3, 1000, *ARCH[depth], v2)
    haiku_cls = getattr(hk.nets, f"ResNet{depth}")
    params, _ = haiku_init_shapes(lambda: haiku_cls(1000, resnet_v2=v2), (1, 32, 32, 3))
    assert ours == sum(x.size for x in jax.tree_util.tree_leaves(params))


def test_known_parameter_counts():
    assert count(param_shapes(lambda k: ResNet18(3, 1000, rng_key=k))) == 11_689_512
    assert count(param_shapes(lambda k: ResNet50(3, 1000, rng_key=k))) == 25_557_032
    # the input size and class count enter where they should
    assert count(param_shapes(lambda k: ResNet18(1, 10, rng_key=k))) == resnet_formula(
        1, 10, *ARCH[18], False
    )


@pytest.mark.parametrize("depth, v2", [(18, False), (50, True)])
def test_structure_maps_one_to_one_onto_haiku(depth, v2):
    ours = param_shapes(lambda k: PRESETS[depth](2, 7, resnet_v2=v2, rng_key=k))
    prefix = f"res_net{depth}"
    mapped = {haiku_name(p, prefix): shape for p, shape in ours.items()}
    haiku_cls = getattr(hk.nets, f"ResNet{depth}")
    params, state = haiku_init_shapes(
        lambda: haiku_cls(7, resnet_v2=v2), (1, 32, 32, 2)
    )
    theirs = flat_haiku(params)
    assert set(mapped) == set(theirs)
    for name, shape in theirs.items():
        if name[1] == "w":  # kernels and the logits weight: same layout
            assert mapped[name] == shape, name
        else:  # Haiku keeps batch-norm parameters as [1, 1, 1, C]
            assert mapped[name] == shape[-1:], name
    # the running statistics too: every batch norm's two moving averages
    make = lambda k: PRESETS[depth](2, 7, resnet_v2=v2, rng_key=k)  # noqa: E731
    module = jax.eval_shape(make, jax.random.PRNGKey(0))
    flat = jax.tree_util.tree_flatten_with_path(module)[0]
    ours_state = {
        haiku_name(jax.tree_util.keystr(p), prefix): tuple(x.shape)
        for p, x in flat
        if jax.tree_util.keystr(p) not in ours
    }
    theirs_state = flat_haiku(state)
    assert set(ours_state) == set(theirs_state)
    for name, shape in theirs_state.items():
        assert ours_state[name] == shape[-1:], name


# -- blocks against the hand-written reference --------------------------------


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
@pytest.mark.parametrize("bottleneck", [True, False], ids=["bottleneck", "basic"])
def test_block_matches_hand_written_reference(v2, bottleneck, rng):
    cls = BlockV2 if v2 else BlockV1
    block = random_module(
        lambda k: cls(4, 8, 2, use_projection=True, bottleneck=bottleneck, rng_key=k),
        rng,
    )
    ref = ref_block_v2 if v2 else ref_block_v1
    x = normal(rng, (3, 6, 6, 4), 2.0, 1.0)
    x2 = normal(rng, (3, 6, 6, 4))

    # training: batch statistics, and the first update stores them exactly
    new, y = train_step(block, x)
    norm = RefBatchNorm()
    expected = ref(block, x, 2, bottleneck, norm)
    assert y.shape == (3, 3, 3, 8)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=ATOL)
    stored = batchnorm_stats(new)
    assert len(stored) == len(norm.stats) == (3 if bottleneck else 2) + (not v2)
    # BatchNorm order in the module: projection first (v1), then batchnorm_k;
    # the reference records in evaluation order, which is the same
    for (mean, var), (ref_mean, ref_var) in zip(stored, norm.stats):
        np.testing.assert_allclose(mean, ref_mean.ravel(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(var, ref_var.ravel(), rtol=1e-4, atol=1e-4)

    # evaluation: the stored statistics, on another input, as a plain call
    y2 = eval_call(new.eval(), x2)
    expected2 = ref(block, x2, 2, bottleneck, RefBatchNorm(norm.stats))
    np.testing.assert_allclose(y2, expected2, rtol=1e-4, atol=ATOL)


def test_block_without_projection_is_an_identity_shortcut(rng):
    block = random_module(
        lambda k: BlockV1(8, 8, 1, use_projection=False, bottleneck=False, rng_key=k),
        rng,
    )
    assert block.proj_conv is None and block.proj_batchnorm is None
    x = normal(rng, (2, 4, 4, 8))
    _, y = train_step(block, x)
    expected = ref_block_v1(block, x, 1, False, RefBatchNorm())
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=ATOL)


# -- the whole network against dm-haiku ---------------------------------------

PARITY = {
    "v1-bottleneck": dict(
        blocks_per_group=(1, 1, 1, 1),
        channels_per_group=(8, 16, 16, 32),
        strides=(1, 2, (1, 2), 1),
    ),  # default initial convolution: 7x7, stride 2, 64 channels
    "v2-basic": dict(
        blocks_per_group=(1, 2, 1, 1),
        channels_per_group=(8, 8, 16, 16),
        use_projection=(True, False, True, False),
        strides=(1, 1, 2, 1),
        resnet_v2=True,
        bottleneck=False,
        initial_conv_config={"out_features": 8, "kernel_shape": 3, "stride": 1},
    ),
}


@pytest.mark.parametrize("name", list(PARITY))
def test_network_matches_haiku_in_training_and_eval(name, key, rng):
    config = PARITY[name]
    hk_config = dict(config)
    if "initial_conv_config" in hk_config:
        conv_config = dict(hk_config["initial_conv_config"])
        conv_config["output_channels"] = conv_config.pop("out_features")
        hk_config["initial_conv_config"] = conv_config
    net = random_module(lambda k: ResNet(3, num_classes=5, rng_key=k, **config), rng)
    f = hk.transform_with_state(
        lambda x, t: hk.nets.ResNet(num_classes=5, **hk_config)(x, is_training=t)
    )
    xs = normal(rng, (3, 4, 32, 32, 3))
    hk_params, hk_state = jax.eval_shape(lambda x: f.init(key, x, True), xs[0])
    hk_state = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), hk_state)
    params = to_haiku(net, "res_net", hk_params)
    assert flat_haiku(params) == flat_haiku(hk_params)  # every parameter copied
    apply = jax.jit(f.apply, static_argnums=4)

    for x in xs[:2]:  # two steps: the running averages depend on decay_rate
        net, y = train_step(net, x)
        y_hk, hk_state = apply(params, hk_state, None, x, True)
        np.testing.assert_allclose(y, y_hk, rtol=1e-4, atol=ATOL)
    state = to_haiku(net, "res_net", hk_state)
    for module, d in hk_state.items():
        np.testing.assert_allclose(
            state[module]["average"], d["average"], rtol=1e-4, atol=1e-5
        )
        assert int(state[module]["counter"]) == int(d["counter"]) == 2

    y = eval_call(net.eval(), xs[2])
    y_hk, _ = apply(params, hk_state, None, xs[2], False)
    np.testing.assert_allclose(y, y_hk, rtol=1e-4, atol=ATOL)


# -- defaults -----------------------------------------------------------------


def test_haiku_defaults():
    shapes = param_shapes(lambda k: ResNet18(3, 1000, rng_key=k))
    assert shapes[".initial_conv.weight"] == (7, 7, 3, 64)
    assert ".initial_conv.bias" not in shapes  # no bias
    assert shapes[".block_groups[0].blocks[0].conv_0.weight"] == (3, 3, 64, 64)
    shapes = param_shapes(lambda k: ResNet50(3, 1000, rng_key=k))
    block = ".block_groups[1].blocks[0]"
    assert shapes[f"{block}.conv_0.weight"] == (1, 1, 256, 128)
    assert shapes[f"{block}.conv_1.weight"] == (3, 3, 128, 128)
    assert shapes[f"{block}.conv_2.weight"] == (1, 1, 128, 512)
    assert shapes[f"{block}.proj_conv.weight"] == (1, 1, 256, 512)

    # values: zero logits weight, zero scale on the last batch norm of v1
    # bottleneck blocks only, decay 0.9 and eps 1e-5 everywhere
    tiny = ResNet(3, num_classes=5, rng_key=jax.random.PRNGKey(0), **TINY)
    assert not np.any(tiny.logits.weight) and not np.any(tiny.logits.bias)
    for group in tiny.block_groups:
        for b in group.blocks:
            assert not np.any(b.batchnorm_2.scale)
            np.testing.assert_array_equal(b.batchnorm_0.scale, 1.0)
            np.testing.assert_array_equal(b.batchnorm_1.scale, 1.0)
    bns = [m for m in _all_modules(tiny) if isinstance(m, pax.nn.BatchNorm)]
    assert len(bns) == 1 + 4 * 3 + 1
    assert {(bn.decay_rate, bn.eps) for bn in bns} == {(0.9, 1e-5)}
    assert tiny.initial_batchnorm is not None and tiny.final_batchnorm is None
    # basic v1 blocks and v2 blocks keep unit scales (shapes shared with `tiny`,
    # so no new initializer kernels)
    bns = [*_all_modules(BlockV1(2, 2, 1, False, bottleneck=False))]
    bns += [*_all_modules(BlockV2(8, 8, 1, True, bottleneck=True))]
    bns = [m for m in bns if isinstance(m, pax.nn.BatchNorm)]
    assert len(bns) == 2 + 3
    for bn in bns:
        np.testing.assert_array_equal(bn.scale, 1.0)
    v2 = jax.eval_shape(
        lambda k: ResNet(3, (1, 1, 1, 1), 2, resnet_v2=True, rng_key=k, **_tiny_rest()),
        jax.random.PRNGKey(0),
    )
    assert v2.initial_batchnorm is None and v2.final_batchnorm is not None
    assert v2.block_groups[0].blocks[0].proj_batchnorm is None
    basic = jax.eval_shape(
        lambda k: ResNet(
            3, (1, 1, 1, 1), 2, bottleneck=False, rng_key=k, **_tiny_rest()
        ),
        jax.random.PRNGKey(0),
    )
    assert basic.block_groups[0].blocks[0].conv_2 is None


def _tiny_rest():
    return {k: v for k, v in TINY.items() if k != "blocks_per_group"}


def _all_modules(m):
    yield m
    for sub in m.submodules():
        yield from _all_modules(sub)


def test_configs_are_passed_on(key):
    net = ResNet(
        3,
        (1, 1, 1, 1),
        4,
        bn_config={"decay_rate": 0.5, "eps": 1e-3, "create_offset": False},
        logits_config={"with_bias": False, "w_init": pax.initializers.ones},
        initial_conv_config={"out_features": 8, "kernel_shape": 3, "with_bias": True},
        **{k: v for k, v in _tiny_rest().items() if k != "initial_conv_config"},
        rng_key=key,
    )
    bns = [m for m in _all_modules(net) if isinstance(m, pax.nn.BatchNorm)]
    assert {(bn.decay_rate, bn.eps, bn.offset) for bn in bns} == {(0.5, 1e-3, None)}
    assert net.logits.bias is None
    np.testing.assert_array_equal(net.logits.weight, 1.0)
    assert net.initial_conv.weight.shape == (3, 3, 3, 8)
    assert net.initial_conv.bias is not None
    assert isinstance(net.block_groups[0], BlockGroup)
    assert ResNet.BlockV1 is BlockV1 and ResNet.BlockV2 is BlockV2


# -- training and evaluation modes -------------------------------------------


def test_training_call_updates_only_batchnorm_statistics(tiny, rng):
    x = normal(rng, (2, 16, 16, 3))
    new, y = train_step(tiny, x)
    assert y.shape == (2, 5)

    def leaves(m):
        flat = jax.tree_util.tree_flatten_with_path(m)[0]
        return {jax.tree_util.keystr(p): v for p, v in flat}

    before, after = leaves(tiny), leaves(new)
    trainable = set(leaves(tiny.parameters()))
    assert before.keys() == after.keys() and trainable < before.keys()
    for path in trainable:
        np.testing.assert_array_equal(before[path], after[path], err_msg=path)
    state = before.keys() - trainable
    assert state and all(
        re.search(r"batchnorm(_\d)?\.(mean|var)_ema\.(averages|hidden|counter)$", p)
        for p in state
    )
    for path in state:
        if path.endswith("counter"):
            assert int(after[path]) == int(before[path]) + 1
        else:
            assert np.any(before[path] != after[path]), path


def test_eval_call_is_plain_and_changes_nothing(tiny, rng):
    x = normal(rng, (2, 16, 16, 3))
    with pytest.raises(pax.MutationError):
        tiny(x)  # training mode updates statistics: needs purecall
    net = tiny.eval()
    assert not net.training and not net.block_groups[0].blocks[0].batchnorm_0.training
    y = eval_call(net, x)
    same, y2 = train_step(net, x)
    np.testing.assert_array_equal(y, y2)
    for a, b in zip(jax.tree_util.tree_leaves(net), jax.tree_util.tree_leaves(same)):
        np.testing.assert_array_equal(a, b)
    # test_local_stats: eval mode with batch statistics, still a plain call
    trained, y_train = train_step(tiny, x)
    local = jax.jit(lambda m, x: m(x, test_local_stats=True))(trained.eval(), x)
    np.testing.assert_allclose(local, y_train, rtol=1e-5, atol=1e-5)
    assert trained.train().training


# -- shapes -------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, in_shape",
    [
        (dict(), (2, 16, 16, 3)),
        (dict(strides=(2, 1, 1, 1)), (1, 16, 8, 3)),
        (dict(resnet_v2=True, strides=((1, 2), 1, 1, 1)), (2, 8, 16, 3)),
    ],
)
def test_output_shape(config, in_shape, key):
    config = {**TINY, **config}
    net = jax.eval_shape(lambda k: ResNet(3, num_classes=6, rng_key=k, **config), key)
    out = jax.eval_shape(lambda m, x: m.eval()(x), net, jnp.zeros(in_shape))
    assert out.shape == (in_shape[0], 6) and out.dtype == jnp.float32


def test_group_and_block_shapes(key):
    group = jax.eval_shape(
        lambda k: BlockGroup(4, 16, 3, (2, 1), None, False, True, True, rng_key=k), key
    )
    assert len(group.blocks) == 3
    assert group.blocks[0].proj_conv is not None
    assert all(b.proj_conv is None for b in group.blocks[1:])
    out = jax.eval_shape(lambda g, x: g.eval()(x), group, jnp.zeros((2, 5, 5, 4)))
    assert out.shape == (2, 3, 5, 16)


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(blocks_per_group=(1, 1, 1)), ValueError,
         r"ResNet: `blocks_per_group` must be a sequence of length 4"),
        (dict(channels_per_group=(8,) * 5), ValueError,
         r"ResNet: `channels_per_group` must be a sequence of length 4"),
        (dict(use_projection=(True,) * 3), ValueError,
         r"ResNet: `use_projection` must be a sequence of length 4"),
        (dict(strides=(1, 2)), ValueError,
         r"ResNet: `strides` must be a sequence of length 4"),
        (dict(strides=3), TypeError, r"`strides` must be a sequence of length 4"),
        (dict(blocks_per_group=(1, 0, 1, 1)), ValueError,
         r"`blocks_per_group` must be a positive int, got 0"),
        (dict(channels_per_group=(8, -8, 8, 8)), ValueError,
         r"`channels_per_group` must be a positive int, got -8"),
        (dict(strides=(1, 0, 1, 1)), ValueError, r"`strides` must be a positive int"),
        (dict(input_channels=0), ValueError, r"`input_channels` must be a positive"),
        (dict(num_classes=-1), ValueError, r"`num_classes` must be a positive int"),
        (dict(channels_per_group=(8, 8, 8, 2)), ValueError,
         r"bottleneck blocks need every `channels_per_group` >= 4"),
        (dict(channels_per_group=(8, 16, 16, 16)), ValueError,
         r"group 1 gets 8 channels but outputs channels_per_group\[1\]=16; its "
         r"first block needs a projection"),
        (dict(use_projection=(False,) * 4, initial_conv_config={"out_features": 16}),
         ValueError, r"group 0 gets 16 channels .*use_projection\[0\]=True"),
        (dict(bn_config={"momentum": 0.9}), ValueError,
         r"unknown key 'momentum' in `bn_config`; allowed keys: create_scale"),
        (dict(bn_config=0.9), TypeError, r"`bn_config` must be a mapping"),
        (dict(initial_conv_config={"output_channels": 8}), ValueError,
         r"Haiku's `output_channels` is `out_features` here"),
        (dict(initial_conv_config={"in_features": 8}), ValueError,
         r"unknown key 'in_features' in `initial_conv_config`"),
        (dict(logits_config={"output_size": 8}), ValueError,
         r"unknown key 'output_size' in `logits_config`"),
        (dict(bn_config={"decay_rate": 2.0}), ValueError,
         r"BatchNorm: `decay_rate` must be a float in \[0, 1\]"),
    ],
)  # fmt: skip
def test_bad_arguments(kwargs, error, match):
    args = dict(input_channels=3, num_classes=4, **TINY)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ResNet(**args, rng_key=jax.random.PRNGKey(0))


def test_bad_block_arguments():
    with pytest.raises(
        ValueError,
        match=r"BlockV1: without a projection .* "
        r"`in_channels` \(=4\) must equal `channels` \(=8\)",
    ):
        BlockV1(4, 8, 1, use_projection=False)
    with pytest.raises(ValueError, match=r"BlockV2: a bottleneck block needs"):
        BlockV2(4, 2, 1, use_projection=True, bottleneck=True)
    with pytest.raises(ValueError, match=r"BlockV1: `stride` must be"):
        BlockV1(4, 8, (1, 2, 3), use_projection=True)


@pytest.mark.parametrize(
    "shape", [(16, 16, 3), (2, 16, 16, 4), (2, 3, 16, 16), (2, 1, 16, 16, 3)]
)
def test_bad_input(tiny, shape):
    match = (
        r"ResNet\(input_channels=3, .*\): expected NHWC input of shape "
        rf"\[N, H, W, 3\], got shape {re.escape(str(shape))}"
    )
    with pytest.raises(ValueError, match=match):
        tiny.eval()(jnp.zeros(shape))


def test_strided_block_without_projection_fails_at_call(key):
    block = jax.eval_shape(
        lambda k: BlockV1(8, 8, 2, use_projection=False, bottleneck=False, rng_key=k),
        key,
    )
    with pytest.raises(
        ValueError,
        match=r"BlockV1\(.*\): the residual branch gives "
        r"shape \(1, 2, 2, 8\) but the shortcut \(1, 4, 4, 8\)",
    ):
        jax.eval_shape(lambda b, x: b.eval()(x), block, jnp.zeros((1, 4, 4, 8)))


# -- full size (slow) ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("depth", [18, 50])
def test_full_size_network_matches_haiku_on_imagenet_shapes(depth, key, rng):
    net = random_module(lambda k: PRESETS[depth](3, 1000, rng_key=k), rng)
    f = hk.transform_with_state(
        lambda x, t: getattr(hk.nets, f"ResNet{depth}")(1000)(x, is_training=t)
    )
    x = normal(rng, (2, 224, 224, 3))
    hk_params, hk_state = jax.eval_shape(lambda x: f.init(key, x, True), x)
    hk_state = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), hk_state)
    params = to_haiku(net, f"res_net{depth}", hk_params)
    apply = jax.jit(f.apply, static_argnums=4)
    net, y = train_step(net, x)
    y_hk, hk_state = apply(params, hk_state, None, x, True)
    assert y.shape == (2, 1000)
    np.testing.assert_allclose(y, y_hk, rtol=1e-3, atol=1e-3)
    y = eval_call(net.eval(), x)
    y_hk, _ = apply(params, hk_state, None, x, False)
    np.testing.assert_allclose(y, y_hk, rtol=1e-3, atol=1e-3)


def test_a_strided_group_without_projection_fails_at_construction_naming_resnet():
    with pytest.raises(
        ValueError, match=r"ResNet: group 1 has stride 2.*use_projection\[1\]"
    ):
        pax.nets.ResNet(
            3,
            blocks_per_group=(1, 1, 1, 1),
            num_classes=2,
            bottleneck=False,
            channels_per_group=(8, 8, 8, 8),
            use_projection=(True, False, True, True),
            initial_conv_config={"out_features": 8, "kernel_shape": 3},
        )
    # stride 1 without projection stays fine
    net = pax.nets.ResNet(
        3,
        blocks_per_group=(1, 1, 1, 1),
        num_classes=2,
        bottleneck=False,
        channels_per_group=(8, 8, 8, 8),
        use_projection=(False, False, True, True),
        initial_conv_config={"out_features": 8, "kernel_shape": 3},
        strides=(1, (1, 1), 2, 2),
    )
    assert net.eval()(jnp.ones((1, 8, 8, 3))).shape == (1, 2)

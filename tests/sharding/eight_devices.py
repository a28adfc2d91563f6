"""pax.sharding checks that need 8 host devices.

Not a pytest module: ``test_sharding.py`` runs it once in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``, as

    python tests/sharding/eight_devices.py [CHECK ...]

Each check prints one line ``CHECK <name> ok`` or ``CHECK <name> FAIL <error>``;
with no names, every check in ``CHECKS`` runs.
"""

from __future__ import annotations

import functools
import sys
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import pax

KEY = jax.random.PRNGKey(0)


def auto_mesh(shape, names):
    mesh = pax.sharding.make_mesh(shape, names)
    assert mesh.axis_types == (AxisType.Auto,) * len(shape)
    return mesh


def tiny_lm(dropout_rate=0.0):
    return pax.nets.TransformerLM(
        32, 16, 2, 2, max_length=8, dropout_rate=dropout_rate, rng_key=KEY
    )


def tiny_mlp():
    return pax.nets.MLP(16, [32, 32, 4], rng_key=KEY)


def tiny_resnet():
    return pax.nets.ResNet(
        3,
        blocks_per_group=(1, 1, 1, 1),
        num_classes=4,
        bottleneck=False,
        channels_per_group=(4, 8, 8, 8),
        use_projection=(False, True, True, True),
        strides=(1, 2, 1, 2),
        initial_conv_config={"out_features": 4, "kernel_shape": 3, "stride": 1},
        rng_key=KEY,
    )


def shard_sizes(x) -> set[int]:
    return {s.data.size for s in x.addressable_shards}


def devices_of(x) -> set:
    return {s.device for s in x.addressable_shards}


def assert_tree_equal(a, b, rtol=0.0, atol=0.0):
    la, ta = jax.tree_util.tree_flatten_with_path(a)
    lb, tb = jax.tree_util.tree_flatten_with_path(b)
    assert ta == tb, (ta, tb)
    for (path, x), (_, y) in zip(la, lb):
        x, y = (
            np.asarray(jax.random.key_data(x) if _typed(x) else x),
            np.asarray(jax.random.key_data(y) if _typed(y) else y),
        )
        np.testing.assert_allclose(
            x, y, rtol=rtol, atol=atol, err_msg=jax.tree_util.keystr(path)
        )


def _typed(x) -> bool:
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


# ---------------------------------------------------------------- born sharded


def check_init_fsdp_born_sharded():
    """FSDP over 8 devices: every shard of a parameter sharded 8 ways holds 1/8
    of it; values equal the eager construction with the same key."""
    mesh = auto_mesh((8,), ("data",))
    lm = pax.sharding.init(tiny_lm, mesh, pax.sharding.fsdp_rules(min_size=64))
    eager = tiny_lm()
    assert_tree_equal(lm, eager, rtol=1e-6)
    w = lm.transformer.blocks.layers.dense_1.weight  # [2, 16, 64]
    assert w.sharding.spec == P(None, None, "data"), w.sharding
    assert shard_sizes(w) == {w.size // 8} and len(devices_of(w)) == 8
    e = lm.embed.weight  # [32, 16]: the vocabulary is the largest dimension
    assert e.sharding.spec == P("data"), e.sharding
    assert shard_sizes(e) == {e.size // 8}
    b = lm.transformer.blocks.layers.dense_1.bias  # [2, 64]: 128 >= 64
    assert b.sharding.spec == P(None, "data") and shard_sizes(b) == {b.size // 8}
    n = lm.transformer.final_norm.scale  # [16] < 64: replicated
    assert n.sharding.spec == P() and shard_sizes(n) == {16}
    sharded = [x for x in jax.tree_util.tree_leaves(lm) if "data" in x.sharding.spec]
    assert len(sharded) >= 10, len(sharded)
    for x in sharded:
        assert shard_sizes(x) == {x.size // 8}


def check_init_tensor_parallel_born_sharded():
    """Megatron rules on a (4, 2) mesh, then FSDP + TP (1/8 per device)."""
    mesh = auto_mesh((4, 2), ("data", "model"))
    lm = pax.sharding.init(tiny_lm, mesh, pax.sharding.transformer_rules())
    assert_tree_equal(lm, tiny_lm(), rtol=1e-6)
    layers = lm.transformer.blocks.layers
    expect = [
        (layers.attention.query_projection.weight, P(None, None, "model")),
        (layers.attention.value_projection.bias, P(None, "model")),
        (layers.attention.output_projection.weight, P(None, "model", None)),
        (layers.attention.output_projection.bias, P(None, None)),
        (layers.dense_1.weight, P(None, None, "model")),
        (layers.dense_2.weight, P(None, "model", None)),
        (layers.dense_2.bias, P(None, None)),
        (lm.embed.weight, P("model", None)),
        (lm.output.weight, P(None, "model")),
        (lm.output.bias, P("model")),
        (lm.position_embed.weight, P()),
        (layers.norm_1.scale, P()),
    ]
    for x, spec in expect:
        assert x.sharding.spec == spec, (x.shape, x.sharding.spec, spec)
        split = 2 if "model" in spec else 1
        assert shard_sizes(x) == {x.size // split}, (spec, shard_sizes(x))
    both = pax.sharding.init(
        tiny_lm, mesh, pax.sharding.transformer_rules(data_axis="data")
    )
    w = both.transformer.blocks.layers.dense_1.weight
    assert w.sharding.spec == P(None, "data", "model")
    assert shard_sizes(w) == {w.size // 8} and len(devices_of(w)) == 8
    assert_tree_equal(both, tiny_lm(), rtol=1e-6)


# ---------------------------------------------------------------- optimizer


def check_optimizer_state_follows_parameters():
    """FSDP shards Adam's mu and nu like their parameters; count replicated."""
    mesh = auto_mesh((8,), ("data",))
    rules = pax.sharding.fsdp_rules(min_size=64)
    lm = pax.sharding.init(tiny_lm, mesh, rules)
    opt = pax.sharding.shard(
        pax.optim.from_optax(optax.adam(1e-3), lm.parameters()), mesh, rules
    )
    state = opt.state[0]
    assert state.count.sharding.spec == P()
    params = jax.tree_util.tree_leaves(lm.parameters())
    for moments in (state.mu, state.nu):
        leaves = jax.tree_util.tree_leaves(moments)
        assert len(leaves) == len(params)
        for p, m in zip(params, leaves):
            assert m.sharding.spec == p.sharding.spec, (m.shape, m.sharding.spec)
            assert shard_sizes(m) == shard_sizes(p)
    mu = state.mu.transformer.blocks.layers.dense_1.weight
    assert shard_sizes(mu) == {mu.size // 8}
    # the same regex rules apply to the state (paths end with the params')
    tp = pax.sharding.partition_specs(
        opt, pax.sharding.transformer_rules(), mesh=auto_mesh((4, 2), ("data", "model"))
    )
    assert tp.state[0].nu.transformer.blocks.layers.dense_2.weight == P(
        None, "model", None
    )


# ---------------------------------------------------------------- training


def lm_batch():
    tokens = jax.random.randint(jax.random.PRNGKey(1), (8, 8), 0, 32)
    return tokens[:, :-1], tokens[:, 1:]


def lm_loss(model, x, y):
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, model


def classifier_loss(model, x, y):
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, model


def mlp_batch():
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 16))
    return x, jnp.arange(16) % 4


def resnet_batch():
    x = jax.random.normal(jax.random.PRNGKey(1), (16, 8, 8, 3))
    return x, jnp.arange(16) % 4


MLP_TP = [
    (r"layers\[0\]\.weight$", P(None, "model")),
    (r"layers\[0\]\.bias$", P("model")),
    (r"layers\[1\]\.weight$", P("model", None)),
]
RESNET_TP = [(r"conv[^.]*\.weight$", P(None, None, None, "model"))]

MODELS = {
    "mlp": (tiny_mlp, mlp_batch, classifier_loss, MLP_TP),
    "resnet": (tiny_resnet, resnet_batch, classifier_loss, RESNET_TP),
    "lm": (lambda: tiny_lm(0.25), lm_batch, lm_loss, pax.sharding.transformer_rules()),
}


def make_step(loss_fn):
    def step(model, opt, x, y):
        (loss, model), grads = pax.value_and_grad(loss_fn, has_aux=True)(model, x, y)
        opt, updates = pax.purecall(opt, grads, model.parameters())
        return pax.apply_updates(model, updates), opt, loss

    return step


@functools.cache
def reference_step(name):
    """The single-device step (uncommitted arrays: jit runs on one device)."""
    make, batch, loss_fn, _ = MODELS[name]
    model = make().train()
    opt = pax.optim.from_optax(TX, model.parameters())
    return jax.jit(make_step(loss_fn))(model, opt, *batch())


# Adam divides by |g| + eps: the key projection's bias has a gradient of
# exactly zero in theory (softmax ignores a per-query constant), so rounding
# noise of 1e-9 would become +-lr with the default eps=1e-8.
TX = optax.adam(1e-2, eps=1e-3)


def train_equivalence(name, layout, mesh_shape):
    make, batch, loss_fn, tp_rules = MODELS[name]
    x, y = batch()
    tx = TX
    step = make_step(loss_fn)
    ref_model, ref_opt, ref_loss = reference_step(name)

    mesh = auto_mesh(mesh_shape, ("data", "model"))
    if layout == "dp":
        rules, default = [], P()
    elif layout == "fsdp":
        rules, default = pax.sharding.fsdp_rules("data", min_size=64), None
    else:
        rules, default = tp_rules, P()
    model = pax.sharding.init(lambda: make().train(), mesh, rules, default=default)
    opt = pax.sharding.shard(
        pax.optim.from_optax(tx, model.parameters()), mesh, rules, default=default
    )
    model_s = pax.sharding.named_shardings(model, mesh, rules, default=default)
    opt_s = pax.sharding.named_shardings(opt, mesh, rules, default=default)
    batch_s = NamedSharding(mesh, P("data"))
    x, y = jax.device_put((x, y), batch_s)
    assert shard_sizes(x) == {x.size // mesh_shape[0]}
    jitted = jax.jit(
        step,
        in_shardings=(model_s, opt_s, batch_s, batch_s),
        out_shardings=(model_s, opt_s, None),
    )
    new_model, new_opt, loss = jitted(model, opt, x, y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    assert_tree_equal(new_model, ref_model, rtol=1e-5, atol=1e-6)
    assert_tree_equal(new_opt, ref_opt, rtol=1e-5, atol=1e-6)
    # the step kept every layout: outputs sharded as the rules say
    for got, want in zip(
        jax.tree_util.tree_leaves((new_model, new_opt)),
        jax.tree_util.tree_leaves((model_s, opt_s)),
    ):
        assert got.sharding.is_equivalent_to(want, got.ndim), (got.sharding, want)
    n_split = sum(
        1
        for s in jax.tree_util.tree_leaves(model_s)
        if s.spec != P() and any(e is not None for e in s.spec)
    )
    if layout != "dp" and not (layout == "tp" and mesh_shape[1] == 1):
        assert n_split > 0, "the layout sharded no parameter"


def _train_check(name, layout, mesh_shape):
    def check():
        train_equivalence(name, layout, mesh_shape)

    check.__name__ = f"check_train_{name}_{layout}_{mesh_shape[0]}x{mesh_shape[1]}"
    return check


CHECKS = {
    f.__name__[len("check_") :]: f
    for f in [
        check_init_fsdp_born_sharded,
        check_init_tensor_parallel_born_sharded,
        check_optimizer_state_follows_parameters,
        *[
            _train_check(name, layout, shape)
            for name in MODELS
            for layout, shape in [("dp", (8, 1)), ("fsdp", (4, 2)), ("tp", (4, 2))]
        ],
    ]
}


def main(names: list[str]) -> int:
    assert jax.device_count() == 8, jax.devices()
    failed = 0
    for name in names or list(CHECKS):
        try:
            CHECKS[name]()
        except Exception as e:  # report every check, not just the first
            failed += 1
            detail = "".join(traceback.format_exception(e)).replace("\n", "\\n")
            print(f"CHECK {name} FAIL {detail}", flush=True)
        else:
            print(f"CHECK {name} ok", flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:]) else 0)

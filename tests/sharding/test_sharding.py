"""pax.sharding: rules -> specs, errors, the shipped rule sets (in-process,
one device or an AbstractMesh), then the 8-device checks of eight_devices.py
in one subprocess."""

import os
import pathlib
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AbstractMesh, AxisType
from jax.sharding import PartitionSpec as P

import pax
from tests.run_once import run_once

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parents[1]


def mesh_of(**sizes):
    """An abstract mesh: sizes and names only, so divisibility can be checked
    with one real device."""
    return AbstractMesh(tuple(sizes.values()), tuple(sizes))


def tiny_lm(dropout_rate=0.0):
    return pax.nets.TransformerLM(
        32, 16, 2, 2, max_length=8, dropout_rate=dropout_rate,
        rng_key=jax.random.PRNGKey(0),
    )  # fmt: skip


def flat(specs):
    pairs = jax.tree_util.tree_flatten_with_path(
        specs, is_leaf=lambda x: isinstance(x, P)
    )[0]
    return {jax.tree_util.keystr(k): v for k, v in pairs}


# ------------------------------------------------------------------ matching


def test_first_matching_rule_wins_and_patterns_are_searched():
    mlp = pax.nets.MLP(4, [8, 6, 2], rng_key=jax.random.PRNGKey(0))
    rules = [
        (r"layers\[0\]\.weight$", P(None, "model")),
        (re.compile(r"weight$"), P("model")),  # compiled patterns too
        (r"layers\[0\]", P("x")),  # .layers[0].weight matched above
        (r"bias", None),  # None is PartitionSpec()
    ]
    specs = pax.sharding.partition_specs(mlp, rules)
    assert type(specs) is pax.nets.MLP
    assert flat(specs) == {
        ".layers[0].weight": P(None, "model"),
        ".layers[0].bias": P("x"),  # before the `bias` rule
        ".layers[1].weight": P("model"),
        ".layers[1].bias": P(),
        ".layers[2].weight": P("model"),
        ".layers[2].bias": P(),
    }


def test_paths_are_the_state_dict_keys():
    lm = tiny_lm()
    specs = pax.sharding.partition_specs(lm, [(".*", P())])
    assert list(flat(specs)) == list(lm.state_dict())


def test_unmatched_leaves_are_listed_all_unless_a_default_is_given():
    mlp = pax.nets.MLP(4, [8, 2], rng_key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError) as info:
        pax.sharding.partition_specs(mlp, [(r"layers\[0\]\.weight", P())])
    msg = str(info.value)
    assert "MLP(in_dim=4" in msg and "3 leaf path(s)" in msg
    for path in (".layers[0].bias", ".layers[1].weight", ".layers[1].bias"):
        assert path in msg
    assert ".layers[0].weight" not in msg and "default=PartitionSpec()" in msg
    specs = pax.sharding.partition_specs(
        mlp, [(r"layers\[0\]\.weight", P("x"))], default=P()
    )
    assert flat(specs)[".layers[1].weight"] == P()
    assert flat(specs)[".layers[0].weight"] == P("x")


def test_scalars_keys_and_integer_leaves_are_replicated():
    tree = {
        "scalar": jnp.float32(1.0),
        "raw_key": jax.random.PRNGKey(0),
        "stacked_raw_keys": jax.random.split(jax.random.PRNGKey(0), 4),
        "typed_key": jax.random.split(jax.random.key(0), 4),
        "counter": jnp.zeros((4,), jnp.int32),
        "mask": jnp.ones((4,), bool),
        "weight": jnp.ones((4, 4)),
    }
    # an explicit rule matching everything does not reach scalars and keys
    specs = pax.sharding.partition_specs(tree, [(r"weight|key|scalar", P("d"))])
    assert specs == {
        "scalar": P(),
        "raw_key": P(),
        "stacked_raw_keys": P(),
        "typed_key": P(),
        "counter": P(),  # unmatched integer: replicated, not an error
        "mask": P(),
        "weight": P("d"),
    }
    # ... but an integer leaf a rule names follows the rule (a token batch)
    assert pax.sharding.partition_specs(tree, [(".*", P("d"))])["counter"] == P("d")
    # a transformer's dropout keys (raw, with the LayerStack's axis)
    lm = tiny_lm(dropout_rate=0.1)
    rules = [(r"weight|rng_key", P(None, "m"))]
    specs = flat(pax.sharding.partition_specs(lm, rules, default=P()))
    assert specs[".transformer.blocks.layers.dropout_1.rng_key"] == P()
    assert specs[".embed.weight"] == P(None, "m")


def test_none_leaves_stay_none_and_shape_structs_work():
    fc = pax.Linear(4, 8, rng_key=jax.random.PRNGKey(0))
    shapes = jax.eval_shape(lambda: pax.nn.BatchNorm(8, True, True, 0.9))
    specs = pax.sharding.partition_specs(shapes.parameters(), [(".*", P("d"))])
    assert specs.scale == P("d") and specs.mean_ema is not None
    tree = {"a": None, "w": fc.weight}
    assert pax.sharding.partition_specs(tree, [(".*", P("d"))]) == {
        "a": None,
        "w": P("d"),
    }


def test_callable_rules_get_path_leaf_and_mesh():
    seen = []

    def rule(path, leaf, mesh):
        seen.append((path, leaf.shape, mesh))
        return P("m") if leaf.shape[0] == 8 else None

    mesh = mesh_of(m=2)
    tree = {"a": jnp.ones((8,)), "b": jnp.ones((3,))}
    specs = pax.sharding.partition_specs(tree, rule, default=P(), mesh=mesh)
    assert specs == {"a": P("m"), "b": P()}
    assert seen == [("['a']", (8,), mesh), ("['b']", (3,), mesh)]


# ------------------------------------------------------------------ errors


def test_spec_longer_than_the_rank_names_the_leaf():
    fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(0))
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_dim=3, out_dim=4.*`\.bias` "
        r"with shape \(4,\).*2 entries, more than the leaf's rank 1",
    ):
        pax.sharding.partition_specs(fc, [(".*", P(None, "m"))])  # fmt: skip


def test_axis_not_dividing_the_dimension_names_leaf_dimension_and_axis():
    fc = pax.Linear(6, 4, rng_key=jax.random.PRNGKey(0))
    rules = [("weight", P("model", None))]
    with pytest.raises(
        ValueError,
        match=r"`\.weight` with shape \(6, 4\).*dimension 0 \(size 6\) is not "
        r"divisible by mesh axis 'model' \(size 4\)",
    ):
        pax.sharding.partition_specs(fc, rules, default=P(), mesh=mesh_of(model=4))
    # without a mesh, divisibility is not known: no error
    pax.sharding.partition_specs(fc, rules, default=P())
    # several axes on one dimension multiply
    with pytest.raises(ValueError, match=r"'a' \(size 2\) x 'b' \(size 2\)"):
        pax.sharding.partition_specs(
            fc, [("weight", P(("a", "b")))], default=P(), mesh=mesh_of(a=2, b=2)
        )


def test_unknown_or_repeated_mesh_axes():
    fc = pax.Linear(4, 4, rng_key=jax.random.PRNGKey(0))
    mesh = mesh_of(data=2)
    with pytest.raises(ValueError, match=r"'model' is not an axis of the mesh"):
        pax.sharding.partition_specs(fc, [(".*", P("model"))], mesh=mesh)
    with pytest.raises(ValueError, match=r"uses mesh axis 'data' twice"):
        pax.sharding.partition_specs(
            fc, [("weight", P("data", "data"))], default=P(), mesh=mesh
        )


def test_bad_rules_and_arguments_are_type_errors():
    fc = pax.Linear(4, 4, rng_key=jax.random.PRNGKey(0))
    with pytest.raises(TypeError, match="rule 0 .*expected a jax.sharding"):
        pax.sharding.partition_specs(fc, [(".*", ("data",))])
    with pytest.raises(TypeError, match="rule 1 must be a"):
        pax.sharding.partition_specs(fc, [(".*", P()), 3])
    with pytest.raises(TypeError, match="`rules` must be a sequence"):
        pax.sharding.partition_specs(fc, ".*")
    with pytest.raises(ValueError, match="invalid regular expression"):
        pax.sharding.partition_specs(fc, [("(", P())])
    with pytest.raises(TypeError, match="`default` must be"):
        pax.sharding.partition_specs(fc, [], default="data")
    with pytest.raises(TypeError, match="gave 'data', expected a"):
        pax.sharding.partition_specs(fc, lambda p, x, m: "data")
    with pytest.raises(TypeError, match="`mesh` must be a jax.sharding.Mesh"):
        pax.sharding.shard(fc, {"data": 1}, [], default=P())


def test_explicit_meshes_are_refused_with_the_fix():
    fc = pax.Linear(4, 4, rng_key=jax.random.PRNGKey(0))
    explicit = jax.make_mesh((1,), ("data",), axis_types=(AxisType.Explicit,))
    for call in (
        lambda: pax.sharding.shard(fc, explicit, [], default=P()),
        lambda: pax.sharding.init(lambda: fc, explicit, [], default=P()),
    ):
        with pytest.raises(
            ValueError,
            match=r"Explicit axes \('data',\).*"
            r"pax.sharding.make_mesh",
        ):
            call()  # fmt: skip
    assert pax.sharding.make_mesh((1,), ("data",)).axis_types == (AxisType.Auto,)
    with pytest.raises(ValueError, match="one name per axis"):
        pax.sharding.make_mesh((1, 1), ("data",))


# ------------------------------------------------------------------ rule sets


def test_fsdp_picks_the_largest_dimension_the_axis_divides():
    tree = {
        "big": jnp.ones((48, 40)),  # 40 = 8 * 5, 48 = 8 * 6: the larger, 48
        "odd": jnp.ones((36, 40)),  # 36 not divisible by 8: 40
        "tie": jnp.ones((32, 32)),  # ties go to the later dimension
        "none": jnp.ones((33, 35)),  # nothing divisible: replicated
        "small": jnp.ones((8, 8)),  # 64 < min_size
        "ints": jnp.ones((64, 64), jnp.int32),  # not a float: replicated
        "stacked": jnp.ones((2, 16, 64)),  # LayerStack [N, in, out]
    }
    rules = pax.sharding.fsdp_rules("data", min_size=100)
    specs = pax.sharding.partition_specs(tree, rules, mesh=mesh_of(data=8))
    assert specs == {
        "big": P("data"),
        "odd": P(None, "data"),
        "tie": P(None, "data"),
        "none": P(),
        "small": P(),
        "ints": P(),
        "stacked": P(None, None, "data"),
    }
    with pytest.raises(
        ValueError,
        match=r"fsdp_rules\(axis='data', min_size=100\) "
        r"needs the mesh",
    ):
        pax.sharding.partition_specs(tree, rules)  # fmt: skip
    with pytest.raises(ValueError, match="'data' is not an axis of the mesh"):
        pax.sharding.partition_specs(tree, rules, mesh=mesh_of(model=2))
    with pytest.raises(ValueError, match="`min_size` must be a non-negative int"):
        pax.sharding.fsdp_rules(min_size=-1)


def test_overrides_before_fsdp():
    lm = tiny_lm()
    # `\.embed`: a bare `embed\.weight$` would also match `.position_embed.weight`
    rules = [(r"\.embed\.weight$", P()), *pax.sharding.fsdp_rules(min_size=64)]
    specs = flat(pax.sharding.partition_specs(lm, rules, mesh=mesh_of(data=4)))
    assert specs[".embed.weight"] == P()
    assert specs[".position_embed.weight"] == P(None, "data")  # [8, 16]


def test_fsdp_shards_adam_moments_like_their_parameters():
    lm = tiny_lm()
    opt = pax.optim.from_optax(optax.adam(1e-3), lm.parameters())
    mesh = mesh_of(data=8)
    rules = pax.sharding.fsdp_rules(min_size=64)
    p_specs = flat(pax.sharding.partition_specs(lm, rules, mesh=mesh))
    o_specs = flat(pax.sharding.partition_specs(opt, rules, mesh=mesh))
    assert o_specs[".state[0].count"] == P()
    sharded = 0
    for path, spec in p_specs.items():
        if "rng_key" in path:
            continue
        assert o_specs[".state[0].mu" + path] == spec, path
        assert o_specs[".state[0].nu" + path] == spec, path
        sharded += "data" in spec
    assert sharded >= 10


TP_EXPECTED = {
    ".embed.weight": P("model", None),
    ".position_embed.weight": P(),
    ".transformer.blocks.layers.norm_1.scale": P(),
    ".transformer.blocks.layers.norm_1.offset": P(),
    ".transformer.blocks.layers.attention.query_projection.weight": P(
        None, None, "model"
    ),
    ".transformer.blocks.layers.attention.query_projection.bias": P(None, "model"),
    ".transformer.blocks.layers.attention.key_projection.weight": P(
        None, None, "model"
    ),
    ".transformer.blocks.layers.attention.key_projection.bias": P(None, "model"),
    ".transformer.blocks.layers.attention.value_projection.weight": P(
        None, None, "model"
    ),
    ".transformer.blocks.layers.attention.value_projection.bias": P(None, "model"),
    ".transformer.blocks.layers.attention.output_projection.weight": P(
        None, "model", None
    ),
    ".transformer.blocks.layers.attention.output_projection.bias": P(None, None),
    ".transformer.blocks.layers.dropout_1.rng_key": P(),
    ".transformer.blocks.layers.norm_2.scale": P(),
    ".transformer.blocks.layers.norm_2.offset": P(),
    ".transformer.blocks.layers.dense_1.weight": P(None, None, "model"),
    ".transformer.blocks.layers.dense_1.bias": P(None, "model"),
    ".transformer.blocks.layers.dense_2.weight": P(None, "model", None),
    ".transformer.blocks.layers.dense_2.bias": P(None, None),
    ".transformer.blocks.layers.dropout_2.rng_key": P(),
    ".transformer.final_norm.scale": P(),
    ".transformer.final_norm.offset": P(),
    ".output.weight": P(None, "model"),
    ".output.bias": P("model"),
}


def test_transformer_rules_megatron_layout():
    lm = tiny_lm(dropout_rate=0.1)
    rules = pax.sharding.transformer_rules()
    specs = flat(pax.sharding.partition_specs(lm, rules, mesh=mesh_of(model=2)))
    assert specs == TP_EXPECTED
    # FSDP + TP: the other feature dimension of split matrices over `data`
    both = pax.sharding.transformer_rules("model", data_axis="data")
    specs = flat(pax.sharding.partition_specs(lm, both, mesh=mesh_of(data=4, model=2)))
    layers = ".transformer.blocks.layers."
    assert specs[layers + "dense_1.weight"] == P(None, "data", "model")
    assert specs[layers + "attention.output_projection.weight"] == P(
        None, "model", "data"
    )
    assert specs[layers + "dense_1.bias"] == P(None, "model")
    assert specs[".embed.weight"] == P("model", "data")
    assert specs[".output.weight"] == P("data", "model")
    with pytest.raises(ValueError, match="must differ"):
        pax.sharding.transformer_rules("model", data_axis="model")


def test_transformer_rules_on_a_bare_block_and_on_adam_state():
    block = pax.nets.TransformerBlock(8, 2, rng_key=jax.random.PRNGKey(0))
    specs = pax.sharding.partition_specs(block, pax.sharding.transformer_rules())
    assert specs.dense_1.weight == P(None, "model")  # no layer axis here
    assert specs.attention.output_projection.weight == P("model", None)
    lm = tiny_lm()
    opt = pax.optim.from_optax(optax.adam(1e-3), lm.parameters())
    specs = flat(pax.sharding.partition_specs(opt, pax.sharding.transformer_rules()))
    for path, spec in TP_EXPECTED.items():
        if "rng_key" not in path:
            assert specs[".state[0].nu" + path] == spec, path
    # a vocabulary the axis does not divide: the error names leaf and axis
    odd = pax.nets.TransformerLM(33, 16, 2, 1, 8, rng_key=jax.random.PRNGKey(0))
    with pytest.raises(
        ValueError,
        match=r"`\.embed\.weight` with shape \(33, 16\)"
        r".*dimension 0 \(size 33\).*'model' \(size 2\)",
    ):
        pax.sharding.partition_specs(
            odd, pax.sharding.transformer_rules(), mesh=mesh_of(model=2)
        )  # fmt: skip


# ------------------------------------------------------------------ one device


def test_shard_and_init_on_one_device():
    mesh = pax.sharding.make_mesh((1,), ("data",))
    key = jax.random.PRNGKey(3)
    lm = pax.sharding.init(
        lambda: pax.nets.TransformerLM(32, 16, 2, 2, 8, rng_key=key),
        mesh,
        pax.sharding.fsdp_rules(min_size=64),
    )
    eager = pax.nets.TransformerLM(32, 16, 2, 2, 8, rng_key=key)
    assert type(lm) is type(eager)
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(lm)[0], jax.tree_util.tree_leaves(eager)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, err_msg=jax.tree_util.keystr(path))
    w = lm.transformer.blocks.layers.dense_1.weight
    assert w.sharding.spec == P(None, None, "data")
    moved = pax.sharding.shard(eager, mesh, pax.sharding.transformer_rules(
        "data"))  # fmt: skip
    assert moved.output.weight.sharding.spec == P(None, "data")
    np.testing.assert_array_equal(moved.output.weight, eager.output.weight)


# ------------------------------------------------------------------ 8 devices

EIGHT = HERE / "eight_devices.py"
CHECK_NAMES = [
    "init_fsdp_born_sharded",
    "init_tensor_parallel_born_sharded",
    "optimizer_state_follows_parameters",
    *[
        f"train_{model}_{layout}"
        for model in ("mlp", "resnet", "lm")
        for layout in ("dp_8x1", "fsdp_4x2", "tp_4x2")
    ],
]


@pytest.fixture(scope="session")
def eight_device_results(tmp_path_factory):
    """Run every 8-device check in ONE subprocess, once per test run (also
    under xdist, see ``tests/run_once.py``); name -> 'ok' or the error."""
    return run_once(tmp_path_factory, "pax_eight_devices", _run_eight_devices)


def _run_eight_devices():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=8 "
        "--xla_backend_optimization_level=0",
        JAX_PLATFORMS="cpu",
    )
    proc = subprocess.run(
        [sys.executable, str(EIGHT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("CHECK "):
            _, name, rest = line.split(" ", 2)
            results[name] = rest.replace("\\n", "\n")
    if not results:
        pytest.fail(f"eight_devices.py produced no result:\n{proc.stderr[-3000:]}")
    return results


def test_eight_device_checks_are_all_listed():
    from tests.sharding import eight_devices

    assert sorted(eight_devices.CHECKS) == sorted(CHECK_NAMES)


@pytest.mark.parametrize("name", CHECK_NAMES)
def test_on_eight_devices(eight_device_results, name):
    assert name in eight_device_results, sorted(eight_device_results)
    assert eight_device_results[name] == "ok", eight_device_results[name]

"""pax.tabulate and Module.summary(table=True)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

import pax
from pax._tabulate import TabulateError


def parse(table: str) -> dict[str, dict[str, str]]:
    """Rows of a plain table keyed by path, columns cut at the rule's spans."""
    lines = table.splitlines()
    spans = [m.span() for m in re.finditer(r"-+", lines[1])]
    names = [lines[0][a:b].strip() for a, b in spans]
    rows = {}
    for line in lines[2:]:
        if line.startswith("-"):
            continue
        cells = [line[a:b].strip() for a, b in spans]
        rows[cells[0]] = dict(zip(names, cells))
    return rows


def count(text: str) -> int:
    return int(text.replace(",", ""))


def test_mlp_counts_match_a_hand_computation():
    sizes = [5, 16, 8, 3]
    mlp = pax.nets.MLP(sizes[0], sizes[1:], rng_key=jax.random.PRNGKey(0))
    rows = parse(pax.tabulate(mlp))
    expected = [i * o + o for i, o in zip(sizes[:-1], sizes[1:])]
    for k, n in enumerate(expected):
        row = rows[f".layers[{k}]"]
        assert row["module"] == "Linear"
        assert count(row["params"]) == n
        assert count(row["state"]) == 0
        assert row["bytes"] == f"{4 * n} B"  # float32, under 1 KiB
        assert row["dtypes"] == "float32"
    assert count(rows["(root)"]["params"]) == sum(expected)
    assert count(rows["total"]["params"]) == sum(expected) == 259
    assert rows["total"]["bytes"] == f"{4 * 259 / 1024:.1f} KiB"
    assert list(rows) == ["(root)", ".layers[0]", ".layers[1]", ".layers[2]", "total"]


def test_batchnorm_statistics_are_state_not_trainable():
    c = 4
    bn = pax.BatchNorm(c, rng_key=jax.random.PRNGKey(0))
    rows = parse(pax.tabulate(bn))
    # scale and offset are trainable; each EMA holds hidden + average + counter
    assert count(rows["(root)"]["params"]) == 2 * c
    assert count(rows[".mean_ema"]["params"]) == 0
    ema_state = count(rows[".mean_ema"]["state"])
    expected_ema = sum(
        x.size for x in jax.tree_util.tree_leaves(bn.mean_ema)
    )  # every leaf of the EMA
    assert ema_state == expected_ema > 0
    assert count(rows["total"]["state"]) == 2 * expected_ema
    assert rows[".mean_ema"]["dtypes"] == "float32,int32"
    # frozen parameters are counted as state too
    frozen = parse(pax.tabulate(pax.freeze_parameters(bn)))
    assert count(frozen["total"]["params"]) == 0
    assert count(frozen["total"]["state"]) == 2 * c + 2 * expected_ema


def small_cnn():
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    return pax.Sequential(
        pax.Conv2D(3, 8, 3, stride=2, padding="SAME", rng_key=keys[0]),
        jax.nn.relu,
        pax.MaxPool(2, 2, "VALID"),
        pax.Conv2D(8, 16, 3, padding="VALID", rng_key=keys[1]),
        pax.Flatten(),
        pax.Linear(16 * 2 * 2, 10, rng_key=keys[2]),
    )


def test_cnn_output_shapes_match_a_hand_computation():
    net = small_cnn()
    x = jnp.zeros((2, 16, 16, 3))
    rows = parse(pax.tabulate(net, x))
    # 16x16 -> conv stride 2 SAME -> 8x8 -> pool 2 VALID -> 4x4 -> conv 3 VALID
    # -> 2x2x16 -> flatten 64 -> linear 10
    assert rows["(root)"]["output"] == "float32[2, 10]"
    assert rows[".layers[0]"]["output"] == "float32[2, 8, 8, 8]"
    assert rows[".layers[1]"]["output"] == "float32[2, 8, 8, 8]"
    assert rows[".layers[2]"]["output"] == "float32[2, 4, 4, 8]"
    assert rows[".layers[3]"]["output"] == "float32[2, 2, 2, 16]"
    assert rows[".layers[4]"]["output"] == "float32[2, 64]"
    assert rows[".layers[5]"]["output"] == "float32[2, 10]"
    assert count(rows[".layers[0]"]["params"]) == 3 * 3 * 3 * 8 + 8
    assert count(rows[".layers[3]"]["params"]) == 3 * 3 * 8 * 16 + 16
    # abstract inputs and bfloat16 work too
    rows = parse(pax.tabulate(net, jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.bfloat16)))
    assert rows[".layers[5]"]["output"].endswith("[1, 10]")


def test_repeated_calls_and_tuple_outputs():
    class Twice(pax.Module):
        def __init__(self):
            super().__init__()
            self.inner = pax.Linear(2, 2, rng_key=jax.random.PRNGKey(0))

        def __call__(self, x):
            y = self.inner(self.inner(x))
            return y, x.sum()

    rows = parse(pax.tabulate(Twice(), jnp.ones((3, 2))))
    assert rows[".inner"]["output"] == "float32[3, 2] (x2 calls)"
    assert rows["(root)"]["output"] == "(float32[3, 2], float32[])"


def test_resnet50_total_is_the_published_count():
    net = jax.eval_shape(
        lambda k: pax.nets.ResNet50(3, 1000, rng_key=k), jax.random.PRNGKey(0)
    )
    table = pax.tabulate(net)
    rows = parse(table)
    assert count(rows["total"]["params"]) == 25_557_032
    assert count(rows[".logits"]["params"]) == 2048 * 1000 + 1000
    assert rows[".block_groups[1].blocks[0].conv_1"]["module"] == "Conv2D"
    assert table == net.summary(table=True)


def test_training_mode_call_runs_as_purecall_and_leaves_module_alone():
    bn = pax.BatchNorm(3, rng_key=jax.random.PRNGKey(0))
    before = jax.tree_util.tree_leaves(bn)
    rows = parse(pax.tabulate(bn, jnp.ones((2, 3))))
    assert rows["(root)"]["output"] == "float32[2, 3]"
    after = jax.tree_util.tree_leaves(bn)
    assert all(a is b for a, b in zip(before, after))


def test_bad_inputs_name_the_failing_module():
    net = pax.Sequential(
        pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0)),
        pax.Linear(4, 1, rng_key=jax.random.PRNGKey(1)),  # expects 4, gets 3
    )
    with pytest.raises(ValueError, match=r"Linear at `\.layers\[1\]`") as info:
        pax.tabulate(net, jnp.ones((5, 2)))
    assert "float32[5, 3]" in str(info.value)  # the input it got
    assert isinstance(info.value, TabulateError)
    with pytest.raises(ValueError, match=r"calling Linear at `\(root\)`"):
        pax.tabulate(net[0], jnp.ones((5, 2)), jnp.ones(()))
    with pytest.raises(TypeError, match="RngSeq is not callable"):
        pax.tabulate(pax.RngSeq(seed=0), jnp.ones(()))
    with pytest.raises(TypeError, match="expects a pax.Module"):
        pax.tabulate({"w": jnp.ones(2)})


def test_no_class_stays_patched():
    net = small_cnn()
    classes = {type(m) for m in jax.tree_util.tree_leaves(net, is_leaf=pax.is_module)}
    classes |= {pax.Sequential, pax.Conv2D, pax.MaxPool, pax.Flatten, pax.Lambda}
    before = {cls: dict(cls.__dict__) for cls in classes}
    pax.tabulate(net, jnp.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError):
        pax.tabulate(net, jnp.zeros((1, 16, 16, 5)))
    for cls in classes:
        assert dict(cls.__dict__) == before[cls], cls


def test_rich_table():
    import rich  # noqa: F401 - the `test` extra installs it

    text = pax.tabulate(pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0)), rich=True)
    assert "Linear" in text and "┃ path" in text and "9" in text


def test_summary_default_is_unchanged():
    net = pax.Sequential(pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0)))
    assert (
        net.summary() == "Sequential\n└── Linear(in_dim=2, out_dim=3, with_bias=True)"
    )


def test_layer_stack_table_counts_every_stacked_layer():
    stack = pax.nn.LayerStack(
        lambda k: pax.nn.Linear(4, 4, rng_key=k), 3, rng_key=jax.random.PRNGKey(0)
    )
    text = stack.summary(table=True)
    assert "LayerStack" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split()[1] == str(3 * (4 * 4 + 4))  # every stacked layer counted


def test_submodules_of_a_shared_tree_show_their_outputs():
    # a tied embedding (V = 10 tokens, D = 4) with a BatchNorm between, inside
    # another module: [B] ids -> Embed [B, D] -> BatchNorm [B, D] -> the
    # readout Linear, whose weight is the embedding's transpose, [B, V]
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    net = pax.Sequential(
        pax.Embed(10, 4, rng_key=k1), pax.BatchNorm(4), pax.Linear(4, 10, rng_key=k2)
    )
    tied = pax.Shared(net, where=".layers[2].weight", get=lambda t: t[0].weight.T)
    outer = pax.Sequential(tied, pax.Linear(10, 3, rng_key=k2))
    rows = parse(pax.tabulate(outer, jnp.array([1, 2, 3])))
    assert rows[".layers[0]"]["output"] == "float32[3, 10]"
    assert rows[".layers[0].tree"]["output"] == "float32[3, 10]"
    assert rows[".layers[0].tree.layers[0]"]["output"] == "float32[3, 4]"
    assert rows[".layers[0].tree.layers[1]"]["output"] == "float32[3, 4]"
    assert rows[".layers[0].tree.layers[1].mean_ema"]["output"] == "float32[4]"
    assert rows[".layers[0].tree.layers[2]"]["output"] == "float32[3, 10]"
    assert rows[".layers[1]"]["output"] == "float32[3, 3]"
    # the tied weight is counted once: Embed 40, BatchNorm 8, Linear bias 10
    assert count(rows[".layers[0]"]["params"]) == 40 + 8 + 10

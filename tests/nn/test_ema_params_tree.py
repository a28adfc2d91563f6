"""EMAParamsTree: averages against a hand-written loop, Haiku parity, purity
and errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import EMA, EMAParamsTree

step = jax.jit(pax.purecall)


def make_trees(key, n):
    trees = []
    for k in jax.random.split(key, n):
        k1, k2, k3 = jax.random.split(k, 3)
        trees.append(
            {
                "linear": {
                    "w": jax.random.normal(k1, (3, 4)),
                    "b": jax.random.normal(k2, (4,)),
                },
                "scale": jax.random.normal(k3, ()),
            }
        )
    return trees


def reference(values, decay, zero_debias, warmup_length):
    """Haiku's moving average, written out: one output per value."""
    hidden = np.zeros_like(np.asarray(values[0], np.float64))
    counter = -warmup_length
    outs = []
    for x in values:
        counter += 1
        d = 0.0 if counter <= 0 else decay
        hidden = d * hidden + (1 - d) * np.asarray(x, np.float64)
        outs.append(hidden / (1 - d**counter) if zero_debias else hidden)
    return outs


@pytest.mark.parametrize(
    "zero_debias, warmup_length", [(True, 0), (False, 0), (False, 2)]
)
def test_averages_match_a_hand_written_loop(zero_debias, warmup_length, key):
    decay = 0.8
    trees = make_trees(key, 5)
    ema = EMAParamsTree(
        trees[0], decay, zero_debias=zero_debias, warmup_length=warmup_length
    )
    outs = []
    for tree in trees:
        ema, out = step(ema, tree)
        outs.append(out)
    for path in (("linear", "w"), ("linear", "b"), ("scale",)):

        def get(t, path=path):
            for k in path:
                t = t[k]
            return t

        expected = reference([get(t) for t in trees], decay, zero_debias, warmup_length)
        for out, exp in zip(outs, expected):
            np.testing.assert_allclose(np.asarray(get(out)), exp, rtol=1e-5, atol=1e-6)
    assert int(ema.emas["['linear']['w']"].counter) == 5 - warmup_length


def test_first_debiased_average_is_the_first_value(key):
    (tree,) = make_trees(key, 1)
    _, out = pax.purecall(EMAParamsTree(tree, 0.99), tree)
    np.testing.assert_allclose(
        np.asarray(out["linear"]["w"]), np.asarray(tree["linear"]["w"]), rtol=1e-5
    )
    _, out = pax.purecall(EMAParamsTree(tree, 0.75, zero_debias=False), tree)
    np.testing.assert_allclose(
        np.asarray(out["linear"]["w"]), 0.25 * np.asarray(tree["linear"]["w"]), 1e-6
    )


def test_ignore_regex_and_integer_leaves_pass_through(key):
    trees = make_trees(key, 3)
    trees = [{**t, "step": jnp.array(i)} for i, t in enumerate(trees)]
    ema = EMAParamsTree(trees[0], 0.5, ignore_regex=r".*\['b'\]")
    assert sorted(ema.emas) == ["['linear']['w']", "['scale']"]
    for tree in trees:
        ema, out = step(ema, tree)
        np.testing.assert_array_equal(
            np.asarray(out["linear"]["b"]), np.asarray(tree["linear"]["b"])
        )
        assert int(out["step"]) == int(tree["step"])
    assert not np.allclose(
        np.asarray(out["linear"]["w"]), np.asarray(trees[-1]["linear"]["w"])
    )
    # re.match is anchored: "scale" alone matches no path string ("['scale']")
    assert "['scale']" in EMAParamsTree(trees[0], 0.5, ignore_regex="scale").emas
    assert "['scale']" not in EMAParamsTree(trees[0], 0.5, ignore_regex=r"\['sc").emas


def test_update_stats_false_and_purity(key):
    t0, t1 = make_trees(key, 2)
    ema = EMAParamsTree(t0, 0.5)
    ema, _ = pax.purecall(ema, t0)
    with pytest.raises(pax.MutationError, match=r"purecall"):
        ema(t1)
    peek = ema(t1, update_stats=False)  # a plain call
    new, out = step(ema, t1)
    np.testing.assert_allclose(
        np.asarray(peek["linear"]["w"]), np.asarray(out["linear"]["w"]), rtol=1e-6
    )
    assert int(ema.emas["['scale']"].counter) == 1
    assert int(new.emas["['scale']"].counter) == 2
    # (0.5 * 0.5 * t0 + 0.5 * t1) / (1 - 0.25)
    expected = (0.25 * np.asarray(t0["scale"]) + 0.5 * np.asarray(t1["scale"])) / 0.75
    np.testing.assert_allclose(float(out["scale"]), expected, rtol=1e-5)


def test_on_module_parameters_and_dtypes(key):
    net = pax.Linear(3, 2, rng_key=key)
    ema = EMAParamsTree(net.parameters(), 0.9)
    assert sorted(ema.emas) == [".bias", ".weight"]
    ema, avg = pax.purecall(ema, net.parameters())
    assert type(avg) is pax.Linear
    np.testing.assert_allclose(np.asarray(avg.weight), np.asarray(net.weight), 1e-6)
    # bfloat16 values: averaged in the template's float32, returned as bfloat16
    low = net.parameters().map(lambda x: x.astype(jnp.bfloat16))
    new, out = pax.purecall(ema, low)
    assert out.weight.dtype == jnp.bfloat16
    assert new.emas[".weight"].averages.dtype == jnp.float32


def test_tree_mismatch_errors(key):
    (tree,) = make_trees(key, 1)
    ema = EMAParamsTree(tree, 0.5)
    with pytest.raises(
        ValueError, match=r"EMAParamsTree\(like=.*no leaf at `\['scale'\]`"
    ):
        ema({"linear": tree["linear"]}, update_stats=False)
    bad = {**tree, "linear": {"w": jnp.ones((4, 3)), "b": tree["linear"]["b"]}}
    with pytest.raises(
        ValueError,
        match=r"leaf `\['linear'\]\['w'\]` has shape \(4, 3\), expected \(3, 4\)",
    ):
        ema(bad, update_stats=False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"decay": 1.5}, ValueError, r"`decay` must be in \[0, 1\], got 1.5"),
        ({"decay": "slow"}, TypeError, r"`decay` must be a float"),
        ({"decay": 1.0}, ValueError, r"`decay` must be < 1 with zero_debias"),
        ({"warmup_length": -1}, ValueError, r"`warmup_length` must be an int >= 0"),
        (
            {"warmup_length": 3},
            ValueError,
            r"`warmup_length` > 0 needs zero_debias=False",
        ),
        ({"ignore_regex": "["}, ValueError, r"`ignore_regex` '\[' is not a valid"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    args = {"like": {"w": jnp.ones((2,))}, "decay": 0.5, **kwargs}
    with pytest.raises(error, match=r"EMAParamsTree: " + match):
        EMAParamsTree(**args)


def test_repr_and_submodules():
    ema = EMAParamsTree({"a": {"w": jnp.ones((2, 3))}}, 0.5, name="avg")
    assert repr(ema) == (
        "EMAParamsTree(like={'a': {'w': float32[2, 3]}}, decay=0.5, "
        "zero_debias=True, warmup_length=0, ignore_regex='', name='avg')"
    )
    assert all(isinstance(m, EMA) for m in ema.submodules())


# ---------------------------------------------------------------------------
# parity with dm-haiku
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "decay, zero_debias, warmup_length, hk_regex, pax_regex",
    [
        (0.9, True, 0, "", ""),
        (0.7, False, 0, ".*/b", r".*\['b'\]"),
        (0.5, False, 2, "linear_1/", r"\['linear_1'\]"),
    ],
)
def test_parity_with_haiku(decay, zero_debias, warmup_length, hk_regex, pax_regex, key):
    keys = jax.random.split(key, 4)
    trees = [
        {
            "linear": {
                "w": jax.random.normal(k, (3, 4)),
                "b": jax.random.normal(k, (4,)) + 1,
            },
            "linear_1": {"w": jax.random.normal(k, (4, 2)) - 1},
        }
        for k in keys
    ]

    def fn(tree, update_stats=True):
        ema = hk.EMAParamsTree(
            decay,
            zero_debias=zero_debias,
            warmup_length=warmup_length,
            ignore_regex=hk_regex,
        )
        return ema(tree, update_stats=update_stats)

    f = hk.transform_with_state(fn)
    params, state = f.init(None, trees[0])
    ema = EMAParamsTree(
        trees[0],
        decay,
        zero_debias=zero_debias,
        warmup_length=warmup_length,
        ignore_regex=pax_regex,
    )
    names = {
        f"['{m}']['{p}']": f"ema_params_tree/{m}__{p}"
        for m, p in (("linear", "w"), ("linear", "b"), ("linear_1", "w"))
    }
    assert sorted(state) == sorted(names[p] for p in ema.emas)
    for tree in trees:
        hk_out, state = f.apply(params, state, None, tree)
        ema, out = step(ema, tree)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6
            ),
            out,
            hk_out,
        )
        for path, sub in ema.emas.items():
            hk_state = state[names[path]]
            assert int(sub.counter) == int(hk_state["counter"])
            hidden = sub.hidden if zero_debias else sub.averages
            np.testing.assert_allclose(
                np.asarray(hidden), np.asarray(hk_state["hidden"]), rtol=1e-5
            )
    hk_out, _ = f.apply(params, state, None, trees[0], update_stats=False)
    out = ema(trees[0], update_stats=False)
    np.testing.assert_allclose(
        np.asarray(out["linear"]["w"]), np.asarray(hk_out["linear"]["w"]), rtol=1e-5
    )


# ---------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------


def test_eval_plain_call_returns_current_averages_and_changes_nothing(key):
    trees = make_trees(key, 3)
    ema = EMAParamsTree(trees[0], 0.5, ignore_regex=r".*\['b'\]")
    for tree in trees[:2]:
        ema, _ = step(ema, tree)
    ev = ema.eval()
    before = jax.tree_util.tree_leaves(ev)
    out = ev(trees[2])  # a plain call
    for got in (out, jax.jit(lambda m, t: m(t))(ev, trees[2])):
        for path in (("linear", "w"), ("scale",)):
            vals = []
            for t in trees[:2]:
                for k in path:
                    t = t[k]
                vals.append(t)
            expected = reference(vals, 0.5, True, 0)[-1]
            leaf = got
            for k in path:
                leaf = leaf[k]
            np.testing.assert_allclose(np.asarray(leaf), expected, rtol=1e-5)
        # the ignored leaf is the given one, not an average
        np.testing.assert_array_equal(got["linear"]["b"], trees[2]["linear"]["b"])
    for a, b in zip(jax.tree_util.tree_leaves(ev), before):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    after, _ = pax.purecall(ev, trees[2])  # in pure too: nothing changes
    for a, b in zip(jax.tree_util.tree_leaves(after), before):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # explicit update_stats=True overrides eval mode
    new, upd = pax.purecall(ev, trees[2], update_stats=True)
    vals = [t["scale"] for t in trees]
    np.testing.assert_allclose(
        float(upd["scale"]), reference(vals, 0.5, True, 0)[-1], rtol=1e-5
    )
    assert int(new.emas["['scale']"].counter) == 3
    # and back in training mode a call updates
    trained, _ = step(ev.train(), trees[2])
    assert int(trained.emas["['scale']"].counter) == 3


def test_training_plain_call_error_names_the_tree_not_the_inner_ema(key):
    (tree,) = make_trees(key, 1)
    ema = EMAParamsTree(tree, 0.5)
    with pytest.raises(pax.MutationError) as info:
        ema(tree)
    text = str(info.value)
    assert text.startswith("EMAParamsTree(like="), text
    assert "purecall" in text and "eval()" in text

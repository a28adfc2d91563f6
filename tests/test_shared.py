"""pax.Shared: a tied slot is never a second leaf, and every transformation
(jit, grad, pure/purecall, optax, checkpoints, state dicts) sees one array."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax

V, D = 7, 3
KEYS = jax.random.split(jax.random.PRNGKey(0), 3)
IDS = jnp.array([1, 4, 4, 6])
TARGET = jax.random.normal(jax.random.PRNGKey(5), (4, V))


def readout_t(seq):  # module level: one jit cache entry for every model
    return seq[0].weight.T


def untied():
    return pax.Sequential(
        pax.Embed(V, D, rng_key=KEYS[0]), pax.Linear(D, V, rng_key=KEYS[1])
    )


def tied():
    return pax.Shared(untied(), where=lambda s: s[1].weight, get=readout_t)


def loss_fn(model, ids, target):
    return jnp.mean((model(ids) - target) ** 2)


def n_params(m):
    return sum(x.size for x in jax.tree_util.tree_leaves(m.parameters()))


def test_the_tied_slot_is_not_a_leaf():
    net, sh = untied(), tied()
    assert len(jax.tree_util.tree_leaves(net)) == 3  # embed, weight, bias
    assert len(jax.tree_util.tree_leaves(sh)) == 2
    assert len(jax.tree_util.tree_leaves(sh.parameters())) == 2
    assert n_params(net) - n_params(sh) == V * D
    assert sh.tree[1].weight is None and sh.where == (".layers[1].weight",)
    assert list(sh.state_dict()) == [".tree.layers[0].weight", ".tree.layers[1].bias"]
    # the rebuilt tree has the slot back, as the transposed source
    full = sh.rebuild()
    np.testing.assert_array_equal(full[1].weight, sh.tree[0].weight.T)
    assert len(jax.tree_util.tree_leaves(full)) == 3


def test_string_paths_and_a_transform_give_the_same_tie():
    by_fn = tied()
    by_str = pax.Shared(untied(), where=".layers[1].weight", get=readout_t)
    assert by_str.where == by_fn.where
    np.testing.assert_array_equal(by_str(IDS), by_fn(IDS))
    # a plain dict tree, source named by path (no transform)
    tree = {"a": jnp.ones((2, 2)), "b": jnp.zeros((2, 2))}
    sh = pax.Shared(tree, where="['b']", get="['a']")
    assert jax.tree_util.tree_leaves(sh) == [tree["a"]]
    assert n_params(sh) == 4  # a plain tree's arrays are trainable
    np.testing.assert_array_equal(sh.rebuild()["b"], tree["a"])


def test_a_whole_submodule_and_several_slots():
    enc = pax.Linear(3, 3, rng_key=KEYS[0])
    tree = {"enc": enc, "dec": pax.Linear(3, 3, rng_key=KEYS[1]), "x": jnp.ones(3)}
    sh = pax.Shared(tree, where=lambda t: t["dec"], get=lambda t: t["enc"])
    assert len(jax.tree_util.tree_leaves(sh)) == 3
    assert sh.rebuild()["dec"] is sh.tree["enc"]
    # two slots at once: a sequence from `where`, one from `get`
    sh2 = pax.Shared(
        tree,
        where=lambda t: (t["dec"].weight, t["dec"].bias),
        get=lambda t: (t["enc"].weight, t["x"]),
    )
    assert len(jax.tree_util.tree_leaves(sh2)) == 3
    np.testing.assert_array_equal(sh2.rebuild()["dec"].bias, tree["x"])


def test_gradient_is_the_sum_of_both_uses_against_a_hand_computation():
    sh = tied()
    W = sh.tree[0].weight  # [V, D], the one leaf
    b = sh.tree[1].bias

    def raw(w_in, w_out):  # the tied model written with raw jnp
        logits = w_in[IDS] @ w_out.T + b[None]
        return jnp.mean((logits - TARGET) ** 2)

    hand = jax.grad(lambda w: raw(w, w))(W)
    g_in, g_out = jax.grad(raw, argnums=(0, 1))(W, W)
    np.testing.assert_allclose(hand, g_in + g_out, rtol=1e-6, atol=1e-7)

    grads = pax.grad(loss_fn)(sh, IDS, TARGET)
    assert grads.tree[1].weight is None  # no gradient slot for the copy
    g = grads.tree[0].weight
    np.testing.assert_allclose(g, hand, rtol=1e-5, atol=1e-6)
    # both uses contribute: the gradient is neither use alone
    assert not np.allclose(g, g_in, atol=1e-4)
    assert not np.allclose(g, g_out, atol=1e-4)
    # raw jax.grad (every leaf is float) agrees
    raw_grads = jax.grad(loss_fn)(sh, IDS, TARGET)
    np.testing.assert_allclose(raw_grads.tree[0].weight, hand, rtol=1e-5, atol=1e-6)


def test_jit_gives_the_eager_outputs_and_rebuilds_from_the_traced_leaf():
    sh = tied()
    eager = sh(IDS)
    np.testing.assert_allclose(
        jax.jit(lambda m, x: m(x))(sh, IDS), eager, rtol=1e-6, atol=1e-6
    )
    # a changed source, passed through jit, changes both uses
    bumped = sh.replace(
        tree=sh.tree.replace_node(sh.tree[0].weight, sh.tree[0].weight + 1)
    )
    w = jax.jit(lambda m: m.rebuild()[1].weight)(bumped)
    np.testing.assert_allclose(w, (sh.tree[0].weight + 1).T)


def test_one_optax_step_moves_both_uses_identically():
    sh = tied()
    opt = pax.optim.from_optax(optax.sgd(0.5, momentum=0.9), sh.parameters())

    @jax.jit
    def step(model, opt):
        grads = pax.grad(loss_fn)(model, IDS, TARGET)
        opt, updates = pax.purecall(opt, grads, model.parameters())
        return pax.apply_updates(model, updates), opt, grads

    new, opt, grads = step(sh, opt)
    w0, w1 = sh.tree[0].weight, new.tree[0].weight
    np.testing.assert_allclose(w1, w0 - 0.5 * grads.tree[0].weight, rtol=1e-6)
    assert not np.allclose(w1, w0)
    rebuilt = new.rebuild()
    np.testing.assert_array_equal(rebuilt[1].weight, w1.T)  # the output follows
    np.testing.assert_array_equal(rebuilt[0].weight, w1)
    assert new.tree[1].weight is None
    # the optimizer state holds one momentum for the one matrix, none for the copy
    shapes = [np.shape(x) for x in jax.tree_util.tree_leaves(opt)]
    assert shapes.count((V, D)) == 1 and (D, V) not in shapes


class Noisy(pax.Module):
    """A stateful module (a counter) with a weight to tie."""

    parameters = pax.parameters_method("w", "v")

    def __init__(self):
        super().__init__()
        self.w = jnp.arange(4.0).reshape(2, 2)
        self.v = jnp.zeros((2, 2))
        self.calls = jnp.array(0)

    def __call__(self, x):
        self.calls = self.calls + 1
        return x @ self.w + x @ self.v


def test_pure_and_purecall_keep_state_changes_and_the_tie():
    sh = pax.Shared(Noisy(), where=".v", get=lambda m: m.w.T)
    x = jnp.ones((1, 2))
    with pytest.raises(pax.MutationError):
        sh(x)  # stateful: needs pure, as the tree's own call
    new, y = pax.purecall(sh, x)
    np.testing.assert_allclose(y, x @ sh.tree.w + x @ sh.tree.w.T)
    assert int(new.tree.calls) == 1 and int(sh.tree.calls) == 0
    assert new.tree.v is None  # still tied after the write-back
    assert len(jax.tree_util.tree_leaves(new)) == 2

    @pax.pure
    def twice(m, x):
        m(x)
        m(x)
        return m

    assert int(twice(sh, x).tree.calls) == 2
    jitted, y_jit = jax.jit(pax.purecall)(sh, x)
    np.testing.assert_allclose(y_jit, y)
    assert int(jitted.tree.calls) == 1 and jitted.tree.v is None


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_checkpoints_hold_one_copy_and_keep_the_tie(tmp_path, fmt):
    sh = tied()
    trained = sh.replace(
        tree=sh.tree.replace_node(sh.tree[0].weight, sh.tree[0].weight * 3)
    )
    if fmt == "npz":
        path = tmp_path / "m.npz"
        pax.save(path, trained)
        keys = {k for k in np.load(path).files if not k.startswith("__")}
        loaded = pax.load(path, tied())
    else:
        from safetensors.numpy import load_file

        path = tmp_path / "m.safetensors"
        pax.save_safetensors(path, trained)
        keys = set(load_file(path))
        loaded = pax.load_safetensors(path, tied())
    assert keys == {".tree.layers[0].weight", ".tree.layers[1].bias"}
    np.testing.assert_array_equal(loaded.tree[0].weight, trained.tree[0].weight)
    np.testing.assert_array_equal(loaded.rebuild()[1].weight, trained.tree[0].weight.T)
    # both uses still derive from the one loaded array
    moved = loaded.replace(
        tree=loaded.tree.replace_node(loaded.tree[0].weight, jnp.zeros((V, D)))
    )
    np.testing.assert_array_equal(moved.rebuild()[1].weight, jnp.zeros((D, V)))
    # state dicts: the same keys, same round trip
    again = tied().load_state_dict(trained.state_dict())
    np.testing.assert_array_equal(again(IDS), trained(IDS))


def test_errors_name_the_module_at_construction():
    net = untied()
    with pytest.raises(
        ValueError, match=r"pax.Shared\(Sequential\): `where` selects nothing"
    ):
        pax.Shared(net, where=lambda s: None, get=readout_t)
    with pytest.raises(
        ValueError, match=r"pax.Shared\(Sequential\): `where` selects nothing"
    ):
        pax.Shared(net, where=lambda s: (), get=readout_t)
    with pytest.raises(ValueError, match=r"`where` path '.nope' selects nothing"):
        pax.Shared(net, where=".nope", get=readout_t)
    with pytest.raises(ValueError, match="not compute new values"):
        pax.Shared(net, where=lambda s: s[1].weight.T, get=readout_t)
    with pytest.raises(
        ValueError,
        match=r"pax.Shared\(Sequential\): `get` gives float32\[7, 3\] for the tied "
        r"slot `.layers\[1\].weight`, which holds float32\[3, 7\]",
    ):
        pax.Shared(net, where=lambda s: s[1].weight, get=lambda s: s[0].weight)
    with pytest.raises(ValueError, match="holds float32"):  # dtype differs
        pax.Shared(
            net,
            where=lambda s: s[1].weight,
            get=lambda s: s[0].weight.T.astype(jnp.float16),
        )
    with pytest.raises(ValueError, match="tied slots are None"):  # reads the slot
        pax.Shared(net, where=lambda s: s[1].weight, get=lambda s: s[1].weight)
    with pytest.raises(ValueError, match="not nested"):
        pax.Shared(net, where=lambda s: (s[1], s[1].weight), get=lambda s: (s[1], s[0]))
    with pytest.raises(ValueError, match="2 value"):
        pax.Shared(
            net, where=lambda s: [s[1].weight], get=lambda s: (readout_t(s),) * 2
        )
    with pytest.raises(TypeError, match="`where` must be a function"):
        pax.Shared(net, where=3, get=readout_t)

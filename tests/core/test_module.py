"""pax.Module: pytree registration, inspection and functional updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax._core import module as module_impl

from .modules import Affine, Chain, Counter, Stats


def leaves_with_keys(tree):
    pairs = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in pairs}


# -- pytree structure ---------------------------------------------------------


def test_arrays_are_leaves_and_hyperparameters_are_static(key):
    f = Affine(2, 3, rng_key=key)
    leaves = leaves_with_keys(f)
    assert list(leaves) == [".weight", ".bias"]
    assert leaves[".weight"] is f.weight
    # in_dim / out_dim / name / training are aux data: changing them changes
    # the treedef, not the leaves.
    assert jax.tree_util.tree_structure(f) != jax.tree_util.tree_structure(
        f.replace(in_dim=5)
    )


def test_unflatten_round_trip_keeps_values_and_type(key):
    f = Affine(2, 3, rng_key=key)
    leaves, treedef = jax.tree_util.tree_flatten(f)
    g = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(g) is Affine and g is not f
    assert g.in_dim == 2 and g.out_dim == 3
    np.testing.assert_array_equal(g.weight, f.weight)


def test_modules_inside_lists_tuples_and_dicts_are_found(key):
    k1, k2, k3 = jax.random.split(key, 3)

    class Holder(pax.Module):
        def __init__(self):
            super().__init__()
            self.as_list = [Affine(1, 2, rng_key=k1)]
            self.as_tuple = (Affine(2, 2, rng_key=k2),)
            self.as_dict = {"a": Affine(2, 1, rng_key=k3), "b": jnp.ones(())}

    keys = list(leaves_with_keys(Holder()))
    assert keys == [
        ".as_list[0].weight",
        ".as_list[0].bias",
        ".as_tuple[0].weight",
        ".as_tuple[0].bias",
        ".as_dict['a'].weight",
        ".as_dict['a'].bias",
        ".as_dict['b']",
    ]


def test_container_mixing_modules_and_functions(key):
    net = Chain(Affine(2, 3, rng_key=key), jax.nn.relu, Affine(3, 1, rng_key=key))
    keys = list(leaves_with_keys(net))
    # Paths use the real list index (the function sits at index 1).
    assert keys == [
        ".layers[0].weight",
        ".layers[0].bias",
        ".layers[2].weight",
        ".layers[2].bias",
    ]
    copy = jax.tree_util.tree_map(lambda x: x, net)
    assert copy.layers[1] is jax.nn.relu
    assert isinstance(copy.layers, list) and len(copy.layers) == 3
    x = jnp.ones((4, 2))
    w0, b0 = net.layers[0].weight, net.layers[0].bias
    w2, b2 = net.layers[2].weight, net.layers[2].bias
    expected = jnp.maximum(x @ w0 + b0[None, :], 0.0) @ w2 + b2[None, :]
    np.testing.assert_allclose(jax.jit(lambda m, x: m(x))(net, x), expected, rtol=1e-6)


def test_classification_is_not_repeated_on_flatten(monkeypatch, key):
    net = Chain(Affine(2, 3, rng_key=key), jnp.tanh, Affine(3, 1, rng_key=key))

    def fail(value):
        raise AssertionError("attribute classified during flatten/unflatten")

    monkeypatch.setattr(module_impl, "_classify", fail)
    leaves, treedef = jax.tree_util.tree_flatten(net)
    jax.tree_util.tree_unflatten(treedef, leaves)
    jax.tree_util.tree_flatten_with_path(net)
    out = jax.jit(lambda m, x: m(x))(net, jnp.ones((1, 2)))
    assert out.shape == (1, 1)


def test_unflattened_modules_share_one_spec(key):
    f = Affine(2, 3, rng_key=key)
    g = jax.tree_util.tree_map(lambda x: x + 1, f)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(f)
    assert module_impl._get_spec(g) is module_impl._get_spec(f)


def test_shared_submodule_becomes_two_leaves_after_round_trip(key):
    shared = Affine(2, 2, rng_key=key)
    net = Chain(shared, shared)
    assert net.layers[0] is net.layers[1]
    assert len(jax.tree_util.tree_leaves(net)) == 4  # counted twice
    copy = jax.tree_util.tree_map(lambda x: x, net)
    assert copy.layers[0] is not copy.layers[1]
    bumped = jax.tree_util.tree_map(lambda x: x + 1, net)
    np.testing.assert_array_equal(bumped.layers[0].weight, bumped.layers[1].weight)


def test_none_and_scalars_and_strings_are_static(key):
    f = Affine(2, 3, with_bias=False, rng_key=key, name="fc")
    assert f.bias is None and f.name == "fc"
    assert list(leaves_with_keys(f)) == [".weight"]


# -- trainable parameters -------------------------------------------------------


def test_parameters_keeps_trainable_and_blanks_state():
    s = Stats(3)
    p = s.parameters()
    assert type(p) is Stats
    assert p.mean is None
    np.testing.assert_array_equal(p.scale, s.scale)
    assert jax.tree_util.tree_leaves(p) == [p.scale]


def test_parameters_classify_abstract_and_mapped_leaves_like_arrays():
    # jax.eval_shape gives ShapeDtypeStruct leaves, tree_map arbitrary ones:
    # the trainable/state split must not depend on the leaves being arrays
    abstract = jax.eval_shape(lambda: Stats(3))
    p = abstract.parameters()
    assert p.mean is None and p.scale.shape == (3,)
    assert len(jax.tree_util.tree_leaves(p)) == 1
    labels = jax.tree_util.tree_map(lambda x: "leaf", Stats(3))
    assert jax.tree_util.tree_leaves(labels.parameters()) == ["leaf"]


def test_parameters_of_plain_module_come_from_submodules(key):
    net = Chain(Affine(2, 3, rng_key=key), Counter())
    p = net.parameters()
    assert p.layers[1].count is None
    assert list(leaves_with_keys(p)) == [".layers[0].weight", ".layers[0].bias"]


def test_parameter_and_state_modules_decide_for_their_own_arrays(key):
    class AllTrainable(pax.ParameterModule):
        def __init__(self):
            super().__init__()
            self.w = jnp.ones((2,))
            self.counter = Counter()  # keeps its own rule: state

    class AllState(pax.StateModule):
        def __init__(self):
            super().__init__()
            self.m = jnp.ones((2,))
            self.fc = Affine(1, 1, rng_key=key)  # keeps its own rule

    p = AllTrainable().parameters()
    assert p.w is not None and p.counter.count is None
    q = AllState().parameters()
    assert q.m is None and q.fc.weight is not None


def test_update_parameters_replaces_trainable_leaves_only():
    s = Stats(2)
    s = s.replace(mean=jnp.array([5.0, 6.0]))
    p = jax.tree_util.tree_map(lambda x: x * 3, s.parameters())
    t = s.update_parameters(p)
    np.testing.assert_array_equal(t.scale, jnp.array([3.0, 3.0]))
    np.testing.assert_array_equal(t.mean, jnp.array([5.0, 6.0]))
    np.testing.assert_array_equal(s.scale, jnp.ones(2))  # original untouched


def test_update_parameters_accepts_params_from_other_mode():
    s = Stats(2)
    p = s.eval().parameters()
    assert s.update_parameters(p).training


def test_update_parameters_with_other_structure_names_the_path(key):
    net = Chain(Affine(2, 3, rng_key=key), Affine(3, 1, rng_key=key))
    other = Chain(Affine(2, 3, rng_key=key), Affine(3, 1, with_bias=False, rng_key=key))
    with pytest.raises(ValueError, match=r"\.layers\[1\]\.bias"):
        net.update_parameters(other.parameters())


def test_update_parameters_with_wrong_shape_names_the_path(key):
    f = Affine(2, 3, rng_key=key)
    bad = f.parameters().replace(bias=jnp.zeros((4,)))
    with pytest.raises(ValueError, match=r"`\.bias` has shape \(4,\).*expected \(3,\)"):
        f.update_parameters(bad)


def test_declared_parameter_not_set_in_init_fails_early():
    class Broken(pax.Module):
        parameters = pax.parameters_method("w", "b")

        def __init__(self):
            super().__init__()
            self.w = jnp.ones(())

    with pytest.raises(ValueError, match="did not set `b`"):
        Broken()


def test_parameters_method_rejects_non_strings():
    with pytest.raises(TypeError, match="attribute names"):
        pax.parameters_method(3)


# -- immutability ---------------------------------------------------------------


def test_assignment_after_init_raises_with_the_fix(key):
    f = Affine(2, 3, rng_key=key)
    with pytest.raises(pax.MutationError, match="pax.pure") as info:
        f.weight = jnp.zeros((2, 3))
    message = str(info.value)
    assert "pax.purecall" in message and "replace" in message
    assert isinstance(info.value, AttributeError)
    with pytest.raises(pax.MutationError):
        del f.weight
    with pytest.raises(pax.MutationError):
        f.new_attribute = 1


def test_stateful_call_outside_pure_raises_but_stateless_call_works(key):
    with pytest.raises(pax.MutationError, match="purecall"):
        Counter()(jnp.ones(()))
    f = Affine(2, 3, rng_key=key)
    assert f(jnp.ones((1, 2))).shape == (1, 3)
    stats = Stats(2).eval()
    np.testing.assert_array_equal(stats(jnp.ones((3, 2))), jnp.ones((3, 2)))


# -- functional updates ---------------------------------------------------------


def test_replace_returns_new_module_and_leaves_original(key):
    f = Affine(2, 3, rng_key=key)
    g = f.replace(bias=jnp.ones((3,)))
    np.testing.assert_array_equal(g.bias, jnp.ones(3))
    np.testing.assert_array_equal(f.bias, jnp.zeros(3))
    assert g.weight is f.weight
    with pytest.raises(pax.MutationError):
        g.bias = None  # the result is immutable too


def test_replace_unknown_attribute_raises(key):
    f = Affine(2, 3, rng_key=key)
    with pytest.raises(ValueError, match="unknown attribute `wieght`"):
        f.replace(wieght=jnp.ones((2, 3)))
    with pytest.raises(AttributeError):
        f.replace(wieght=1)


def test_replace_can_turn_static_into_leaf_and_back(key):
    f = Affine(2, 3, with_bias=False, rng_key=key)
    g = f.replace(bias=jnp.ones((3,)))
    assert list(leaves_with_keys(g)) == [".weight", ".bias"]
    h = g.replace(bias=None)
    assert list(leaves_with_keys(h)) == [".weight"]


def test_set_attribute_adds_a_new_attribute(key):
    f = Affine(2, 3, rng_key=key)
    g = f.set_attribute("extra", jnp.arange(2))
    assert ".extra" in leaves_with_keys(g)
    assert not hasattr(f, "extra")


def test_replace_node_swaps_a_submodule(key):
    k1, k2, k3 = jax.random.split(key, 3)
    net = Chain(Affine(2, 3, rng_key=k1), Affine(3, 4, rng_key=k2))
    new_last = Affine(3, 5, rng_key=k3)
    out = net.replace_node(net.layers[-1], new_last)
    assert out.layers[1] is new_last and net.layers[1].out_dim == 4
    assert out(jnp.ones((1, 2))).shape == (1, 5)
    with pytest.raises(ValueError, match="not part of this module"):
        net.replace_node(new_last, new_last)


def test_train_and_eval_apply_to_every_submodule(key):
    net = Chain(Stats(2), Chain(Stats(2)))
    assert net.training and net.layers[1].layers[0].training
    ev = net.eval()
    assert not ev.training
    assert not ev.layers[0].training and not ev.layers[1].layers[0].training
    assert net.layers[0].training  # original untouched
    assert ev.train().layers[1].layers[0].training
    assert pax.enable_eval_mode(net).layers[0].training is False
    assert pax.enable_train_mode(ev).layers[0].training is True
    # mode is static: it is part of the treedef (jit recompiles per mode)
    assert jax.tree_util.tree_structure(ev) != jax.tree_util.tree_structure(net)


def test_apply_visits_bottom_up(key):
    net = Chain(Affine(1, 1, rng_key=key), Chain(Counter()))
    visited = []

    def record(m):
        visited.append(type(m).__name__)
        return m

    net.apply(record)
    assert visited == ["Affine", "Counter", "Chain", "Chain"]
    zeroed = net.apply(
        lambda m: (
            m.replace(weight=jnp.zeros_like(m.weight)) if isinstance(m, Affine) else m
        )
    )
    np.testing.assert_array_equal(zeroed.layers[0].weight, jnp.zeros((1, 1)))


def test_map_and_copy(key):
    f = Affine(2, 3, rng_key=key)
    doubled = f.map(lambda x: 2 * x)
    np.testing.assert_allclose(doubled.weight, 2 * f.weight)
    summed = f.map(lambda a, b: a + b, doubled)
    np.testing.assert_allclose(summed.weight, 3 * f.weight)
    c = f.copy()
    assert c is not f and type(c) is Affine
    assert jax.tree_util.tree_structure(c) == jax.tree_util.tree_structure(f)


# -- inspection -------------------------------------------------------------------


def test_repr_shows_constructor_arguments(key):
    assert (
        repr(Affine(2, 3, rng_key=key)) == "Affine(in_dim=2, out_dim=3, with_bias=True)"
    )
    assert (
        repr(Affine(2, 3, False, name="fc", rng_key=key))
        == "Affine(in_dim=2, out_dim=3, with_bias=False, name='fc')"
    )
    assert repr(Chain()) == "Chain"


def test_summary_draws_the_tree(key):
    net = Chain(
        Affine(2, 3, rng_key=key),
        Chain(Affine(3, 3, rng_key=key), Counter(start=1)),
        Affine(3, 1, rng_key=key),
    )
    assert net.summary() == "\n".join(
        [
            "Chain",
            "├── Affine(in_dim=2, out_dim=3, with_bias=True)",
            "├── Chain",
            "│   ├── Affine(in_dim=3, out_dim=3, with_bias=True)",
            "│   └── Counter(start=1)",
            "└── Affine(in_dim=3, out_dim=1, with_bias=True)",
        ]
    )


def test_submodules_are_direct_children_in_order(key):
    a, b = Affine(1, 1, rng_key=key), Counter()
    inner = Chain(b)
    net = Chain(a, jnp.tanh, inner)
    assert net.submodules() == [a, inner]


def test_name_and_training_defaults(key):
    f = Affine(1, 1, rng_key=key)
    assert f.name is None and f.training is True


# -- state dicts --------------------------------------------------------------------


def test_state_dict_round_trip(key):
    net = Chain(Affine(2, 3, rng_key=key), Stats(3))
    sd = net.state_dict()
    assert list(sd) == [
        ".layers[0].weight",
        ".layers[0].bias",
        ".layers[1].scale",
        ".layers[1].mean",
    ]
    new_sd = {k: v + 1 for k, v in sd.items()}
    loaded = net.load_state_dict(new_sd)
    np.testing.assert_array_equal(loaded.layers[0].weight, net.layers[0].weight + 1)
    np.testing.assert_array_equal(loaded.layers[1].mean, jnp.ones(3))


def test_load_state_dict_errors_name_the_path(key):
    net = Chain(Affine(2, 3, rng_key=key))
    sd = net.state_dict()
    missing = {k: v for k, v in sd.items() if k != ".layers[0].bias"}
    with pytest.raises(ValueError, match=r"missing entry `\.layers\[0\]\.bias`"):
        net.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected entry `\.extra`"):
        net.load_state_dict({**sd, ".extra": jnp.ones(())})
    bad_shape = {**sd, ".layers[0].weight": jnp.ones((3, 2))}
    with pytest.raises(ValueError, match=r"shape \(3, 2\), expected \(2, 3\)"):
        net.load_state_dict(bad_shape)
    bad_dtype = {**sd, ".layers[0].bias": jnp.zeros((3,), jnp.int32)}
    with pytest.raises(ValueError, match="dtype int32, expected float32"):
        net.load_state_dict(bad_dtype)


def test_copy_module_protocols(key):
    import copy

    f = Affine(2, 3, rng_key=key)
    for c in (copy.copy(f), copy.deepcopy(f)):
        assert type(c) is Affine and c is not f
        np.testing.assert_array_equal(c.weight, f.weight)
        with pytest.raises(pax.MutationError):
            c.weight = None


def test_base_module_is_a_pytree():
    m = pax.Module()
    assert jax.tree_util.tree_leaves(m) == []
    assert type(jax.tree_util.tree_map(lambda x: x, m)) is pax.Module


def test_repr_summarises_arrays_inside_container_arguments():
    class Holder(pax.Module):
        def __init__(self, tree, n=3):
            super().__init__()
            self.tree = tree

    big = jnp.arange(1000.0).reshape(10, 100)
    text = repr(Holder({"a": big, "b": [jnp.zeros(2, jnp.int32), "x"]}))
    assert text == "Holder(tree={'a': float32[10, 100], 'b': [int32[2], 'x']}, n=3)"


def test_signature_of_a_module_class_is_its_constructors():
    import inspect

    sig = inspect.signature(Affine)
    init = inspect.signature(Affine.__init__)
    assert list(sig.parameters) == list(init.parameters)[1:]  # without self
    assert sig.parameters["rng_key"].default is None
    assert "*args" not in str(inspect.signature(pax.nn.Linear))
    assert list(inspect.signature(pax.nn.Linear).parameters)[:2] == [
        "in_dim",
        "out_dim",
    ]


def test_core_exceptions_are_named_from_the_pax_namespace():
    for cls in (pax.MutationError, pax.LeakedTracerError, pax.UnknownAttributeError):
        assert cls.__module__ == "pax" and getattr(pax, cls.__name__) is cls
        assert repr(cls) == f"<class 'pax.{cls.__name__}'>"

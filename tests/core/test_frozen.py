"""Deep immutability: containers a module holds are frozen (DESIGN §8)."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax._core.frozen import FrozenDict, FrozenList


class Configured(pax.Module):
    def __init__(self):
        super().__init__()
        self.cfg = {"act": jax.nn.relu, "w": jnp.array([1.0, 2.0, 3.0])}
        self.layers = [pax.Linear(3, 3, rng_key=jax.random.PRNGKey(0)), jnp.tanh]
        self.static_cfg = {"sizes": [1, 2], "names": {"a", "b"}}
        self.pair = (jnp.zeros(()), [jnp.ones(())])

    def __call__(self, x):
        return self.cfg["act"](x * self.cfg["w"])


X = jnp.array([-1.0, 0.5, 2.0])


def test_a_dict_attribute_cannot_be_changed_in_place():
    m = Configured()
    with pytest.raises(pax.MutationError, match="frozen"):
        m.cfg["act"] = jnp.tanh
    for change in (
        lambda d: d.update(act=jnp.tanh),
        lambda d: d.pop("act"),
        lambda d: d.setdefault("new", 1),
        lambda d: d.clear(),
        lambda d: d.__delitem__("w"),
        lambda d: d.popitem(),
    ):
        with pytest.raises(pax.MutationError):
            change(m.cfg)
    # nothing changed, and eager agrees with jit
    assert m.cfg["act"] is jax.nn.relu
    expected = jnp.maximum(X * jnp.array([1.0, 2.0, 3.0]), 0.0)
    np.testing.assert_array_equal(m(X), expected)
    np.testing.assert_array_equal(jax.jit(lambda m, x: m(x))(m, X), expected)


def test_lists_nested_containers_and_sets_are_frozen():
    m = Configured()
    for change in (
        lambda xs: xs.append(1),
        lambda xs: xs.extend([1]),
        lambda xs: xs.insert(0, 1),
        lambda xs: xs.__setitem__(0, 1),
        lambda xs: xs.__delitem__(0),
        lambda xs: xs.sort(),
        lambda xs: xs.reverse(),
        lambda xs: xs.pop(),
        lambda xs: xs.clear(),
        lambda xs: xs.remove(xs[0]),
    ):
        with pytest.raises(pax.MutationError):
            change(m.layers)
    with pytest.raises(pax.MutationError):
        m.static_cfg["sizes"].append(3)  # a list inside a static dict
    with pytest.raises(pax.MutationError):
        m.pair[1].append(1)  # a list inside a tuple
    assert isinstance(m.static_cfg["names"], frozenset)
    assert len(m.layers) == 2 and m.static_cfg["sizes"] == [1, 2]


def test_frozen_containers_still_look_like_lists_and_dicts():
    m = Configured()
    assert isinstance(m.layers, list) and isinstance(m.cfg, dict)
    assert m.static_cfg["sizes"] == [1, 2] and m.static_cfg["sizes"] + [3] == [1, 2, 3]
    mutable = list(m.layers)
    mutable.append(1)  # a copy is an ordinary list
    assert len(mutable) == 3 and len(m.layers) == 2
    d = m.cfg.copy()
    d["extra"] = 1
    assert type(d) is dict and "extra" not in m.cfg


def test_replace_never_shares_a_mutable_container():
    m = Configured()
    m2 = m.replace()
    with pytest.raises(pax.MutationError):
        m2.cfg["act"] = jnp.tanh
    new_cfg = {"act": jnp.tanh, "w": jnp.ones(3)}
    m3 = m.replace(cfg=new_cfg)
    new_cfg["act"] = jax.nn.relu  # the caller's dict stays the caller's
    assert m3.cfg["act"] is jnp.tanh
    with pytest.raises(pax.MutationError):
        m3.cfg["w"] = 0
    m4 = m.set_attribute("extra", [1, 2])
    with pytest.raises(pax.MutationError):
        m4.extra.append(3)


def test_key_paths_and_leaf_order_are_those_of_plain_containers():
    m = Configured()
    keys = list(m.state_dict())
    assert keys == [
        ".cfg['w']",
        ".layers[0].weight",
        ".layers[0].bias",
        ".pair[0]",
        ".pair[1][0]",
    ]
    plain = {"b": jnp.zeros(1), "a": jnp.ones(1)}
    frozen = FrozenDict(plain)
    paths_plain = jax.tree_util.tree_flatten_with_path(plain)[0]
    paths_frozen = jax.tree_util.tree_flatten_with_path(frozen)[0]
    assert [jax.tree_util.keystr(p) for p, _ in paths_plain] == [
        jax.tree_util.keystr(p) for p, _ in paths_frozen
    ]
    again = jax.tree_util.tree_map(lambda x: x, frozen)
    assert type(again) is FrozenDict and list(again) == ["b", "a"]  # order kept
    lst = jax.tree_util.tree_map(lambda x: x + 1, FrozenList([jnp.zeros(1)]))
    assert type(lst) is FrozenList and float(lst[0][0]) == 1.0


def test_round_trips_keep_containers_frozen(tmp_path):
    m = Configured()
    for again in (
        jax.tree_util.tree_map(lambda x: x, m),
        jax.jit(lambda m: m)(m),
        copy.deepcopy(m),
        copy.copy(m),
        m.parameters(),
    ):
        assert type(again.cfg) is FrozenDict and type(again.layers) is FrozenList
    pax.save(tmp_path / "m.npz", m)
    loaded = pax.load(tmp_path / "m.npz", like=m)
    np.testing.assert_array_equal(loaded.cfg["w"], m.cfg["w"])
    with pytest.raises(pax.MutationError):
        loaded.cfg["w"] = 0


def test_containers_assigned_inside_pure_are_frozen_afterwards():
    @pax.pure
    def f(m):
        m.cfg = {"act": jnp.tanh, "w": m.cfg["w"] * 2}
        with pytest.raises(pax.MutationError):
            m.layers.append(1)  # in place, even inside pure: assign a new one
        m.layers = [*m.layers, jax.nn.relu]
        return m

    m = f(Configured())
    assert m.cfg["act"] is jnp.tanh and len(m.layers) == 3
    with pytest.raises(pax.MutationError):
        m.cfg["act"] = jax.nn.relu
    with pytest.raises(pax.MutationError):
        m.layers.append(1)
    np.testing.assert_array_equal(
        jax.jit(lambda m, x: m(x))(m, X), jnp.tanh(X * jnp.array([2.0, 4.0, 6.0]))
    )


def test_numpy_array_attributes_are_read_only_copies():
    class Holder(pax.Module):
        def __init__(self, w):
            super().__init__()
            self.w = w

    w = np.array([1.0, 2.0])
    m = Holder(w)
    w[0] = 100.0  # the caller's array is the caller's
    assert m.w[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        m.w[0] = 5.0


def test_thaw_gives_plain_containers_for_tree_maps_with_plain_trees():
    m = Configured()
    plain = {"act": 0, "w": jnp.zeros(3)}
    with pytest.raises(ValueError):
        jax.tree_util.tree_map(lambda a, b: a, m.cfg, plain)  # structures differ
    thawed = pax.thaw(m.cfg)
    assert type(thawed) is dict
    out = jax.tree_util.tree_map(lambda a, b: b, thawed, plain)
    assert out["w"] is plain["w"]
    nested = pax.thaw(m.pair)
    assert type(nested) is tuple and type(nested[1]) is list
    assert pax.thaw(m.layers)[0] is m.layers[0]  # modules are kept as they are

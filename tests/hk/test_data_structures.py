"""Parity of ``pax.hk.data_structures`` with dm-haiku's ``hk.data_structures``."""

import collections
import pickle

import haiku as hk_ref
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax.hk import data_structures as ds
from pax.hk.data_structures import BucketIndexError, FlatMap

ref = hk_ref.data_structures


def make_params():
    """Unsorted keys at both levels, arrays of several dtypes and plain values."""
    return {
        "mlp/~/linear_1": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)},
        "mlp/~/linear_0": {"w": jnp.ones((4, 3), jnp.bfloat16), "b": jnp.zeros(3)},
        "counter": {"n": np.int32(7), "tag": "text"},
        "empty": {},
    }


def assert_same(actual, expected):
    """Same types, same key order at every level, same leaves (by identity)."""
    assert type(actual) is type(expected), (type(actual), type(expected))
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for k in expected:
            assert_same(actual[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same(a, e)
    else:
        assert actual is expected


PREDICATES = [
    lambda m, n, v: n == "w",
    lambda m, n, v: m.startswith("mlp"),
    lambda m, n, v: hasattr(v, "dtype") and v.dtype == jnp.bfloat16,
    lambda m, n, v: False,
    lambda m, n, v: True,
]


@pytest.mark.parametrize("predicate", PREDICATES)
def test_filter_and_partition(predicate):
    params = make_params()
    assert_same(ds.filter(predicate, params), ref.filter(predicate, params))
    assert_same(ds.partition(predicate, params), ref.partition(predicate, params))


def test_filter_returns_fresh_dicts():
    params = make_params()
    out = ds.filter(lambda m, n, v: True, params)
    assert out is not params
    assert out["counter"] is not params["counter"]
    assert list(out) == ["counter", "mlp/~/linear_0", "mlp/~/linear_1"]  # sorted


def test_partition_n():
    params = make_params()
    buckets = {"counter": 2, "mlp/~/linear_0": 0, "mlp/~/linear_1": 1}
    fn = lambda m, n, v: buckets[m] if n != "b" else 3
    out = ds.partition_n(fn, params, 4)
    assert len(out) == 4
    assert_same(out, ref.partition_n(fn, params, 4))
    assert out[3] == {
        "mlp/~/linear_0": {"b": params["mlp/~/linear_0"]["b"]},
        "mlp/~/linear_1": {"b": params["mlp/~/linear_1"]["b"]},
    }


@pytest.mark.parametrize("bad", [-1, 2, 5])
def test_partition_n_bad_index(bad):
    params = make_params()
    fn = lambda m, n, v: bad
    with pytest.raises(AssertionError) as expected:
        ref.partition_n(fn, params, 2)
    with pytest.raises(AssertionError) as actual:
        ds.partition_n(fn, params, 2)
    assert str(actual.value) == str(expected.value) == f"{bad} must be in range [0, 2)"
    assert isinstance(actual.value, ValueError)
    assert isinstance(actual.value, BucketIndexError)


def test_map():
    params = make_params()
    fn = lambda m, n, v: (m, n, v)
    out = ds.map(fn, params)
    assert out == ref.map(fn, params)  # tuples compare by identity of leaves
    assert_same(out, ref.map(fn, params))
    assert list(out["counter"]) == ["n", "tag"]  # sorted, not insertion order


def test_merge_order_and_last_wins():
    a = {"z": {"w": 1, "b": 2}, "a": {"x": 3}}
    b = {"m": {"k": 4}, "z": {"c": 5, "w": 6}}
    for structures in [(a, b), (b, a), (a,), (), (a, b, a)]:
        assert_same(ds.merge(*structures), ref.merge(*structures))
    assert ds.merge(a, b) == {
        "a": {"x": 3},
        "z": {"b": 2, "w": 6, "c": 5},
        "m": {"k": 4},
    }
    assert list(ds.merge(a, b)["z"]) == ["b", "w", "c"]


def test_merge_check_duplicates():
    same = ({"l": {"w": jnp.ones(2)}}, {"l": {"w": jnp.zeros(2)}})
    out = ds.merge(*same, check_duplicates=True)
    assert_same(out, ref.merge(*same, check_duplicates=True))
    assert out["l"]["w"] is same[1]["l"]["w"]
    # Plain values never clash with each other.
    assert ds.merge({"l": {"w": 1}}, {"l": {"w": "x"}}, check_duplicates=True) == {
        "l": {"w": "x"}
    }

    clashes = [
        ({"l": {"w": jnp.ones(2)}}, {"l": {"w": jnp.ones(3, jnp.int32)}}),
        ({"l": {"w": jnp.ones(2)}}, {"l": {"w": jnp.ones(2, jnp.bfloat16)}}),
        ({"l": {"w": 1}}, {"l": {"w": np.ones((2, 3), np.uint8)}}),
        ({"l": {"w": jnp.ones((1, 2), jnp.complex64)}}, {"l": {"w": None}}),
    ]
    for first, second in clashes:
        with pytest.raises(ValueError) as expected:
            ref.merge(first, second, check_duplicates=True)
        with pytest.raises(ValueError) as actual:
            ds.merge(first, second, check_duplicates=True)
        assert str(actual.value) == str(expected.value)
        assert "Duplicate array found" in str(actual.value)
        # Without the check the last one wins.
        assert ds.merge(first, second)["l"]["w"] is second["l"]["w"]


def test_traverse():
    params = make_params()
    assert list(ds.traverse(params)) == list(ref.traverse(params))
    assert [(m, n) for m, n, _ in ds.traverse(params)] == [
        ("counter", "n"),
        ("counter", "tag"),
        ("mlp/~/linear_0", "b"),
        ("mlp/~/linear_0", "w"),
        ("mlp/~/linear_1", "b"),
        ("mlp/~/linear_1", "w"),
    ]


@pytest.mark.parametrize(
    "subset, superset",
    [
        ({"a": {}}, {}),
        ({}, {"a": {"w": 1}}),
        ({"a": {"w": 1}}, {"a": {"w": 2, "b": 3}}),
        ({"a": {"w": 1, "b": 1}}, {"a": {"w": 2}}),
        ({"a": {"w": 1}}, {"b": {"w": 1}}),
        ({"a": {"w": 1}}, {"a": {}}),
    ],
)
def test_is_subset(subset, superset):
    expected = ref.is_subset(subset=subset, superset=superset)
    assert ds.is_subset(subset=subset, superset=superset) is expected
    with pytest.raises(TypeError):
        ds.is_subset(subset, superset)  # keyword-only, as in Haiku


def test_tree_size_and_bytes():
    params = make_params()
    del params["counter"]["tag"]
    assert ds.tree_size(params) == ref.tree_size(params) == 6 + 2 + 12 + 3 + 1
    assert ds.tree_bytes(params) == ref.tree_bytes(params) == 4 * 11 + 2 * 12 + 4
    assert ds.tree_size({}) == ds.tree_bytes({}) == 0
    assert type(ds.tree_size(params)) is type(ref.tree_size(params)) is int
    with pytest.raises(AttributeError):
        ref.tree_size({"a": 1.0})
    with pytest.raises(AttributeError):
        ds.tree_size({"a": 1.0})


def test_to_haiku_dict_and_to_mutable_dict():
    nested = {"a": {"w": [1, 2], "s": {"x": 1}}, "b": FlatMap({"z": 1, "y": 2})}
    out = ds.to_haiku_dict(nested)
    assert_same(out, ref.to_haiku_dict(nested))
    assert type(out["b"]) is dict and list(out["b"]) == ["z", "y"]
    assert out["a"]["w"] == [1, 2] and out["a"]["w"] is not nested["a"]["w"]

    params = make_params()
    frozen = ds.to_immutable_dict(params)
    mutable = ds.to_mutable_dict(frozen)
    assert_same(mutable, ref.to_mutable_dict(ref.to_immutable_dict(params)))
    assert type(mutable["counter"]) is dict
    mutable["new"] = {}  # really mutable
    # Only FlatMap values are converted; other mappings stay as they are.
    inner = FlatMap({"x": 1})
    kept = ds.to_mutable_dict({"a": {"w": inner}})
    assert kept["a"]["w"] is inner


def test_accepts_haiku_flatmap_input():
    params = make_params()
    frozen_ref = ref.to_immutable_dict(params)
    assert_same(ds.to_haiku_dict(frozen_ref), ref.to_haiku_dict(frozen_ref))
    pred = PREDICATES[0]
    assert_same(ds.filter(pred, frozen_ref), ref.filter(pred, params))


# --- FlatMap / to_immutable_dict ---------------------------------------------


def test_to_immutable_dict_type_and_repr():
    small = {"b": {"z": 1, "a": 2}, "a": {"w": 3}}
    long = {"a": {f"k{i}": jnp.zeros(3) for i in range(4)}, "b": {"c": [1, {"d": 2}]}}
    for structure in (small, long, {}, {"x": {}}):
        frozen = ds.to_immutable_dict(structure)
        expected = ref.to_immutable_dict(structure)
        assert type(frozen) is FlatMap and type(frozen).__name__ == "FlatMap"
        assert repr(frozen) == repr(expected)
        assert str(frozen) == str(expected)
        assert list(frozen) == list(expected)
    frozen = ds.to_immutable_dict(small)
    assert type(frozen["b"]) is FlatMap
    assert repr(frozen.keys()) == repr(ref.to_immutable_dict(small).keys())
    assert ds.to_immutable_dict(frozen) is frozen
    # Only values that are exactly `dict` are converted (as in Haiku).
    odd = {"a": collections.OrderedDict(x=1), "b": {"l": [{"x": 1}]}}
    frozen = ds.to_immutable_dict(odd)
    assert type(frozen["a"]) is collections.OrderedDict
    assert type(frozen["b"]["l"][0]) is dict
    assert repr(frozen) == repr(ref.to_immutable_dict(odd))


def test_flatmap_is_read_only():
    frozen = ds.to_immutable_dict({"a": {"w": 1}})
    with pytest.raises(TypeError):
        frozen["b"] = {}
    with pytest.raises(TypeError):
        frozen["a"]["w"] = 2
    with pytest.raises(TypeError):
        del frozen["a"]
    with pytest.raises(AttributeError) as actual:
        frozen.a  # noqa: B018
    with pytest.raises(AttributeError) as expected:
        ref.to_immutable_dict({"a": {"w": 1}}).a  # noqa: B018
    assert str(actual.value) == str(expected.value)
    with pytest.raises(AttributeError):
        frozen.x = 1
    assert not hasattr(frozen, "update") and not hasattr(frozen, "pop")


def test_flatmap_equality_and_hash():
    params = {"a": {"w": 1, "b": 2}, "c": {"x": 3}}
    frozen = ds.to_immutable_dict(params)
    assert frozen == params and params == frozen
    assert frozen == ds.to_immutable_dict({"c": {"x": 3}, "a": {"b": 2, "w": 1}})
    assert frozen != {"a": {"w": 1}}
    assert not frozen == None  # noqa: E711
    assert frozen != 3
    assert hash(frozen) == hash(ds.to_immutable_dict(params))
    assert len({frozen, ds.to_immutable_dict(params)}) == 1
    assert frozen.get("c") == {"x": 3} and "a" in frozen and len(frozen) == 2
    with pytest.raises(TypeError):  # array leaves are unhashable, as in Haiku
        hash(ds.to_immutable_dict({"a": {"w": jnp.ones(2)}}))


def test_flatmap_is_a_pytree():
    params = {"b": {"z": jnp.ones(2), "a": jnp.zeros(3)}, "a": {"w": jnp.ones(1)}}
    frozen = ds.to_immutable_dict(params)
    frozen_ref = ref.to_immutable_dict(params)
    assert jax.tree.leaves(frozen) == jax.tree.leaves(frozen_ref)
    mapped = jax.tree.map(lambda x: x + 1, frozen)
    mapped_ref = jax.tree.map(lambda x: x + 1, frozen_ref)
    assert type(mapped) is FlatMap and type(mapped["b"]) is FlatMap
    assert repr(mapped) == repr(mapped_ref)  # keys sorted after a tree op
    assert list(mapped) == ["a", "b"] and list(mapped["b"]) == ["a", "z"]
    out = jax.jit(lambda t: jax.tree.map(lambda x: 2 * x, t))(frozen)
    assert type(out) is FlatMap
    np.testing.assert_array_equal(out["b"]["z"], 2 * params["b"]["z"])
    # Leaves may become pytrees themselves.
    lists = jax.tree.map(lambda x: [x, x], frozen)
    assert type(lists) is FlatMap and len(jax.tree.leaves(lists)) == 6
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree.leaves_with_path(frozen)]
    assert paths == ["['a']['w']", "['b']['a']", "['b']['z']"]


def test_flatmap_pickle_and_copy():
    import copy

    frozen = ds.to_immutable_dict({"a": {"w": 1}, "b": {"x": [1, 2]}})
    for clone in (
        pickle.loads(pickle.dumps(frozen)),
        copy.copy(frozen),
        copy.deepcopy(frozen),
    ):
        assert type(clone) is FlatMap and type(clone["a"]) is FlatMap
        assert clone == frozen
    assert copy.deepcopy(frozen)["b"]["x"] is not frozen["b"]["x"]

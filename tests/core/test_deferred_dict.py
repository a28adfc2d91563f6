"""Modules rebuilt by ``unflatten`` build their attribute dict on first use.

``tree_unflatten`` (every ``jax.jit`` output, every ``tree_map``) gives a
module only its ``(children, spec)`` pair; the ``__dict__`` is built the first
time anything reads an attribute. These tests pin that every way of reading a
module sees the same attributes as the original, and that classes where
deferring would change attribute lookup (a class attribute an instance
overrides, a custom ``__getattr__``) build their dict eagerly.
"""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax._core.module import _get_raw_dict


class Affine(pax.Module):
    parameters = pax.parameters_method("weight", "bias")

    def __init__(self, n, *, rng_key):
        super().__init__()
        self.weight = jax.random.normal(rng_key, (n, n))
        self.bias = jnp.arange(n, dtype=jnp.float32)
        self.n = n
        self.activation = jnp.tanh

    def __call__(self, x):
        return self.activation(x @ self.weight + self.bias[None])


class Net(pax.Module):
    def __init__(self, rng_key):
        super().__init__()
        k1, k2 = jax.random.split(rng_key)
        self.layers = [Affine(3, rng_key=k1), Affine(3, rng_key=k2)]
        self.count = jnp.array(0)

    def __call__(self, x):
        self.count = self.count + 1
        for layer in self.layers:
            x = layer(x)
        return x


def _roundtrip(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def test_unflatten_defers_the_dict_until_an_attribute_is_read():
    net = Net(jax.random.PRNGKey(0))
    rebuilt = _roundtrip(net)
    assert not _get_raw_dict(rebuilt), "unflatten built the dict eagerly"
    # flattening again needs no dict
    assert jax.tree_util.tree_structure(rebuilt) == jax.tree_util.tree_structure(net)
    assert not _get_raw_dict(rebuilt)
    assert rebuilt.count is net.count  # first read builds it
    assert set(_get_raw_dict(rebuilt)) == set(vars(net))


@pytest.mark.parametrize(
    "read",
    [
        lambda m: vars(m),
        lambda m: dict(m.__dict__),
        lambda m: {k: getattr(m, k) for k in vars(m)},
    ],
    ids=["vars", "__dict__", "getattr"],
)
def test_every_way_of_reading_sees_the_original_attributes(read):
    net = Net(jax.random.PRNGKey(1))
    original = dict(vars(net))
    got = read(_roundtrip(net))
    assert list(got) == list(original)  # same names, same order
    for name, value in original.items():
        if isinstance(value, jax.Array):
            assert got[name] is value
        elif name == "layers":
            assert [type(x) for x in got[name]] == [Affine, Affine]
        else:
            assert got[name] == value


def test_rebuilt_module_computes_like_the_original():
    net = Net(jax.random.PRNGKey(2))
    x = jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)
    layer0, layer1 = net.layers
    expected = jnp.tanh(
        jnp.tanh(x @ layer0.weight + layer0.bias[None]) @ layer1.weight
        + layer1.bias[None]
    )
    rebuilt = jax.tree_util.tree_map(lambda a: a, net)
    new, y = pax.purecall(rebuilt, x)
    # the copy got its own dict; the original still has none
    assert not _get_raw_dict(rebuilt) and _get_raw_dict(new)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert int(new.count) == 1 and int(rebuilt.count) == 0
    # the output of a jitted step is a deferred module too; use it again
    step = jax.jit(pax.purecall)
    net2, _ = step(net, x)
    net3, y3 = step(net2, x)
    assert int(net3.count) == 2
    np.testing.assert_allclose(y3, expected, rtol=1e-6)
    assert repr(net3) == repr(net)
    assert net3.state_dict().keys() == net.state_dict().keys()


def test_rebuilt_module_stays_immutable_and_copies():
    net = _roundtrip(Net(jax.random.PRNGKey(3)))
    with pytest.raises(pax.MutationError):
        net.count = jnp.array(5)
    fresh = _roundtrip(net)
    assert copy.copy(fresh).count is net.count
    assert copy.deepcopy(_roundtrip(net)).layers[0].n == 3
    replaced = _roundtrip(net).replace(count=jnp.array(7))
    assert int(replaced.count) == 7 and int(net.count) == 0


def test_missing_attribute_message_is_pythons():
    rebuilt = _roundtrip(Net(jax.random.PRNGKey(4)))
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        rebuilt.nope  # noqa: B018
    assert not hasattr(_roundtrip(rebuilt), "nope")
    assert getattr(_roundtrip(rebuilt), "nope", 5) == 5


class WithDefault(pax.Module):
    scale = 1.0  # a class attribute each instance overrides

    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.w = jnp.ones((2,))


class WithGetattr(pax.Module):
    def __init__(self):
        super().__init__()
        self.w = jnp.ones((2,))

    def __getattr__(self, name):
        if name == "alias":
            return self.w
        raise AttributeError(name)


def test_class_attribute_an_instance_overrides_is_read_from_the_instance():
    m = WithDefault(3.0)
    rebuilt = _roundtrip(m)
    # deferring would find the class attribute (1.0) before the instance's
    assert rebuilt.scale == 3.0
    assert _get_raw_dict(_roundtrip(m)), "this class must build its dict eagerly"


def test_custom_getattr_sees_the_attributes():
    rebuilt = _roundtrip(WithGetattr())
    assert rebuilt.alias is rebuilt.w
    assert _get_raw_dict(_roundtrip(WithGetattr()))

"""Reshape / Flatten: numerics against np.reshape, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pax.nn import Flatten, Reshape


def arange(shape):
    return jnp.arange(int(np.prod(shape)), dtype=jnp.float32).reshape(shape) * 0.5 - 3


# (input shape, output_shape, preserve_dims, expected shape written by hand)
RESHAPE_CASES = [
    ((2, 3, 4, 5), (-1, 5), 1, (2, 12, 5)),
    ((2, 3, 4, 5), (-1, 5), 2, (2, 3, 4, 5)),
    ((2, 3, 4, 5), (-1, 5), 3, (2, 3, 4, 1, 5)),
    ((2, 3, 4, 5), (60,), 1, (2, 60)),
    ((2, 3, 4, 5), (5, -1, 2), 1, (2, 5, 6, 2)),
    ((2, 3, 4, 5), (-1, 5), -3, (2, 12, 5)),
    ((2, 3, 4, 5), (-1,), -2, (2, 3, 20)),
    ((3, 4, 5), (-1, 5), -3, (12, 5)),
    ((4, 5), (-1, 2), -3, (10, 2)),  # fewer axes than -preserve_dims: all
    ((2, 6), (2, 3), 1, (2, 2, 3)),
    ((6,), (2, 3), 1, (6,)),  # rank <= preserve_dims: unchanged
    ((2, 3), (3,), 2, (2, 3)),
]


@pytest.mark.parametrize("case", RESHAPE_CASES, ids=[str(c) for c in RESHAPE_CASES])
def test_reshape_matches_numpy(case):
    shape, output_shape, preserve_dims, expected_shape = case
    x = arange(shape)
    mod = Reshape(output_shape, preserve_dims)
    expected = np.reshape(np.asarray(x), expected_shape)
    for y in (mod(x), jax.jit(lambda m, v: m(v))(mod, x)):
        assert y.shape == expected_shape
        np.testing.assert_array_equal(y, expected)


# (input shape, preserve_dims, expected shape)
FLATTEN_CASES = [
    ((2, 3, 4), 1, (2, 12)),
    ((2, 3, 4, 5), 2, (2, 3, 20)),
    ((2, 3), 1, (2, 3)),
    ((5,), 1, (5,)),  # rank <= preserve_dims: unchanged
    ((2, 3), 2, (2, 3)),
    ((2, 3, 4), -2, (2, 12)),
    ((3, 4), -2, (12,)),
    ((4,), -2, (4,)),
    ((2, 3, 4, 5), -3, (2, 60)),
]


@pytest.mark.parametrize("case", FLATTEN_CASES, ids=[str(c) for c in FLATTEN_CASES])
def test_flatten_matches_numpy(case):
    shape, preserve_dims, expected_shape = case
    x = arange(shape)
    y = Flatten(preserve_dims)(x)
    assert y.shape == expected_shape
    np.testing.assert_array_equal(y, np.reshape(np.asarray(x), expected_shape))


def test_negative_preserve_dims_serves_batched_and_unbatched():
    flat = Flatten(preserve_dims=-2)
    x = arange((4, 3, 5))
    np.testing.assert_array_equal(jax.vmap(flat)(x), flat(x))
    assert jax.vmap(flat)(x).shape == (4, 15)


HAIKU_CASES = [
    ("reshape", (2, 3, 4, 5), (-1, 5), 1),
    ("reshape", (2, 3, 4, 5), (-1, 5), 3),
    ("reshape", (2, 3, 4, 5), (-1, 5), -3),
    ("reshape", (2, 3, 4, 5), (4, -1), 2),
    ("reshape", (4, 5), (-1, 2), -3),
    ("reshape", (6,), (2, 3), 1),
    ("flatten", (2, 3, 4), None, 1),
    ("flatten", (3,), None, 1),
    ("flatten", (2, 3, 4), None, -2),
]


@pytest.mark.parametrize("case", HAIKU_CASES, ids=[str(c) for c in HAIKU_CASES])
def test_parity_with_haiku(case):
    kind, shape, output_shape, preserve_dims = case
    x = arange(shape)

    def forward(v):
        if kind == "flatten":
            return hk.Flatten(preserve_dims=preserve_dims)(v)
        return hk.Reshape(output_shape, preserve_dims=preserve_dims)(v)

    f = hk.transform(forward)
    params = f.init(None, x)
    expected = f.apply(params, None, x)
    if kind == "flatten":
        mod = Flatten(preserve_dims)
    else:
        mod = Reshape(output_shape, preserve_dims)
    y = mod(x)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


def test_modules_are_parameterless_pytrees():
    for mod in (Reshape([-1, 5], name="r"), Flatten()):
        assert jax.tree_util.tree_leaves(mod) == []
    r = Reshape([-1, 5])
    assert r.output_shape == (-1, 5) and r.preserve_dims == 1
    assert repr(Flatten(2)) == "Flatten(preserve_dims=2)"


# -- errors -------------------------------------------------------------------


def test_impossible_reshape_names_module_and_shapes():
    x = jnp.ones((2, 3, 4))
    with pytest.raises(
        ValueError,
        match=r"Reshape\(output_shape=\(5,\), preserve_dims=1\): cannot reshape the "
        r"axes \(3, 4\) \(size 12\) of an input of shape \(2, 3, 4\) to \(5,\)",
    ):
        Reshape((5,))(x)
    with pytest.raises(
        ValueError, match=r"Reshape\(.*\): cannot reshape .* to \(-1, 5\)"
    ):
        Reshape((-1, 5))(x)
    with pytest.raises(
        ValueError, match=r"cannot reshape .* \(size 24\) .* to \(5, -1\)"
    ):
        Reshape((5, -1), preserve_dims=-3)(x)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"Reshape: `preserve_dims` must be non-zero"):
        Reshape((-1,), preserve_dims=0)
    with pytest.raises(ValueError, match=r"Flatten: `preserve_dims` must be non-zero"):
        Flatten(0)
    with pytest.raises(
        TypeError, match=r"Flatten: `preserve_dims` must be a non-zero int"
    ):
        Flatten(1.5)
    with pytest.raises(
        ValueError, match=r"-1 may appear at most once .* \(-1, 2, -1\)"
    ):
        Reshape((-1, 2, -1))
    with pytest.raises(
        ValueError, match=r"entries must be positive ints or a single -1"
    ):
        Reshape((0, 3))
    with pytest.raises(
        ValueError, match=r"entries must be positive ints or a single -1"
    ):
        Reshape((-2, 3))
    with pytest.raises(TypeError, match=r"Reshape: `output_shape` must be a sequence"):
        Reshape(6)

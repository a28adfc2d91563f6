"""Linear and Bias: numerics, defaults, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from tests.programs import count_programs


def test_linear_matches_hand_formula(key):
    k1, k2, k3 = jax.random.split(key, 3)
    fc = pax.Linear(3, 4, b_init=pax.initializers.RandomNormal(), rng_key=k1)
    x = jax.random.normal(k2, (5, 3))
    expected = np.asarray(x) @ np.asarray(fc.weight) + np.asarray(fc.bias)[None, :]
    np.testing.assert_allclose(fc(x), expected, rtol=1e-5, atol=1e-6)
    x3 = jax.random.normal(k3, (2, 5, 3))
    np.testing.assert_allclose(
        fc(x3),
        np.einsum("btk,ko->bto", x3, fc.weight) + np.asarray(fc.bias),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(fc(x[0]), expected[0], rtol=1e-5, atol=1e-6)  # rank 1


def test_linear_defaults(key):
    fc = pax.Linear(400, 300, rng_key=key)
    assert fc.weight.shape == (400, 300) and fc.weight.dtype == jnp.float32
    np.testing.assert_array_equal(fc.bias, np.zeros(300))
    std = 1 / np.sqrt(400)
    # TruncatedNormal(1/sqrt(fan_in)): bounded by 2 std, std shrunk by 0.8796
    assert np.abs(fc.weight).max() <= 2 * std + 1e-6
    assert abs(float(fc.weight.std()) / (std * 0.8796) - 1) < 0.02
    params = pax.Linear(2, 3, with_bias=False, rng_key=key).parameters()
    assert params.bias is None and len(jax.tree_util.tree_leaves(params)) == 1


def test_linear_repr_and_same_key_same_weights(key):
    a, b = pax.Linear(2, 3, rng_key=key), pax.Linear(2, 3, rng_key=key)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert repr(a) == "Linear(in_dim=2, out_dim=3, with_bias=True)"


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_parity_with_haiku(with_bias, key):
    x = jax.random.normal(key, (4, 3))
    f = hk.transform(lambda x: hk.Linear(5, with_bias=with_bias)(x))
    params = f.init(key, x)
    fc = pax.Linear(3, 5, with_bias=with_bias, rng_key=key)
    w = params["linear"]["w"]
    assert w.shape == fc.weight.shape
    fc = fc.replace(weight=w, bias=params["linear"]["b"] if with_bias else None)
    np.testing.assert_allclose(fc(x), f.apply(params, None, x), rtol=1e-6, atol=1e-6)


def test_linear_errors(key):
    fc = pax.Linear(3, 4, rng_key=key)
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_dim=3, out_dim=4, with_bias=True\): expected input with "
        r"last dimension 3, got shape \(2, 5\)",
    ):
        fc(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="last dimension 3"):
        fc(jnp.ones(()))
    with pytest.raises(ValueError, match="`in_dim` must be a positive int, got -1"):
        pax.Linear(-1, 4)
    with pytest.raises(TypeError, match="`out_dim` must be a positive int"):
        pax.Linear(3, 2.5)
    with pytest.raises(ValueError, match="last dimension 3"):  # raised at trace time
        jax.jit(lambda m, x: m(x))(fc, jnp.ones((2, 5)))


def test_bias_shapes_follow_haiku(key):
    x = jnp.ones((2, 3, 4))
    for dims in (None, [-1], [1], [], [1, 2]):
        f = hk.transform(lambda x, dims=dims: hk.Bias(bias_dims=dims)(x))
        hk_shape = f.init(key, x)["bias"]["b"].shape
        assert pax.Bias((3, 4), bias_dims=dims).bias.shape == hk_shape, dims


def test_bias_numerics_and_multiplier(key):
    b = pax.Bias(
        (3, 4), bias_dims=[-1], b_init=pax.initializers.RandomNormal(), rng_key=key
    )
    x = jax.random.normal(key, (2, 3, 4))
    expected = np.asarray(x) + np.asarray(b.bias)[None, None, :]
    np.testing.assert_allclose(b(x), expected, rtol=1e-6)
    np.testing.assert_allclose(
        b(x, multiplier=2.0), np.asarray(x) + 2 * np.asarray(b.bias), rtol=1e-6
    )


def test_bias_errors():
    with pytest.raises(
        ValueError, match=r"trailing shape is \(4,\), got shape \(2, 5\)"
    ):
        pax.Bias(4)(jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="batch axis"):
        pax.Bias((3, 4), bias_dims=[0])
    with pytest.raises(ValueError, match="out of range"):
        pax.Bias(4, bias_dims=[3])


@pytest.mark.parametrize(
    "bad, words",
    [(None, "NoneType"), ("abc", "str"), (["a", "b"], "list"), ([[1, 2], [3]], "list")],
)
def test_non_array_input_is_a_type_error_naming_the_layer(bad, words):
    # issue 15: `pax.Linear(3, 4)(None)` raised JAX's bare
    # "None is not a valid value for jnp.array" (a ValueError, no module)
    fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(0))
    expected = r"Linear\(in_dim=3, out_dim=4.*expected an array"
    with pytest.raises(TypeError, match=expected):
        fc(bad)
    with pytest.raises(TypeError, match=words):
        pax.Bias(3)(bad)


# -- eager calls: one program, same errors, same traced operations (issue 17) --


def test_eager_linear_and_bias_calls_are_one_program_each():
    # An eager call dispatched three programs (dot, broadcast of the bias,
    # add), each with its own per-op overhead; now it is one, and a repeated
    # call reuses it. Odd sizes: no other test has compiled these shapes.
    fc = pax.Linear(13, 29, rng_key=jax.random.PRNGKey(0))
    x = jax.device_put(np.random.default_rng(0).standard_normal((7, 13), np.float32))
    x3 = jax.device_put(np.ones((1, 7, 13), np.float32))
    for call in (
        lambda: fc(x),
        lambda: fc(x3),
        lambda: fc.replace(bias=None)(x),
    ):
        with count_programs() as n:
            call()
        assert n() <= 1
        with count_programs() as n:
            call()
        assert n() == 0
    expected = np.asarray(x) @ np.asarray(fc.weight) + np.asarray(fc.bias)
    np.testing.assert_allclose(fc(x), expected, rtol=1e-5, atol=1e-5)
    b = pax.Bias((3, 11), bias_dims=[-1], rng_key=jax.random.PRNGKey(1))
    xb = jax.device_put(np.ones((5, 3, 11), np.float32))
    with count_programs() as n:
        b(xb, 3.0)
    assert n() <= 1


def test_linear_shape_errors_on_every_call_after_a_good_one(key):
    fc = pax.Linear(3, 4, rng_key=key)
    fc(jnp.ones((2, 3)))
    message = (
        r"Linear\(in_dim=3, out_dim=4, with_bias=True\): expected input with "
        r"last dimension 3, got shape \(2, 5\)"
    )
    for _ in range(2):
        with pytest.raises(ValueError, match=message):
            fc(jnp.ones((2, 5)))
        with pytest.raises(ValueError, match=r"got shape \(\)"):
            fc(jnp.ones(()))
    with pytest.raises(ValueError, match=message):
        jax.jit(lambda m, x: m(x))(fc, jnp.ones((2, 5)))
    b = pax.Bias((3, 4))
    b(jnp.ones((2, 3, 4)))
    for _ in range(2):
        with pytest.raises(
            ValueError, match=r"Bias\(output_size=\(3, 4\).*\(2, 4, 3\)"
        ):
            b(jnp.ones((2, 4, 3)))
    with pytest.raises(TypeError, match=r"Linear\(in_dim=3.*expected an array"):
        fc(None)


def test_linear_under_jit_vmap_grad_traces_the_plain_operations(key):
    fc = pax.Linear(3, 4, b_init=pax.initializers.RandomNormal(), rng_key=key)
    x = jax.random.normal(key, (5, 3))
    w, b = np.asarray(fc.weight), np.asarray(fc.bias)
    # no nested call: the enclosing trace sees dot, bias broadcast and add
    jaxpr = jax.make_jaxpr(lambda m, x: m(x))(fc, x).jaxpr
    assert [e.primitive.name for e in jaxpr.eqns] == [
        "dot_general",
        "broadcast_in_dim",
        "add",
    ]
    np.testing.assert_allclose(
        jax.jit(lambda m, x: m(x))(fc, x), np.asarray(x) @ w + b, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        jax.vmap(fc)(x), np.asarray(x) @ w + b, rtol=1e-5, atol=1e-6
    )
    grad_x = jax.grad(lambda x: fc(x).sum())(x)
    np.testing.assert_allclose(grad_x, np.broadcast_to(w.sum(1), (5, 3)), rtol=1e-5)
    grad_w = jax.grad(lambda m: m(x).sum())(fc).weight
    np.testing.assert_allclose(
        grad_w, np.broadcast_to(np.asarray(x).sum(0)[:, None], (3, 4)), rtol=1e-5
    )
    assert fc(x.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    assert fc(jnp.ones((2, 3), jnp.int32)).dtype == jnp.float32

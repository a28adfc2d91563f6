"""BatchApply / expand_apply: per-element numerics, Haiku parity, errors."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import BatchApply, expand_apply


def normal(seed, shape):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_linear_matches_per_element_loop(seed):
    fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(seed))
    x = normal(seed, (5, 2, 3))
    y = BatchApply(fc)(x)
    expected = np.zeros((5, 2, 4), np.float32)
    for i in range(5):
        for j in range(2):
            expected[i, j] = fc(x[i, j].reshape(1, 3))[0]
    assert y.shape == (5, 2, 4)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_batch_dependent_function_sees_merged_order(seed):
    # A function that mixes the batch (cumulative sum over the merged axis):
    # its result pins down the merge order (row-major over the leading axes).
    x = normal(seed, (2, 3, 2, 4))
    y = BatchApply(lambda v: jnp.cumsum(v, axis=0), num_dims=3)(x)
    flat = np.asarray(x).reshape(12, 4)
    expected = np.zeros((2, 3, 2, 4), np.float32)
    running = np.zeros((4,), np.float32)
    k = 0
    for i in range(2):
        for j in range(3):
            for m in range(2):
                running = running + flat[k]
                expected[i, j, m] = running
                k += 1
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_argument_rules_and_pytree_outputs(seed):
    seen = {}

    def f(x, scale, bias, *, extra, flag, table):
        seen.update(
            x=x.shape, bias=bias.shape, extra=extra["a"].shape, table=table.shape
        )
        seen.update(scale=scale, flag=flag)
        y = x * scale + jnp.broadcast_to(bias, x.shape)
        return {"y": y, "pair": (y.sum(-1), extra["a"])}

    x = normal(seed, (3, 2, 4))
    bias = normal(seed + 1, (4,))  # rank 1 < num_dims: passed unchanged
    a = normal(seed + 2, (3, 2, 5, 6))
    table = np.ones((3, 2))  # NumPy array with 2 axes: merged too
    out = BatchApply(f)(x, 2.0, bias, extra={"a": a}, flag="on", table=table)
    assert seen == {
        "x": (6, 4),
        "bias": (4,),
        "extra": (6, 5, 6),
        "table": (6,),
        "scale": 2.0,
        "flag": "on",
    }
    expected_y = np.zeros((3, 2, 4), np.float32)
    for i in range(3):
        for j in range(2):
            expected_y[i, j] = np.asarray(x[i, j]) * 2.0 + np.asarray(bias)
    np.testing.assert_allclose(out["y"], expected_y, rtol=1e-6)
    assert out["pair"][0].shape == (3, 2)
    np.testing.assert_allclose(out["pair"][0], expected_y.sum(-1), rtol=1e-5)
    np.testing.assert_array_equal(out["pair"][1], a)


def test_module_arguments_pass_through_whole(seed):
    fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(seed))
    x = normal(seed, (2, 5, 3))
    # fc.weight has 2 axes: were it treated as data it would be merged to (12,)
    y = BatchApply(lambda m, v: m(v))(fc, x)
    np.testing.assert_allclose(y, BatchApply(fc)(x), rtol=1e-6)


def test_module_f_is_a_child_and_function_f_is_static(seed):
    fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(seed))
    ba = BatchApply(fc, num_dims=2)
    leaves = jax.tree_util.tree_leaves(ba)
    assert len(leaves) == 2 and leaves[0] is fc.weight
    assert ba.parameters().f.weight is fc.weight
    assert jax.tree_util.tree_leaves(BatchApply(jnp.tanh)) == []
    assert repr(ba) == "BatchApply(f=Linear, num_dims=2)"

    x = normal(seed, (2, 5, 3))

    def loss(params):
        return jnp.sum(ba.update_parameters(params)(x) ** 2)

    grads = jax.jit(jax.grad(loss))(ba.parameters())
    # d/dW sum((xW + b)^2) = 2 x^T (xW + b), over all 10 merged rows
    xf = np.asarray(x).reshape(10, 3)
    h = xf @ np.asarray(fc.weight) + np.asarray(fc.bias)
    np.testing.assert_allclose(grads.f.weight, 2 * xf.T @ h, rtol=1e-4, atol=1e-5)


def test_parity_with_haiku(seed):
    x = normal(seed, (4, 3, 5))

    def forward(v):
        return hk.BatchApply(hk.Linear(2))(v)

    f = hk.transform(forward)
    params = f.init(jax.random.PRNGKey(seed), x)
    expected = f.apply(params, None, x)
    fc = pax.Linear(5, 2, rng_key=jax.random.PRNGKey(0))
    fc = fc.replace(weight=params["linear"]["w"], bias=params["linear"]["b"])
    np.testing.assert_allclose(BatchApply(fc)(x), expected, rtol=1e-6)

    def g(v, w):
        return jnp.cumsum(v, axis=0) * w

    x3 = normal(seed, (2, 3, 2, 4))
    w = jnp.float32(0.5)
    np.testing.assert_allclose(
        BatchApply(g, num_dims=3)(x3, w),
        hk.BatchApply(g, num_dims=3)(x3, w),
        rtol=1e-6,
    )


def test_expand_apply_matches_haiku_and_hand_results(seed):
    x = normal(seed, (3, 4))
    shapes = []

    def over_time(v, scale):
        shapes.append((v.shape, np.shape(scale)))
        return jnp.cumsum(v, axis=0) * jnp.reshape(scale, ())

    y = expand_apply(over_time)(x, 2.0)
    assert shapes == [((1, 3, 4), (1,))]  # Python numbers are expanded too
    np.testing.assert_allclose(y, 2.0 * np.asarray(x), rtol=1e-6)
    np.testing.assert_allclose(y, hk.expand_apply(over_time)(x, 2.0), rtol=1e-6)

    def last(v):
        return v.sum(-1, keepdims=True) + jnp.cumsum(v, axis=-1)

    y = expand_apply(last, axis=-1)(x)
    np.testing.assert_allclose(y, 2.0 * np.asarray(x), rtol=1e-6)
    np.testing.assert_allclose(y, hk.expand_apply(last, axis=-1)(x), rtol=1e-6)
    assert expand_apply(over_time).__name__ == "over_time"


# -- errors -------------------------------------------------------------------


def test_disagreeing_leading_dims():
    ba = BatchApply(lambda a, b: a + b)
    with pytest.raises(
        ValueError,
        match=r"BatchApply\(f=<lambda>, num_dims=2\): every argument with at least "
        r"2 axes must share the leading 2 axes; got shapes \(2, 3, 4\) and "
        r"\(3, 2, 4\)",
    ):
        ba(jnp.ones((2, 3, 4)), jnp.ones((3, 2, 4)))
    with pytest.raises(ValueError, match=r"share the leading 2 axes.*\(2, 4\)"):
        ba(jnp.ones((2, 3, 4)), b=jnp.ones((2, 4)))


def test_num_dims_must_be_positive():
    with pytest.raises(ValueError, match=r"BatchApply: `num_dims` must be a positive"):
        BatchApply(jnp.tanh, num_dims=0)
    with pytest.raises(TypeError, match=r"BatchApply: `num_dims` must be a positive"):
        BatchApply(jnp.tanh, num_dims=2.0)
    with pytest.raises(TypeError, match=r"BatchApply: `f` must be callable"):
        BatchApply(3)


def test_no_mergeable_argument_and_bad_outputs():
    with pytest.raises(
        ValueError, match=r"needs at least one array argument with at least 3 axes"
    ):
        BatchApply(jnp.tanh, num_dims=3)(jnp.ones((2, 3)))
    with pytest.raises(
        ValueError,
        match=r"must lead with the merged axis of size 6 \(leading axes \(2, 3\)\), "
        r"got an output of shape \(\)",
    ):
        BatchApply(jnp.sum)(jnp.ones((2, 3, 4)))


def test_expand_apply_errors():
    with pytest.raises(ValueError, match=r"expand_apply: `axis` must be 0 or -1"):
        expand_apply(jnp.tanh, axis=1)
    with pytest.raises(ValueError, match=r"expand_apply\(sum\): .* size-1 axis at 0"):
        expand_apply(jnp.sum)(jnp.ones((2, 3)))

"""LayerStack: N copies of a layer, stacked on a leading axis, applied with one
scan. Everything is checked against a Python loop over the unstacked layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax
from pax.nn import LayerStack

N = 4


def linear(k):
    return pax.Linear(4, 4, rng_key=k)


def mlp_block(k):
    k1, k2 = jax.random.split(k)
    return pax.Sequential(
        pax.Linear(4, 8, rng_key=k1), jax.nn.tanh, pax.Linear(8, 4, rng_key=k2)
    )


def bn_block(k):
    return pax.Sequential(pax.Linear(4, 4, rng_key=k), pax.BatchNorm(4))


def assert_trees_close(a, b, atol=1e-6):
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=atol)


def loop(layers, x, *args, **kwargs):
    for layer in layers:
        x = layer(x, *args, **kwargs)
    return x


@pytest.fixture
def x(key):
    return jax.random.normal(jax.random.fold_in(key, 1), (3, 4))


# -- construction -----------------------------------------------------------


def test_make_layer_called_once_per_layer_with_split_keys(key):
    seen = []

    def make(k):
        seen.append(k)
        return linear(k)

    stack = LayerStack(make, N, rng_key=key)
    assert len(seen) == N == len(stack)
    np.testing.assert_array_equal(np.stack(seen), jax.random.split(key, N))
    assert len({tuple(np.asarray(k).tolist()) for k in seen}) == N
    # parameters are stacked on a leading [N] axis, layer i built from key i
    assert stack.layers.weight.shape == (N, 4, 4)
    assert stack.layers.bias.shape == (N, 4)
    for i, k in enumerate(seen):
        np.testing.assert_array_equal(stack[i].weight, linear(k).weight)


def test_rng_key_none_draws_from_the_global_sequence():
    pax.seed_rng_key(3)
    a = LayerStack(linear, 2)
    pax.seed_rng_key(3)
    b = LayerStack(linear, 2)
    np.testing.assert_array_equal(a.layers.weight, b.layers.weight)
    assert not np.allclose(a[0].weight, a[1].weight)


def test_indexing_and_iteration(key):
    stack = LayerStack(linear, N, rng_key=key)
    assert isinstance(stack[0], pax.Linear)
    assert stack[0].weight.shape == (4, 4)
    np.testing.assert_array_equal(stack[-1].weight, stack.layers.weight[N - 1])
    np.testing.assert_array_equal(stack[-1].weight, stack[N - 1].weight)
    assert [layer.bias.shape for layer in stack] == [(4,)] * N
    sub = stack[1:3]
    assert isinstance(sub, LayerStack) and len(sub) == 2
    np.testing.assert_array_equal(sub[0].weight, stack[1].weight)
    with pytest.raises(IndexError, match="out of range"):
        stack[N]
    with pytest.raises(ValueError, match="selects no layer"):
        stack[2:2]


def test_repr_and_summary_show_the_layer_once(key):
    stack = LayerStack(bn_block, 3, rng_key=key)
    assert repr(stack).startswith("LayerStack(num_layers=3, layer=Sequential")
    lines = stack.summary().splitlines()
    assert lines[0] == "LayerStack(num_layers=3)"
    assert lines[1] == "└── 3 × Sequential"
    assert sum("BatchNorm" in line for line in lines) == 1


# -- numerics against a Python loop -------------------------------------------


@pytest.mark.parametrize("make", [linear, mlp_block], ids=["Linear", "MLP"])
def test_output_equals_a_loop_over_the_layers(make, key, x):
    stack = LayerStack(make, N, rng_key=key)
    y = stack(x)
    assert y.shape == x.shape
    assert_trees_close(y, loop(list(stack), x))
    independent = [make(k) for k in jax.random.split(key, N)]
    assert_trees_close(y, loop(independent, x))
    # and not the trivial answer: depth matters
    assert not np.allclose(y, loop(independent[:-1], x), atol=1e-3)


def test_jit_and_vmap(key, x):
    stack = LayerStack(mlp_block, N, rng_key=key)
    expected = loop(list(stack), x)
    assert_trees_close(jax.jit(lambda m, x: m(x))(stack, x), expected)
    xs = jnp.stack([x, 2 * x, -x])
    out = jax.vmap(stack)(xs)
    assert_trees_close(out, jnp.stack([loop(list(stack), xi) for xi in xs]))
    # vmap over the stack itself (an ensemble of stacks)
    stacks = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a]), stack)
    out = jax.vmap(lambda m: m(x))(stacks)
    assert_trees_close(out[0], expected)


def test_per_layer_args_reach_the_right_layer(key, x):
    class Scaled(pax.Module):
        def __init__(self, k):
            super().__init__()
            self.fc = linear(k)

        def __call__(self, x, scale, *, shift):
            return self.fc(x) * scale + shift

    stack = LayerStack(Scaled, N, rng_key=key)
    # [N, 1, 4]: layer i scales by i + 1 (broadcast over the batch axis)
    scales = jnp.arange(1.0, N + 1.0)[:, None, None] * jnp.ones((N, 1, 4))
    shift = jnp.full((1, 4), 0.5)  # a keyword argument, the same for every layer
    y = stack(x, scales, shift=shift)
    expected = x
    for i in range(N):
        expected = stack[i](expected, scales[i], shift=shift)
    assert_trees_close(y, expected)
    # a permuted per-layer argument gives another answer: slices are per layer
    assert not np.allclose(stack(x, scales[::-1], shift=shift), y, atol=1e-3)
    with pytest.raises(ValueError, match="leading axis of size num_layers=4"):
        stack(x, scales[:2], shift=shift)


def test_pytree_carry(key):
    class Pair(pax.Module):
        def __init__(self, k):
            super().__init__()
            self.fc = linear(k)

        def __call__(self, xs):
            a, b = xs
            return self.fc(b), a

    stack = LayerStack(Pair, 3, rng_key=key)
    a, b = jnp.ones((2, 4)), jnp.zeros((2, 4))
    assert_trees_close(stack((a, b)), loop(list(stack), (a, b)))


# -- state ----------------------------------------------------------------------


def test_stateful_layers_update_every_layer_like_a_loop_of_purecalls(key, x):
    stack = LayerStack(bn_block, N, rng_key=key)
    new_stack, y = pax.purecall(stack, x)
    new_stack, y = pax.purecall(new_stack, y)  # twice: statistics accumulate

    layers, expected = list(stack), x
    for _ in range(2):
        for i in range(N):
            layers[i], expected = pax.purecall(layers[i], expected)
    assert_trees_close(y, expected, atol=1e-5)
    assert isinstance(new_stack, LayerStack)
    for i in range(N):
        assert_trees_close(new_stack[i], layers[i], atol=1e-5)
        assert int(new_stack[i].layers[1].mean_ema.counter) == 2
    # per-layer statistics differ between layers (each saw its own input)
    means = new_stack.layers.layers[1].mean_ema.averages
    assert means.shape == (N, 4)
    assert not np.allclose(means[0], means[1])
    # the original is untouched
    assert int(stack[0].layers[1].mean_ema.counter) == 0


def test_stateful_call_outside_pure_raises(key, x):
    stack = LayerStack(bn_block, N, rng_key=key)
    with pytest.raises(pax.MutationError, match="pax.purecall"):
        stack(x)


def test_eval_mode_is_a_plain_call_and_changes_nothing(key, x):
    stack = LayerStack(bn_block, N, rng_key=key)
    trained, _ = pax.purecall(stack, x)
    evaluated = trained.eval()
    assert not evaluated[0].training and not evaluated[0].layers[1].training
    y = evaluated(x)  # no purecall needed
    assert_trees_close(y, loop([layer for layer in evaluated], x))
    same, y2 = pax.purecall(evaluated, x)
    assert_trees_close(same, evaluated)
    assert_trees_close(y2, y)
    assert evaluated.train()[0].training


def test_stateful_under_jit(key, x):
    stack = LayerStack(bn_block, N, rng_key=key)
    eager = pax.purecall(stack, x)
    jitted = jax.jit(pax.purecall)(stack, x)
    assert_trees_close(jitted, eager, atol=1e-5)


def test_dropout_keys_are_per_layer_and_updated(key, x):
    def block(k):
        return pax.Sequential(linear(k), pax.Dropout(0.5, rng_key=k))

    stack = LayerStack(block, N, rng_key=key)
    new_stack, y = pax.purecall(stack, x)
    layers, expected = list(stack), x
    for i in range(N):
        layers[i], expected = pax.purecall(layers[i], expected)
    assert_trees_close(y, expected)
    assert_trees_close(
        new_stack.layers, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *layers)
    )
    assert not np.array_equal(
        new_stack[0].layers[1].rng_key, stack[0].layers[1].rng_key
    )


# -- gradients and remat ------------------------------------------------------


def loss(model, x):
    return jnp.sum(jnp.square(model(x)))


@pytest.mark.parametrize("remat", [False, True], ids=["plain", "remat"])
def test_grad_equals_the_loops_per_layer_grads_stacked(remat, key, x):
    stack = LayerStack(mlp_block, N, remat=remat, rng_key=key)
    grads = pax.grad(loss)(stack, x)
    assert isinstance(grads, LayerStack)
    assert grads.layers.layers[0].weight.shape == (N, 4, 8)

    layers = list(stack)
    loop_grads = jax.grad(lambda ls, x: jnp.sum(jnp.square(loop(ls, x))))(layers, x)
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *loop_grads)
    assert_trees_close(grads.layers, stacked, atol=1e-5)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    # plain jax.grad works too (every leaf is a float array)
    assert_trees_close(jax.grad(loss)(stack, x).layers, stacked, atol=1e-5)


def test_remat_gives_the_same_values_and_gradients(key, x):
    plain = LayerStack(mlp_block, N, rng_key=key)
    remat = LayerStack(mlp_block, N, remat=True, rng_key=key)
    assert_trees_close(remat(x), plain(x))
    assert_trees_close(
        jax.jit(pax.grad(loss))(remat, x).layers,
        jax.jit(pax.grad(loss))(plain, x).layers,
        atol=1e-5,
    )
    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(remat, x))
    assert "remat" in jaxpr or "checkpoint" in jaxpr
    assert "remat" not in str(jax.make_jaxpr(jax.grad(loss))(plain, x))


def test_stateful_remat_matches(key, x):
    plain = LayerStack(bn_block, N, rng_key=key)
    remat = LayerStack(bn_block, N, remat=True, rng_key=key)
    (new_remat, y_remat), (new_plain, y_plain) = (
        pax.purecall(remat, x),
        pax.purecall(plain, x),
    )
    assert_trees_close(y_remat, y_plain, atol=1e-5)
    assert_trees_close(new_remat.layers, new_plain.layers, atol=1e-5)
    assert int(new_remat[N - 1].layers[1].mean_ema.counter) == 1


# -- one scan, whatever the depth -----------------------------------------------


def test_the_call_is_one_scan_and_does_not_grow_with_depth(key, x):
    def jaxpr(depth):
        stack = LayerStack(mlp_block, depth, rng_key=key)
        return jax.make_jaxpr(lambda m, x: m(x))(stack, x)

    shallow, deep = str(jaxpr(2)), str(jaxpr(16))
    assert deep.count("scan[") == 1
    assert "length=16" in deep and "length=2" in shallow

    def body(text):  # the scan body: the per-layer computation, traced once
        return text.split("jaxpr={", 1)[1].split("length=", 1)[0]

    assert body(shallow) == body(deep)
    assert body(deep).count("dot_general") == 2  # one block, not 16


# -- errors ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1])
def test_zero_layers_is_an_error(bad, key):
    with pytest.raises(ValueError, match="`num_layers` must be a positive int"):
        LayerStack(linear, bad, rng_key=key)
    with pytest.raises(TypeError, match="num_layers"):
        LayerStack(linear, 2.0, rng_key=key)


def test_layers_of_different_structure_are_an_error(key):
    sizes = iter([4, 4, 5])
    with pytest.raises(ValueError, match=r"layer 2 differs from layer 0.*out_dim"):
        LayerStack(lambda k: pax.Linear(4, next(sizes), rng_key=k), 3, rng_key=key)
    kinds = iter([linear, lambda k: pax.LayerNorm(4)])
    with pytest.raises(ValueError, match="layer 1 differs.*LayerNorm"):
        LayerStack(lambda k: next(kinds)(k), 2, rng_key=key)
    with pytest.raises(ValueError, match=r"layer 1 differs.*static field `.*func`"):
        LayerStack(lambda k: pax.Sequential(linear(k), lambda x: x), 2, rng_key=key)
    with pytest.raises(TypeError, match="must return a pax.Module"):
        LayerStack(lambda k: k, 2, rng_key=key)


def as_int32(x):
    return x.astype(jnp.int32)


def test_a_layer_that_changes_the_carry_shape_is_an_error(key, x):
    stack = LayerStack(lambda k: pax.Linear(4, 5, rng_key=k), 2, rng_key=key)
    with pytest.raises(ValueError, match=r"maps float32\[3, 4\] to float32\[3, 5\]"):
        stack(x)
    to_int = LayerStack(lambda k: pax.Lambda(jnp.round), 2, rng_key=key)
    assert to_int(x).dtype == x.dtype  # same dtype: fine
    to_int = LayerStack(lambda k: pax.Lambda(as_int32), 2, rng_key=key)
    with pytest.raises(ValueError, match="same structure, shape and dtype"):
        to_int(x)


def test_mixed_precision_policy_on_the_whole_stack(key, x):
    import jmp

    policy = jmp.get_policy("params=float32,compute=bfloat16,output=float32")
    stack = LayerStack(mlp_block, N, rng_key=key)
    mp_stack = pax.apply_mp_policy(stack, policy)
    y = mp_stack(x)
    assert y.dtype == jnp.float32
    # the same as the unrolled loop of the mixed-precision layers
    expected = loop([pax.apply_mp_policy(layer, policy) for layer in stack], x)
    assert_trees_close(y, expected)
    # and computed in bfloat16: not the float32 result
    assert not np.allclose(y, stack(x), atol=1e-4)
    # a float output of another float dtype is cast back to the carry's dtype
    to_f16 = LayerStack(lambda k: pax.Lambda(as_float16), 2, rng_key=key)
    assert to_f16(x).dtype == jnp.float32


def as_float16(x):
    return x.astype(jnp.float16)


def test_unroll_gives_the_same_values(key, x):
    plain = LayerStack(mlp_block, N, rng_key=key)
    unrolled = LayerStack(mlp_block, N, unroll=2, rng_key=key)
    assert repr(unrolled).startswith("LayerStack(num_layers=4, unroll=2, layer=")
    assert "unroll=2" in str(jax.make_jaxpr(unrolled)(x))
    assert_trees_close(unrolled(x), plain(x))
    with pytest.raises(ValueError, match="`unroll` must be a positive int"):
        LayerStack(mlp_block, N, unroll=0, rng_key=key)


def test_integer_input_starts_a_floating_carry(key):
    # was: "each layer must return an output of the same ... dtype" for int
    # input, although every layer (Linear) returns float32 for it
    stack = LayerStack(linear, N, rng_key=key)
    x = jnp.asarray(np.arange(8).reshape(2, 4) % 5, jnp.int32)
    y = stack(x)
    assert y.dtype == jnp.float32
    expected = x.astype(jnp.float32)
    for i in range(N):
        expected = stack[i](expected)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_non_array_input_names_the_stack(key):
    # was: JAX's "Argument 'abc' of type <class 'str'> is not a valid JAX type"
    stack = LayerStack(linear, N, rng_key=key)
    with pytest.raises(TypeError, match=r"LayerStack\(num_layers=4\).*array"):
        stack("abc")

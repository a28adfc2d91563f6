"""pax.pure, pax.purecall, pax.module_and_value."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax

from .modules import Affine, Chain, Counter, Stats


def test_pure_works_on_copies_and_returns_updates():
    counter = Counter()

    @pax.pure
    def step(c):
        c.count = c.count + 5
        return c

    new = step(counter)
    assert int(counter.count) == 0
    assert int(new.count) == 5
    assert new is not counter


def test_returned_copies_are_immutable_again():
    @pax.pure
    def step(c):
        return c

    out = step(Counter())
    with pytest.raises(pax.MutationError):
        out.count = jnp.array(3)


def test_nested_modules_are_mutable_inside_pure(key):
    net = Chain(Counter(), Chain(Counter(start=10)))

    @pax.pure
    def run(n):
        y = n(jnp.array(1.0))
        return n, y

    new, y = run(net)
    assert int(new.layers[0].count) == 1 and int(new.layers[1].layers[0].count) == 11
    # y = 1 * 1 * 11
    assert float(y) == 11.0
    assert int(net.layers[1].layers[0].count) == 10


def test_module_not_passed_as_argument_stays_immutable():
    captured = Counter()

    @pax.pure
    def sneaky(x):
        return captured(x)

    with pytest.raises(pax.MutationError):
        sneaky(jnp.ones(()))


def test_static_and_new_attributes_inside_pure_update_the_structure(key):
    @pax.pure
    def edit(f):
        f.out_dim = 7  # static value change
        f.extra = jnp.ones((2,))  # new leaf
        f.bias = None  # leaf becomes static
        return f

    f = Affine(2, 3, rng_key=key)
    g = edit(f)
    assert g.out_dim == 7
    keys = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(g)]
    assert keys == [".weight", ".extra"]
    assert f.out_dim == 3 and f.bias is not None
    h = jax.tree_util.tree_map(lambda x: x, g)
    assert h.out_dim == 7 and h.bias is None


def test_purecall_returns_module_and_output():
    counter, y = pax.purecall(Counter(start=2), jnp.array(3.0))
    assert int(counter.count) == 3
    assert float(y) == 9.0
    with pytest.raises(TypeError, match="expects a pax.Module"):
        pax.purecall(lambda x: x, 1)


def test_module_and_value_with_module_and_method():
    counter, y = pax.module_and_value(Counter())(jnp.array(2.0))
    assert int(counter.count) == 1 and float(y) == 2.0

    seq = pax.RngSeq(seed=0)
    seq2, k = pax.module_and_value(seq.next_rng_key)()
    expected_state, expected_key = jax.random.split(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(k, expected_key)
    np.testing.assert_array_equal(seq2._rng_key, expected_state)
    with pytest.raises(TypeError, match="module_and_value"):
        pax.module_and_value(len)


def test_pure_under_jit_updates_state():
    stats = Stats(2, decay=0.5)
    x = jnp.array([[1.0, 2.0], [3.0, 4.0]])

    @jax.jit
    def step(s, x):
        return pax.purecall(s, x)

    s1, y1 = step(stats, x)
    s2, _ = step(s1, x)
    batch_mean = np.array([2.0, 3.0])
    np.testing.assert_allclose(s1.mean, 0.5 * batch_mean)
    np.testing.assert_allclose(s2.mean, 0.75 * batch_mean)
    np.testing.assert_allclose(y1, x - 0.5 * batch_mean[None, :])
    np.testing.assert_array_equal(stats.mean, np.zeros(2))


def test_pure_under_grad_gives_module_shaped_gradient():
    stats = Stats(2, decay=0.5)
    x = jnp.array([[1.0, 2.0], [3.0, 5.0]])

    def loss(params, state, x):
        model = state.update_parameters(params)
        model, y = pax.purecall(model, x)
        return jnp.sum(y**2), model

    grads, new = jax.grad(loss, has_aux=True)(stats.parameters(), stats, x)
    assert type(grads) is Stats and grads.mean is None
    mean = 0.5 * x.mean(0)
    centered = x - mean[None, :]
    # d/dscale sum((c * s)^2) = 2 * s * sum(c^2) with s = 1
    np.testing.assert_allclose(grads.scale, 2 * (centered**2).sum(0), rtol=1e-6)
    np.testing.assert_allclose(new.mean, mean)


def test_pure_under_vmap_over_stacked_modules():
    counters = jax.tree_util.tree_map(
        lambda x: jnp.stack([x, x + 10]), Counter(start=1)
    )
    new, y = jax.vmap(pax.purecall)(counters, jnp.array([1.0, 2.0]))
    np.testing.assert_array_equal(new.count, np.array([2, 12]))
    np.testing.assert_array_equal(y, np.array([2.0, 24.0]))


def test_pure_under_scan_with_module_in_carry():
    def body(counter, x):
        counter, y = pax.purecall(counter, x)
        return counter, y

    final, ys = jax.lax.scan(body, Counter(), jnp.arange(1.0, 5.0))
    assert int(final.count) == 4
    np.testing.assert_array_equal(ys, np.array([1.0, 4.0, 9.0, 16.0]))


def test_pure_from_many_threads_gives_independent_results():
    base = Counter()
    results = {}
    errors = []

    @pax.pure
    def run(counter, n):
        for _ in range(n):
            counter.count = counter.count + 1
        return counter

    def worker(i):
        try:
            c = base
            for _ in range(20):
                c = run(c, i + 1)
            results[i] = int(c.count)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {i: 20 * (i + 1) for i in range(8)}
    assert int(base.count) == 0


def test_tracer_leaking_out_of_pure_is_reported():
    @pax.pure
    def leaky(counter):
        def inner(x):
            counter.count = x  # stores a tracer of the inner jit
            return x

        jax.jit(inner)(jnp.array(1))
        return counter

    with pytest.raises(pax.LeakedTracerError, match="attribute `count` of Counter"):
        leaky(Counter())


def test_tracers_from_the_enclosing_transform_are_fine():
    @jax.jit
    def f(counter, x):
        @pax.pure
        def inner(c):
            c.count = c.count + x
            return c

        return inner(counter)

    assert int(f(Counter(), jnp.array(3)).count) == 3


@pytest.mark.parametrize("container", ["tuple", "list", "dict", "nested"])
def test_tracers_hidden_in_containers_are_reported(container):
    wrap = {
        "tuple": lambda x: (x, 1),
        "list": lambda x: [jnp.zeros(()), x],
        "dict": lambda x: {"a": x},
        "nested": lambda x: {"a": [(x,)]},
    }[container]

    @pax.pure
    def leaky(counter):
        def inner(x):
            counter.extra = wrap(x)  # a tracer of the inner jit, in a container
            return x

        jax.jit(inner)(jnp.array(1))
        return counter

    with pytest.raises(pax.LeakedTracerError, match="attribute `extra"):
        leaky(Counter())


def test_tracers_inside_a_newly_assigned_submodule_are_reported():
    class Holder(pax.Module):
        def __init__(self):
            super().__init__()
            self.inner = pax.Linear(3, 3, rng_key=jax.random.PRNGKey(0))

    @pax.pure
    def leaky(m, vs):
        def per_row(v):
            m.inner = pax.Linear(3, 3, rng_key=jax.random.PRNGKey(1)).replace(bias=v)
            return v

        jax.vmap(per_row)(vs)
        return m

    with pytest.raises(pax.LeakedTracerError, match="attribute `inner.bias"):
        leaky(Holder(), jnp.ones((2, 3)))

"""Lifted transforms (scan, cond, switch, vmap, remat, grad, fori_loop, map,
eval_shape, while_loop, lift, layer_stack): parity with dm-haiku.

The same user code runs under ``haiku`` and ``pax.hk``; params, state and
outputs must agree exactly (the rng key sequences included).
"""

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


def dense_class(hk):
    class Dense(hk.Module):
        """tanh(x @ w) + noise, counting its calls in state."""

        def __init__(self, n, name=None):
            super().__init__(name=name)
            self.n = n

        def __call__(self, x):
            w = hk.get_parameter(
                "w",
                [x.shape[-1], self.n],
                init=lambda s, d: jax.random.normal(hk.next_rng_key(), s, d),
            )
            c = hk.get_state("count", [], jnp.int32, init=jnp.zeros)
            hk.set_state("count", c + 1)
            noise = jax.random.normal(hk.next_rng_key(), (*x.shape[:-1], self.n))
            return jnp.tanh(x @ w) + 0.01 * noise

    return Dense


def run_both(make, *args):
    """init + apply under both libraries; returns {lib: (params, state, out, state)}."""
    out = {}
    for name, hk in LIBS.items():
        f = hk.transform_with_state(make(hk))
        params, state = f.init(jax.random.PRNGKey(0), *args)
        y, new_state = f.apply(params, state, jax.random.PRNGKey(1), *args)
        out[name] = (params, state, y, new_state)
    return out


def assert_same(results):
    a, b = results["haiku"], results["pax"]
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.shape(x) == np.shape(y) and np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7)


X = jnp.arange(12.0).reshape(4, 3) / 10


def test_control_flow_and_function_transforms_match_haiku():
    def make(hk):
        Dense = dense_class(hk)

        def f(x):
            d = Dense(3)

            def step(c, xt):
                y = d(xt) + jax.random.normal(hk.next_rng_key(), (3,))
                return c + y.sum(), y

            c, ys = hk.scan(step, 0.0, x)
            pos = Dense(3, name="pos")
            z = hk.cond(c > 0, lambda a: pos(a), lambda a: pos(a) * 2, ys[0])
            v = hk.vmap(lambda a: Dense(3, name="vm")(a), split_rng=False)(ys)
            vs = hk.vmap(
                lambda a: jax.random.uniform(hk.next_rng_key(), ()) + a,
                split_rng=True,
            )(ys[:, 0])
            r = hk.remat(lambda a: Dense(3, name="rm")(a))(ys)
            g = hk.grad(lambda a: Dense(3, name="gr")(a).sum())(ys[0])
            fl_mod = Dense(3, name="fl")
            fl = hk.fori_loop(0, 3, lambda i, a: fl_mod(a), ys[0])
            mp = Dense(3, name="mp")
            m = hk.map(lambda a: mp(a), ys)
            s0 = Dense(3, name="s0")
            sw = hk.switch(1, [lambda a: s0(a), lambda a: s0(a) + 1], ys[0])
            shape = hk.eval_shape(lambda a: pos(a), ys).shape
            return c, ys, z, v, vs, r, g, fl, m, sw, shape

        return f

    results = run_both(make, X)
    assert_same(results)
    params = results["pax"][0]
    assert sorted(params) == ["dense", "fl", "gr", "mp", "pos", "rm", "s0", "vm"]
    # the scan body ran 4 times at apply (count went 0 -> 4)
    assert int(results["pax"][3]["dense"]["count"]) == 4


@pytest.mark.parametrize("per_layer", [False, True])
def test_layer_stack_and_lift_match_haiku(per_layer):
    def make(hk):
        Dense = dense_class(hk)

        def f(x):
            if per_layer:

                @hk.layer_stack(3, with_per_layer_inputs=True)
                def stack(x, y):
                    out = Dense(3)(x) * y
                    return out, out.sum()

                x, zs = stack(x, jnp.arange(3.0))
            else:

                @hk.layer_stack(3)
                def stack(x):
                    return Dense(3)(x)

                x, zs = stack(x), None
            inner = hk.transform(
                lambda a: (
                    a
                    @ hk.get_parameter(
                        "v",
                        [3, 2],
                        init=lambda s, d: jax.random.normal(hk.next_rng_key(), s, d),
                    )
                )
            )
            p = hk.lift(inner.init, name="inner")(hk.next_rng_key(), x)
            return x, zs, inner.apply(p, hk.next_rng_key(), x)

        return f

    results = run_both(make, X[:2])
    assert_same(results)
    params, _, _, state = results["pax"]
    prefix = (
        "__layer_stack_with_per_layer" if per_layer else "__layer_stack_no_per_layer"
    )
    assert params[f"{prefix}/dense"]["w"].shape == (3, 3, 3)
    assert params["inner/~"]["v"].shape == (3, 2)
    # init ran each layer once (count 1), apply once more
    np.testing.assert_array_equal(state[f"{prefix}/dense"]["count"], [2, 2, 2])


def test_scan_creates_parameters_on_the_first_step_only():
    def f(xs):
        def step(c, x):
            return c + x * phk.get_parameter("w", [], init=jnp.ones), c

        return phk.scan(step, 0.0, xs)

    f = phk.transform(f)
    params = f.init(None, jnp.arange(3.0))
    assert params == {"~": {"w": jnp.ones(())}}
    carry, ys = f.apply({"~": {"w": jnp.array(2.0)}}, None, jnp.arange(3.0))
    assert float(carry) == 6.0 and ys.tolist() == [0.0, 0.0, 2.0]


def test_while_loop_refuses_init_and_runs_in_apply():
    def f(x):
        if phk.running_init():
            return x
        return phk.while_loop(lambda v: v < 10, lambda v: v * 2, x)

    f = phk.transform(f)
    assert f.init(None, 1.0) == {}
    assert float(f.apply({}, None, 1.0)) == 16.0
    g = phk.transform(lambda x: phk.while_loop(lambda v: v < 1, lambda v: v + 1, x))
    with pytest.raises(ValueError, match="running_init"):
        g.init(None, 0.0)


def test_lifted_transforms_need_a_transform():
    with pytest.raises(ValueError, match=r"hk.scan\(\) .*jax.lax.scan"):
        phk.scan(lambda c, x: (c, x), 0, jnp.zeros(2))
    with pytest.raises(ValueError, match="hk.transform"):
        phk.lift(lambda rng: {})


def test_jit_value_and_grad_and_lift_with_state_match_haiku():
    def make(hk):
        Dense = dense_class(hk)

        def f(x):
            d = Dense(3, name="jd")
            y = hk.remat(lambda a: d(a))(x)
            (v, aux), g = hk.value_and_grad(
                lambda a: (Dense(3, name="vg")(a).sum(), 1.0), has_aux=True
            )(x)
            inner = hk.transform_with_state(lambda a: Dense(2, name="in")(a))
            init_fn, updater = hk.lift_with_state(inner.init, name="inner")
            params, state = init_fn(hk.next_rng_key(), x)
            z, state = inner.apply(params, state, hk.next_rng_key(), x)
            updater.update(state)
            return y, v, aux, g, z

        return f

    results = run_both(make, X)
    assert_same(results)
    _, state, _, new_state = results["pax"]
    # the lifted inner state lives under the lift's name and is updated
    assert int(state["inner/in"]["count"]) == 0  # init keeps the first value
    assert int(new_state["inner/in"]["count"]) == 1

"""`hk.config.check_jax_usage`: Haiku API calls inside raw JAX transforms."""

import jax
import jax.numpy as jnp
import pytest

import pax.hk as hk
from pax.hk import _base, _stateful
from tests.hk.core_parity import assert_same_errors


def _param():
    return hk.get_parameter("w", [1], init=jnp.ones)


def _scalar():
    return hk.get_parameter("v", [], init=jnp.ones)


def _raw_jit(x):
    return jax.jit(lambda x: x * _param())(x)


RAW = {
    "jit": lambda f, x: jax.jit(f)(x),
    "vmap": lambda f, x: jax.vmap(f)(x),
    "grad": lambda f, x: jax.grad(lambda x: f(x).sum())(x),
    "cond": lambda f, x: jax.lax.cond(True, f, f, x),
    "scan": lambda f, x: jax.lax.scan(lambda c, x: (c, f(x)), None, x)[1],
    "fori_loop": lambda f, x: jax.lax.fori_loop(0, 1, lambda i, x: f(x), x),
    "checkpoint": lambda f, x: jax.checkpoint(f)(x),
    "eval_shape": lambda f, x: jax.eval_shape(f, x),
}

CALLS = {
    "get_parameter": _param,
    "get_state": lambda: hk.get_state("s", [], init=jnp.zeros),
    "set_state": lambda: hk.set_state("s", 1),
    "next_rng_key": hk.next_rng_key,
    "next_rng_keys": lambda: hk.next_rng_keys(2),
    "maybe_next_rng_key": hk.maybe_next_rng_key,
    "reserve_rng_keys": lambda: hk.reserve_rng_keys(2),
    "with_rng": lambda: hk.with_rng(jax.random.PRNGKey(1)).__enter__(),
}


def test_raw_jit_raises_with_check_on():
    f = hk.transform(_raw_jit)
    with hk.config.context(check_jax_usage=True):
        with pytest.raises(_base.JaxUsageError, match="hk.get_parameter"):
            f.init(None, jnp.ones([1]))
        with pytest.raises(ValueError, match="Haiku overloaded transform"):
            f.init(None, jnp.ones([1]))


def test_raw_jit_allowed_with_check_off():
    f = hk.transform(_raw_jit)
    params = f.init(None, jnp.ones([1]))
    assert params["~"]["w"].shape == (1,)


@pytest.mark.parametrize("transform", sorted(RAW))
@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_api_in_each_raw_transform(call, transform):
    def f(x):
        return RAW[transform](lambda x: [CALLS[call](), x][1], x)

    f = hk.transform_with_state(f)
    with hk.config.context(check_jax_usage=True):
        with pytest.raises(_base.JaxUsageError, match=f"hk.{call}"):
            f.init(jax.random.PRNGKey(0), jnp.ones([1]))


def test_lifted_transforms_allowed():
    def f(x):
        x = _stateful.jit(lambda x: x * _param())(x)  # Haiku's internal hk.jit
        x = hk.vmap(
            lambda x: x + hk.get_state("s", [], init=jnp.zeros), split_rng=False
        )(x)
        x = hk.cond(True, lambda x: x * _param(), lambda x: x + _param(), x)
        x = hk.switch(0, [lambda x: x + jax.random.uniform(hk.next_rng_key())], x)
        x = hk.remat(lambda x: x * _param())(x)
        x = hk.grad(lambda x: (x * _param()).sum())(x)
        _, ys = hk.scan(lambda c, x: (c, x * _scalar()), 0, x)
        x = hk.fori_loop(0, 2, lambda i, x: x * _param(), ys)
        hk.eval_shape(lambda x: x * _param(), x)
        return x

    f = hk.transform_with_state(f)
    key, x = jax.random.PRNGKey(0), jnp.ones([1])
    with hk.config.context(check_jax_usage=True):
        params, state = f.init(key, x)
        out, _ = f.apply(params, state, key, x)
    assert out.shape == (1,)


def test_transform_inside_raw_jit_allowed():
    # The frame starts inside the jit, so its Haiku calls are fine.
    f = hk.transform(lambda x: x * _param())
    with hk.config.context(check_jax_usage=True):
        params = jax.jit(f.init)(None, jnp.ones([1]))
        out = jax.vmap(f.apply, in_axes=(None, None, 0))(params, None, jnp.ones([3, 1]))
    assert out.shape == (3, 1)


def test_while_loop_body_allowed():
    def f(x):
        w = _param()
        if hk.running_init():
            return x * w
        return hk.while_loop(lambda x: x.sum() < 8, lambda x: x * 2 * _param(), x)

    f = hk.transform(f)
    with hk.config.context(check_jax_usage=True):
        params = f.init(None, jnp.ones([1]))
        assert f.apply(params, None, jnp.ones([1])).tolist() == [8.0]


def test_experimental_switch_returns_previous():
    previous = hk.experimental.check_jax_usage(True)
    try:
        assert previous is False
        with pytest.raises(_base.JaxUsageError):
            hk.transform(_raw_jit).init(None, jnp.ones([1]))
    finally:
        assert hk.experimental.check_jax_usage(previous) is True
    assert not hk.config.get_config().check_jax_usage


@pytest.mark.parametrize("transform", ["jit", "vmap", "cond", "scan"])
def test_error_matches_haiku(transform):
    def call(lib):
        def f(x):
            draw = lambda x: x * lib.get_parameter("w", [1], init=jnp.ones)  # noqa: E731
            return RAW[transform](draw, x)

        with lib.config.context(check_jax_usage=True):
            lib.transform(f).init(None, jnp.ones([1]))

    assert_same_errors(call, "hk.get_parameter", "Haiku overloaded transform")

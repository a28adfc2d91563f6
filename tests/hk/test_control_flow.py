"""hk.cond / hk.switch / hk.vmap / hk.while_loop: Haiku's forms and errors."""

import jax
import jax.numpy as jnp
import pytest

import pax.hk as hk
from tests.hk.core_parity import LIBS, assert_same_errors


def _square_and_count(lib):
    def f(x):
        count = lib.get_state("count", [], jnp.int32, init=jnp.zeros)
        lib.set_state("count", count + 1)
        return x**2

    return f


@pytest.mark.parametrize("x", [1.0, 2.0, 3.0])
def test_five_argument_cond_matches_haiku(x):
    outs = {}
    for name, lib in LIBS.items():

        def f(x, lib=lib):
            square = _square_and_count(lib)
            if lib.running_init():
                square(x)
            return lib.cond(x == 2, x, square, x + 1, lambda y: square(y) * 10)

        f = lib.transform_with_state(f)
        params, state = f.init(None, jnp.array(x))
        outs[name] = f.apply(params, state, None, jnp.array(x))
    assert float(outs["pax"][0]) == float(outs["haiku"][0])
    assert outs["pax"][1] == outs["haiku"][1]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_switch_traces_each_function_once(n):
    calls = {"f": 0, "g": 0}

    def f(x):
        calls["f"] += 1
        return x + 1

    def g(x):
        calls["g"] += 1
        return x * 2

    def run(i, x):
        a = hk.switch(i, [f, g] * n, x)
        b = hk.cond(i == 0, f, f, x)
        return a, b

    hk.transform(run).apply({}, None, 0, jnp.array(1.0))
    assert calls == {"f": 2, "g": 1}


def test_cond_operand_keyword_and_positional_matches_haiku():
    def call(lib):
        def f():
            lib.cond(True, lambda x: x + 5, lambda x: x + 4, 1, operand=1)

        lib.transform(f).init(None)

    assert_same_errors(call, "cannot also pass operands positionally")


@pytest.mark.parametrize("kind", ["cond", "switch"])
def test_branch_structure_error_keeps_jax_wording(kind):
    def f(x):
        def make(x):
            return hk.get_parameter("w", [], init=jnp.ones)

        if kind == "cond":
            return hk.cond(False, make, lambda x: x, x)
        return hk.switch(0, [make, lambda x: x], x)

    with pytest.raises(TypeError) as info:
        hk.transform(f).init(None, jnp.array(0.0))
    message = str(info.value)
    assert f"{kind} branch outputs must have the same pytree structure" in message
    assert "hk.running_init()" in message


def test_vmap_requires_split_rng_unless_opted_out():
    def call(lib):
        lib.vmap(lambda x: x)

    assert_same_errors(call, "hk.vmap.require_split_rng = False")
    hk.vmap.require_split_rng = False
    try:
        f = hk.transform(lambda: hk.vmap(hk.next_rng_key, axis_size=2)())
        k1, k2 = f.apply({}, jax.random.PRNGKey(0))
    finally:
        hk.vmap.require_split_rng = True
    assert (k1 == k2).all()  # split_rng=False implied


def test_vmap_split_rng_at_init_error_matches_haiku():
    def call(lib):
        def f(x):
            def make(_):
                init = lib.initializers.TruncatedNormal()  # draws per element
                return lib.get_parameter("w", [], init=init)

            return lib.vmap(make, split_rng=True)(x)

        lib.transform(f).init(jax.random.PRNGKey(0), jnp.arange(4))

    assert_same_errors(call, "split_rng to True during initialization")


def test_while_loop_body_draws_reserved_keys():
    def f():
        def body(i):
            hk.next_rng_key()
            hk.next_rng_key()
            return i + 1

        hk.reserve_rng_keys(5)
        if hk.running_init():
            return body(0)
        return hk.while_loop(lambda i: i < 7, body, 0)

    f = hk.transform(f)
    key = jax.random.PRNGKey(0)
    assert int(f.apply(f.init(key), key)) == 7


def test_while_loop_cond_must_not_draw_keys():
    def f():
        def cond(i):
            hk.next_rng_key()
            return i < 3

        return hk.while_loop(cond, lambda i: i + 1, 0)

    f = hk.transform(f)
    with pytest.raises(ValueError, match="in `cond_fun`"):
        f.apply({}, jax.random.PRNGKey(0))

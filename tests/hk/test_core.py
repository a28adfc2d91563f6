"""Parity with dm-haiku: state, transforms, errors, creators/getters/setters,
method interceptors and the public names of ``pax.hk``'s core."""

from __future__ import annotations

import inspect

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk
from tests.hk.core_parity import (
    APPLY_KEY,
    KEY,
    LIBS,
    L,
    assert_identical,
    assert_same_as_haiku,
    assert_same_errors,
    catch,
    rand_init,
    run_one,
    shapes,
)

X = jnp.arange(3, dtype=jnp.float32) / 3


def transformed_both(make, *, state=False):
    """``(haiku_transformed, pax_transformed)`` of ``make(hk)``."""
    t = "transform_with_state" if state else "transform"
    return tuple(getattr(hk, t)(make(hk)) for hk in LIBS.values())


# ---------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------


def test_state_get_with_init_and_set():
    def make(hk):
        Counter = L(hk).Counter

        def f(x):
            y = Counter()(x)
            y = Counter()(y)
            s = hk.get_state("total", [3], init=jnp.zeros)
            hk.set_state("total", s + y)
            return y, hk.get_state("total")

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.state) == ["counter", "counter_1", "~"]


def test_init_returns_first_value_set_apply_returns_current():
    def make(hk):
        def f():
            hk.set_state("a", jnp.array(1.0))
            hk.set_state("a", jnp.array(2.0))
            b = hk.get_state("b", [], init=jnp.ones)
            hk.set_state("b", b + 10)
            hk.set_state("b", b + 20)
            seen = (hk.get_initial_state(), hk.get_current_state())
            return hk.get_state("a"), hk.get_state("b"), seen

        return f

    ref = assert_same_as_haiku(make)
    assert float(ref.state["~"]["a"]) == 1.0 and float(ref.state["~"]["b"]) == 1.0
    assert float(ref.new_state["~"]["a"]) == 2.0
    assert float(ref.new_state["~"]["b"]) == 21.0


def test_state_over_several_applies():
    outs = {}
    for name, hk in LIBS.items():
        f = hk.transform_with_state(lambda x, hk=hk: L(hk).Counter()(x))
        params, state = f.init(KEY, X)
        seq = []
        for _ in range(3):
            out, state = f.apply(params, state, None, X)
            seq.append((out, state))
        outs[name] = (params, seq)
    assert_identical(outs["haiku"], outs["pax"])
    assert int(outs["pax"][1][-1][1]["counter"]["n"]) == 3


def test_state_tree_values_any_pytree():
    def make(hk):
        def f():
            hk.set_state("tree", {"a": jnp.ones(2), "b": (jnp.zeros(()), 3)})
            return hk.get_state("tree")

        return f

    assert_same_as_haiku(make)


def test_get_state_without_init():
    def call(hk):
        hk.transform_with_state(lambda: hk.get_state("missing")).init(None)

    assert_same_errors(call, "'missing'", "'~'")


def test_get_state_without_shape():
    def call(hk):
        hk.transform_with_state(
            lambda: hk.get_state("s", init=jnp.zeros, dtype=jnp.float32)
        ).init(None)

    assert_same_errors(call, "'s'", "'~'")


def test_get_state_in_module_without_init():
    def call(hk):
        class M(hk.Module):
            def __call__(self):
                return hk.get_state("count")

        hk.transform_with_state(lambda: M()()).init(None)

    assert_same_errors(call, "'count'", "'m'")


# ---------------------------------------------------------------------------
# transforms
# ---------------------------------------------------------------------------


def dense_fn(hk):
    return lambda x: L(hk).Dense(2)(x)


def test_transform_init_and_apply_calling_conventions():
    ref_t, got_t = transformed_both(dense_fn)
    for call in (
        lambda t: t.init(KEY, X),
        lambda t: t.init(rng=KEY, x=X),
        lambda t: t.init(KEY, x=X),
        lambda t: t.init(7, X),
    ):
        assert_identical(call(ref_t), call(got_t))
    params = ref_t.init(KEY, X)
    for call in (
        lambda t: t.apply(params, None, X),
        lambda t: t.apply(params, KEY, X),
        lambda t: t.apply(params, 7, x=X),
        lambda t: t.apply(params=params, rng=None, x=X),
    ):
        assert_identical(call(ref_t), call(got_t))


def test_transform_rng_none_and_no_randomness():
    def make(hk):
        def f(x):
            return x * hk.get_parameter("w", [3], init=jnp.ones)

        return f

    ref = assert_same_as_haiku(make, X, rng=None, apply_rng=None)
    assert list(ref.params) == ["~"]


def test_transform_with_state_apply_calling_conventions():
    ref_t, got_t = transformed_both(lambda hk: lambda x: L(hk).Counter()(x), state=True)
    params, state = ref_t.init(KEY, X)
    for call in (
        lambda t: t.apply(params, state, None, X),
        lambda t: t.apply(params, state, APPLY_KEY, x=X),
        lambda t: t.apply(params=params, state=state, rng=3, x=X),
        lambda t: t.apply(params, None, None, X),
    ):
        assert_identical(call(ref_t), call(got_t))


def test_without_apply_rng():
    for hk in LIBS.values():
        f = hk.without_apply_rng(hk.transform(dense_fn(hk)))
        params = f.init(KEY, X)
        assert_identical(
            f.apply(params, X), hk.transform(dense_fn(hk)).apply(params, None, X)
        )
        fs = hk.without_apply_rng(hk.transform_with_state(dense_fn(hk)))
        params, state = fs.init(KEY, X)
        out, new_state = fs.apply(params, state, X)
        assert new_state == {}
        assert_identical(out, f.apply(params, X))


def test_without_apply_rng_rejects_rng_keyword():
    def call(hk):
        f = hk.without_apply_rng(hk.transform(dense_fn(hk)))
        f.apply(f.init(KEY, X), X, rng=KEY)

    assert_same_errors(call, "rng")


def test_without_apply_rng_needing_randomness():
    def call(hk):
        f = hk.without_apply_rng(hk.transform(lambda: hk.next_rng_key()))
        f.apply({})

    assert_same_errors(call, "PRNGKey")


def test_without_apply_rng_bad_argument():
    assert_same_errors(lambda hk: hk.without_apply_rng(lambda x: x), "transform")


def test_without_state_and_with_empty_state():
    for hk in LIBS.values():
        f = hk.with_empty_state(hk.transform(dense_fn(hk)))
        params, state = f.init(KEY, X)
        assert state == {}
        out, state = f.apply(params, {"ignored": {}}, None, X)
        assert state == {}
        g = hk.without_state(hk.transform_with_state(dense_fn(hk)))
        assert_identical(g.init(KEY, X), params)
        assert_identical(g.apply(params, None, X), out)


@pytest.mark.parametrize("where", ["init", "apply"])
def test_transform_errors_when_state_is_used(where):
    def call(hk):
        def f():
            if hk.running_init() or where == "apply":
                hk.set_state("s", jnp.zeros(()))

        g = hk.transform(f)
        params = g.init(None)
        g.apply(params, None)

    assert_same_errors(call, "transform_with_state")


def test_transform_apply_state_keyword():
    def call(hk):
        f = hk.transform(lambda state: state)
        f.apply({}, None, state=1)

    assert_same_errors(call, "positionally")


def test_transform_of_a_jitted_function():
    assert_same_errors(lambda hk: hk.transform(jax.jit(lambda x: x)), "jit")


def test_transform_apply_rng_false():
    assert_same_errors(
        lambda hk: hk.transform(lambda: None, apply_rng=False), "without_apply_rng"
    )


@pytest.mark.parametrize("bad", [[1, 2], 3.0, "p"], ids=str)
def test_apply_with_non_mapping_params(bad):
    def call(hk):
        hk.transform(lambda: None).apply(bad, None)

    assert_same_errors(call, "params", "mapping")


def test_jit_init_apply_and_grad():
    def make(hk):
        def f(x):
            return jnp.sum(L(hk).MLP((3, 2))(x) ** 2)

        return f

    results = {}
    for name, hk in LIBS.items():
        f = hk.transform(make(hk))
        params = jax.jit(f.init)(KEY, X)
        out = jax.jit(f.apply)(params, None, X)
        grads = jax.grad(f.apply)(params, None, X)
        results[name] = (params, out, grads)
        # jit returns dicts with sorted keys: compare the values only
        leaves = jax.tree_util.tree_leaves
        assert_identical(leaves(params), leaves(f.init(KEY, X)))
    assert_identical(results["haiku"], results["pax"])


def test_running_init():
    def make(hk):
        def f():
            w = hk.get_parameter("w", [], init=jnp.zeros)
            return w, hk.running_init()

        return f

    for hk in LIBS.values():
        f = hk.transform(make(hk))
        params = f.init(None)
        assert f.apply(params, None)[1] is False
    seen = []
    for hk in LIBS.values():
        hk.transform(lambda hk=hk: seen.append(hk.running_init())).init(None)
    assert seen == [True, True]
    assert_same_errors(lambda hk: hk.running_init(), "hk.running_init", "hk.transform")


def test_get_params_and_state_inside_transform():
    def make(hk):
        def f(x):
            before = hk.get_params()
            y = L(hk).Dense(2)(x)
            after = hk.get_params()
            c = L(hk).Counter()(y)
            return c, before, after, hk.get_initial_state(), hk.get_current_state()

        return f

    assert_same_as_haiku(make, X)


def test_multi_transform():
    def make(hk):
        Dense = L(hk).Dense

        def f():
            enc, dec = Dense(2, name="encoder"), Dense(3, name="decoder")

            def template(x):
                return dec(enc(x))

            return template, {"encode": enc, "decode": dec, "both": template}

        return f

    res = {}
    for name, hk in LIBS.items():
        f = hk.multi_transform(make(hk))
        params = f.init(KEY, X)
        outs = {
            "encode": f.apply["encode"](params, None, X),
            "decode": f.apply["decode"](params, KEY, jnp.ones(2)),
            "both": f.apply["both"](params, None, X),
        }
        g = hk.without_apply_rng(f)
        outs["no_rng"] = g.apply["both"](params, X)
        assert list(f.apply) == ["both", "decode", "encode"]
        res[name] = (params, outs)
    assert_identical(res["haiku"], res["pax"])
    assert list(res["pax"][0]) == ["encoder", "decoder"]


def test_multi_transform_with_state_and_modules_built_with_params_and_keys():
    def make(hk):
        Counter = L(hk).Counter

        class Eager(hk.Module):
            """Creates a parameter and draws a key while being constructed."""

            def __init__(self, name=None):
                super().__init__(name=name)
                self.w = hk.get_parameter("w", [3], init=rand_init(hk))
                self.key = hk.maybe_next_rng_key()

            def __call__(self, x):
                return x * self.w

        def f():
            eager, counter = Eager(), Counter()

            def template(x):
                return counter(eager(x))

            return template, (counter, eager, template)

        return f

    res = {}
    for name, hk in LIBS.items():
        f = hk.multi_transform_with_state(make(hk))
        params, state = f.init(KEY, X)
        outs = [a(params, state, APPLY_KEY, X) for a in f.apply]
        nf = hk.without_apply_rng(f)
        outs.append(nf.apply[2](params, state, X))
        res[name] = (params, state, outs)
    assert_identical(res["haiku"], res["pax"])


def test_multi_transform_errors_with_state():
    def call(hk):
        def f():
            def template():
                hk.set_state("s", jnp.zeros(()))

            return template, template

        hk.multi_transform(f).init(None)

    assert_same_errors(call, "multi_transform_with_state")


def test_get_original_fn():
    def fn(x):
        return x

    f = pax.hk.transform(fn)
    assert pax.hk.experimental.get_original_fn(f) is fn
    assert pax.hk.experimental.get_original_fn(f.apply) is fn
    assert pax.hk.experimental.get_original_fn(pax.hk.without_apply_rng(f)) is fn
    fs = pax.hk.with_empty_state(f)
    assert pax.hk.experimental.get_original_fn(fs) is fn


def test_transformed_signatures():
    def fn(x, y=1):
        return x

    for hk in LIBS.values():
        f = hk.transform(fn)
        fs = hk.transform_with_state(fn)
        got = [
            list(inspect.signature(g).parameters)
            for g in (
                f.init,
                f.apply,
                fs.init,
                fs.apply,
                hk.without_apply_rng(f).apply,
                hk.without_apply_rng(fs).apply,
                hk.with_empty_state(f).apply,
            )
        ]
        assert got == [
            ["rng", "x", "y"],
            ["params", "rng", "x", "y"],
            ["rng", "x", "y"],
            ["params", "state", "rng", "x", "y"],
            ["params", "x", "y"],
            ["params", "state", "x", "y"],
            ["param", "state", "rng", "x", "y"],
        ], hk


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "symbol",
    [
        "get_parameter",
        "get_state",
        "set_state",
        "current_name",
        "custom_creator",
        "custom_getter",
        "custom_setter",
        "get_params",
        "maybe_next_rng_key",
        "next_rng_keys",
    ],
)
def test_core_functions_outside_transform(symbol):
    args = {
        "get_parameter": ("w", [], jnp.float32, jnp.zeros),
        "get_state": ("s", [], jnp.float32, jnp.zeros),
        "set_state": ("s", 1),
        "custom_creator": (lambda *a: None,),
        "custom_getter": (lambda *a: None,),
        "custom_setter": (lambda *a: None,),
        "next_rng_keys": (2,),
    }.get(symbol, ())
    assert_same_errors(
        lambda hk: getattr(hk, symbol)(*args), f"hk.{symbol}", "hk.transform"
    )


def test_parameter_shape_mismatch():
    def call(hk):
        f = hk.transform(lambda x: L(hk).Dense(2)(x))
        params = f.init(KEY, jnp.ones(4))
        f.apply(params, None, X)

    _, got = assert_same_errors(call, "dense/w", "(4, 2)")
    assert "(3, 2)" in str(got)


def test_parameter_shape_mismatch_in_nested_module():
    def call(hk):
        f = hk.transform(lambda x: L(hk).MLP((3, 2))(x))
        params = f.init(KEY, X)
        params = {**params, "mlp/~/dense_1": {"w": jnp.ones((3, 5)), "b": jnp.ones(2)}}
        f.apply(params, None, X)

    _, got = assert_same_errors(call, "mlp/~/dense_1/w", "(3, 5)")
    assert "(3, 2)" in str(got)


def test_missing_parameter_at_apply():
    def call(hk):
        f = hk.transform(lambda x: L(hk).MLP((3, 2))(x))
        params = f.init(KEY, X)
        del params["mlp/~/dense_1"]
        f.apply(params, None, X)

    assert_same_errors(call, "'w'", "'mlp/~/dense_1'")


def test_missing_parameter_at_apply_with_rng():
    def call(hk):
        f = hk.transform(lambda x: L(hk).Dense(2)(x))
        f.apply({"dense": {"b": jnp.zeros(2)}}, KEY, X)

    assert_same_errors(call, "'w'", "'dense'")


def test_missing_parameter_without_initializer():
    def call(hk):
        hk.transform(lambda: hk.get_parameter("w", [])).init(None)

    assert_same_errors(call, "Initializer must be specified")


def test_parameter_initializer_returning_none():
    def call(hk):
        hk.transform(lambda: hk.get_parameter("w", [], init=lambda s, d: None)).init(
            None
        )

    assert_same_errors(call, "cannot be `None`")


def test_parameter_dtype_and_shape_forms():
    def make(hk):
        def f():
            return [
                hk.get_parameter("a", (2,), init=jnp.ones),
                hk.get_parameter("b", [np.int64(2), 1], jnp.bfloat16, jnp.ones),
                hk.get_parameter("c", [], jnp.int32, init=jnp.ones),
                hk.get_parameter("d", jnp.zeros((2, 3)).shape, init=jnp.ones),
                hk.get_parameter("a", [2], init=jnp.zeros),
            ]

        return f

    ref = assert_same_as_haiku(make)
    assert shapes(ref.params)["~"] == {"a": (2,), "b": (2, 1), "c": (), "d": (2, 3)}


def test_reusing_a_parameter_with_another_shape():
    def call(hk):
        def f():
            hk.get_parameter("w", [2], init=jnp.ones)
            hk.get_parameter("w", [3], init=jnp.ones)

        hk.transform(f).init(None)

    assert_same_errors(call, "'~/w'", "(2,)")


# ---------------------------------------------------------------------------
# creators, getters, setters, DO_NOT_STORE
# ---------------------------------------------------------------------------


def context_summary(context):
    return (
        context.full_name,
        context.module_name,
        context.name,
        type(context.module).__name__,
        context.original_dtype,
        tuple(context.original_shape),
        context.lifted_prefix_name,
    )


def test_custom_creator_params_and_state():
    def make(hk):
        log = []

        def zeros_creator(next_creator, shape, dtype, init, context):
            log.append(("outer", context_summary(context)))
            assert context.original_init is init
            return next_creator(shape, dtype, jnp.zeros)

        def double_creator(next_creator, shape, dtype, init, context):
            log.append(("inner", context.full_name))
            return 2 * next_creator(shape, dtype, init)

        def f(x):
            with hk.custom_creator(zeros_creator, state=True):
                with hk.custom_creator(double_creator, params=False, state=True):
                    y = L(hk).Dense(2)(x)
                    y = L(hk).Counter()(y)
            s = hk.get_state("plain", [2], init=jnp.ones)
            return y + s, list(log)

        return f

    ref = assert_same_as_haiku(make, X)
    assert float(ref.params["dense"]["w"].sum()) == 0.0


def test_custom_creator_not_run_at_apply():
    def make(hk):
        def f():
            calls = []

            def creator(next_creator, shape, dtype, init, context):
                calls.append(context.full_name)
                return next_creator(shape, dtype, init)

            with hk.custom_creator(creator):
                w = hk.get_parameter("w", [2], init=jnp.ones)
            return w, calls

        return f

    ref = assert_same_as_haiku(make)
    assert ref.out[1] == []


def test_custom_getter_params_and_state():
    def make(hk):
        log = []

        def bf16_getter(next_getter, value, context):
            log.append(context_summary(context))
            return next_getter(value.astype(jnp.bfloat16))

        def plus_one(next_getter, value, context):
            return next_getter(value) + 1

        def f(x):
            with hk.custom_getter(bf16_getter, state=True):
                with hk.custom_getter(plus_one, params=False, state=True):
                    y = L(hk).Dense(2)(x)
                    y = L(hk).Counter()(y)
            return y, list(log)

        return f

    ref = assert_same_as_haiku(make, X)
    assert ref.params["dense"]["w"].dtype == jnp.float32
    assert ref.state["counter"]["n"].dtype == jnp.int32


def test_custom_setter():
    def make(hk):
        log = []

        def zero_in_init(next_setter, value, context):
            log.append(
                (
                    context.full_name,
                    context.module_name,
                    context.name,
                    context.original_shape,
                    context.original_dtype,
                    context.lifted_prefix_name,
                )
            )
            if hk.running_init():
                value = jax.tree_util.tree_map(jnp.zeros_like, value)
            return next_setter(value)

        def skip(next_setter, value, context):
            if context.name == "skipped":
                return hk.DO_NOT_STORE
            return next_setter(value)

        def f(x):
            with hk.custom_setter(zero_in_init), hk.custom_setter(skip):
                hk.set_state("x", jnp.ones([2]))
                hk.set_state("pair", (jnp.ones(1), 2.0))
                hk.set_state("skipped", jnp.ones(3))
                y = L(hk).Counter()(x)
            return y, hk.get_state("x"), list(log)

        return f

    ref = assert_same_as_haiku(make, X)
    assert "skipped" not in ref.state["~"]


def test_do_not_store_with_getter_supplying_values():
    pretrained = {"torso": {"w": jnp.ones((3, 2)), "b": jnp.full((2,), 0.5)}}

    def make(hk):
        Dense = L(hk).Dense

        def creator(next_creator, shape, dtype, init, context):
            if context.module_name in pretrained:
                return hk.DO_NOT_STORE
            return next_creator(shape, dtype, init)

        def getter(next_getter, value, context):
            if context.module_name in pretrained:
                assert value is hk.DO_NOT_STORE
                value = pretrained[context.module_name][context.name]
            return next_getter(value)

        def f(x):
            with hk.custom_creator(creator), hk.custom_getter(getter):
                return Dense(2, name="tail")(Dense(2, name="torso")(x))

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["tail"]


def test_do_not_store_state():
    def make(hk):
        def creator(next_creator, shape, dtype, init, context):
            return hk.DO_NOT_STORE

        def getter(next_getter, value, context):
            if value is hk.DO_NOT_STORE:
                value = jnp.full(context.original_shape, 4.0)
            return next_getter(value)

        def f():
            with hk.custom_creator(creator, params=False, state=True):
                with hk.custom_getter(getter, params=False, state=True):
                    return hk.get_state("s", [2], init=jnp.zeros)

        return f

    # Haiku returns ``{"~": {}}`` here (an empty module entry left behind by
    # ``get_state``); pax.hk leaves no empty entries. Everything else agrees.
    results = {}
    for name, hk in LIBS.items():
        r = run_one(hk, make)
        results[name] = r
        assert_identical(r.out, jnp.full((2,), 4.0))
    assert results["haiku"].state == {"~": {}}
    assert results["pax"].state == {} and results["pax"].new_state == {}


def test_do_not_store_properties():
    for hk in LIBS.values():
        with pytest.raises(ValueError, match="DO_NOT_STORE"):
            _ = hk.DO_NOT_STORE.shape
        with pytest.raises(ValueError, match="DO_NOT_STORE"):
            _ = hk.DO_NOT_STORE.dtype


def test_do_not_store_without_getter():
    def call(hk):
        def creator(next_creator, shape, dtype, init, context):
            return hk.DO_NOT_STORE

        def f():
            with hk.custom_creator(creator):
                return hk.get_parameter("w", [2], init=jnp.zeros)

        hk.transform(f).init(None)

    assert_same_errors(call, "DO_NOT_STORE")


def test_getter_context_module_is_none_at_top_level():
    seen = {}
    for name, hk in LIBS.items():

        def getter(next_getter, value, context, name=name):
            seen[name] = (context.module, context.module_name, context.full_name)
            return next_getter(value)

        def f(hk=hk, getter=getter):
            with hk.custom_getter(getter):
                hk.get_parameter("w", [], init=jnp.zeros)

        hk.transform(f).init(None)
    assert seen["haiku"] == seen["pax"] == (None, "~", "~/w")


# ---------------------------------------------------------------------------
# method interceptors
# ---------------------------------------------------------------------------


def interceptor_model(hk):
    Dense = L(hk).Dense

    class Base(hk.Module):
        def __call__(self, x):
            return Dense(2)(x)

        def helper(self, x):
            return 2 * x

    class Child(Base):
        @property
        def prop(self):
            return 3

        def scaled(self, x):
            return self.helper(x) * self.prop

    return Child


def test_intercept_methods_order_and_context():
    def make(hk):
        Child = interceptor_model(hk)
        log = []

        def outer(next_fn, args, kwargs, context):
            log.append(
                (
                    "outer",
                    type(context.module).__name__,
                    context.method_name,
                    context.orig_class.__name__,
                    getattr(context.module, "module_name", None),
                )
            )
            return next_fn(*args, **kwargs)

        def inner(next_fn, args, kwargs, context):
            log.append(("inner", context.method_name, len(args), sorted(kwargs)))
            if context.method_name == "helper":
                return next_fn(args[0] + 1) * 10
            return next_fn(*args, **kwargs)

        def f(x):
            with hk.intercept_methods(outer):
                with hk.intercept_methods(inner):
                    child = Child(name="child")
                    y = child(x=x)
                    z = child.scaled(y)
            return z, list(log)

        return f

    ref = assert_same_as_haiku(make, X)
    methods = [entry[2] for entry in ref.out[1] if entry[0] == "outer"]
    assert methods[:4] == ["__init__", "__call__", "__init__", "__call__"]


def test_intercept_methods_short_circuit():
    def make(hk):
        Child = interceptor_model(hk)
        log = []

        def first(next_fn, args, kwargs, context):
            log.append(("first", context.method_name))
            if context.method_name == "helper":
                return context.orig_method(*args, **kwargs)
            return next_fn(*args, **kwargs)

        def second(next_fn, args, kwargs, context):
            log.append(("second", context.method_name))
            return next_fn(*args, **kwargs)

        def f(x):
            child = Child()
            with hk.intercept_methods(first), hk.intercept_methods(second):
                out = child.scaled(x)
            return out, list(log)

        return f

    assert_same_as_haiku(make, X)


def test_intercept_methods_can_replace_results():
    def make(hk):
        Dense = L(hk).Dense

        def cast(next_fn, args, kwargs, context):
            if context.method_name != "__call__":
                return next_fn(*args, **kwargs)
            args = jax.tree_util.tree_map(lambda a: a.astype(jnp.bfloat16), args)
            return next_fn(*args, **kwargs).astype(jnp.float32)

        def f(x):
            with hk.intercept_methods(cast):
                return Dense(2)(x)

        return f

    ref = assert_same_as_haiku(make, X)
    assert ref.params["dense"]["w"].dtype == jnp.bfloat16


# ---------------------------------------------------------------------------
# public names
# ---------------------------------------------------------------------------

CORE_NAMES = [
    "transform",
    "transform_with_state",
    "multi_transform",
    "multi_transform_with_state",
    "without_apply_rng",
    "without_state",
    "with_empty_state",
    "running_init",
    "Transformed",
    "TransformedWithState",
    "MultiTransformed",
    "MultiTransformedWithState",
    "Module",
    "get_parameter",
    "get_state",
    "set_state",
    "to_module",
    "transparent",
    "name_scope",
    "current_name",
    "name_like",
    "force_name",
    "custom_creator",
    "custom_getter",
    "custom_setter",
    "intercept_methods",
    "MethodContext",
    "GetterContext",
    "SetterContext",
    "DO_NOT_STORE",
    "next_rng_key",
    "next_rng_keys",
    "maybe_next_rng_key",
    "reserve_rng_keys",
    "with_rng",
    "PRNGSequence",
    "get_params",
    "get_current_state",
    "get_initial_state",
    "maybe_get_rng_sequence_state",
    "replace_rng_sequence_state",
]

EXPERIMENTAL_CORE_NAMES = [
    "check_jax_usage",
    "module_auto_repr",
    "rng_reserve_size",
    "current_name",
    "custom_creator",
    "custom_getter",
    "DO_NOT_STORE",
    "force_name",
    "get_current_state",
    "get_initial_state",
    "get_params",
    "GetterContext",
    "intercept_methods",
    "MethodContext",
    "maybe_get_rng_sequence_state",
    "name_like",
    "name_scope",
    "ParamContext",
    "replace_rng_sequence_state",
]


@pytest.mark.parametrize("name", CORE_NAMES)
def test_public_core_name(name):
    assert name in haiku.__all__
    assert hasattr(pax.hk, name)
    assert name in pax.hk.__all__


@pytest.mark.parametrize("name", EXPERIMENTAL_CORE_NAMES)
def test_experimental_core_name(name):
    assert name in haiku.experimental.__all__
    ours, theirs = getattr(pax.hk.experimental, name), getattr(haiku.experimental, name)
    assert name in pax.hk.experimental.__all__
    if callable(theirs) and not isinstance(theirs, type):
        assert ours is getattr(pax.hk, name, ours) or name == "ParamContext"


def test_experimental_aliases_match_top_level():
    assert pax.hk.experimental.ParamContext is pax.hk.GetterContext
    for name in ("custom_creator", "custom_getter", "DO_NOT_STORE", "name_scope"):
        assert getattr(pax.hk.experimental, name) is getattr(pax.hk, name)


def test_context_named_tuples_have_haiku_fields():
    for name in ("GetterContext", "SetterContext", "MethodContext"):
        assert getattr(pax.hk, name)._fields == getattr(haiku, name)._fields
    for name in ("Transformed", "TransformedWithState"):
        assert getattr(pax.hk, name)._fields == getattr(haiku, name)._fields


def test_library_does_not_import_haiku():
    import pathlib

    root = pathlib.Path(pax.hk.__file__).parent
    for path in root.glob("*.py"):
        text = path.read_text()
        assert "import haiku" not in text and "from haiku" not in text, path


def test_missing_rng_error_is_a_value_error():
    assert issubclass(pax.hk.MissingRNGError, ValueError)
    err = catch(lambda: pax.hk.transform(lambda: pax.hk.next_rng_key()).init(None))
    assert isinstance(err, pax.hk.MissingRNGError)


def test_unexpected_tracer_hint():
    def call(hk):
        def f(x):
            jax.jit(lambda y: hk.get_parameter("w", [], init=lambda s, d: y.sum()))(x)
            return hk.get_parameter("w", []) + 1

        hk.transform(f).init(None, X)

    assert_same_errors(call, "hk.vmap", "UnexpectedTracerError")


def test_type_aliases_exist_and_protocols_check_modules():
    for name in ("Params", "State", "MutableParams", "MutableState"):
        assert name in haiku.__all__ and hasattr(pax.hk, name)

    def f():
        m = pax.hk.Module(name="m")
        assert isinstance(m, pax.hk.ModuleProtocol)
        assert isinstance(m, pax.hk.SupportsCall) is False  # no __call__ defined
        return 0

    pax.hk.transform(f).init(None)

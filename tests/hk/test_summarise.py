"""hk.Deferred and hk.experimental.eval_summary / tabulate / fast_eval_shape /
ArraySpec: the same user code under dm-haiku and pax.hk, compared."""

from __future__ import annotations

import pprint
from typing import Any

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk
from tests.hk.core_parity import assert_same_as_haiku, assert_same_errors, catch

LIBS = {"haiku": haiku, "pax": phk}
KEY = jax.random.PRNGKey(3)


# ---------------------------------------------------------------------------
# hk.Deferred
# ---------------------------------------------------------------------------


def deferred_model(hk):
    class Outer(hk.Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.enc = hk.Linear(6)
            # built on first call, yet named from __init__: outer/~/dec
            self.dec = hk.Deferred(lambda: hk.Linear(self.enc.input_size, name="dec"))
            self.mlp = hk.Deferred(lambda: hk.nets.MLP([3, 4]))

        def __call__(self, x):
            hk.Linear(2)(x)  # outer/linear, created before the deferred ones
            z = self.dec(self.enc(x))
            return self.mlp(z), z * self.dec.output_size

    def f(x):
        top = hk.Deferred(lambda: hk.Linear(2))
        hk.Linear(3)(x)
        with hk.name_scope("scope"):
            scoped = hk.Deferred(lambda: hk.Linear(2))
        out = Outer()(x)
        return top(x) + scoped(x), out

    return f


def test_deferred_params_and_outputs_match_haiku():
    ref = assert_same_as_haiku(deferred_model, jnp.ones([2, 5]))
    # the deferred modules are named where the Deferred was created
    assert list(ref.params) == [
        "linear",
        "outer/linear",
        "outer/~/linear",
        "outer/~/dec",
        "outer/~/mlp/~/linear_0",
        "outer/~/mlp/~/linear_1",
        "linear_1",
        "scope/linear",
    ]
    assert ref.params["outer/~/dec"]["w"].shape == (6, 5)


def test_deferred_reuses_name_counters_of_the_call_site_like_haiku():
    # Built at call time, the decoder takes the name "outer/~/linear" that the
    # encoder already has (Haiku counts names where the module is *built*):
    # both libraries then fail on the clashing parameter shape.
    def make(hk):
        class Outer(hk.Module):
            def __init__(self):
                super().__init__(name="outer")
                self.enc = hk.Linear(6)
                self.dec = hk.Deferred(lambda: hk.Linear(self.enc.input_size))

            def __call__(self, x):
                return self.dec(self.enc(x))

        return lambda x: Outer()(x)

    assert_same_errors(
        lambda hk: hk.transform(make(hk)).init(KEY, jnp.ones([2, 5])),
        "outer/~/linear/w",
    )


def deferred_helpers(hk):
    class Example(hk.Module):
        def __init__(self):
            super().__init__()
            self.w = jnp.ones([])

        def __str__(self):
            return "ExampleStr"

        def __repr__(self):
            return "ExampleRepr"

        def __call__(self):
            return self.w

    class Forward(hk.Module):
        def forward(self, x):
            return x + 42

    return Example, Forward


def run_in_transform(hk, body):
    """``body()`` inside ``init`` of a transformed function; its result."""
    out = []
    hk.transform(lambda: out.append(body())).init(KEY)
    return out[0]


@pytest.mark.parametrize("lib", list(LIBS))
def test_deferred_builds_lazily_and_once(lib):
    hk = LIBS[lib]
    Example, _ = deferred_helpers(hk)

    def body():
        calls = []

        def factory():
            calls.append(1)
            return Example()

        d = hk.Deferred(factory)
        assert calls == []  # nothing built yet
        with pytest.raises(AttributeError):
            d.w  # noqa: B018 - attributes forward only once built
        out = d()
        assert calls == [1]
        target = d.target
        for _ in range(3):
            d()
            assert d.target is target
        assert calls == [1]
        return out, target.module_name

    out, name = run_in_transform(hk, body)
    assert float(out) == 1.0
    assert name == "example"


@pytest.mark.parametrize("lib", list(LIBS))
def test_deferred_forwards_attributes_to_the_target(lib):
    hk = LIBS[lib]
    Example, _ = deferred_helpers(hk)

    def body():
        d = hk.Deferred(Example)
        d()
        assert d.w is d.target.w
        new = jnp.zeros([])
        d.w = new  # set on the target
        assert d.target.w is new
        d.target.w = None  # and read back through the wrapper
        assert d.w is None
        del d.w
        assert not hasattr(d.target, "w")
        assert str(d) == "Deferred(ExampleStr)"
        assert repr(d) == "Deferred(ExampleRepr)"
        return True

    assert run_in_transform(hk, body)


@pytest.mark.parametrize("lib", list(LIBS))
def test_deferred_call_methods(lib):
    hk = LIBS[lib]
    _, Forward = deferred_helpers(hk)

    def body():
        d = hk.Deferred(Forward, call_methods=("forward",))
        assert float(d.forward(jnp.zeros([]))) == 42.0
        assert isinstance(d.target, Forward)
        return str(catch(lambda: d()))

    assert run_in_transform(hk, body) == "'Forward' object is not callable"


@pytest.mark.parametrize("lib", list(LIBS))
@pytest.mark.parametrize("call_outer", [True, False])
def test_deferred_named_from_its_creation_scope(lib, call_outer):
    hk = LIBS[lib]
    Example, _ = deferred_helpers(hk)

    class Outer(hk.Module):
        def __init__(self):
            super().__init__(name="outer")
            self.deferred = hk.Deferred(Example)

        def __call__(self):
            return self.deferred()

    def body():
        outer = Outer()
        if call_outer:
            outer()  # built inside Outer.__call__
        with hk.name_scope("scope"):
            d = hk.Deferred(Example)
        return outer.deferred.target.module_name, d.target.module_name

    assert run_in_transform(hk, body) == ("outer/~/example", "scope/example")


def test_deferred_outside_transform_raises():
    # Haiku fails with an IndexError from its empty frame stack; pax.hk raises
    # its usual ValueError asking for hk.transform.
    assert isinstance(catch(lambda: haiku.Deferred(lambda: None)), IndexError)
    err = catch(lambda: phk.Deferred(lambda: None))
    assert isinstance(err, ValueError)
    assert "hk.transform" in str(err)


# ---------------------------------------------------------------------------
# eval_summary
# ---------------------------------------------------------------------------


def is_spec(x: Any) -> bool:
    return type(x).__name__ == "ArraySpec"


def spec_view(tree: Any) -> Any:
    """A library-independent view of a spec tree: leaves as (shape, dtype) and
    the pretty-printed text (which shows container class names)."""
    leaves = jax.tree.leaves(tree, is_leaf=is_spec)
    flat = [
        (tuple(x.shape), np.dtype(x.dtype).name) if is_spec(x) else repr(x)
        for x in leaves
    ]
    return flat, pprint.pformat(tree)


def details_view(details) -> tuple:
    return (
        details.module.module_name,
        type(details.module).__name__.lstrip("_"),
        details.method_name,
        spec_view(details.params),
        spec_view(details.state),
    )


def record_view(r) -> tuple:
    return (
        details_view(r.module_details),
        spec_view(r.args_spec),
        sorted(r.kwargs_spec),
        spec_view(r.kwargs_spec),
        spec_view(r.output_spec),
        r.context.method_name,
        r.context.module is r.module_details.module,
        r.context.orig_class.__name__,
        [details_view(d) for d in r.call_stack],
    )


def summaries(make_fn, *args, **kwargs):
    return {
        name: lib.experimental.eval_summary(make_fn(lib))(*args, **kwargs)
        for name, lib in LIBS.items()
    }


def assert_same_summary(make_fn, *args, **kwargs) -> list:
    """eval_summary of ``make_fn(hk)`` agrees record by record, field by field;
    returns pax's records."""
    got = summaries(make_fn, *args, **kwargs)
    ref, ours = got["haiku"], got["pax"]
    assert ref, "test bug: Haiku recorded nothing"
    assert [type(r).__name__ for r in ours] == ["MethodInvocation"] * len(ours)
    assert len(ours) == len(ref), (
        [r.module_details.module.module_name for r in ref],
        [r.module_details.module.module_name for r in ours],
    )
    for i, (a, b) in enumerate(zip(ref, ours)):
        assert record_view(a) == record_view(b), f"record {i}"
    return ours


def mlp_model(hk):
    return lambda x: hk.nets.MLP([6, 4, 2])(x)


def test_eval_summary_mlp_matches_haiku():
    records = assert_same_summary(mlp_model, jnp.ones([3, 5]))
    assert [r.module_details.module.module_name for r in records] == [
        "mlp",
        "mlp/~/linear_0",
        "mlp/~/linear_1",
        "mlp/~/linear_2",
    ]
    assert [repr(r.args_spec[0]) for r in records] == [
        "f32[3,5]",
        "f32[3,5]",
        "f32[3,6]",
        "f32[3,4]",
    ]
    assert [tuple(r.output_spec.shape) for r in records] == [
        (3, 2),
        (3, 6),
        (3, 4),
        (3, 2),
    ]
    top, first = records[0], records[1]
    assert phk.data_structures.tree_size(top.module_details.params) == (
        5 * 6 + 6 + 6 * 4 + 4 + 4 * 2 + 2
    )
    assert first.module_details.params == {
        "mlp/~/linear_0/b": phk.experimental.ArraySpec((6,), np.dtype("float32")),
        "mlp/~/linear_0/w": phk.experimental.ArraySpec((5, 6), np.dtype("float32")),
    }
    assert [d.module.module_name for d in first.call_stack] == [
        "mlp/~/linear_0",
        "mlp",
    ]


def rich_model(hk):
    class Block(hk.Module):
        def __call__(self, x, *, scale=2.0):
            y = hk.Conv2D(4, 3)(x)
            y = hk.LayerNorm(-1, True, True)(y)
            self.remember(y)
            h = self.helper(y, extra=y)
            return h, {"a": y.astype(jnp.int8), "scale": scale}

        def helper(self, y, extra):
            hk.get_parameter("w", [3, 1], init=jnp.ones)
            return jax.nn.relu(y) + extra

        def remember(self, y):  # returns None: dropped by tabulate's filter
            hk.set_state("count", jnp.zeros([], jnp.int32))
            hk.set_state("last", y[0])

    def f(x):
        out = Block()(x, scale=3.0)
        seq = hk.Sequential([hk.Flatten(), hk.Linear(3), jax.nn.relu])
        seq(x)
        with hk.name_scope("scope"):
            hk.Linear(2)(x)
        d = hk.Deferred(lambda: hk.Linear(2, name="later"))
        d(x)
        return out

    return f


RICH_INPUT = jnp.ones([2, 5, 5, 3])


def test_eval_summary_methods_kwargs_state_scopes_match_haiku():
    records = assert_same_summary(rich_model, RICH_INPUT)
    by_method = {
        (r.module_details.module.module_name, r.module_details.method_name): r
        for r in records
    }
    assert list(by_method) == [
        ("block", "__call__"),
        ("block/conv2_d", "__call__"),
        ("block/layer_norm", "__call__"),
        ("block", "remember"),
        ("block", "helper"),
        ("sequential", "__call__"),
        ("flatten", "__call__"),
        ("linear", "__call__"),
        ("scope/linear", "__call__"),
        ("later", "__call__"),
    ]
    remember = by_method["block", "remember"]
    assert remember.output_spec is None
    assert remember.module_details.state == {
        "block/count": phk.experimental.ArraySpec((), np.dtype("int32")),
        "block/last": phk.experimental.ArraySpec((5, 5, 4), np.dtype("float32")),
    }
    helper = by_method["block", "helper"]
    assert list(helper.kwargs_spec) == ["extra"]
    assert tuple(helper.kwargs_spec["extra"].shape) == (2, 5, 5, 4)
    assert by_method["block", "__call__"].kwargs_spec == {"scale": 3.0}


@pytest.mark.parametrize("wrap", ["transform", "transform_with_state", "init"])
def test_eval_summary_accepts_transformed_functions(wrap):
    plain = phk.experimental.eval_summary(mlp_model(phk))(jnp.ones([3, 5]))
    t = getattr(phk, wrap if wrap != "init" else "transform")(mlp_model(phk))
    f = t.init if wrap == "init" else t
    records = phk.experimental.eval_summary(f)(jnp.ones([3, 5]))
    assert [record_view(r) for r in records] == [record_view(r) for r in plain]
    assert len(records) == 4


def test_eval_summary_leaves_out_pax_internal_methods():
    # pax's BatchNorm and LSTM compute with native pax.nn layers: the helper
    # methods (and private parameter-holder modules) they use are not
    # recorded, so what pax reports is Haiku's summary minus the EMA / gate
    # submodule calls that pax's implementation does not make.
    def make(hk):
        def f(x):
            y = hk.BatchNorm(True, True, 0.9)(x, is_training=True)
            core = hk.LSTM(4)
            return core(y, core.initial_state(2))

        return f

    got = summaries(make, jnp.ones([2, 3]))
    ref = [record_view(r) for r in got["haiku"]]
    ours = [record_view(r) for r in got["pax"]]
    names = [r.context.method_name for r in got["pax"]]
    assert names == ["__call__", "initial_state", "__call__"]
    assert [v[0][0] for v in ours] == ["batch_norm", "lstm", "lstm"]
    it = iter(ref)
    assert all(any(v == w for w in it) for v in ours)  # an ordered subsequence


# ---------------------------------------------------------------------------
# tabulate
# ---------------------------------------------------------------------------


def tables(make_fn, *args, **tab_kwargs):
    out = {}
    for name, lib in LIBS.items():
        f = lib.transform_with_state(make_fn(lib))
        out[name] = lib.experimental.tabulate(f, **tab_kwargs)(*args)
    return out


def test_tabulate_mlp_is_haikus_table():
    got = tables(mlp_model, jnp.ones([3, 5]))
    assert got["pax"] == got["haiku"]
    lines = got["pax"].splitlines()
    assert lines[1].split("|")[1:-1] == [
        " Module                  ",
        " Config                                 ",
        " Module params   ",
        " Input    ",
        " Output   ",
        "   Param count ",
        "   Param bytes ",
    ]
    row = [c.strip() for c in lines[5].split("|")[1:-1]]
    assert row == [
        "mlp/~/linear_0 (Linear)",
        "Linear(output_size=6, name='linear_0')",
        "w: f32[5,6]",
        "f32[3,5]",
        "f32[3,6]",
        "36",
        "144.00 B",
    ]
    assert lines[6].split("|")[1].strip() == "└ mlp (MLP)"


def test_tabulate_columns_filters_and_rich_model_match_haiku():
    got = tables(rich_model, RICH_INPUT)
    assert got["pax"] == got["haiku"]
    assert "block (Block.helper)" in got["pax"]
    assert "block (Block.remember)" not in got["pax"]  # has_output filter
    assert " └ scope (NameScopeModule)" in got["pax"]
    assert "extra=f32[2,5,5,4]" in got["pax"]
    got = tables(
        rich_model,
        RICH_INPUT,
        columns=("module", "params_size", "params_bytes"),
        filters=("has_params",),
    )
    assert got["pax"] == got["haiku"]
    assert "flatten" not in got["pax"] and "sequential (Sequential)" in got["pax"]
    got = tables(rich_model, RICH_INPUT, filters=())
    assert got["pax"] == got["haiku"]
    assert "block (Block.remember)" in got["pax"]


def test_tabulate_other_formats_and_errors_match_haiku():
    got = tables(mlp_model, jnp.ones([3, 5]), tabulate_kwargs={"tablefmt": "simple"})
    assert got["pax"] == got["haiku"]
    assert "+" not in got["pax"] and "mlp/~/linear_2 (Linear)" in got["pax"]
    empty = tables(lambda hk: lambda x: x + 1, jnp.ones([2]))
    assert empty["pax"] == empty["haiku"] == "No modules matching filters."
    for bad in ({"columns": ("module", "nope")}, {"filters": ("nope",)}):
        assert_same_errors(
            lambda hk, bad=bad: hk.experimental.tabulate(mlp_model(hk), **bad),
            "nope",
        )


# ---------------------------------------------------------------------------
# fast_eval_shape, ArraySpec
# ---------------------------------------------------------------------------


def test_fast_eval_shape_outside_and_inside_transform():
    x = jnp.ones([4, 5])
    got = {}
    for name, lib in LIBS.items():
        f = lib.transform(mlp_model(lib))
        params = lib.experimental.fast_eval_shape(f.init, KEY, x)

        def inner(x, lib=lib):
            return lib.experimental.fast_eval_shape(lib.Linear(7), x)

        _, shape = lib.transform_with_state(
            lambda x, inner=inner: (inner(x), inner(x))
        ).init(KEY, x)
        got[name] = (jax.tree.map(lambda s: (s.shape, s.dtype), params), shape)
        assert type(jax.tree.leaves(params)[0]) is jax.ShapeDtypeStruct
    assert got["pax"][0] == got["haiku"][0]
    assert got["pax"][0]["mlp/~/linear_1"]["w"] == ((6, 4), jnp.float32)


def test_fast_eval_shape_inside_transform_matches_haiku():
    # parameters created while evaluating shapes are not kept (as in Haiku)
    def make(hk, seen):
        def f(x):
            seen.append(hk.experimental.fast_eval_shape(hk.Linear(7), x))
            return hk.Linear(3)(x)

        return f

    got = {}
    for name, lib in LIBS.items():
        seen = []
        params = lib.transform(make(lib, seen)).init(KEY, jnp.ones([4, 5]))
        got[name] = (jax.tree.map(jnp.shape, params), seen[0].shape, seen[0].dtype)
    assert got["pax"] == got["haiku"]
    assert got["pax"] == ({"linear_1": {"b": (3,), "w": (5, 3)}}, (4, 7), jnp.float32)


@pytest.mark.parametrize(
    "dtype", [jnp.float32, jnp.bfloat16, jnp.int8, jnp.uint8, jnp.bool_, jnp.complex64]
)
def test_array_spec_matches_haiku(dtype):
    x = jnp.zeros([2, 3, 1], dtype)
    ref = haiku.experimental.ArraySpec.from_array(x)
    ours = phk.experimental.ArraySpec.from_array(x)
    assert repr(ours) == str(ours) == repr(ref)
    assert ours.size == ref.size == 6
    assert (ours.shape, ours.dtype) == (ref.shape, ref.dtype)
    assert ours == phk.experimental.ArraySpec((2, 3, 1), np.dtype(dtype))
    assert repr(phk.experimental.ArraySpec((), dtype)) == repr(
        haiku.experimental.ArraySpec((), dtype)
    )

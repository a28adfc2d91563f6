"""Parity with dm-haiku: how modules, parameters and state are named."""

from __future__ import annotations

import abc
import dataclasses
import inspect

import haiku
import jax
import jax.numpy as jnp
import pytest
from haiku._src import utils as haiku_utils

import pax.hk
from pax.hk._module import camel_to_snake
from tests.hk.core_parity import (
    KEY,
    LIBS,
    L,
    assert_same_as_haiku,
    assert_same_errors,
    rand_init,
    shapes,
)

X = jnp.arange(3, dtype=jnp.float32) / 3


def test_submodule_scopes_init_call_and_other_method():
    def make(hk):
        Dense = L(hk).Dense

        class Parent(hk.Module):
            def __init__(self, name=None):
                super().__init__(name=name)
                self.made_in_init = Dense(2)

            def encode(self, x):
                return Dense(2)(x)

            def __call__(self, x):
                a = self.made_in_init(x)
                b = Dense(2)(x)
                c = self.encode(x)
                return a + b + c

        return lambda x: Parent()(x)

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == [
        "parent/~/dense",
        "parent/dense",
        "parent/~encode/dense",
    ]


def test_repeated_instances_are_numbered():
    def make(hk):
        Dense = L(hk).Dense

        class Block(hk.Module):
            def __call__(self, x):
                return Dense(3)(x) + Dense(3)(x) + Dense(3)(x)

        def f(x):
            return Block()(x) + Block()(x) + Dense(3)(x) + Dense(3)(x)

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == [
        "block/dense",
        "block/dense_1",
        "block/dense_2",
        "block_1/dense",
        "block_1/dense_1",
        "block_1/dense_2",
        "dense",
        "dense_1",
    ]


@pytest.mark.parametrize(
    "names",
    [
        ["foo", "foo", "foo"],
        ["foo_3", "foo"],
        ["foo_0", "foo", "foo"],
        ["foo", "foo_1", "foo"],
        ["foo_1", "foo", "foo"],
        [None, "dense", None],
        ["dense_7", None],
        ["a_01", "a_01", "a_1_2", "a_1"],
    ],
    ids=str,
)
def test_explicit_names_are_uniqued(names):
    def make(hk):
        Dense = L(hk).Dense

        def f(x):
            return [Dense(1, name=n)(x) for n in names]

        return f

    assert_same_as_haiku(make, X)


def test_explicit_numbered_name_twice_is_an_error():
    def call(hk):
        Dense = L(hk).Dense

        def f(x):
            Dense(1, name="foo_1")(x)
            Dense(1, name="foo_1")(x)

        hk.transform(f).init(KEY, X)

    assert_same_errors(call, "foo_1", "not unique")


@pytest.mark.parametrize("name", ["1abc", "a b", "foo/bar", "", "a-b", "~"])
def test_invalid_module_name(name):
    def call(hk):
        hk.transform(lambda: L(hk).Dense(1, name=name)).init(None)

    assert_same_errors(call, "not a valid module name")


CLASS_NAMES = [
    "MLP",
    "ResNet18",
    "Conv2DLSTM",
    "MobileNetV1",
    "MyHTTPModule",
    "HTTPServer2",
    "A",
    "ABC",
    "Linear",
    "ConvND",
    "VQVAE2Decoder",
    "My_Module",
    "Block_2",
    "LSTMCell",
    "ResNetV2Block",
    "x2Y",
    "lowercase",
    "Conv3D",
    "IOError",
    "GRU",
    "DeepRNN",
    "BatchNorm2d",
    "AB1C2",
]


@pytest.mark.parametrize("cls_name", CLASS_NAMES)
def test_camel_to_snake_matches_haiku(cls_name):
    assert camel_to_snake(cls_name) == haiku_utils.camel_to_snake(cls_name)


@pytest.mark.parametrize("cls_name", ["MLP", "Conv2DLSTM", "MyHTTPModule", "Block_2"])
def test_class_name_becomes_module_name(cls_name):
    def make(hk):
        def call(self, x):
            return x * hk.get_parameter("s", [], init=jnp.ones)

        cls = type(cls_name, (hk.Module,), {"__call__": call})

        def f(x):
            mod = cls()
            return mod(x), mod.module_name

        return f

    ref = assert_same_as_haiku(make, X)
    assert ref.out[1] == haiku_utils.camel_to_snake(cls_name)
    assert list(ref.params) == [ref.out[1]]


def test_top_level_parameters_and_state_live_under_tilde():
    def make(hk):
        def f(x):
            w = hk.get_parameter("w", [3], init=rand_init(hk))
            s = hk.get_state("s", [3], init=jnp.ones)
            hk.set_state("s", s + w)
            return x * w, hk.current_name()

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["~"] and list(ref.state) == ["~"]
    assert ref.out[1] == "~"


def test_parameters_created_in_a_non_call_method():
    def make(hk):
        Dense = L(hk).Dense

        class Model(hk.Module):
            def __init__(self, name=None):
                super().__init__(name=name)
                self.init_name = hk.current_name()
                self.offset = hk.get_parameter("offset", [3], init=rand_init(hk))

            def encode(self, x):
                scale = hk.get_parameter("scale", [3], init=rand_init(hk))
                return Dense(3)(x * scale), hk.current_name()

            def __call__(self, x):
                y, name = self.encode(x + self.offset)
                return y, name, self.init_name, hk.current_name()

        return lambda x: Model()(x)

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["model", "model/~encode/dense"]
    assert list(ref.params["model"]) == ["offset", "scale"]
    assert ref.out[1:] == ("model", "model", "model")


def test_name_scope_nesting_and_modules_inside():
    def make(hk):
        Dense = L(hk).Dense

        class Model(hk.Module):
            def __call__(self, x):
                with hk.name_scope("inner"):
                    w = hk.get_parameter("w", [3], init=rand_init(hk))
                    x = Dense(3)(x * w)
                    name = hk.current_name()
                return x, name

        def f(x):
            names = []
            with hk.name_scope("a"):
                with hk.name_scope("b"):
                    x = x + hk.get_parameter("p", [3], init=rand_init(hk))
                    names.append(hk.current_name())
                x = Dense(3)(x)
            with hk.name_scope("c/d"):
                x = x + hk.get_parameter("q", [3], init=rand_init(hk))
                names.append(hk.current_name())
            with hk.name_scope("a"):
                names.append(hk.current_name())
                x = Dense(3)(x)
            with hk.name_scope("e", method_name="encode"):
                x = Dense(3)(x)
            with hk.name_scope(hk.force_name("forced/~/x")):
                x = x * hk.get_parameter("r", [], init=jnp.ones)
            y, name = Model()(x)
            return y, names, name

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == [
        "a/b",
        "a/dense",
        "c/d",
        "a_1/dense",
        "e/~encode/dense",
        "forced/~/x",
        "model/inner",
        "model/inner/dense",
    ]


@pytest.mark.parametrize("case", ["reuse", "reenter", "slash", "empty"])
def test_name_scope_errors(case):
    def call(hk):
        def f():
            if case == "reuse":
                scope = hk.name_scope("a")
                with scope:
                    pass
                with scope:
                    pass
            elif case == "reenter":
                scope = hk.name_scope("a")
                with scope:
                    with scope:
                        pass
            elif case == "slash":
                hk.name_scope("/a")
            else:
                hk.name_scope("")

        hk.transform(f).init(None)

    expected = {
        "reuse": "not reusable",
        "reenter": "not reentrant",
        "slash": "must not start with /",
        "empty": "must not start with /",
    }[case]
    assert_same_errors(call, expected)


def test_name_scope_outside_transform():
    assert_same_errors(lambda hk: hk.name_scope("a"), "hk.name_scope", "hk.transform")


def test_transparent_methods_add_no_scope():
    def make(hk):
        Dense = L(hk).Dense

        class Model(hk.Module):
            def __init__(self, name=None):
                super().__init__(name=name)
                self.first = self.build()

            @hk.transparent
            def build(self):
                return Dense(3)

            @hk.transparent
            def bias(self):
                return hk.get_parameter("bias", [3], init=rand_init(hk))

            def __call__(self, x):
                return self.build()(self.first(x)) + self.bias()

        def f(x):
            model = Model()
            top = model.bias()
            return model(x) + top, hk.current_name()

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["~", "model/~/dense", "model/dense", "model"]


def test_name_like_keeps_call_names():
    def make(hk):
        Dense = L(hk).Dense

        class Autoencoder(hk.Module):
            @hk.name_like("__call__")
            def encode(self, x):
                return Dense(2, name="enc")(x)

            @hk.name_like("__call__")
            def decode(self, z):
                return Dense(3, name="dec")(z)

            @hk.name_like("other")
            def other(self, z):
                return Dense(3)(z)

            def __call__(self, x):
                return self.other(self.decode(self.encode(x)))

        return lambda x: Autoencoder()(x)

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == [
        "autoencoder/enc",
        "autoencoder/dec",
        "autoencoder/~other/dense",
    ]


def test_force_name_shares_parameters():
    def make(hk):
        Dense = L(hk).Dense

        class Parent(hk.Module):
            def __call__(self, x):
                shared = Dense(3, name=hk.force_name("dense"))
                inner = Dense(3, name=hk.force_name("parent/~/deep"))
                return shared(x) + inner(x), shared.module_name, shared.name

        def f(x):
            mod0 = Dense(3)
            mod1 = Dense(3, name=hk.force_name(mod0.module_name))
            y = mod0(x) + mod1(x)
            y2, module_name, name = Parent()(x)
            forced = Dense(3, name=hk.force_name("foo_2"))
            after = Dense(3, name="foo")
            return y + y2 + forced(x) + after(x), module_name, name, after.module_name

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["dense", "parent/~/deep", "foo_2", "foo_3"]
    assert ref.out[1:] == ("dense", "dense", "foo_3")


def test_invalid_forced_name():
    def call(hk):
        hk.transform(lambda: L(hk).Dense(1, name=hk.force_name("a/b c"))).init(None)

    assert_same_errors(call, "not a valid module name")


def test_calling_a_module_twice_reuses_parameters():
    def make(hk):
        Dense = L(hk).Dense

        class Block(hk.Module):
            def __call__(self, x):
                return Dense(3)(x) + Dense(3)(x)

        class Twice(hk.Module):
            def encode(self, x):
                return Dense(3)(x)

            def __call__(self, x):
                return self.encode(self.encode(x))

        def f(x):
            block, dense = Block(), Dense(3)
            return block(block(x)) + dense(dense(x)) + Twice()(x)

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == [
        "block/dense",
        "block/dense_1",
        "dense",
        "twice/~encode/dense",
    ]


def test_dataclass_modules():
    def make(hk):
        @dataclasses.dataclass
        class Scale(hk.Module):
            size: int
            name: str | None = None

            def __call__(self, x):
                s = hk.get_parameter("s", [self.size], init=rand_init(hk))
                return x * s

        @dataclasses.dataclass
        class PostInit(hk.Module):
            size: int
            name: str | None = None

            def __post_init__(self):
                super().__init__(name=self.name)
                self.scale = Scale(self.size)

            def __call__(self, x):
                return self.scale(x), repr(self.scale), self.name, self.module_name

        def f(x):
            a = Scale(3)
            b = Scale(3, name="custom")
            c = PostInit(3)
            y, rep, name, module_name = c(x)
            return a(x) + b(x) + y, rep, name, module_name, a.name, b.module_name

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["post_init/~/scale", "scale", "custom"]


def test_to_module():
    def make(hk):
        def bias_fn(x):
            """Adds a bias."""
            return x + hk.get_parameter("b", x.shape, init=rand_init(hk))

        Bias = hk.to_module(bias_fn)

        def f(x):
            return Bias()(x) + Bias()(x) + Bias(name="mine")(x), Bias.__doc__

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["bias_fn", "bias_fn_1", "mine"]


def test_to_module_with_a_non_string_name():
    def call(hk):
        Bias = hk.to_module(lambda x: x)
        hk.transform(lambda x: Bias(x)).init(None, X)

    assert_same_errors(call, "to_module")


def test_params_dict_and_state_dict():
    def make(hk):
        Dense, Counter = L(hk).Dense, L(hk).Counter

        class Model(hk.Module):
            def __init__(self, name=None):
                super().__init__(name=name)
                self.counter = Counter()

            def __call__(self, x):
                return Dense(3)(self.counter(x))

        def f(x):
            outside = Dense(3)
            model, other = Model(), Dense(3)
            before = dict(model.params_dict())
            y = model(outside(x))
            z = other(x)
            return (
                y + z,
                before,
                model.params_dict(),
                model.state_dict(),
                other.params_dict(),
                outside.params_dict(),
            )

        return f

    ref = assert_same_as_haiku(make, X)
    assert sorted(ref.out[2]) == ["model/dense/b", "model/dense/w", "model/~/counter/c"]
    assert list(ref.out[3]) == ["model/~/counter/n"]
    assert sorted(ref.out[4]) == ["dense_1/b", "dense_1/w"]


def test_params_dict_outside_transform():
    def call(hk):
        mod = []
        hk.transform(lambda: mod.append(L(hk).Dense(1))).init(None)
        mod[0].params_dict()

    assert_same_errors(call, "hk.Module", "hk.transform")


def test_current_name_everywhere():
    def make(hk):
        class Model(hk.Module):
            def __init__(self, name=None):
                super().__init__(name=name)
                self.names = [hk.current_name()]

            @hk.transparent
            def see(self):
                return hk.current_name()

            def method(self):
                with hk.name_scope("scope"):
                    return hk.current_name()

            def __call__(self):
                return [*self.names, hk.current_name(), self.method(), self.see()]

        def f():
            model = Model(name="m")
            return [hk.current_name(), model.see(), *model()]

        return f

    ref = assert_same_as_haiku(make)
    assert ref.out == ["~", "~", "m", "m", "m/~method/scope", "m"]


def test_module_constructed_at_top_level_is_named_there():
    def make(hk):
        Dense, Sequential = L(hk).Dense, L(hk).Sequential

        class Maker(hk.Module):
            def __call__(self):
                return Dense(3)

        def f(x):
            seq = Sequential([Dense(4), Dense(3)])
            made = Maker()()

            class User(hk.Module):
                def __call__(self, x):
                    return made(x) + Dense(3)(x)

            return seq(x) + User()(x)

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["dense", "dense_1", "maker/dense", "user/dense"]
    assert shapes(ref.params)["dense"] == {"w": (3, 4), "b": (4,)}


def test_module_attributes_and_repr():
    def make(hk):
        Dense, MLP = L(hk).Dense, L(hk).MLP

        class Defaults(hk.Module):
            def __init__(self, a=1, b=None, *args, c="x", name=None, **kwargs):
                super().__init__(name=name)

        def f():
            a, b = Dense(3), Dense(4, name="foo")
            mlp = MLP((2, 2))
            return [
                (m.name, m.module_name, repr(m)) for m in (a, b, mlp, *mlp.layers)
            ] + [
                repr(Defaults()),
                repr(Defaults(1.0, None, c="x")),
                repr(Defaults(2, [1], 3, 4, c="y", extra=5)),
                repr(Defaults(a=jnp.ones(2))),
                repr(Defaults(a="x" * 50, b={"k": list(range(40))}, c="z")),
            ]

        return f

    ref = assert_same_as_haiku(make)
    assert ref.out[0] == ("dense", "dense", "Dense(size=3)")


def test_module_signature():
    for hk in LIBS.values():
        sig = inspect.signature(L(hk).Dense)
        assert list(sig.parameters) == ["size", "name"], hk


def test_module_without_super_init():
    def call(hk):
        class Bad(hk.Module):
            def __init__(self):
                pass

        hk.transform(lambda: Bad()).init(None)

    assert_same_errors(call, "super", "__init__")


def test_parameter_before_super_init():
    def call(hk):
        class Bad(hk.Module):
            def __init__(self):
                hk.get_parameter("w", [], init=jnp.zeros)
                super().__init__()

        hk.transform(lambda: Bad()).init(None)

    assert_same_errors(call, "super")


def test_module_outside_transform():
    assert_same_errors(lambda hk: L(hk).Dense(3), "hk.Module", "hk.transform")


def test_calling_a_module_outside_transform():
    def call(hk):
        mods = []
        hk.transform(lambda: mods.append(L(hk).Dense(3))).init(None)
        mods[0](X)

    assert_same_errors(call, "hk.Module", "hk.transform")


def test_module_properties_open_a_scope():
    def make(hk):
        Dense = L(hk).Dense

        class Model(hk.Module):
            @property
            def layer(self):
                return Dense(3)

            def __call__(self, x):
                return self.layer(x)

        return lambda x: Model()(x)

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["model/~layer/dense"]


def test_inherited_methods_and_super_calls():
    def make(hk):
        Dense = L(hk).Dense

        class Base(hk.Module):
            def __call__(self, x):
                return Dense(3)(x)

        class Child(Base):
            def __call__(self, x):
                return super().__call__(x) + Dense(3)(x)

        return lambda x: Child()(x)

    assert_same_as_haiku(make, X)


def test_same_code_under_both_libraries_gives_identical_values():
    """A deeper model: every parameter value must match bit for bit."""

    def make(hk):
        MLP = L(hk).MLP

        def f(x):
            return MLP((4, 3, 2))(x) + MLP((2,), name="head")(x)

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == [
        "mlp/~/dense",
        "mlp/~/dense_1",
        "mlp/~/dense_2",
        "head/~/dense",
    ]


def test_uses_haiku_and_pax():
    assert LIBS == {"haiku": haiku, "pax": pax.hk}


def test_jax_name_scopes_match_haiku():
    """Module methods run under JAX name scopes (seen in jaxprs, HLO, profiles)."""

    def make(hk):
        Dense = L(hk).Dense

        class Model(hk.Module):
            def encode(self, x):
                return jnp.sin(Dense(3)(x))

            def __call__(self, x):
                return Dense(2, name="head")(self.encode(x))

        return lambda x: Model()(x)

    stacks = []
    for hk in LIBS.values():
        f = hk.transform(make(hk))
        jaxpr = jax.make_jaxpr(f.init)(KEY, X)
        stacks.append([str(e.source_info.name_stack) for e in jaxpr.jaxpr.eqns])
    assert stacks[0] == stacks[1]
    assert "model/encode/model/dense" in stacks[0]


def test_to_module_call_wraps_the_function():
    def bias_fn(x, scale=2):
        return x

    for hk in LIBS.values():
        cls = hk.to_module(bias_fn)
        assert cls.__call__.__name__ == "bias_fn"
        assert cls.__call__.__wrapped__ is bias_fn


def test_abstract_and_protocol_modules():
    def make(hk):
        class Core(hk.Module, metaclass=abc.ABCMeta):
            @abc.abstractmethod
            def __call__(self, x): ...

            def initial(self):
                return jnp.zeros(3)

        class Impl(Core, abc.ABC):
            def __call__(self, x):
                return (
                    x * hk.get_parameter("s", [3], init=rand_init(hk)) + self.initial()
                )

        def f(x):
            impl = Impl()
            try:
                Core()
                abstract_error = None
            except TypeError as e:
                abstract_error = type(e).__name__
            return impl(x), abstract_error, isinstance(impl, Core)

        return f

    ref = assert_same_as_haiku(make, X)
    assert ref.out[1:] == ("TypeError", True)


def test_name_scope_in_init_and_nested_transforms():
    def make(hk):
        Dense = L(hk).Dense

        class Model(hk.Module):
            def __init__(self, name=None):
                super().__init__(name=name)
                with hk.name_scope("blocks"):
                    self.layer = Dense(3)
                    self.bias = hk.get_parameter("bias", [3], init=rand_init(hk))

            def __call__(self, x):
                return self.layer(x) + self.bias

        def f(x):
            inner = hk.transform(lambda y: Dense(3)(y))
            inner_params = inner.init(hk.next_rng_key(), x)
            y = Model()(x) + Dense(3)(x)
            return y, inner_params, hk.current_name()

        return f

    ref = assert_same_as_haiku(make, X)
    assert list(ref.params) == ["model/~/blocks", "model/~/blocks/dense", "dense"]
    assert list(ref.out[1]) == ["dense"]


def test_module_auto_repr_switch():
    def make(hk):
        Dense = L(hk).Dense

        class Quiet(hk.Module):
            AUTO_REPR = False

        def f():
            previous = hk.experimental.module_auto_repr(False)
            try:
                off = repr(Dense(2))
            finally:
                hk.experimental.module_auto_repr(previous)
            return (
                previous,
                off.startswith("<") and "Dense" in off,
                repr(Dense(2)),
                (repr(Quiet()).startswith("<")),
            )

        return f

    ref = assert_same_as_haiku(make)
    assert ref.out == (True, True, "Dense(size=2)", True)

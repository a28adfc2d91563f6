"""Haiku-compatible checks and wording in lift, modules, typing, transforms."""

import inspect
from typing import Protocol

import jax
import jax.numpy as jnp
import pytest

import pax.hk as hk


def test_lift_with_state_updater_must_be_used():
    def f():
        inner = hk.transform_with_state(lambda: None)
        hk.lift_with_state(inner.init)  # updater dropped

    with pytest.raises(ValueError, match="StateUpdater.*must be used"):
        hk.transform_with_state(f).init(None)


@pytest.mark.parametrize("use", ["update", "ignore"])
def test_lift_with_state_updater_same_call(use):
    def f():
        inner = hk.transform_with_state(lambda: None)
        _, updater = hk.lift_with_state(inner.init)

        def other():
            if use == "update":
                updater.update({})
            else:
                updater.ignore_update()

        hk.transform_with_state(other).init(None)

    with pytest.raises(ValueError, match="within the same call to init/apply"):
        hk.transform_with_state(f).init(None)


def test_lift_with_state_updater_used_once_is_fine():
    inner = hk.transform_with_state(lambda: None)

    def f():
        _, updater = hk.lift_with_state(inner.init)
        updater.ignore_update()

    assert hk.transform_with_state(f).init(None) == ({}, {})


def _transparent(f):
    def wrapped(*args):
        inner = hk.transform(f)
        params = hk.experimental.transparent_lift(inner.init)(None, *args)
        return inner.apply(params, None, *args)

    return wrapped


def test_nested_transparent_lift_prefix():
    seen = []

    def creator(next_creator, shape, dtype, init, context):
        seen.append(context.lifted_prefix_name)
        return next_creator(shape, dtype, init)

    class Outer(hk.Module):
        def __call__(self, x):
            with hk.custom_creator(creator):
                f = lambda x: x + hk.get_parameter("b", [], init=jnp.ones)
                return _transparent(_transparent(f))(x)

    params = hk.transform(lambda x: Outer()(x)).init(None, 1.0)
    assert seen == ["outer/"]
    assert list(params) == ["outer/~"]  # not "outer//~"


def test_transparent_lift_closure_error_names_transparent_lift():
    def f(x):
        outside = hk.Bias(name="inner")
        return _transparent(lambda x: outside(x))(x)

    with pytest.raises(ValueError, match="close over a module.*transparent_lift"):
        hk.transform(f).init(None, jnp.ones((2, 2)))


def test_module_outside_transform_message():
    with pytest.raises(ValueError, match="initialized inside an `hk.transform`"):
        hk.Linear(2)


def test_name_scope_modules_are_name_scope_module():
    classes = []

    def interceptor(next_f, args, kwargs, context):
        classes.append(type(context.module).__name__)
        return next_f(*args, **kwargs)

    def f():
        with hk.intercept_methods(interceptor), hk.name_scope("scope"):
            pass

    hk.transform(f).init(None)
    assert "NameScopeModule" in classes


def test_to_module_docs_and_name_check():
    def documented(x):
        """Great docs."""
        return x

    def undocumented(x):
        return x

    assert hk.to_module(documented).__doc__ == "Great docs."
    assert hk.to_module(undocumented).__doc__ == "Module produced by `hk.to_module`."
    junk = object()
    with pytest.raises(TypeError, match=f"Expected a string name .* got: {junk}"):
        hk.transform(lambda: hk.to_module(undocumented)(junk)).init(None)


def test_batch_apply_needs_an_input():
    with pytest.raises(ValueError, match="requires at least one input with ndim >= 2"):
        hk.BatchApply(lambda: 1)()


def test_layer_stack_rejects_varargs():
    class VarArgs(hk.Module):
        def __call__(self, *args):
            return args

    def f(x):
        return hk.experimental.layer_stack(1)(VarArgs())(x)

    with pytest.raises(ValueError, match="should not have any `varargs`"):
        hk.transform(f).init(jax.random.PRNGKey(0), jnp.ones([3]))


@pytest.mark.parametrize("protocol", [hk.SupportsCall, hk.ModuleProtocol])
def test_protocols_only_extended_by_protocols(protocol):
    with pytest.raises(TypeError, match=r"class Concrete\(.*, Protocol\)"):

        class Concrete(protocol):
            pass

    class Extended(protocol, Protocol):
        pass

    assert Extended._is_protocol


def test_transformed_signatures_carry_annotations():
    def fn(pos, *, key: int = 37) -> int:
        return key

    f = hk.without_apply_rng(hk.transform(fn))
    init_sig, apply_sig = inspect.signature(f.init), inspect.signature(f.apply)
    assert init_sig.parameters["rng"].annotation == (jax.Array | int | None)
    assert init_sig.return_annotation == hk.Params
    assert list(apply_sig.parameters) == ["params", "pos", "key"]
    assert apply_sig.parameters["params"].annotation == (hk.Params | None)
    assert apply_sig.return_annotation is int

    fs = hk.transform_with_state(fn)
    assert inspect.signature(fs.init).return_annotation == tuple[hk.Params, hk.State]
    assert inspect.signature(fs.apply).return_annotation == tuple[int, hk.State]


def test_experimental_flax_says_it_is_unavailable():
    with pytest.raises(ImportError, match="lift.*require `flax`"):
        hk.experimental.flax.lift  # noqa: B018

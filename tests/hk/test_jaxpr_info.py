"""hk.experimental.jaxpr_info: operations and parameters attributed to modules."""

import jax
import jax.numpy as jnp

import pax.hk as hk
from pax.hk.experimental import jaxpr_info


def _linear_info(**kwargs):
    f = hk.transform(lambda x: hk.Linear(3, name="dense")(x))
    x = jnp.ones((2, 4))
    params = f.init(jax.random.PRNGKey(0), x)
    return jaxpr_info.make_model_info(f.apply, **kwargs)(params, None, x)


def test_linear_module_params_and_ops():
    info = _linear_info()
    assert info.name == "apply_fn"
    (scope,) = info.expressions
    module = scope.submodule
    assert module.name == "dense"
    assert module.total_param_size == 4 * 3 + 3
    assert module.param_info == {"./w": "f32[4,3]", "./b": "f32[3]"}
    ops = [e.primitive for e in module.expressions]
    assert ops == ["dot_general", "broadcast_in_dim", "add"]
    assert module.expressions[0].details == "in f32[2,4], f32[4,3], out f32[2,3]"
    assert all(list(e.name_stack) == ["dense"] for e in module.expressions)
    text = jaxpr_info.format_module(info)
    assert text.splitlines()[1] == "  dense 15 params"


def test_nested_modules_and_flops():
    class Outer(hk.Module):
        def __call__(self, x):
            return jnp.tanh(hk.Linear(2)(x))

    f = hk.transform(lambda x: Outer()(x))
    x = jnp.ones((5, 3))
    params = f.init(jax.random.PRNGKey(0), x)

    def size(eqn, expression):
        del expression
        return int(sum(v.aval.size for v in eqn.outvars))

    info = jaxpr_info.make_model_info(f.apply, compute_flops=size)(params, None, x)
    outer = info.expressions[0].submodule
    assert outer.name == "outer" and outer.total_param_size == 3 * 2 + 2
    linear = outer.expressions[0].submodule
    assert linear.name == "linear"
    assert [e.primitive for e in outer.expressions[1:]] == ["tanh"]
    # dot_general, broadcast, add each produce 10 elements; tanh 10 more.
    assert linear.flops == 30 and outer.flops == 40 and info.flops == 40


def test_dead_code_is_dropped_and_calls_nest():
    def f(x):
        unused = jnp.exp(x)  # noqa: F841
        return jax.jit(lambda y: y * 2, inline=False)(x)

    info = jaxpr_info.make_model_info(f, name="f")(jnp.ones(3))
    (call,) = info.expressions
    assert call.primitive == "jit" and call.submodule.name == "<lambda>"
    assert [e.primitive for e in call.submodule.expressions] == ["mul"]


def test_html_page_lists_modules():
    page = jaxpr_info.as_html_page(_linear_info())
    assert "<b>dense</b>" in page and "dot_general" in page and "f32[4,3]" in page

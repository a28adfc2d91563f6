"""``keep_float32_under_mixed_precision``: the per-class switch that keeps a
module (and its submodules) in float32 under ``pax.apply_mp_policy``."""

import inspect

import jax
import jax.numpy as jnp
import jmp

import pax

BF16 = jmp.get_policy("params=bfloat16,compute=bfloat16,output=bfloat16")
F32_OUT = jmp.get_policy("params=bfloat16,compute=bfloat16,output=float32")


class Log:
    """A static (hashable by identity) record of the dtypes a call saw."""

    def __init__(self):
        self.seen = []


class Scale(pax.Module):
    """``x * weight``; records the dtypes its call sees (eager calls only)."""

    parameters = pax.parameters_method("weight")

    def __init__(self, log):
        super().__init__()
        self.weight = jnp.full((3,), 2.0, jnp.float32)
        self.log = log  # static, shared with the test

    def __call__(self, x):
        self.log.seen.append((x.dtype, self.weight.dtype))
        return x * self.weight


class Float32Scale(Scale):
    keep_float32_under_mixed_precision = True


class Outer(pax.Module):
    """Calls its one submodule."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def __call__(self, x):
        return self.inner(x)


class Float32Outer(Outer):
    keep_float32_under_mixed_precision = True


def test_user_class_with_the_attribute_stays_float32():
    log = Log()
    mp = pax.apply_mp_policy(Float32Scale(log), BF16)
    assert mp.weight.dtype == jnp.float32
    y = mp(jnp.ones((3,), jnp.bfloat16))
    assert log.seen == [(jnp.float32, jnp.float32)]
    assert y.dtype == jnp.bfloat16  # the module given returns output_dtype
    back = pax.unwrap_mp_policy(mp)
    assert type(back) is Float32Scale and back.weight.dtype == jnp.float32


def test_user_class_without_the_attribute_is_cast():
    log = Log()
    mp = pax.apply_mp_policy(Scale(log), BF16)
    assert mp.weight.dtype == jnp.bfloat16
    y = mp(jnp.ones((3,), jnp.float32))
    assert log.seen == [(jnp.bfloat16, jnp.bfloat16)]
    assert y.dtype == jnp.bfloat16


def test_nested_float32_module_hands_on_the_compute_dtype():
    log_in, log_out = Log(), Log()
    net = pax.Sequential(Float32Scale(log_in), Scale(log_out))
    mp = pax.apply_mp_policy(net, F32_OUT)
    assert mp[0].weight.dtype == jnp.float32 and mp[1].weight.dtype == jnp.bfloat16
    y = mp(jnp.ones((3,), jnp.float32))
    assert log_in.seen == [(jnp.float32, jnp.float32)]
    # the float32 module's output was cast to the compute dtype for its successor
    assert log_out.seen == [(jnp.bfloat16, jnp.bfloat16)]
    assert y.dtype == jnp.float32


def test_submodules_of_a_float32_module_stay_float32():
    log = Log()
    mp = pax.apply_mp_policy(Float32Outer(Scale(log)), BF16)
    assert mp.inner.weight.dtype == jnp.float32
    mp(jnp.ones((3,), jnp.bfloat16))
    assert log.seen == [(jnp.float32, jnp.float32)]
    # without the attribute on the outer module, the same submodule is cast
    log.seen.clear()
    pax.apply_mp_policy(Outer(Scale(log)), BF16)(jnp.ones((3,), jnp.float32))
    assert log.seen == [(jnp.bfloat16, jnp.bfloat16)]


def test_subclasses_inherit_and_can_opt_out():
    class MyNorm(pax.LayerNorm):
        pass

    class CastNorm(pax.LayerNorm):
        keep_float32_under_mixed_precision = False

    assert pax.apply_mp_policy(MyNorm(3), BF16).scale.dtype == jnp.float32
    assert pax.apply_mp_policy(CastNorm(3), BF16).scale.dtype == jnp.bfloat16


def test_the_float32_classes_of_pax_nn_are_exactly_the_norms():
    # the set the hard-coded norm tuple held before the attribute existed
    float32 = {
        name
        for name in pax.nn.__all__
        if inspect.isclass(cls := getattr(pax.nn, name))
        and issubclass(cls, pax.Module)
        and cls.keep_float32_under_mixed_precision
    }
    assert float32 == {
        "BatchNorm",
        "BatchNorm1D",
        "BatchNorm2D",
        "GroupNorm",
        "InstanceNorm",
        "LayerNorm",
        "RMSNorm",
    }
    assert pax.Module.keep_float32_under_mixed_precision is False


def test_a_wrapped_norm_keeps_the_attribute(key):
    mp = pax.apply_mp_policy(pax.Sequential(pax.Linear(3, 3, rng_key=key)), BF16)
    assert not type(mp[0]).keep_float32_under_mixed_precision
    norm = pax.apply_mp_policy(pax.RMSNorm(3), BF16)
    assert type(norm) is not pax.RMSNorm  # the policy's subclass
    assert type(norm).keep_float32_under_mixed_precision
    x = jax.random.normal(key, (2, 3), jnp.bfloat16)
    assert norm(x).dtype == jnp.bfloat16

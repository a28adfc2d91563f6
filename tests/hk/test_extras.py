"""hk.mixed_precision, hk.testing.transform_and_run, hk.config and
hk.experimental.optimize_rng_use: parity with dm-haiku."""

import haiku
import jax
import jax.numpy as jnp
import jmp
import numpy as np
import pytest

import pax.hk as phk

optimize_rng_use = phk.experimental.optimize_rng_use

LIBS = {"haiku": haiku, "pax": phk}


def scale_class(hk):
    class Scale(hk.Module):
        def __call__(self, x):
            w = hk.get_parameter("w", x.shape[-1:], init=jnp.ones)
            return x * w

    return Scale


@pytest.mark.parametrize("lib", list(LIBS))
def test_mixed_precision_policy_casts_params_inputs_and_outputs(lib):
    hk = LIBS[lib]
    Scale = scale_class(hk)
    policy = jmp.get_policy("p=f32,c=bf16,o=f16")
    hk.mixed_precision.set_policy(Scale, policy)
    try:
        assert hk.mixed_precision.get_policy(Scale) is policy
        f = hk.transform(lambda x: Scale()(x))
        x = jnp.ones((3,), jnp.float32)
        params = f.init(None, x)
        assert params["scale"]["w"].dtype == jnp.float32  # param_dtype
        y = f.apply(params, None, x)
        assert y.dtype == jnp.float16  # output_dtype
        seen = []

        def spy(next_fn, args, kwargs, context):
            if context.method_name == "__call__":
                seen.append(args[0].dtype)  # after the policy cast (outermost)
            return next_fn(*args, **kwargs)

        def g(x):
            with hk.intercept_methods(spy):
                return Scale()(x)

        hk.transform(g).apply(params, None, x)
        assert seen == [jnp.bfloat16]
    finally:
        hk.mixed_precision.clear_policy(Scale)
    assert hk.mixed_precision.get_policy(Scale) is None
    y = hk.transform(lambda x: Scale()(x)).apply(params, None, x)
    assert y.dtype == jnp.float32


def test_push_policy_restores_the_previous_one():
    Scale = scale_class(phk)
    policy = jmp.get_policy("p=f32,c=bf16,o=f32")
    with phk.mixed_precision.push_policy(Scale, policy):
        assert phk.mixed_precision.get_policy(Scale) is policy
    assert phk.mixed_precision.get_policy(Scale) is None


@pytest.mark.parametrize("lib", list(LIBS))
def test_transform_and_run_uses_seeds_42_and_43(lib):
    hk = LIBS[lib]

    @hk.testing.transform_and_run
    def f():
        w = hk.get_parameter(
            "w", [2], init=lambda s, d: jax.random.normal(hk.next_rng_key(), s, d)
        )
        return w, hk.next_rng_key()

    w, key = f()
    # init with key 42 drew w; apply (key 43) reads the same w and draws a key
    init_key = next(hk.PRNGSequence(42))
    np.testing.assert_array_equal(w, jax.random.normal(init_key, (2,)))
    np.testing.assert_array_equal(key, next(hk.PRNGSequence(43)))

    @hk.testing.transform_and_run(seed=None, run_apply=False)
    def g():
        return hk.get_parameter("w", [], init=jnp.ones)

    assert g() is None


def test_optimize_rng_use_matches_haiku():
    outs = {}
    for name, hk in LIBS.items():
        opt = optimize_rng_use if hk is phk else hk.experimental.optimize_rng_use

        def f(hk=hk):
            keys = [hk.next_rng_key() for _ in range(3)]
            return jnp.stack([jax.random.uniform(k, ()) for k in keys])

        outs[name] = hk.transform(opt(f)).apply({}, jax.random.PRNGKey(0))
        plain = hk.transform(f).apply({}, jax.random.PRNGKey(0))
    np.testing.assert_array_equal(outs["pax"], outs["haiku"])
    assert not np.array_equal(outs["pax"], plain)  # one split of 4, not 3 of 2


def test_config_context_restores_options():
    assert phk.config.get_config().module_auto_repr is True
    with phk.config.context(module_auto_repr=False):
        assert phk.config.get_config().module_auto_repr is False
    assert phk.config.get_config().module_auto_repr is True
    with pytest.raises(TypeError, match="unknown option"):
        phk.config.set(not_an_option=True)

"""Normalization layers and moving averages of pax.hk: parity with dm-haiku.

The same user function runs under ``haiku`` and ``pax.hk``: parameter and
state trees must match in names, shapes and dtypes; initial values exactly;
outputs and updated state to float32 rounding (pax.nn follows Haiku's order of
operations, see test_float_order.py for bit-for-bit checks, but normalizes
in float32 where Haiku uses the input dtype, so bfloat16 results agree to
bfloat16 precision only).
"""

import contextlib

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax.hk as phk

LIBS = {"haiku": haiku, "pax": phk}


def _allow():
    return jax.numpy_rank_promotion("allow")


def assert_same_tree(a, b, exact=False, rtol=1e-5, atol=1e-6):
    sa = jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), a)
    sb = jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), b)
    assert sa == sb
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _run(
    make,
    x,
    *,
    with_state,
    steps=1,
    jit=False,
    haiku_allow=False,
    args=(),
    init_tol=None,
):
    """init + ``steps`` applies under both libraries, pax applies using the
    Haiku-produced params/state (so the outputs compare the math only)."""
    out = {}
    for lib, hk in LIBS.items():
        f = (hk.transform_with_state if with_state else hk.transform)(
            lambda x, *a, hk=hk: make(hk)(x, *a)
        )
        ctx = _allow() if (lib == "haiku" and haiku_allow) else contextlib.nullcontext()
        with ctx:
            if with_state:
                params, state = f.init(jax.random.PRNGKey(0), x, *args)
            else:
                params, state = f.init(jax.random.PRNGKey(0), x, *args), {}
            out[lib] = {"init": (params, state), "f": f}
    # Initial values are bit-identical, except state that init computes
    # (bfloat16 math differs: pax.nn computes in float32).
    assert_same_tree(
        out["haiku"]["init"], out["pax"]["init"], **(init_tol or {"exact": True})
    )
    params, state = out["haiku"]["init"]
    results = {}
    for lib in LIBS:
        f = out[lib]["f"]
        apply = jax.jit(f.apply) if jit else f.apply
        ctx = _allow() if (lib == "haiku" and haiku_allow) else contextlib.nullcontext()
        s, ys = state, []
        with ctx:
            for _ in range(steps):
                if with_state:
                    y, s = apply(params, s, None, x, *args)
                else:
                    y = apply(params, None, x, *args)
                ys.append(y)
        results[lib] = (ys, s)
    return results


def assert_results_close(results, **tol):
    assert_same_tree(results["haiku"], results["pax"], **tol)


# ---------------------------------------------------------------- moving avgs


@pytest.mark.parametrize(
    "kw", [{}, {"zero_debias": False}, {"zero_debias": False, "warmup_length": 2}]
)
def test_ema_matches_haiku(kw):
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 3))

    def make(hk):
        def f(x):
            ema = hk.ExponentialMovingAverage(0.9, **kw)
            a = ema(x)
            b = ema(2 * x, update_stats=False)
            return a, b, ema.average

        return f

    results = _run(make, x, with_state=True, steps=3)
    assert_results_close(results, exact=True)
    assert sorted(results["pax"][1]["exponential_moving_average"]) == [
        "average",
        "counter",
        "hidden",
    ]


def test_ema_initialize_bf16_and_jit():
    x = jnp.arange(4.0, dtype=jnp.bfloat16)

    def make(hk):
        def f(x):
            ema = hk.ExponentialMovingAverage(0.5)
            ema.initialize(x.shape, x.dtype)
            return ema(x)

        return f

    assert_results_close(_run(make, x, with_state=True, steps=2, jit=True), exact=True)


def test_ema_params_tree_matches_haiku():
    params = {
        "mlp/~/linear_0": {"w": jnp.ones((2, 3)), "b": jnp.arange(3.0)},
        "head": {"w": 2 * jnp.ones((3,))},
    }

    def make(hk):
        return lambda p: hk.EMAParamsTree(0.8, ignore_regex=".*/b")(p)

    results = _run(make, params, with_state=True, steps=2)
    assert_results_close(results, exact=True)
    assert sorted(results["pax"][1]) == [
        "ema_params_tree/head__w",
        "ema_params_tree/mlp___tilde___linear_0__w",
    ]


# ----------------------------------------------------------------- batch norm


def _bn(hk, **kw):
    def f(x, is_training, test_local_stats=False):
        bn = hk.BatchNorm(True, True, 0.9, **kw)
        return bn(x, is_training, test_local_stats)

    return f


@pytest.mark.parametrize(
    "shape,kw,stat_shape",
    [
        ((4, 3), {}, (1, 3)),
        ((2, 3, 4, 5), {"data_format": "NCHW"}, (1, 3, 1, 1)),
        ((2, 3, 4), {"axis": [0]}, (1, 3, 4)),
    ],
)
def test_batch_norm_matches_haiku(shape, kw, stat_shape):
    x = 3 + 2 * jax.random.normal(jax.random.PRNGKey(2), shape)
    train = _run(lambda hk: _bn(hk, **kw), x, with_state=True, steps=2, args=(True,))
    assert_results_close(train)
    state = train["haiku"][1]
    assert state["batch_norm/~/mean_ema"]["counter"] == 2
    assert state["batch_norm/~/var_ema"]["average"].shape == stat_shape
    # Eval mode and test_local_stats with the trained state.
    out = {}
    for lib, hk in LIBS.items():
        f = hk.transform_with_state(lambda x, t, s, hk=hk: _bn(hk, **kw)(x, t, s))
        params, _ = f.init(jax.random.PRNGKey(0), x, True, False)
        out[lib] = [
            f.apply(params, state, None, x + 1, False, local)[0]
            for local in (False, True)
        ]
        out[lib].append(
            jax.jit(f.apply, static_argnums=(4, 5))(
                params, state, None, x, False, False
            )[0]
        )
    assert_results_close(out)


def test_batch_norm_init_in_eval_mode_fails_as_haiku():
    x = jnp.ones((2, 3))
    for hk in LIBS.values():
        f = hk.transform_with_state(lambda x, hk=hk: _bn(hk)(x, False))
        with pytest.raises(ValueError):
            f.init(None, x)


def test_batch_norm_bf16_and_call_time_scale():
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 2, 3)).astype(jnp.bfloat16)
    results = _run(lambda hk: _bn(hk), x, with_state=True, steps=2, args=(True,))
    assert_results_close(results, rtol=2e-2, atol=2e-2)

    def make(hk):
        def f(x):
            bn = hk.BatchNorm(False, False, 0.5, eps=1e-3)
            return bn(x, True, scale=2 * jnp.ones((1, 1, 3)), offset=jnp.ones(()))

        return f

    x = x.astype(jnp.float32)
    assert_results_close(_run(make, x, with_state=True, steps=2, haiku_allow=True))


# ------------------------------------------------------ layer / rms / group


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_layer_norm_matches_haiku(dtype):
    x = jax.random.normal(jax.random.PRNGKey(4), (2, 3, 4)).astype(dtype)
    tol = {} if dtype == jnp.float32 else {"rtol": 2e-2, "atol": 2e-2}

    def make(hk):
        def f(x):
            a = hk.LayerNorm(-1, True, True, scale_init=hk.initializers.RandomNormal())(
                x
            )
            b = hk.LayerNorm([1, 2], True, False, use_fast_variance=True)(x)
            c = hk.LayerNorm(2, True, True, param_axis=1)(x)
            d = hk.LayerNorm(-1, False, False)(x, scale=2.0 * jnp.ones((4,), dtype))
            return a, b, c, d

        return f

    assert_results_close(
        _run(make, x, with_state=False, jit=dtype == jnp.float32, haiku_allow=True),
        **tol,
    )


def test_instance_and_rms_norm_match_haiku():
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 3, 4, 5))

    def make(hk):
        def f(x):
            return (
                hk.InstanceNorm(True, True)(x),
                hk.InstanceNorm(True, True, data_format="NCHW")(x),
                hk.RMSNorm(-1, scale_init=hk.initializers.RandomNormal())(x),
                hk.RMSNorm([1, 2], create_scale=False)(x),
                hk.RMSNorm(-1, param_axis=1)(x),
            )

        return f

    assert_results_close(_run(make, x, with_state=False, haiku_allow=True))


def test_several_param_axes_match_haiku():
    """Several or slice ``param_axis``: Haiku's ``(3, 1, 5, 1)``-style
    parameter shapes, random per-position values (a layout mix-up would show),
    and RMSNorm's ``eps=0`` that Haiku accepts."""
    x = jax.random.normal(jax.random.PRNGKey(7), (3, 4, 5, 6))

    def make(hk):
        def f(x):
            rand = hk.initializers.RandomNormal()
            return (
                hk.LayerNorm(
                    -1, True, True, scale_init=rand, offset_init=rand, param_axis=(0, 2)
                )(x),
                hk.LayerNorm(
                    [1, 2],
                    True,
                    True,
                    scale_init=rand,
                    offset_init=rand,
                    param_axis=(-1, -4),
                )(x),
                hk.RMSNorm(-1, scale_init=rand, param_axis=slice(-1, 0, -1))(x),
                hk.RMSNorm(-1, eps=0.0, scale_init=rand, param_axis=(1, 2))(x),
            )

        return f

    assert_results_close(_run(make, x, with_state=False, haiku_allow=True))
    params = phk.transform(make(phk)).init(jax.random.PRNGKey(0), x)
    shapes = jax.tree_util.tree_map(jnp.shape, params)
    assert shapes["layer_norm"]["scale"] == (3, 1, 5, 1)
    assert shapes["layer_norm_1"]["offset"] == (3, 1, 1, 6)
    assert shapes["rms_norm"]["scale"] == (1, 4, 5, 6)
    assert shapes["rms_norm_1"]["scale"] == (1, 4, 5, 1)


def test_group_norm_matches_haiku():
    x = jax.random.normal(jax.random.PRNGKey(6), (2, 3, 4))

    def make(hk):
        def f(x):
            return (
                hk.GroupNorm(2, offset_init=hk.initializers.RandomNormal())(x),
                hk.GroupNorm(3, data_format="channels_first")(x),
                hk.GroupNorm(2, axis=-1, create_scale=False)(x),
            )

        return f

    assert_results_close(_run(make, x, with_state=False, haiku_allow=True))


# -------------------------------------------------------------- spectral norm


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_spectral_norm_matches_haiku(dtype):
    x = jax.random.normal(jax.random.PRNGKey(7), (4, 3)).astype(dtype)
    tol = {} if dtype == jnp.float32 else {"rtol": 2e-2, "atol": 2e-2}

    def make(hk):
        def f(w):
            sn = hk.SpectralNorm(n_steps=2)
            a = sn(w)
            b = hk.SpectralNorm()(w.reshape(2, 2, 3), update_stats=False)
            return a, b, sn.u0, sn.sigma

        return f

    assert_results_close(
        _run(
            make,
            x,
            with_state=True,
            steps=2,
            jit=dtype == jnp.float32,
            init_tol=tol or None,
        ),
        **tol,
    )


def test_sn_params_tree_matches_haiku():
    params = {"mlp/~/linear_0": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}}

    def make(hk):
        return lambda p: hk.SNParamsTree(ignore_regex=".*b$")(p)

    results = _run(make, params, with_state=True, steps=2)
    assert_results_close(results)
    assert sorted(results["pax"][1]) == ["sn_params_tree/mlp___tilde__linear_0__w"]

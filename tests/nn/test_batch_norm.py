"""BatchNorm: train/eval numerics, running statistics, purity, Haiku parity,
cross-replica statistics, errors."""

import json
import os
import subprocess
import sys
import textwrap

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pax


def hand_bn(x, mean, var, scale, offset, eps, axis=-1):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda v: np.asarray(v, np.float64).reshape(shape)  # noqa: E731
    return (np.asarray(x, np.float64) - r(mean)) / np.sqrt(r(var) + eps) * r(scale) + r(
        offset
    )


def make_bn(key, **kw):
    k1, k2 = jax.random.split(key)
    return pax.BatchNorm2D(
        3,
        scale_init=pax.initializers.RandomNormal(1.0, 1.0),
        offset_init=pax.initializers.RandomNormal(),
        rng_key=k1,
        **kw,
    )


def test_training_output_and_running_statistics_after_k_steps(key):
    bn = make_bn(key, decay_rate=0.8)
    xs = [jax.random.normal(k, (4, 5, 5, 3)) * 2 + 1 for k in jax.random.split(key, 3)]
    hidden_m, hidden_v = np.zeros(3), np.zeros(3)
    for t, x in enumerate(xs, start=1):
        bn, y = pax.purecall(bn, x)
        xn = np.asarray(x, np.float64)
        mean = xn.mean((0, 1, 2))
        var = (xn**2).mean((0, 1, 2)) - mean**2
        expected = hand_bn(x, mean, var, bn.scale, bn.offset, 1e-5)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
        hidden_m = 0.8 * hidden_m + 0.2 * mean
        hidden_v = 0.8 * hidden_v + 0.2 * var
        np.testing.assert_allclose(
            bn.mean_ema.averages, hidden_m / (1 - 0.8**t), rtol=1e-5
        )
        np.testing.assert_allclose(
            bn.var_ema.averages, hidden_v / (1 - 0.8**t), rtol=1e-5
        )
    assert int(bn.mean_ema.counter) == 3
    # eval mode normalizes with the running averages and changes nothing
    x = xs[0]
    ev = bn.eval()
    y = ev(x)
    expected = hand_bn(
        x, bn.mean_ema.averages, bn.var_ema.averages, bn.scale, bn.offset, 1e-5
    )
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_jitted_step_updates_statistics_only_in_training_mode(key):
    bn = make_bn(key)
    step = jax.jit(lambda m, x: pax.purecall(m, x))
    x = jax.random.normal(key, (2, 4, 4, 3)) + 3.0
    trained, _ = step(bn, x)
    assert not np.allclose(trained.mean_ema.averages, bn.mean_ema.averages)
    frozen, _ = step(bn.eval(), x)
    for a, b in zip(jax.tree_util.tree_leaves(frozen), jax.tree_util.tree_leaves(bn)):
        np.testing.assert_array_equal(a, b)
    # only scale/offset are trainable; the statistics are state
    assert [
        jax.tree_util.keystr(p)
        for p, _ in jax.tree_util.tree_leaves_with_path(bn.parameters())
    ] == [".scale", ".offset"]


def test_training_call_outside_pure_raises_eval_call_does_not(key):
    bn = pax.BatchNorm1D(3)
    x = jnp.ones((2, 4, 3))
    with pytest.raises(pax.MutationError, match="purecall"):
        bn(x)
    assert bn.eval()(x).shape == x.shape


def test_channels_first_equals_transposed_channels_last(key):
    nhwc = make_bn(key)
    nchw = make_bn(key, data_format="NCHW")
    x = jax.random.normal(key, (2, 4, 5, 3))
    _, a = pax.purecall(nhwc, x)
    _, b = pax.purecall(nchw, jnp.transpose(x, (0, 3, 1, 2)))
    np.testing.assert_allclose(jnp.transpose(b, (0, 2, 3, 1)), a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("create", [True, False])
def test_parity_with_haiku(create, key):
    xs = [jax.random.normal(k, (6, 3)) * 3 for k in jax.random.split(key, 4)]

    def fwd(x, is_training):
        return hk.BatchNorm(create, create, 0.7)(x, is_training=is_training)

    f = hk.transform_with_state(fwd)
    params, state = f.init(key, xs[0], True)
    bn = pax.BatchNorm(3, create, create, decay_rate=0.7)
    for x in xs[:3]:
        hk_y, state = f.apply(params, state, None, x, True)
        bn, y = pax.purecall(bn, x)
        np.testing.assert_allclose(y, hk_y, rtol=1e-5, atol=1e-5)
    hk_mean = state["batch_norm/~/mean_ema"]["average"]
    np.testing.assert_allclose(bn.mean_ema.averages, hk_mean.reshape(-1), rtol=1e-5)
    np.testing.assert_allclose(
        bn.var_ema.averages,
        state["batch_norm/~/var_ema"]["average"].reshape(-1),
        rtol=1e-5,
    )
    hk_eval, _ = f.apply(params, state, None, xs[3], False)
    np.testing.assert_allclose(bn.eval()(xs[3]), hk_eval, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_bit_identical_to_haiku_over_eight_steps(jit, key):
    # Haiku's order of operations, (x - mean) * (scale * rsqrt(var + eps)) +
    # offset, and its debiasing, hidden / (1 - decay ** counter) with an int32
    # counter (eagerly, an integer power by repeated squaring: differs from a
    # float power in the last bit from the 7th update on for decay 0.9)
    scale_init = pax.initializers.RandomNormal(0.5, 1.0)
    offset_init = pax.initializers.RandomNormal(0.5, 0.0)
    keys = jax.random.split(key, 9)
    xs = [jax.random.normal(k, (2, 4, 3)) * 3 + 1 for k in keys[:8]]
    bn = pax.BatchNorm1D(
        3, decay_rate=0.9, scale_init=scale_init, offset_init=offset_init, rng_key=key
    )

    def fwd(x, is_training):
        return hk.BatchNorm(True, True, 0.9)(x, is_training=is_training)

    f = hk.transform_with_state(fwd)
    params, state = f.init(key, xs[0], True)
    params = {"batch_norm": {"scale": bn.scale[None, None], "offset": bn.offset}}
    params["batch_norm"]["offset"] = bn.offset[None, None]
    apply = jax.jit(f.apply, static_argnums=4) if jit else f.apply
    step = jax.jit(pax.purecall) if jit else pax.purecall
    for x in xs:
        hk_y, state = apply(params, state, None, x, True)
        bn, y = step(bn, x)
        np.testing.assert_array_equal(y, hk_y)
    for name, ema in (("mean_ema", bn.mean_ema), ("var_ema", bn.var_ema)):
        np.testing.assert_array_equal(
            ema.averages, state[f"batch_norm/~/{name}"]["average"].reshape(-1)
        )
    hk_eval, _ = apply(params, state, None, xs[0], False)
    call = jax.jit(lambda m, x: m(x)) if jit else (lambda m, x: m(x))
    np.testing.assert_array_equal(call(bn.eval(), xs[0]), hk_eval)


def test_call_time_scale_and_offset(key):
    bn = pax.BatchNorm(3, create_scale=False, create_offset=False).eval()
    x = jax.random.normal(key, (4, 3))
    scale, offset = jnp.array([1.0, 2.0, 3.0]), jnp.array([0.5, 0.0, -1.0])
    y = bn(x, scale=scale, offset=offset)
    expected = np.asarray(x) / np.sqrt(1 + 1e-5) * np.asarray(scale) + np.asarray(
        offset
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot pass `scale` at call time"):
        pax.BatchNorm(3).eval()(x, scale=scale)


def test_test_local_stats_uses_the_batch_without_updating(key):
    bn = pax.BatchNorm(3).eval()
    x = jax.random.normal(key, (8, 3)) * 5 + 2
    y = bn(x, test_local_stats=True)
    np.testing.assert_allclose(y.mean(0), np.zeros(3), atol=1e-4)


def test_bfloat16_input_float32_statistics(key):
    bn = pax.BatchNorm(3)
    bn, y = pax.purecall(bn, jax.random.normal(key, (4, 3), jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    assert bn.mean_ema.averages.dtype == jnp.float32


def test_errors():
    with pytest.raises(
        ValueError,
        match=r"expected input with 3 channels on axis -1, got shape \(2, 4\)",
    ):
        pax.BatchNorm(3).eval()(jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="`data_format` must be one of"):
        pax.BatchNorm2D(3, data_format="NWC")
    with pytest.raises(ValueError, match="unknown `data_format`"):
        pax.BatchNorm(3, data_format="HWCN")
    with pytest.raises(ValueError, match=r"`decay_rate` must be a float in \[0, 1\]"):
        pax.BatchNorm1D(3, decay_rate=1.5)
    with pytest.raises(ValueError, match="cannot set `scale_init`"):
        pax.BatchNorm(3, create_scale=False, scale_init=pax.initializers.ones)
    with pytest.raises(ValueError, match="`num_channels` must be a positive int"):
        pax.BatchNorm1D(-2)


def test_cross_replica_axis_with_vmap(key):
    bn = pax.BatchNorm(3, cross_replica_axis="i")
    x = jax.random.normal(key, (4, 5, 3))  # 4 "replicas" of 5 examples
    new, y = jax.vmap(pax.purecall, in_axes=(None, 0), out_axes=(0, 0), axis_name="i")(
        bn, x
    )
    single, y_ref = pax.purecall(pax.BatchNorm(3), x.reshape(20, 3))
    np.testing.assert_allclose(y.reshape(20, 3), y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        new.mean_ema.averages[0], single.mean_ema.averages, rtol=1e-5, atol=1e-6
    )


PMAP_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    import pax

    n = jax.local_device_count()
    x = jax.random.normal(jax.random.PRNGKey(0), (n, 3, 4, 4, 2)) * 2 + 1
    bn = pax.BatchNorm2D(2, cross_replica_axis="devices")
    replicated = jax.tree_util.tree_map(lambda v: jnp.stack([v] * n), bn)
    new, y = jax.pmap(pax.purecall, axis_name="devices")(replicated, x)
    ref_bn, y_ref = pax.purecall(pax.BatchNorm2D(2), x.reshape(n * 3, 4, 4, 2))
    err = lambda a, b: float(jnp.max(jnp.abs(a - b)))
    print(json.dumps({
        "devices": n,
        "y_err": err(y.reshape(n * 3, 4, 4, 2), y_ref),
        "mean_err": err(new.mean_ema.averages, ref_bn.mean_ema.averages[None]),
        "var_err": err(new.var_ema.averages, ref_bn.var_ema.averages[None]),
    }))
    """
)


def test_cross_replica_axis_over_8_pmap_devices_matches_one_big_batch():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
        JAX_PLATFORMS="cpu",
    )
    proc = subprocess.run(
        [sys.executable, "-c", PMAP_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == 8
    assert result["y_err"] < 1e-4
    assert result["mean_err"] < 1e-5 and result["var_err"] < 1e-4

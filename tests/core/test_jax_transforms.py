"""Modules as arguments and results of jit, grad, vmap, scan and pmap."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from .modules import Affine, Chain


def mlp(key):
    k1, k2 = jax.random.split(key)
    return Chain(Affine(3, 4, rng_key=k1), jnp.tanh, Affine(4, 2, rng_key=k2))


def by_hand(net, x):
    a, b = net.layers[0], net.layers[2]
    h = jnp.tanh(x @ a.weight + a.bias[None, :])
    return h @ b.weight + b.bias[None, :]


def test_jit_takes_and_returns_modules(key):
    net = mlp(key)
    x = jax.random.normal(key, (5, 3))
    np.testing.assert_allclose(
        jax.jit(lambda m, x: m(x))(net, x), by_hand(net, x), rtol=1e-6
    )
    out = jax.jit(lambda m: m.map(lambda w: w * 2))(net)
    assert type(out) is Chain and out.layers[1] is jnp.tanh
    np.testing.assert_allclose(out.layers[2].bias, 2 * net.layers[2].bias)


def test_grad_is_module_shaped_and_matches_hand_gradient(key):
    net = mlp(key)
    x = jax.random.normal(key, (5, 3))

    def loss(m):
        return jnp.mean(m(x) ** 2)

    g = jax.grad(loss)(net)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(net)
    # hand-derived gradient of the last layer: dL/dW2 = h^T (2 y / N)
    a, b = net.layers[0], net.layers[2]
    h = jnp.tanh(x @ a.weight + a.bias[None, :])
    y = h @ b.weight + b.bias[None, :]
    dy = 2 * y / y.size
    np.testing.assert_allclose(g.layers[2].weight, h.T @ dy, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g.layers[2].bias, dy.sum(0), rtol=1e-5, atol=1e-7)
    # the first layer through the chain rule
    dh = dy @ b.weight.T * (1 - h**2)
    np.testing.assert_allclose(g.layers[0].weight, x.T @ dh, rtol=1e-5, atol=1e-7)


def test_vmap_over_an_ensemble_of_modules(key):
    keys = jax.random.split(key, 4)
    nets = [mlp(k) for k in keys]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *nets)
    x = jax.random.normal(key, (5, 3))
    out = jax.vmap(lambda m: m(x))(stacked)
    assert out.shape == (4, 5, 2)
    for i, net in enumerate(nets):
        np.testing.assert_allclose(out[i], by_hand(net, x), rtol=1e-5, atol=1e-6)


def test_scan_with_module_in_carry(key):
    net = mlp(key)

    def body(m, _):
        m = m.map(lambda w: w * 0.5)
        return m, jnp.sum(m.layers[2].bias)

    final, sums = jax.lax.scan(body, net, None, length=3)
    np.testing.assert_allclose(
        final.layers[0].weight, net.layers[0].weight / 8, rtol=1e-6
    )
    expected = [jnp.sum(net.layers[2].bias) / 2**i for i in (1, 2, 3)]
    np.testing.assert_allclose(sums, np.array(expected), rtol=1e-6)


PMAP_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    import pax
    from tests.core.modules import Affine, Counter

    n = jax.local_device_count()
    net = Affine(3, 2, rng_key=jax.random.PRNGKey(0))
    replicated = jax.tree_util.tree_map(lambda x: jnp.stack([x] * n), net)
    x = jax.random.normal(jax.random.PRNGKey(1), (n, 4, 3))

    def step(m, x):
        grads = jax.grad(lambda m: jnp.mean(m(x) ** 2))(m)
        grads = jax.lax.pmean(grads, "i")
        return m.map(lambda w, g: w - 0.1 * g, grads)

    new = jax.pmap(step, axis_name="i")(replicated, x)
    # the same step on one device over the whole batch
    full = x.reshape(n * 4, 3)
    g = jax.grad(lambda m: jnp.mean(m(full) ** 2))(net)
    ref = net.map(lambda w, g: w - 0.1 * g, g)

    counters = jax.tree_util.tree_map(lambda c: jnp.stack([c] * n), Counter())
    counters, _ = jax.pmap(pax.purecall)(counters, jnp.ones((n,)))
    print(json.dumps({
        "devices": n,
        "type": type(new).__name__,
        "max_err": float(jnp.max(jnp.abs(new.weight - ref.weight[None]))),
        "same_across_devices": bool(jnp.all(new.weight == new.weight[0])),
        "counts": [int(c) for c in counters.count],
    }))
    """
)


def test_pmap_over_8_cpu_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env["JAX_PLATFORMS"] = "cpu"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", PMAP_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["devices"] == 8
    assert result["type"] == "Affine"
    assert result["same_across_devices"]
    assert result["max_err"] < 1e-5
    assert result["counts"] == [1] * 8

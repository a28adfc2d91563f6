"""ResNet-50 in raw JAX: a dict of arrays, Haiku's architecture and initializers.

The baseline of ``resnet50.py`` and ``core_overhead.py``. Imports no PAX, so
a fresh process that builds this network measures JAX alone.

    params, state = raw_init(jax.random.PRNGKey(0))
    logits, new_state = raw_apply(params, state, images)  # images [B, H, W, 3]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

BLOCKS = (3, 4, 6, 3)
CHANNELS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)
DECAY, EPS = 0.9, 1e-5

# ---------------------------------------------------------------- raw JAX


def _truncated(key, shape, fan_in):
    std = 1.0 / np.sqrt(fan_in) / 0.87962566103423978
    return std * jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32)


def raw_init(key, input_channels=3, num_classes=1000):
    """(params, state): nested dicts in Haiku's layout, Haiku's initializers."""
    keys = iter(jax.random.split(key, 64))

    def conv(k, cin, cout):
        return {"w": _truncated(next(keys), (k, k, cin, cout), k * k * cin)}

    def bn(c, zero_scale=False):
        scale = jnp.zeros((c,)) if zero_scale else jnp.ones((c,))
        return {"scale": scale, "offset": jnp.zeros((c,))}

    def bn_state(c):
        return {"mean": jnp.zeros((c,)), "var": jnp.zeros((c,)), "n": jnp.zeros(())}

    params = {"conv": conv(7, input_channels, 64), "bn": bn(64)}
    state = {"bn": bn_state(64)}
    cin = 64
    for g, (n, c) in enumerate(zip(BLOCKS, CHANNELS)):
        for b in range(n):
            name = f"g{g}b{b}"
            p = {
                "conv0": conv(1, cin, c // 4),
                "bn0": bn(c // 4),
                "conv1": conv(3, c // 4, c // 4),
                "bn1": bn(c // 4),
                "conv2": conv(1, c // 4, c),
                "bn2": bn(c, zero_scale=True),
            }
            s = {"bn0": bn_state(c // 4), "bn1": bn_state(c // 4), "bn2": bn_state(c)}
            if b == 0:
                p["proj"], p["proj_bn"] = conv(1, cin, c), bn(c)
                s["proj_bn"] = bn_state(c)
            params[name], state[name] = p, s
            cin = c
    params["logits"] = {
        "w": jnp.zeros((cin, num_classes)),
        "b": jnp.zeros((num_classes,)),
    }
    return params, state


def _conv(x, p, stride):
    return jax.lax.conv_general_dilated(
        x, p["w"], (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _bn(x, p, s):
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x), axis=(0, 1, 2)) - jnp.square(mean)
    y = (x - mean) * jax.lax.rsqrt(var + EPS) * p["scale"] + p["offset"]
    new = {
        "mean": DECAY * s["mean"] + (1 - DECAY) * mean,
        "var": DECAY * s["var"] + (1 - DECAY) * var,
        "n": s["n"] + 1,
    }
    return y, new


def raw_apply(params, state, x):
    """Training-mode forward pass: (logits, new state)."""
    new_state = {}
    x, new_state["bn"] = _bn(_conv(x, params["conv"], 2), params["bn"], state["bn"])
    x = jax.nn.relu(x)
    x = jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"
    )
    for g, (n, stride) in enumerate(zip(BLOCKS, STRIDES)):
        for b in range(n):
            name = f"g{g}b{b}"
            p, s, ns = params[name], state[name], {}
            block_stride = stride if b == 0 else 1
            shortcut = x
            if b == 0:
                shortcut = _conv(x, p["proj"], block_stride)
                shortcut, ns["proj_bn"] = _bn(shortcut, p["proj_bn"], s["proj_bn"])
            y, ns["bn0"] = _bn(_conv(x, p["conv0"], 1), p["bn0"], s["bn0"])
            y = jax.nn.relu(y)
            y, ns["bn1"] = _bn(_conv(y, p["conv1"], block_stride), p["bn1"], s["bn1"])
            y = jax.nn.relu(y)
            y, ns["bn2"] = _bn(_conv(y, p["conv2"], 1), p["bn2"], s["bn2"])
            x = jax.nn.relu(y + shortcut)
            new_state[name] = ns
    x = jnp.mean(x, axis=(1, 2))
    return x @ params["logits"]["w"] + params["logits"]["b"], new_state

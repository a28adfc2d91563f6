"""ResNet-50: construction time and one jitted training step, as ratios.

Compares, in one run and on the same inputs:
  * ``pax.nets.ResNet50`` (eager construction; a jitted SGD-momentum step with
    BatchNorm in training mode, through ``pax.purecall``);
  * the same network written in raw JAX below (a dict of arrays, hand-written
    convolutions and batch norm, Haiku's architecture and initializers);
  * dm-haiku's ``hk.nets.ResNet50`` when dm-haiku is installed (construction
    = ``init``; note that Haiku's ``init`` also runs a forward pass, which we
    keep small with a 32x32 dummy input).
Equinox ships no ResNet, so it is not compared here.

Prints medians over interleaved repeats and ratios to raw JAX (these
machines are noisy: read the ratios).

    python benchmarks/resnet50.py [--batch 8] [--size 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pax

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


def xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def raw_step_fn(tx):
    def step(params, state, opt_state, x, y):
        def loss(p):
            logits, new_state = raw_apply(p, state, x)
            return xent(logits, y), new_state

        (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    return jax.jit(step)


# ------------------------------------------------------------------- PAX


def pax_step_fn():
    def loss_fn(model, x, y):
        model, logits = pax.purecall(model, x)
        return xent(logits, y), model

    def step(model, opt, x, y):
        (value, model), grads = pax.value_and_grad(loss_fn, has_aux=True)(model, x, y)
        opt, updates = pax.purecall(opt, grads, model.parameters())
        return pax.apply_updates(model, updates), opt, value

    return jax.jit(step)


# ----------------------------------------------------------------- Haiku


def haiku_fns(tx):
    try:
        import haiku as hk
    except ImportError:
        return None

    def forward(x, is_training):
        return hk.nets.ResNet50(1000)(x, is_training)

    f = hk.transform_with_state(forward)

    def step(params, state, opt_state, x, y):
        def loss(p):
            logits, new_state = f.apply(p, state, None, x, True)
            return xent(logits, y), new_state

        (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    return f, jax.jit(step)


# --------------------------------------------------------------- harness


def block(tree):
    jax.block_until_ready(jax.tree_util.tree_leaves(tree))
    return tree


def timed(fn, *args):
    start = time.perf_counter()
    block(fn(*args))
    return time.perf_counter() - start


def median_ratios(samples: dict) -> dict:
    out = {}
    for name, s in samples.items():
        out[name] = statistics.median(s)
        out[name + "/raw"] = statistics.median(a / b for a, b in zip(s, samples["raw"]))
    return out


def report(title: str, result: dict, unit: str, scale: float):
    print(f"\n{title}")
    for name in [n for n in result if "/" not in n]:
        ratio = "" if name == "raw" else f"  ({result[name + '/raw']:.2f}x raw)"
        print(f"  {name:>6}: {result[name] * scale:9.1f} {unit}{ratio}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="image height/width")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-haiku", action="store_true")
    args = parser.parse_args(argv)

    tx = optax.sgd(0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(args.batch, args.size, args.size, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 1000, size=(args.batch,)))
    hk_fns = None if args.no_haiku else haiku_fns(tx)
    small = jnp.zeros((1, 32, 32, 3))
    print(f"ResNet-50, batch {args.batch} x {args.size}x{args.size}x3, 1000 classes")
    print(f"devices: {jax.devices()}")

    # construction (eager), interleaved
    builders = {
        "raw": lambda k: raw_init(k),
        "pax": lambda k: pax.nets.ResNet50(3, 1000, rng_key=k),
    }
    if hk_fns is not None:
        builders["haiku"] = lambda k: hk_fns[0].init(k, small, True)
    for fn in builders.values():
        block(fn(jax.random.PRNGKey(1)))  # warm up op caches
    samples = {name: [] for name in builders}
    for r in range(args.repeats):
        for name, fn in builders.items():
            samples[name].append(timed(fn, jax.random.PRNGKey(r)))
    report("construction (eager)", median_ratios(samples), "ms", 1e3)

    # one jitted training step
    key = jax.random.PRNGKey(0)
    params, state = raw_init(key)
    raw_opt = tx.init(params)
    raw_step = raw_step_fn(tx)
    model = pax.nets.ResNet50(3, 1000, rng_key=key)
    opt = pax.optim.from_optax(tx, model.parameters())
    pax_step = pax_step_fn()
    carry = {"raw": (params, state, raw_opt), "pax": (model, opt)}
    steps = {
        "raw": lambda c: raw_step(*c, x, y)[:3],
        "pax": lambda c: pax_step(*c, x, y)[:2],
    }
    if hk_fns is not None:
        hp, hs = hk_fns[0].init(key, x, True)
        carry["haiku"] = (hp, hs, tx.init(hp))
        steps["haiku"] = lambda c: hk_fns[1](*c, x, y)[:3]
    compile_s = {}
    for name, fn in steps.items():
        compile_s[name] = [timed(fn, carry[name])]  # trace + compile + run
    report("first call (trace + compile + 1 step)", median_ratios(compile_s), "s", 1)

    samples = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, fn in steps.items():
            start = time.perf_counter()
            carry[name] = block(fn(carry[name]))
            samples[name].append(time.perf_counter() - start)
    report("jitted training step", median_ratios(samples), "ms", 1e3)


if __name__ == "__main__":
    main()

"""A small BatchNorm CNN: one jitted Adam training step, raw JAX vs PAX vs Haiku.

The same ResNet-ish network is written three ways, with identical
architecture: a 3x3 stem convolution, then two stages of two residual
blocks (3x3 conv -> BatchNorm -> ReLU -> 3x3 conv -> BatchNorm, added to the
shortcut, ReLU; the second stage halves the resolution and doubles the
channels, its first block has a 1x1 projection with its own BatchNorm), a
global average and a linear classifier: 10 convolutions, 10 BatchNorms in
training mode, optax Adam, batch 32 of 32x32x3 images.

  * raw JAX ("raw"): a dict of arrays, ``jax.lax.conv_general_dilated`` and
    a batch norm with plain (not debiased) running averages;
  * raw JAX with Haiku's zero-debiased running averages ("raw-db"): the same,
    but each statistic keeps ``counter``, ``hidden`` and ``average``, the
    state ``pax.BatchNorm`` and ``hk.BatchNorm`` keep (DESIGN section 8) --
    the floor for that semantics;
  * PAX: ``pax.nn`` modules (``Conv2D``, ``BatchNorm2D``, ``Linear``), the
    step through ``pax.purecall`` / ``pax.value_and_grad`` and
    ``pax.optim.from_optax``, as a PAX user writes it;
  * dm-haiku (when installed): ``hk.transform_with_state`` of the same
    network from ``hk.Conv2D``, ``hk.BatchNorm``, ``hk.Linear``.

Prints the median step time over interleaved repeats with the ratio to raw
JAX, and a table of op counts in each step's compiled HLO
(``jax.jit(step).lower(*args).compile().as_text()``, every computation,
fused ones included): fusions, converts, powers, divides, multiplies,
broadcasts and all instructions. On XLA:CPU, which has no multi-output
fusion, every state array a step writes is at least one fusion, so a
debiased average costs three (counter, debias factor, debiased average)
where a plain one costs one.

    python benchmarks/cnn_step.py [--batch 32] [--repeats 5] [--steps 5] [--no-haiku]
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import block, dict_train_step, pax_train_step

import pax

STEM = 16
STAGES = ((16, 1), (32, 2))  # (channels, stride of the first block)
BLOCKS = 2
CLASSES = 10
DECAY, EPS = 0.9, 1e-5


def _blocks():
    """``(name, in_channels, channels, stride, projection)`` for every block."""
    out, cin = [], STEM
    for g, (c, stride) in enumerate(STAGES):
        for b in range(BLOCKS):
            s = stride if b == 0 else 1
            out.append((f"g{g}b{b}", cin, c, s, b == 0 and (s != 1 or cin != c)))
            cin = c
    return out


# ---------------------------------------------------------------- raw JAX


def raw_init(key, debias=False):
    """(params, state): dicts of arrays. ``debias``: each batch norm keeps
    Haiku's zero-debiased moving averages (``counter``, ``hidden``,
    ``average`` per statistic) instead of plain running averages."""
    keys = iter(jax.random.split(key, 32))

    def conv(k, cin, cout):
        std = 1.0 / np.sqrt(k * k * cin)
        w = jax.random.truncated_normal(next(keys), -2.0, 2.0, (k, k, cin, cout))
        return {"w": std * w}

    def bn(c):
        return {"scale": jnp.ones((c,)), "offset": jnp.zeros((c,))}

    def bn_state(c):
        if debias:
            ema = {"counter": jnp.zeros((), jnp.int32), "hidden": jnp.zeros((c,))}
            return {
                "mean": {**ema, "average": jnp.zeros((c,))},
                "var": {**ema, "average": jnp.ones((c,))},
            }
        return {"mean": jnp.zeros((c,)), "var": jnp.ones((c,))}

    params = {"stem": conv(3, 3, STEM), "stem_bn": bn(STEM)}
    state = {"stem_bn": bn_state(STEM)}
    for name, cin, c, _, proj in _blocks():
        p = {
            "conv0": conv(3, cin, c),
            "bn0": bn(c),
            "conv1": conv(3, c, c),
            "bn1": bn(c),
        }
        s = {"bn0": bn_state(c), "bn1": bn_state(c)}
        if proj:
            p["proj"], p["proj_bn"], s["proj_bn"] = conv(1, cin, c), bn(c), bn_state(c)
        params[name], state[name] = p, s
    params["logits"] = {
        "w": jax.random.normal(next(keys), (STAGES[-1][0], CLASSES)) * 0.01,
        "b": jnp.zeros((CLASSES,)),
    }
    return params, state


def _conv(x, p, stride=1):
    return jax.lax.conv_general_dilated(
        x, p["w"], (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _ema(s, value):
    """A plain running average, or Haiku's zero-debiased one (a dict)."""
    if not isinstance(s, dict):
        return DECAY * s + (1 - DECAY) * value
    counter = s["counter"] + 1
    hidden = DECAY * s["hidden"] + (1 - DECAY) * value
    average = hidden / (1 - jnp.power(jnp.float32(DECAY), counter))
    return {"counter": counter, "hidden": hidden, "average": average}


def _bn(x, p, s):
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x), axis=(0, 1, 2)) - jnp.square(mean)
    y = (x - mean) * (p["scale"] * jax.lax.rsqrt(var + EPS)) + p["offset"]
    return y, {"mean": _ema(s["mean"], mean), "var": _ema(s["var"], var)}


def raw_apply(params, state, x):
    """Training-mode forward pass: (logits, new state)."""
    new = {}
    x, new["stem_bn"] = _bn(
        _conv(x, params["stem"]), params["stem_bn"], state["stem_bn"]
    )
    x = jax.nn.relu(x)
    for name, _, _, stride, proj in _blocks():
        p, s, ns = params[name], state[name], {}
        shortcut = x
        if proj:
            shortcut, ns["proj_bn"] = _bn(
                _conv(x, p["proj"], stride), p["proj_bn"], s["proj_bn"]
            )
        y, ns["bn0"] = _bn(_conv(x, p["conv0"], stride), p["bn0"], s["bn0"])
        y = jax.nn.relu(y)
        y, ns["bn1"] = _bn(_conv(y, p["conv1"]), p["bn1"], s["bn1"])
        x = jax.nn.relu(y + shortcut)
        new[name] = ns
    x = jnp.mean(x, axis=(1, 2))
    return x @ params["logits"]["w"] + params["logits"]["b"], new


# ------------------------------------------------------------------- PAX


class Block(pax.Module):
    def __init__(self, cin, c, stride, proj, rng_key):
        super().__init__()
        k = jax.random.split(rng_key, 6)
        self.conv0 = pax.Conv2D(cin, c, 3, stride, with_bias=False, rng_key=k[0])
        self.bn0 = pax.BatchNorm2D(c, decay_rate=DECAY, eps=EPS, rng_key=k[1])
        self.conv1 = pax.Conv2D(c, c, 3, with_bias=False, rng_key=k[2])
        self.bn1 = pax.BatchNorm2D(c, decay_rate=DECAY, eps=EPS, rng_key=k[3])
        self.proj = self.proj_bn = None
        if proj:
            self.proj = pax.Conv2D(cin, c, 1, stride, with_bias=False, rng_key=k[4])
            self.proj_bn = pax.BatchNorm2D(c, decay_rate=DECAY, eps=EPS, rng_key=k[5])

    def __call__(self, x):
        shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
        y = jax.nn.relu(self.bn0(self.conv0(x)))
        return jax.nn.relu(self.bn1(self.conv1(y)) + shortcut)


class Net(pax.Module):
    def __init__(self, rng_key):
        super().__init__()
        k = jax.random.split(rng_key, 3 + len(_blocks()))
        self.stem = pax.Conv2D(3, STEM, 3, with_bias=False, rng_key=k[0])
        self.stem_bn = pax.BatchNorm2D(STEM, decay_rate=DECAY, eps=EPS, rng_key=k[1])
        self.blocks = [
            Block(cin, c, s, proj, k[3 + i])
            for i, (_, cin, c, s, proj) in enumerate(_blocks())
        ]
        self.logits = pax.Linear(STAGES[-1][0], CLASSES, rng_key=k[2])

    def __call__(self, x):
        x = jax.nn.relu(self.stem_bn(self.stem(x)))
        for layer in self.blocks:
            x = layer(x)
        return self.logits(jnp.mean(x, axis=(1, 2)))


# ----------------------------------------------------------------- Haiku


def haiku_fns(tx):
    try:
        import haiku as hk
    except ImportError:
        return None

    def conv(c, k, stride=1, name=None):
        return hk.Conv2D(c, k, stride, with_bias=False, name=name)

    def bn(name=None):
        return hk.BatchNorm(True, True, DECAY, EPS, name=name)

    def forward(x):
        x = jax.nn.relu(bn("stem_bn")(conv(STEM, 3, name="stem")(x), True))
        for name, _, c, stride, proj in _blocks():
            shortcut = x
            if proj:
                shortcut = bn(f"{name}_proj_bn")(
                    conv(c, 1, stride, f"{name}_proj")(x), True
                )
            y = bn(f"{name}_bn0")(conv(c, 3, stride, f"{name}_conv0")(x), True)
            y = jax.nn.relu(y)
            y = bn(f"{name}_bn1")(conv(c, 3, 1, f"{name}_conv1")(y), True)
            x = jax.nn.relu(y + shortcut)
        return hk.Linear(CLASSES)(jnp.mean(x, axis=(1, 2)))

    f = hk.transform_with_state(forward)
    return f, dict_train_step(lambda p, s, x: f.apply(p, s, None, x), tx)


# --------------------------------------------------------------- harness

OPS = ("fusion", "convert", "power", "divide", "multiply", "broadcast")
# ``%name = shape opcode(...)``: the opcode is the first ``word(`` after ``=``
# (shapes such as ``f32[3]{0}`` or ``(f32[], s32[])`` contain none).
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.*?\b([a-z][a-z0-9\-]*)\(")


def hlo_op_counts(compiled_text: str) -> collections.Counter:
    """Opcode counts over every computation of a compiled HLO module
    (instructions inside fused computations included)."""
    counts = collections.Counter()
    for line in compiled_text.splitlines():
        m = _INSTR.match(line)
        if m:
            counts[m.group(1)] += 1
    return counts


def build(batch: int, with_haiku: bool):
    """{name: (jitted step, args)} for each implementation."""
    tx = optax.adam(1e-3)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, 32, 32, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, CLASSES, size=(batch,)), jnp.int32)
    key = jax.random.PRNGKey(0)
    params, state = raw_init(key)
    raw_step = dict_train_step(raw_apply, tx)
    out = {"raw": (raw_step, (params, state, tx.init(params), x, y))}
    _, state = raw_init(key, debias=True)
    out["raw-db"] = (raw_step, (params, state, tx.init(params), x, y))
    model = Net(key)
    opt = pax.optim.from_optax(tx, model.parameters())
    out["pax"] = (pax_train_step(), (model, opt, x, y))
    fns = haiku_fns(tx) if with_haiku else None
    if fns is not None:
        f, step = fns
        hp, hs = f.init(key, x)
        out["haiku"] = (step, (hp, hs, tx.init(hp), x, y))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="steps per repeat")
    parser.add_argument("--no-haiku", action="store_true")
    args = parser.parse_args(argv)

    print(f"BatchNorm CNN train step (Adam), batch {args.batch} x 32x32x3")
    print(f"devices: {jax.devices()}")
    impls = build(args.batch, not args.no_haiku)

    counts = {}
    for name, (step, a) in impls.items():
        counts[name] = hlo_op_counts(step.lower(*a).compile().as_text())
    names = list(impls)
    print("\ncompiled HLO op counts")
    print(f"  {'op':>12}" + "".join(f"{n:>8}" for n in names))
    for op in (*OPS, "total"):
        row = [
            sum(counts[n].values()) if op == "total" else counts[n][op] for n in names
        ]
        print(f"  {op:>12}" + "".join(f"{v:>8}" for v in row))

    # steady-state step time: carry each implementation's state forward
    carry = {}
    for name, (step, a) in impls.items():
        out = block(step(*a))  # compile + warm up
        carry[name] = out
    samples = {name: [] for name in impls}

    def advance(name):
        step, a = impls[name]
        out = carry[name]
        n_state = len(out) - 1  # the loss comes last
        rest = a[n_state:]
        start = time.perf_counter()
        for _ in range(args.steps):
            out = step(*out[:n_state], *rest)
        block(out)
        carry[name] = out
        return (time.perf_counter() - start) / args.steps

    for _ in range(args.repeats):
        for name in names:
            samples[name].append(advance(name))
    print("\njitted step (median of interleaved repeats)")
    for name in names:
        t = statistics.median(samples[name])
        ratio = statistics.median(a / b for a, b in zip(samples[name], samples["raw"]))
        extra = "" if name == "raw" else f"  ({ratio:.3f}x raw)"
        print(f"  {name:>6}: {t * 1e3:8.3f} ms{extra}")


if __name__ == "__main__":
    main()

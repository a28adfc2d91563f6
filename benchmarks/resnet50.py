"""ResNet-50: construction time and one jitted training step, as ratios.

Compares, in one run and on the same inputs:
  * ``pax.nets.ResNet50`` (eager construction; a jitted SGD-momentum step with
    BatchNorm in training mode, through ``pax.purecall``);
  * the same network in raw JAX (``_raw_resnet.py``: a dict of arrays, hand-written
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
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import block, dict_train_step, median_ratios, pax_train_step, timed
from _raw_resnet import raw_apply, raw_init

import pax


def haiku_fns(tx):
    """(transformed ResNet-50, jitted train step) from dm-haiku, or None."""
    try:
        import haiku as hk
    except ImportError:
        return None

    def forward(x, is_training):
        return hk.nets.ResNet50(1000)(x, is_training)

    f = hk.transform_with_state(forward)
    step = dict_train_step(lambda p, s, x: f.apply(p, s, None, x, True), tx)
    return f, step


def report(title: str, result: dict, unit: str, scale: float):
    print(f"\n{title}")
    for name in [n for n in result if "/" not in n]:
        ratio = "" if name == "raw" else f"  ({result[name + '/raw']:.2f}x raw)"
        print(f"  {name:>6}: {result[name] * scale:9.1f} {unit}{ratio}")


def construction_ratios(repeats: int, with_haiku: bool = False) -> dict:
    """Warm eager construction of ResNet-50: interleaved medians and ratios."""
    builders = {
        "raw": lambda k: raw_init(k),
        "pax": lambda k: pax.nets.ResNet50(3, 1000, rng_key=k),
    }
    fns = haiku_fns(optax.sgd(0.1)) if with_haiku else None
    if fns is not None:
        small = jnp.zeros((1, 32, 32, 3))
        builders["haiku"] = lambda k: fns[0].init(k, small, True)
    for fn in builders.values():
        block(fn(jax.random.PRNGKey(1)))  # warm up op caches
    samples = {name: [] for name in builders}
    for r in range(repeats):
        for name, fn in builders.items():
            samples[name].append(timed(fn, jax.random.PRNGKey(r)))
    return median_ratios(samples)


_FRESH = """
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {bench!r})
import jax
from _common import block
{imports}
t1 = time.perf_counter()
block({build})
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""
_FRESH_SIDES = {
    "raw": ("from _raw_resnet import raw_init", "raw_init(jax.random.PRNGKey(0))"),
    "pax": ("import pax", "pax.nets.ResNet50(3, 1000, rng_key=jax.random.PRNGKey(0))"),
}


def fresh_process_construction(repeats: int = 3) -> dict:
    """First ResNet-50 construction in a new Python process, raw JAX vs PAX.

    Each sample starts a fresh interpreter (alternating raw / pax) and times
    the imports and the first construction separately, so first-use compiles
    of every initializer shape are included. The raw side never imports PAX.
    Returns ``{"construct": median_ratios, "total": median_ratios}``.
    """
    bench = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    construct = {name: [] for name in _FRESH_SIDES}
    total = {name: [] for name in _FRESH_SIDES}
    for _ in range(repeats):
        for name, (imports, build) in _FRESH_SIDES.items():
            code = _FRESH.format(bench=bench, imports=imports, build=build)
            out = subprocess.run(
                [sys.executable, "-c", code],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            imp, con = map(float, out.stdout.split()[-2:])
            construct[name].append(con)
            total[name].append(imp + con)
    return {"construct": median_ratios(construct), "total": median_ratios(total)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="image height/width")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-haiku", action="store_true")
    parser.add_argument(
        "--skip-fresh", action="store_true", help="skip the fresh-process runs"
    )
    args = parser.parse_args(argv)

    tx = optax.sgd(0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(args.batch, args.size, args.size, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 1000, size=(args.batch,)))
    hk_fns = None if args.no_haiku else haiku_fns(tx)
    print(f"ResNet-50, batch {args.batch} x {args.size}x{args.size}x3, 1000 classes")
    print(f"devices: {jax.devices()}")

    report(
        "construction (eager)",
        construction_ratios(args.repeats, with_haiku=hk_fns is not None),
        "ms",
        1e3,
    )

    if not args.skip_fresh:
        fresh = fresh_process_construction()
        report("first construction in a fresh process", fresh["construct"], "s", 1)
        report("   imports + first construction", fresh["total"], "s", 1)

    # one jitted training step
    key = jax.random.PRNGKey(0)
    params, state = raw_init(key)
    raw_opt = tx.init(params)
    raw_step = dict_train_step(raw_apply, tx)
    model = pax.nets.ResNet50(3, 1000, rng_key=key)
    opt = pax.optim.from_optax(tx, model.parameters())
    pax_step = pax_train_step()
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

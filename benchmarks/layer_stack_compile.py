"""Compile time and step time of a deep transformer-style stack: LayerStack
(one ``jax.lax.scan``) against the same blocks unrolled in a ``pax.Sequential``.

Each block: LayerNorm -> causal self-attention (pax.Linear projections, einsum
and softmax) -> residual -> LayerNorm -> MLP (Linear, gelu, Linear) ->
residual; d_model 64, 4 heads, sequence 32, batch 4. Both models hold the same
weights (built from the same keys) and give the same output.

Measures, in one run:
  1. compile time of a jitted training step (forward + backward, ``pax.grad``):
     ``jax.jit(step).lower(model, x)`` (trace + lower) then ``.compile()``
     (XLA), each of ``--repeats`` times from scratch (``jax.clear_caches()`` and
     a fresh ``jax.jit`` object), alternating the two models; medians. A model
     whose compiles already took ``--compile-budget`` seconds in all is not
     compiled again (on a 2-core CPU one compile of 48 unrolled blocks takes
     minutes: XLA:CPU compile time grows much faster than linearly with the
     number of LayerNorm -> backward chains);
  2. steady-state step time of the compiled steps, interleaved repeats;
     medians, and the median of per-repeat ratios.

Targets: LayerStack compiles >= 5x faster; its step time within 5%.
``--norm rms`` swaps both LayerNorms for RMSNorm, a control: XLA:CPU handles
deep unrolled chains of LayerNorm backward passes badly (compile and step time
both grow faster than linearly), RMSNorm chains it handles well.

    python benchmarks/layer_stack_compile.py [--layers 48] [--repeats 3]
                                              [--norm layer|rms]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import timeit

import jax
import jax.numpy as jnp
import numpy as np

import pax
from pax.nn._layer_stack import LayerStack

D_MODEL, HEADS, SEQ, BATCH = 64, 4, 32, 4


class Block(pax.Module):
    """A pre-norm transformer block: ``[B, T, D] -> [B, T, D]``."""

    def __init__(
        self, d_model: int, num_heads: int, norm=pax.LayerNorm, *, rng_key: jax.Array
    ):
        super().__init__()
        keys = jax.random.split(rng_key, 6)
        self.num_heads = num_heads
        self.ln1 = norm(d_model)
        self.query = pax.Linear(d_model, d_model, rng_key=keys[0])
        self.key = pax.Linear(d_model, d_model, rng_key=keys[1])
        self.value = pax.Linear(d_model, d_model, rng_key=keys[2])
        self.out = pax.Linear(d_model, d_model, rng_key=keys[3])
        self.ln2 = norm(d_model)
        self.fc1 = pax.Linear(d_model, 4 * d_model, rng_key=keys[4])
        self.fc2 = pax.Linear(4 * d_model, d_model, rng_key=keys[5])

    def attention(self, x):
        b, t, d = x.shape
        h = self.num_heads

        def heads(y):
            return y.reshape(b, t, h, d // h)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        logits = jnp.einsum("bthd,bshd->bhts", q, k) / np.sqrt(d // h)
        causal = jnp.tril(jnp.ones((t, t), bool))[None, None]
        logits = jnp.where(causal, logits, jnp.finfo(logits.dtype).min)
        weights = jax.nn.softmax(logits, axis=-1)
        return self.out(jnp.einsum("bhts,bshd->bthd", weights, v).reshape(b, t, d))

    def __call__(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.fc2(jax.nn.gelu(self.fc1(self.ln2(x))))


NORMS = {"layer": pax.LayerNorm, "rms": pax.RMSNorm}


def block_maker(norm: str = "layer"):
    def make_block(rng_key):
        return Block(D_MODEL, HEADS, NORMS[norm], rng_key=rng_key)

    return make_block


def loss_fn(model, x):
    return jnp.mean(jnp.square(model(x)))


def step(model, x):
    """One forward + backward pass: the loss and its parameter gradients."""
    return pax.value_and_grad(loss_fn)(model, x)


def compile_once(model, x) -> tuple[float, float, object]:
    """(trace+lower seconds, XLA compile seconds, executable), from scratch."""
    jax.clear_caches()
    gc.collect()
    fresh = jax.jit(lambda m, x: step(m, x))  # a new function: nothing cached
    t0 = time.perf_counter()
    lowered = fresh.lower(model, x)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, compiled


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + " " + __doc__.splitlines()[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--layers", type=int, default=48, help="blocks (48)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="fresh compiles per model (3)"
    )
    parser.add_argument(
        "--norm",
        choices=sorted(NORMS),
        default="layer",
        help="normalization in each block: layer (LayerNorm, default) or rms",
    )
    parser.add_argument(
        "--compile-budget",
        type=float,
        default=120.0,
        help="stop recompiling a model once its compiles took this long, s (120)",
    )
    parser.add_argument(
        "--step-repeats", type=int, default=15, help="interleaved step timings (15)"
    )
    parser.add_argument(
        "--number", type=int, default=10, help="steps per step timing (10)"
    )
    args = parser.parse_args()

    key = jax.random.PRNGKey(0)
    make_block = block_maker(args.norm)
    stack = LayerStack(make_block, args.layers, rng_key=key)
    keys = jax.random.split(key, args.layers)  # the keys LayerStack used
    unrolled = pax.Sequential(*[make_block(k) for k in keys])
    x = jax.random.normal(jax.random.PRNGKey(1), (BATCH, SEQ, D_MODEL))
    models = {"LayerStack": stack, "Sequential": unrolled}

    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}, "
        f"{jax.local_device_count()} device(s); {args.layers} blocks "
        f"({NORMS[args.norm].__name__}), d_model "
        f"{D_MODEL}, {HEADS} heads, seq {SEQ}, batch {BATCH}; step = forward + "
        "backward (pax.value_and_grad), jitted",
        flush=True,
    )

    # warm-up: the first compile of a process also initialises XLA; not timed
    compile_once(make_block(key), x)

    # 1. compile time, alternating the two models
    lower_s = {name: [] for name in models}
    compile_s = {name: [] for name in models}
    executables = {}
    for r in range(args.repeats):
        for name, model in models.items():
            spent = sum(lower_s[name]) + sum(compile_s[name])
            if r > 0 and spent >= args.compile_budget:
                continue
            lo, co, executables[name] = compile_once(model, x)
            lower_s[name].append(lo)
            compile_s[name].append(co)
            print(
                f"  compile {r + 1}/{args.repeats} {name:<10}: trace+lower "
                f"{lo:6.2f} s  XLA compile {co:6.2f} s",
                flush=True,
            )
    total = {n: [a + b for a, b in zip(lower_s[n], compile_s[n])] for n in models}

    # the two models agree (same weights, same math)
    (loss_a, _), (loss_b, _) = (executables[n](models[n], x) for n in models)
    print(f"loss: LayerStack {float(loss_a):.6f}, Sequential {float(loss_b):.6f}")

    def median(name, table):
        return statistics.median(table[name])

    print("\n1. compile time (median of fresh compiles), seconds")
    for name in models:
        print(
            f"   {name:<10}  {len(total[name])} compile(s)  trace+lower "
            f"{median(name, lower_s):7.3f}  "
            f"XLA compile {median(name, compile_s):7.3f}  "
            f"total {median(name, total):7.3f}"
        )
    ratio = median("Sequential", total) / median("LayerStack", total)
    xla_ratio = median("Sequential", compile_s) / median("LayerStack", compile_s)
    print(
        f"   compile-time ratio Sequential / LayerStack: {ratio:.1f}x total, "
        f"{xla_ratio:.1f}x XLA compile only (target >= 5x)"
    )

    # 2. steady-state step time, interleaved
    def runner(name):
        exe, model = executables[name], models[name]
        return lambda: jax.block_until_ready(exe(model, x))

    fns = {name: runner(name) for name in models}
    for fn in fns.values():
        fn()
    samples = {name: [] for name in models}
    for _ in range(args.step_repeats):
        for name, fn in fns.items():
            t = timeit.timeit(fn, number=args.number) / args.number
            samples[name].append(t * 1e3)
    ratios = [a / b for a, b in zip(samples["LayerStack"], samples["Sequential"])]
    print(f"\n2. step time (median of {args.step_repeats} x {args.number} steps), ms")
    for name in models:
        print(f"   {name:<10}  {statistics.median(samples[name]):8.3f}")
    step_ratio = statistics.median(ratios)
    print(
        f"   step-time ratio LayerStack / Sequential: {step_ratio:.3f} "
        f"({(step_ratio - 1) * 100:+.1f}%; target within 5%)"
    )


if __name__ == "__main__":
    main()

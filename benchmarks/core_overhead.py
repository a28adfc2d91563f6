"""Core overhead of pax.Module against a raw nested dict of the same arrays.

Measures, in one run:
  1. flatten + unflatten of a 200-layer model (400 leaves);
  2. steady-state dispatch of ``jax.jit(f)(model, x)`` with trivial compute,
     for a 200-layer model and for a 3-layer MLP, and of a jitted step that
     returns the model it was given (a training loop's shape);
  3. ``pax.purecall`` overhead (eager, and inside ``jax.jit``);
  4. an eager (op-by-op) 784-512-512-10 MLP forward, ``pax.nets.MLP`` against
     the same ``jnp`` formula on a dict, at batch 1 and 128;
  5. ResNet-50 eager construction, warm, against ``_raw_resnet.raw_init``;
  6. ResNet-50 first construction in a fresh process (skip: ``--skip-fresh``).
Prints medians and ratios to the raw baseline; adds Equinox's figures when
Equinox is installed. Machines are noisy: read ratios. The goals of issue
#17 are printed beside each ratio.

    python benchmarks/core_overhead.py [--repeats 7] [--number 200] [--skip-fresh]
"""

from __future__ import annotations

import argparse
import statistics
import timeit

import jax
import jax.numpy as jnp
from resnet50 import construction_ratios, fresh_process_construction

import pax


class Dense(pax.Module):
    parameters = pax.parameters_method("weight", "bias")

    def __init__(self, dim: int, *, rng_key: jax.Array):
        super().__init__()
        self.weight = jax.random.normal(rng_key, (dim, dim))
        self.bias = jnp.zeros((dim,))

    def __call__(self, x):
        return x @ self.weight + self.bias


class Stack(pax.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = list(layers)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Counter(pax.Module):
    def __init__(self):
        super().__init__()
        self.count = jnp.array(0)

    def __call__(self, x):
        self.count = self.count + 1
        return x


def measure(fns: dict, repeats: int, number: int) -> dict:
    """Median microseconds per call of each function, timed interleaved.

    Every repeat times each function once, in turn, so slow phases of a noisy
    machine hit all of them alike; ratios use per-repeat pairs.
    """
    for fn in fns.values():
        fn()  # warm up (compile)
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(timeit.timeit(fn, number=number) / number * 1e6)
    out = {name: statistics.median(s) for name, s in samples.items()}
    if "raw" in samples:
        for name in fns:
            ratios = [a / b for a, b in zip(samples[name], samples["raw"])]
            out[name + "/raw"] = statistics.median(ratios)
    return out


def build(num_layers: int, dim: int = 4):
    keys = jax.random.split(jax.random.PRNGKey(0), num_layers)
    model = Stack([Dense(dim, rng_key=k) for k in keys])
    raw = {
        "layers": [
            {"weight": layer.weight, "bias": layer.bias} for layer in model.layers
        ]
    }
    return model, raw


def raw_forward(tree, x):
    for layer in tree["layers"]:
        x = x @ layer["weight"] + layer["bias"]
    return x


def try_equinox(num_layers: int, dim: int = 4):
    try:
        import equinox as eqx
    except ImportError:
        return None

    class EqxDense(eqx.Module):
        weight: jax.Array
        bias: jax.Array

    class EqxStack(eqx.Module):
        layers: list

    keys = jax.random.split(jax.random.PRNGKey(0), num_layers)
    return EqxStack(
        [EqxDense(jax.random.normal(k, (dim, dim)), jnp.zeros((dim,))) for k in keys]
    )


def report(
    label: str, fns: dict, repeats: int, number: int, goal: float | None = None
) -> None:
    fns = {k: v for k, v in fns.items() if v is not None}
    show(label, measure(fns, repeats, number), "us", 1.0, goal)


def show(label: str, m: dict, unit: str, scale: float, goal: float | None) -> None:
    """One line: pax and raw medians (``scale`` applied), ratio, goal."""
    text = f"{label:<46} pax {m['pax'] * scale:9.2f} {unit}"
    text += f"  raw {m['raw'] * scale:9.2f} {unit}  ratio {m['pax/raw']:5.2f}x"
    if goal is not None:
        text += f" (goal <= {goal:.2f}x)"
    if "equinox" in m:
        text += f"  equinox {m['equinox'] * scale:9.2f} {unit}"
        text += f" ({m['equinox/raw']:5.2f}x)"
    print(text, flush=True)


def mlp_models(sizes=(784, 512, 512, 10)):
    """``pax.nets.MLP`` and a dict of the same arrays, with a raw forward."""
    mlp = pax.nets.MLP(sizes[0], sizes[1:], rng_key=jax.random.PRNGKey(0))
    raw = [{"w": layer.weight, "b": layer.bias} for layer in mlp.layers]

    def raw_mlp(layers, x):
        for i, layer in enumerate(layers):
            x = x @ layer["w"] + layer["b"]
            if i < len(layers) - 1:
                x = jax.nn.relu(x)
        return x

    return mlp, raw, raw_mlp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=200)
    parser.add_argument(
        "--skip-fresh", action="store_true", help="skip the fresh-process runs"
    )
    args = parser.parse_args()
    r, n = args.repeats, args.number
    flat = jax.tree_util.tree_flatten
    unflat = jax.tree_util.tree_unflatten

    def roundtrip(tree):
        leaves, treedef = flat(tree)
        return unflat(treedef, leaves)

    print(
        f"jax {jax.__version__}, backend {jax.default_backend()}; medians of {r} x {n}"
    )

    # 1. flatten + unflatten, 200 layers / 400 leaves
    model, raw = build(200)
    eqx_model = try_equinox(200)
    assert len(jax.tree_util.tree_leaves(model)) == 400

    def eqx(fn, tree):  # a thunk, or None when that library is missing
        return None if tree is None else (lambda: fn(tree))

    report(
        "1. flatten+unflatten, 200 layers (400 leaves)",
        {
            "pax": lambda: roundtrip(model),
            "raw": lambda: roundtrip(raw),
            "equinox": eqx(roundtrip, eqx_model),
        },
        r,
        n,
        goal=2.0,
    )
    report(
        "   flatten only",
        {
            "pax": lambda: flat(model),
            "raw": lambda: flat(raw),
            "equinox": eqx(flat, eqx_model),
        },
        r,
        n,
    )

    # 2. jit dispatch with trivial compute
    x = jnp.ones((4,))
    trivial = jax.jit(lambda tree, x: x + 1)

    def call_trivial(tree):
        return trivial(tree, x).block_until_ready()

    for layers in (200, 3):
        model, raw = build(layers)
        report(
            f"2. jit(f)(model, x), trivial f, {layers} layers",
            {
                "pax": eqx(call_trivial, model),
                "raw": eqx(call_trivial, raw),
                "equinox": eqx(call_trivial, try_equinox(layers)),
            },
            r,
            n,
            goal=1.15,
        )
    # a training loop's shape: the jitted step returns the model it was given
    # (its output modules are unflattened, then flattened at the next call)
    step = jax.jit(lambda tree, x: (tree, x + 1))
    model, raw = build(200)
    state = {"pax": model, "raw": raw}

    def loop_step(name):
        state[name], y = step(state[name], x)
        return y.block_until_ready()

    report(
        "   jit step returning the model, 200 layers",
        {"pax": lambda: loop_step("pax"), "raw": lambda: loop_step("raw")},
        r,
        n,
    )
    model, raw = build(3)
    fwd_pax = jax.jit(lambda m, x: m(x))
    fwd_raw = jax.jit(raw_forward)
    report(
        "   jit forward of a 3-layer model",
        {
            "pax": lambda: fwd_pax(model, x).block_until_ready(),
            "raw": lambda: fwd_raw(raw, x).block_until_ready(),
        },
        r,
        n,
    )

    # 3. purecall overhead
    counter = Counter()
    raw_state = {"count": jnp.array(0)}

    def raw_call(state, x):
        return {"count": state["count"] + 1}, x

    report(
        "3. purecall(counter, x), eager",
        {
            "pax": lambda: pax.purecall(counter, x),
            "raw": lambda: raw_call(raw_state, x),
        },
        r,
        n,
        goal=1.3,
    )
    jit_pure = jax.jit(pax.purecall)
    jit_raw = jax.jit(raw_call)
    report(
        "   jit(purecall)(counter, x)",
        {
            "pax": lambda: jax.block_until_ready(jit_pure(counter, x)),
            "raw": lambda: jax.block_until_ready(jit_raw(raw_state, x)),
        },
        r,
        n,
    )
    model, raw = build(200)
    noop = pax.pure(lambda m: m)
    report(
        "   pax.pure copy of a 200-layer model",
        {"pax": lambda: noop(model), "raw": lambda: roundtrip(raw)},
        r,
        max(n // 4, 1),
    )

    # 4. eager MLP forward, op by op
    mlp, raw_layers, raw_mlp = mlp_models()
    for batch in (1, 128):
        xb = jnp.ones((batch, 784))
        report(
            f"4. eager MLP 784-512-512-10, batch {batch}",
            {
                "pax": lambda xb=xb: mlp(xb).block_until_ready(),
                "raw": lambda xb=xb: raw_mlp(raw_layers, xb).block_until_ready(),
            },
            r,
            max(n // 4, 1),
            goal=1.05,
        )

    # 5./6. ResNet-50 construction
    warm = construction_ratios(r)
    show("5. ResNet-50 eager construction, warm", warm, "ms", 1e3, 1.0)
    if not args.skip_fresh:
        fresh = fresh_process_construction()
        label = "6. ResNet-50 first construction, fresh process"
        show(label, fresh["construct"], "s", 1, 1.0)
        show("   imports + first construction", fresh["total"], "s", 1, None)


if __name__ == "__main__":
    main()

"""Sharded layouts of a TransformerLM on 8 host devices: memory, init, step time.

Layouts (``pax.sharding`` rules; Adam state sharded with the same rules):
  * ``replicated``: an 8-way ``("data",)`` mesh, every leaf replicated (plain
    data parallelism);
  * ``fsdp``: the same mesh, ``fsdp_rules("data")`` (ZeRO-3);
  * ``dp+tp``: a ``(4, 2)`` ``("data", "model")`` mesh,
    ``transformer_rules("model")`` (Megatron tensor parallelism, 2-way).

Measures, in one run:
  1. per-device parameter + optimizer-state (Adam) bytes, summed from every
     array's ``addressable_shards``: on device 0 and the largest over the 8
     devices, and the ratio to ``replicated`` (expect about 1, 1/8, 1/2);
  2. construction time: plain eager ``make()`` (every array on device 0)
     against ``pax.sharding.init(make, mesh, rules)`` (born sharded), each
     "cold" (after ``jax.clear_caches()``: tracing and compilation included)
     and "warm" (the same call again); medians;
  3. jitted train step time (forward + backward + Adam, batch sharded on
     "data"), layouts timed in turn within every repeat; medians of the step
     time and of the per-repeat ratios to ``replicated``.

The 8 devices are ``--xla_force_host_platform_device_count=8`` (set here when
``XLA_FLAGS`` does not already ask for it): on a CPU they share the same
cores and memory, so step times are indicative only (collectives are memory
copies, and 8 "devices" contend for the cores). Machines are noisy: read
ratios.

    python benchmarks/sharding.py [--size 20m|5m|1m] [--quick]
                                  [--steps 5] [--repeats 3]
"""

from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=8").strip()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import pax  # noqa: E402

# vocab, model_size, num_heads, num_layers, sequence length, batch
SIZES = {
    "20m": dict(vocab=256, width=512, heads=8, layers=6, seq=128, batch=16),
    "5m": dict(vocab=256, width=256, heads=8, layers=6, seq=64, batch=16),
    "1m": dict(vocab=256, width=128, heads=4, layers=4, seq=32, batch=8),
}


def layouts():
    """name -> (mesh, rules, default spec, expected per-device fraction)."""
    dp = pax.sharding.make_mesh((8,), ("data",))
    tp = pax.sharding.make_mesh((4, 2), ("data", "model"))
    return {
        "replicated": (dp, [], P(), "1"),
        "fsdp": (dp, pax.sharding.fsdp_rules("data"), None, "~1/8"),
        "dp+tp": (tp, pax.sharding.transformer_rules("model"), P(), "~1/2"),
    }


def per_device_bytes(tree) -> dict:
    """Bytes each device holds of ``tree``'s arrays (from their shards)."""
    out = defaultdict(int)
    for leaf in jax.tree_util.tree_leaves(tree):
        for shard in leaf.addressable_shards:
            out[shard.device] += shard.data.nbytes
    return out


def lm_loss(model, x, y):
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, model


def train_step(model, opt, x, y):
    (loss, model), grads = pax.value_and_grad(lm_loss, has_aux=True)(model, x, y)
    opt, updates = pax.purecall(opt, grads, model.parameters())
    return pax.apply_updates(model, updates), opt, loss


def timed(fn):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def mib(n: int) -> str:
    return f"{n / 2**20:9.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="20m")
    parser.add_argument(
        "--quick", action="store_true", help="size 1m, 2 steps, 2 repeats"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed train steps")
    parser.add_argument("--repeats", type=int, default=3, help="init timings")
    args = parser.parse_args()
    if args.quick:
        args.size, args.steps, args.repeats = "1m", 2, 2
    if jax.device_count() != 8:
        raise SystemExit(
            f"benchmarks/sharding.py needs 8 devices, got {jax.devices()} "
            f"(XLA_FLAGS={os.environ.get('XLA_FLAGS')!r})"
        )
    cfg = SIZES[args.size]
    key = jax.random.PRNGKey(0)

    def make():
        return pax.nets.TransformerLM(
            cfg["vocab"],
            cfg["width"],
            cfg["heads"],
            cfg["layers"],
            max_length=cfg["seq"],
            rng_key=key,
        )

    tx = optax.adam(1e-3)
    shapes = jax.eval_shape(make)
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(shapes.parameters()))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"jax {jax.__version__}, {jax.device_count()} x {jax.devices()[0].platform}"
        f" devices on {os.cpu_count()} cores; load average {load}"
    )
    print(
        f"TransformerLM(vocab={cfg['vocab']}, model_size={cfg['width']}, "
        f"num_heads={cfg['heads']}, num_layers={cfg['layers']}, "
        f"max_length={cfg['seq']}): {n_params:,} parameters "
        f"({n_params * 4 / 2**20:.1f} MiB float32); Adam; batch "
        f"{cfg['batch']} x {cfg['seq']} tokens"
    )

    # ------------------------------------------------------------ 1. memory
    built = {}
    print("\n1. per-device bytes, parameters + Adam state (MiB; ratio to replicated)")
    print(
        f"   {'layout':<11} {'mesh':<18} {'params d0':>9} {'adam d0':>9} "
        f"{'total d0':>9} {'max dev':>9} {'ratio':>6} {'expect':>6}"
    )
    base = None
    for name, (mesh, rules, default, expect) in layouts().items():
        model = pax.sharding.init(make, mesh, rules, default=default)
        opt = pax.sharding.shard(
            pax.optim.from_optax(tx, model.parameters()), mesh, rules, default=default
        )
        built[name] = (mesh, rules, default, model, opt)
        dev0 = jax.devices()[0]
        p = per_device_bytes(model.parameters())
        s = per_device_bytes(opt)
        total = {d: p[d] + s[d] for d in set(p) | set(s)}
        worst = max(total.values())
        base = base or worst
        shape = "x".join(str(v) for v in mesh.shape.values())
        mesh_text = f"{shape} {tuple(mesh.axis_names)}".replace("'", "")
        print(
            f"   {name:<11} {mesh_text:<18} {mib(p[dev0])} {mib(s[dev0])} "
            f"{mib(total[dev0])} {mib(worst)} {worst / base:6.3f} {expect:>6}"
        )

    # ------------------------------------------------------------ 2. init
    print(
        f"\n2. construction time, seconds (median of {args.repeats}; cold = "
        f"after jax.clear_caches())"
    )
    builders = {"eager make()": make}
    for name, (mesh, rules, default, _, _) in built.items():
        builders[f"init {name}"] = lambda mesh=mesh, rules=rules, default=default: (
            pax.sharding.init(make, mesh, rules, default=default)
        )
    cold, warm = defaultdict(list), defaultdict(list)
    for _ in range(args.repeats):
        for label, fn in builders.items():
            jax.clear_caches()
            cold[label].append(timed(fn))
            warm[label].append(timed(fn))
    eager_cold = statistics.median(cold["eager make()"])
    eager_warm = statistics.median(warm["eager make()"])
    print(f"   {'':<16} {'cold':>8} {'/eager':>7} {'warm':>8} {'/eager':>7}")
    for label in builders:
        c, w = statistics.median(cold[label]), statistics.median(warm[label])
        print(
            f"   {label:<16} {c:8.3f} {c / eager_cold:7.2f} "
            f"{w:8.3f} {w / eager_warm:7.2f}"
        )

    # ------------------------------------------------------------ 3. step
    tokens = jax.random.randint(
        jax.random.PRNGKey(1), (cfg["batch"], cfg["seq"] + 1), 0, cfg["vocab"]
    )
    steps, first_loss, compile_s = {}, {}, {}
    for name, (mesh, rules, default, model, opt) in built.items():
        model_s = pax.sharding.named_shardings(model, mesh, rules, default=default)
        opt_s = pax.sharding.named_shardings(opt, mesh, rules, default=default)
        batch_s = NamedSharding(mesh, P("data"))
        x, y = jax.device_put((tokens[:, :-1], tokens[:, 1:]), batch_s)
        step = jax.jit(
            train_step,
            in_shardings=(model_s, opt_s, batch_s, batch_s),
            out_shardings=(model_s, opt_s, None),
        )
        start = time.perf_counter()
        compiled = step.lower(model, opt, x, y).compile()
        compile_s[name] = time.perf_counter() - start
        model, opt, loss = jax.block_until_ready(compiled(model, opt, x, y))  # warm
        first_loss[name] = float(loss)
        steps[name] = [compiled, model, opt, x, y]
    times = defaultdict(list)
    for _ in range(args.steps):
        for name, state in steps.items():
            compiled, model, opt, x, y = state
            start = time.perf_counter()
            model, opt, loss = jax.block_until_ready(compiled(model, opt, x, y))
            times[name].append(time.perf_counter() - start)
            state[1:3] = model, opt
    print(
        f"\n3. jitted train step, seconds (median of {args.steps} after one "
        f"warm-up step; layouts in turn; CPU: indicative only)"
    )
    print(
        f"   {'layout':<11} {'compile':>8} {'step':>8} {'/replicated':>12} "
        f"{'first loss':>11}"
    )
    for name in steps:
        ratio = statistics.median(
            a / b for a, b in zip(times[name], times["replicated"])
        )
        print(
            f"   {name:<11} {compile_s[name]:8.2f} "
            f"{statistics.median(times[name]):8.3f} {ratio:12.2f} "
            f"{first_loss[name]:11.6f}"
        )
    losses = np.array(list(first_loss.values()))
    spread = float(np.max(np.abs(losses - losses[0])))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"   first-step losses agree to {spread:.1e}; load average now {load}")


if __name__ == "__main__":
    main()

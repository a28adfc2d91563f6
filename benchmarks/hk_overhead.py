"""pax.hk against dm-haiku on the same Haiku user code: trace, compile, run.

The user code below is written once against an ``hk`` module argument (an
MLP and a ResNet-18 built from hand-written ``hk.Module``s with
``hk.get_parameter`` / ``hk.get_state``, batch norm in training mode; and
the same two networks from Haiku's library, ``hk.nets.MLP`` and
``hk.nets.ResNet18``, whose pax.hk layers compute with ``pax.nn``), and
run under ``import haiku as hk`` and ``import pax.hk as hk``. For each it
measures, with fresh transforms every repeat so nothing is cached:

  * init: ``jax.jit(f.init)`` first call (trace + compile + run);
  * apply trace: ``jax.jit(f.apply).trace(...)`` (Python-side tracing only);
  * apply first call: trace + compile + run;
  * jitted apply: steady-state time per call.

Prints medians and pax.hk / haiku ratios (targets: jitted apply <= 1.02x,
init and first-call compile <= 1.2x). Needs dm-haiku installed.

    python benchmarks/hk_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp


def user_code(hk):
    """The Haiku program, written against the given ``hk`` module."""

    def normal_init(fan_in):
        return lambda s, d: (
            jax.random.truncated_normal(hk.next_rng_key(), -2.0, 2.0, s, d)
            / jnp.sqrt(fan_in)
        )

    class Linear(hk.Module):
        def __init__(self, size, name=None):
            super().__init__(name=name)
            self.size = size

        def __call__(self, x):
            n = x.shape[-1]
            w = hk.get_parameter("w", [n, self.size], init=normal_init(n))
            b = hk.get_parameter("b", [self.size], init=jnp.zeros)
            return x @ w + b

    class MLP(hk.Module):
        def __init__(self, sizes, name=None):
            super().__init__(name=name)
            self.layers = [Linear(s, name=f"linear_{i}") for i, s in enumerate(sizes)]

        def __call__(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.layers) - 1:
                    x = jax.nn.relu(x)
            return x

    class Conv(hk.Module):
        def __init__(self, channels, kernel, stride=1, name=None):
            super().__init__(name=name)
            self.channels, self.kernel, self.stride = channels, kernel, stride

        def __call__(self, x):
            fan_in = self.kernel * self.kernel * x.shape[-1]
            shape = [self.kernel, self.kernel, x.shape[-1], self.channels]
            w = hk.get_parameter("w", shape, init=normal_init(fan_in))
            return jax.lax.conv_general_dilated(
                x,
                w,
                (self.stride,) * 2,
                "SAME",
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            )

    class BatchNorm(hk.Module):
        def __call__(self, x):
            c = x.shape[-1]
            scale = hk.get_parameter("scale", [c], init=jnp.ones)
            offset = hk.get_parameter("offset", [c], init=jnp.zeros)
            mean = jnp.mean(x, axis=(0, 1, 2))
            var = jnp.var(x, axis=(0, 1, 2))
            avg = hk.get_state("mean", [c], init=jnp.zeros)
            hk.set_state("mean", 0.9 * avg + 0.1 * mean)
            return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + offset

    class Block(hk.Module):
        def __init__(self, channels, stride, project, name=None):
            super().__init__(name=name)
            self.conv_0 = Conv(channels, 3, stride)
            self.bn_0 = BatchNorm()
            self.conv_1 = Conv(channels, 3)
            self.bn_1 = BatchNorm()
            self.proj = Conv(channels, 1, stride) if project else None
            self.proj_bn = BatchNorm() if project else None

        def __call__(self, x):
            shortcut = x if self.proj is None else self.proj_bn(self.proj(x))
            y = jax.nn.relu(self.bn_0(self.conv_0(x)))
            return jax.nn.relu(self.bn_1(self.conv_1(y)) + shortcut)

    class ResNet18(hk.Module):
        def __call__(self, x):
            x = jax.nn.relu(BatchNorm()(Conv(64, 7, 2)(x)))
            x = jax.lax.reduce_window(
                x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"
            )
            for g, channels in enumerate((64, 128, 256, 512)):
                for b in range(2):
                    stride = 2 if (g > 0 and b == 0) else 1
                    x = Block(channels, stride, project=(g > 0 and b == 0))(x)
            return Linear(1000)(jnp.mean(x, axis=(1, 2)))

    def mlp(x):
        return MLP([512, 512, 512, 10])(x)

    def resnet(x):
        return ResNet18()(x)

    # The same networks from Haiku's own layers: under pax.hk these take their
    # parameters from hk.get_parameter and compute with pax.nn modules.
    def nets_mlp(x):
        return hk.nets.MLP([512, 512, 512, 10])(x)

    def nets_resnet(x):
        return hk.nets.ResNet18(1000)(x, is_training=True)

    return {
        "mlp": mlp,
        "resnet18": resnet,
        "hk.nets.MLP": nets_mlp,
        "hk.nets.ResNet18": nets_resnet,
    }


def timed(fn, *args):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


def measure(hk, name, x, repeats):
    key = jax.random.PRNGKey(0)
    out = {"init": [], "trace": [], "first": [], "step": []}
    for _ in range(repeats):
        f = hk.transform_with_state(user_code(hk)[name])  # fresh: nothing cached
        init = jax.jit(f.init)
        out["init"].append(timed(init, key, x))
        params, state = init(key, x)
        apply = jax.jit(f.apply)
        start = time.perf_counter()
        apply.trace(params, state, None, x)
        out["trace"].append(time.perf_counter() - start)
        out["first"].append(timed(apply, params, state, None, x))
        steps = []
        for _ in range(10):
            steps.append(timed(apply, params, state, None, x))
        out["step"].append(statistics.median(steps))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import haiku

    import pax.hk

    inputs = {
        "mlp": jnp.ones((64, 784)),
        "resnet18": jnp.ones((8, 64, 64, 3)),
        "hk.nets.MLP": jnp.ones((64, 784)),
        "hk.nets.ResNet18": jnp.ones((8, 64, 64, 3)),
    }
    print(f"devices: {jax.devices()}")
    for name, x in inputs.items():
        # interleave the libraries repeat by repeat so noise hits both
        samples = {"haiku": None, "pax.hk": None}
        runs = {"haiku": [], "pax.hk": []}
        for _ in range(args.repeats):
            runs["haiku"].append(measure(haiku, name, x, 1))
            runs["pax.hk"].append(measure(pax.hk, name, x, 1))
        for lib in samples:
            samples[lib] = {
                k: [r[k][0] for r in runs[lib]]
                for k in ("init", "trace", "first", "step")
            }
        print(f"\n{name} {tuple(x.shape)}")
        for k, label in (
            ("init", "jit(init) first call"),
            ("trace", "apply trace"),
            ("first", "jit(apply) first call"),
            ("step", "jitted apply"),
        ):
            h, p = samples["haiku"][k], samples["pax.hk"][k]
            ratio = statistics.median(a / b for a, b in zip(p, h))
            print(
                f"  {label:>22}: haiku {statistics.median(h) * 1e3:9.2f} ms, "
                f"pax.hk {statistics.median(p) * 1e3:9.2f} ms  ({ratio:.2f}x)"
            )


if __name__ == "__main__":
    main()

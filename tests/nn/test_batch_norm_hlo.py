"""The compiled training step of a BatchNorm CNN built from ``pax.nn`` has no
more kernels than the same step written in raw JAX.

Raw JAX is written here twice: with Haiku's zero-debiased running averages
(``counter``, ``hidden``, ``average`` per statistic, what ``pax.BatchNorm``
keeps) and with plain running averages. PAX must compile to no more fusions,
powers, converts or divides than the first, and differ from the second only
by the debiasing state: on XLA:CPU (no multi-output fusion) each state array
written is one kernel, so at most 3 fusions, 1 power and 1 convert per
running average.
"""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import optax

import pax

DECAY, EPS, C = 0.9, 1e-5, 4
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?[\w.\-]+\s*=\s*.*?\b([a-z][a-z0-9\-]*)\(")


def op_counts(jitted, *args) -> collections.Counter:
    text = jitted.lower(*args).compile().as_text()
    return collections.Counter(
        m.group(1) for m in map(_INSTR.match, text.splitlines()) if m
    )


def xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


# ----------------------------------------------------------------- raw JAX


def raw_conv(x, w):
    return jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def raw_average(s, value):
    if not isinstance(s, dict):  # plain running average
        return DECAY * s + (1 - DECAY) * value
    counter = s["counter"] + 1  # Haiku's zero-debiased average
    hidden = DECAY * s["hidden"] + (1 - DECAY) * value
    return {
        "counter": counter,
        "hidden": hidden,
        "average": hidden / (1 - jnp.power(jnp.float32(DECAY), counter)),
    }


def raw_bn(x, p, s):
    mean = jnp.mean(x, axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x), axis=(0, 1, 2)) - jnp.square(mean)
    r = lambda v: v.reshape(1, 1, 1, -1)  # noqa: E731 - explicit rank
    y = (x - r(mean)) * r(p["scale"] * jax.lax.rsqrt(var + EPS)) + r(p["offset"])
    return y, {"mean": raw_average(s["mean"], mean), "var": raw_average(s["var"], var)}


def raw_forward(params, state, x):
    y, s0 = raw_bn(raw_conv(x, params["w0"]), params["bn0"], state["bn0"])
    y = jax.nn.relu(y)
    y, s1 = raw_bn(raw_conv(y, params["w1"]), params["bn1"], state["bn1"])
    y = jax.nn.relu(y + x)
    logits = jnp.mean(y, axis=(1, 2)) @ params["fc"]["w"] + params["fc"]["b"][None]
    return logits, {"bn0": s0, "bn1": s1}


def raw_problem(tx, debias, key):
    k0, k1, k2 = jax.random.split(key, 3)
    bn = {"scale": jnp.ones((C,)), "offset": jnp.zeros((C,))}
    params = {
        "w0": jax.random.normal(k0, (3, 3, C, C)) * 0.2,
        "bn0": bn,
        "w1": jax.random.normal(k1, (3, 3, C, C)) * 0.2,
        "bn1": bn,
        "fc": {"w": jax.random.normal(k2, (C, 2)) * 0.2, "b": jnp.zeros((2,))},
    }
    if debias:
        ema = {"counter": jnp.zeros((), jnp.int32), "hidden": jnp.zeros((C,))}
        stats = {
            "mean": {**ema, "average": jnp.zeros((C,))},
            "var": {**ema, "average": jnp.ones((C,))},
        }
    else:
        stats = {"mean": jnp.zeros((C,)), "var": jnp.ones((C,))}
    state = {"bn0": stats, "bn1": stats}

    @jax.jit
    def step(params, state, opt_state, x, y):
        def loss(p):
            logits, new_state = raw_forward(p, state, x)
            return xent(logits, y), new_state

        (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    return step, (params, state, tx.init(params))


# --------------------------------------------------------------------- PAX


class Net(pax.Module):
    def __init__(self, key):
        super().__init__()
        k = jax.random.split(key, 5)
        self.conv0 = pax.Conv2D(C, C, 3, with_bias=False, rng_key=k[0])
        self.bn0 = pax.BatchNorm2D(C, decay_rate=DECAY, eps=EPS, rng_key=k[1])
        self.conv1 = pax.Conv2D(C, C, 3, with_bias=False, rng_key=k[2])
        self.bn1 = pax.BatchNorm2D(C, decay_rate=DECAY, eps=EPS, rng_key=k[3])
        self.fc = pax.Linear(C, 2, rng_key=k[4])

    def __call__(self, x):
        y = jax.nn.relu(self.bn0(self.conv0(x)))
        y = jax.nn.relu(self.bn1(self.conv1(y)) + x)
        return self.fc(jnp.mean(y, axis=(1, 2)))


def pax_problem(tx, key):
    model = Net(key)

    def loss(model, x, y):
        model, logits = pax.purecall(model, x)
        return xent(logits, y), model

    @jax.jit
    def step(model, opt, x, y):
        (value, model), grads = pax.value_and_grad(loss, has_aux=True)(model, x, y)
        opt, updates = pax.purecall(opt, grads, model.parameters())
        return pax.apply_updates(model, updates), opt, value

    return step, (model, pax.optim.from_optax(tx, model.parameters()))


def test_cnn_step_compiles_to_no_more_kernels_than_raw_jax(key):
    tx = optax.adam(1e-3)
    x = jax.random.normal(key, (2, 6, 6, C))
    y = jnp.array([0, 1])
    counts = {}
    for name, debias in (("plain", False), ("debiased", True)):
        step, args = raw_problem(tx, debias, key)
        counts[name] = op_counts(step, *args, x, y)
    step, args = pax_problem(tx, key)
    counts["pax"] = op_counts(step, *args, x, y)

    ops = ("fusion", "power", "convert", "divide")
    got = {op: counts["pax"][op] for op in ops}
    same = {op: counts["debiased"][op] for op in ops}
    assert all(got[op] <= same[op] for op in ops), (got, same)
    # the cost of Haiku's debiased state over plain averages, per average
    averages = 4
    per_average = {"fusion": 3, "power": 1, "convert": 1, "divide": 1}
    for op, extra in per_average.items():
        assert got[op] <= counts["plain"][op] + extra * averages, (
            op,
            got[op],
            counts["plain"][op],
        )

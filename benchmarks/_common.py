"""Helpers the benchmark scripts share: the loss, the train steps, timing.

Pax-free on purpose (``pax`` is imported only inside :func:`pax_train_step`),
so a fresh-process raw-JAX measurement can import this module without paying
for ``import pax``.
"""

from __future__ import annotations

import statistics
import time

import jax
import optax


def xent(logits, labels):
    """Mean softmax cross-entropy of ``logits`` [B, C] against int ``labels`` [B]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def dict_train_step(apply, tx):
    """A jitted optax step for a functional network on dicts of arrays.

    ``apply(params, state, x) -> (logits, new_state)``; the step maps
    ``(params, state, opt_state, x, y)`` to ``(params, state, opt_state, loss)``.
    Used for the raw-JAX baselines and for dm-haiku's ``apply``.
    """

    def step(params, state, opt_state, x, y):
        def loss(p):
            logits, new_state = apply(p, state, x)
            return xent(logits, y), new_state

        (value, state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, value

    return jax.jit(step)


def pax_train_step():
    """The jitted step a PAX user writes.

    ``(model, opt, x, y) -> (model, opt, loss)``, through ``pax.purecall``.
    """
    import pax

    def loss_fn(model, x, y):
        model, logits = pax.purecall(model, x)
        return xent(logits, y), model

    def step(model, opt, x, y):
        (value, model), grads = pax.value_and_grad(loss_fn, has_aux=True)(model, x, y)
        opt, updates = pax.purecall(opt, grads, model.parameters())
        return pax.apply_updates(model, updates), opt, value

    return jax.jit(step)


def block(tree):
    """Wait for every array in ``tree``; returns ``tree``."""
    jax.block_until_ready(jax.tree_util.tree_leaves(tree))
    return tree


def timed(fn, *args) -> float:
    """Seconds for ``fn(*args)`` including the wait for its results."""
    start = time.perf_counter()
    block(fn(*args))
    return time.perf_counter() - start


def median_ratios(samples: dict) -> dict:
    """``{name: median, name + "/raw": median of per-repeat ratios to "raw"}``."""
    out = {}
    for name, s in samples.items():
        out[name] = statistics.median(s)
        out[name + "/raw"] = statistics.median(a / b for a, b in zip(s, samples["raw"]))
    return out

"""Registry entries: Embed, Dropout, Sequential, Lambda, Identity."""

import jax
import jax.numpy as jnp

import pax

from .registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


def ids(key, dtype):
    return (jax.random.randint(key, (2, 5), 0, 10),)


ENTRIES = [
    Entry("Embed", lambda k: pax.Embed(10, 4, rng_key=k), ids, float_input=False),
    Entry(
        "Embed-one-hot",
        lambda k: pax.Embed(10, 4, lookup_style="ONE_HOT", rng_key=k),
        ids,
        float_input=False,
    ),
    Entry(
        "Dropout",
        lambda k: pax.Dropout(0.3, rng_key=k),
        normal((3, 4)),
        stateful=True,
        differentiable=False,
    ),
    Entry(
        "Sequential",
        lambda k: pax.Sequential(
            pax.Linear(3, 4, rng_key=k), jax.nn.relu, pax.Linear(4, 2, rng_key=k)
        ),
        normal((2, 3)),
    ),
    Entry(
        "Sequential-with-dropout",
        lambda k: pax.Sequential(pax.Linear(3, 4, rng_key=k), pax.Dropout(0.5)),
        normal((2, 3)),
        stateful=True,
    ),
    Entry(
        "Lambda", lambda k: pax.Lambda(jnp.tanh), normal((2, 3)), differentiable=False
    ),
    Entry("Identity", lambda k: pax.Identity(), normal((2, 3)), differentiable=False),
]

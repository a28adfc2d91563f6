"""Registry entries: Linear, Bias."""

import jax

import pax

from .registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


ENTRIES = [
    Entry("Linear", lambda k: pax.Linear(3, 4, rng_key=k), normal((2, 3))),
    Entry(
        "Linear-nobias-3d",
        lambda k: pax.Linear(3, 5, with_bias=False, rng_key=k),
        normal((2, 6, 3)),
    ),
    Entry("Bias", lambda k: pax.Bias(4, rng_key=k), normal((2, 4))),
    Entry(
        "Bias-dims",
        lambda k: pax.Bias((3, 4), bias_dims=[-1], rng_key=k),
        normal((2, 3, 4)),
    ),
]

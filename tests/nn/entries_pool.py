"""Registry entries: AvgPool, MaxPool, Reshape, Flatten, BatchApply."""

import jax

import pax
from pax.nn import AvgPool, BatchApply, Flatten, MaxPool, Reshape

from .registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


ENTRIES = [
    Entry(
        "AvgPool-valid",
        lambda k: AvgPool((2, 2, 1), (2, 2, 1), "VALID"),
        normal((2, 4, 4, 3)),
        differentiable=False,
    ),
    Entry(
        "AvgPool-same",
        lambda k: AvgPool((3, 3, 1), (2, 2, 1), "SAME"),
        normal((2, 5, 5, 3)),
        differentiable=False,
    ),
    Entry(
        "MaxPool-same",
        lambda k: MaxPool((3, 3, 1), (2, 2, 1), "SAME"),
        normal((2, 5, 5, 3)),
        differentiable=False,
    ),
    Entry(
        "MaxPool-NCW",
        lambda k: MaxPool((1, 2), (1, 2), "VALID", channel_axis=1),
        normal((2, 3, 6)),
        differentiable=False,
    ),
    Entry(
        "Reshape",
        lambda k: Reshape((-1, 3)),
        normal((2, 4, 2, 3)),
        differentiable=False,
    ),
    Entry(
        "Flatten",
        lambda k: Flatten(),
        normal((2, 3, 4)),
        differentiable=False,
    ),
    Entry(
        "BatchApply-Linear",
        lambda k: BatchApply(pax.Linear(3, 4, rng_key=k)),
        normal((2, 5, 3)),
    ),
]

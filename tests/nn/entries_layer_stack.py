"""Registry entries: LayerStack (stateless and stateful)."""

import jax

import pax
from pax.nn import LayerStack

from .registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


def linear_tanh(k):
    return pax.Sequential(pax.Linear(4, 4, rng_key=k), jax.nn.tanh)


def linear_bn(k):
    return pax.Sequential(pax.Linear(4, 4, rng_key=k), pax.BatchNorm(4))


ENTRIES = [
    Entry(
        "LayerStack",
        lambda k: LayerStack(lambda k: pax.Linear(4, 4, rng_key=k), 3, rng_key=k),
        normal((2, 4)),
    ),
    Entry(
        "LayerStack-remat",
        lambda k: LayerStack(linear_tanh, 2, remat=True, rng_key=k),
        normal((3, 5, 4)),
    ),
    Entry(
        "LayerStack-BatchNorm",
        lambda k: LayerStack(linear_bn, 3, rng_key=k),
        normal((5, 4)),
        stateful=True,
    ),
]

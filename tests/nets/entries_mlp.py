"""Registry entries: nets.MLP."""

import jax
import jax.numpy as jnp

from pax.nets._mlp import MLP
from tests.nn.registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


ENTRIES = [
    Entry("MLP", lambda k: MLP(3, [8, 8, 2], rng_key=k), normal((4, 3))),
    Entry(
        "MLP-tanh-final-nobias",
        lambda k: MLP(
            3,
            [5, 4],
            with_bias=False,
            activation=jnp.tanh,
            activate_final=True,
            rng_key=k,
        ),
        normal((2, 6, 3)),
    ),
]

"""Registry entries: the VQ-VAE quantizers.

Their output dict holds integer ``encoding_indices`` and float leaves whose
dtype is JAX's promotion of the input's and the codebook's (Haiku's rule, see
``test_vqvae.py``), so the registry's "every leaf keeps the input dtype"
checks do not apply (``float_input=False``).
"""

import jax

import pax
from tests.nn.registry import Entry


def vectors(key, dtype):
    return (jax.random.normal(key, (2, 3, 4), dtype),)


ENTRIES = [
    Entry(
        "VectorQuantizer",
        lambda k: pax.nets.VectorQuantizer(4, 6, 0.25, rng_key=k),
        vectors,
        float_input=False,
    ),
    # the codebook is state, updated in training mode: nothing is trainable
    Entry(
        "VectorQuantizerEMA",
        lambda k: pax.nets.VectorQuantizerEMA(4, 6, 0.25, decay=0.9, rng_key=k),
        vectors,
        stateful=True,
        float_input=False,
        differentiable=False,
    ),
]

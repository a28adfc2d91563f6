"""Registry entries: the decoder-only transformer and its language model.

``TransformerBlock`` runs inside both (as the stacked layer), so it has no
entry of its own: the suite's time budget is tight.
"""

import jax

from pax.nets import Transformer, TransformerLM
from tests.nn.registry import Entry

B, T, D, HEADS, LAYERS, VOCAB = 2, 5, 8, 2, 2, 11


def sequence(key, dtype):
    return (jax.random.normal(key, (B, T, D), dtype),)


def tokens(key, dtype):
    del dtype  # integer input
    return (jax.random.randint(key, (B, T), 0, VOCAB),)


ENTRIES = [
    Entry(
        # training mode with dropout: the blocks' keys advance (purecall)
        "Transformer-dropout",
        lambda k: Transformer(D, HEADS, LAYERS, dropout_rate=0.1, rng_key=k),
        sequence,
        stateful=True,
    ),
    Entry(
        "TransformerLM-rotary",
        lambda k: TransformerLM(
            VOCAB, D, HEADS, LAYERS, max_length=T, positional="rotary", rng_key=k
        ),
        tokens,
        float_input=False,
    ),
]

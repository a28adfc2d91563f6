"""Registry entries: MultiHeadAttention (full-sequence calls)."""

import jax

from pax.nn import MultiHeadAttention, causal_mask, combine_masks

from .registry import Entry


def qkv(batch, q_len, k_len, q_dim, k_dim, v_dim, mask=False):
    """``inputs(rng_key, dtype) -> (query, key, value[, mask])``."""

    def inputs(key, dtype):
        kq, kk, kv, km = jax.random.split(key, 4)
        args = (
            jax.random.normal(kq, (batch, q_len, q_dim), dtype),
            jax.random.normal(kk, (batch, k_len, k_dim), dtype),
            jax.random.normal(kv, (batch, k_len, v_dim), dtype),
        )
        if not mask:
            return args
        # causal, plus a random padding of keys (key 0 always valid)
        valid = jax.random.bernoulli(km, 0.7, (batch, 1, 1, k_len))
        valid = valid.at[..., 0].set(True)
        return (*args, combine_masks(causal_mask(q_len), valid))

    return inputs


ENTRIES = [
    Entry(
        "MultiHeadAttention",
        lambda k: MultiHeadAttention(2, 4, rng_key=k),
        qkv(2, 5, 5, 8, 8, 8),
    ),
    Entry(
        "MultiHeadAttention-causal-padding",
        lambda k: MultiHeadAttention(2, 4, rng_key=k),
        qkv(2, 5, 5, 8, 8, 8, mask=True),
    ),
    Entry(
        "MultiHeadAttention-sizes",
        lambda k: MultiHeadAttention(
            3,
            2,
            value_size=5,
            model_size=7,
            query_size=4,
            key_input_size=6,
            value_input_size=3,
            with_bias=False,
            rng_key=k,
        ),
        qkv(2, 4, 6, 4, 6, 3),
    ),
    Entry(
        "MultiHeadAttention-rotary",
        lambda k: MultiHeadAttention(2, 4, rotary=True, rng_key=k),
        qkv(2, 5, 5, 8, 8, 8, mask=True),
    ),
]

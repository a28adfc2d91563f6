"""Registry entries: recurrent cores (VanillaRNN, LSTM, GRU, DeepRNN, skip
connections, ResetCore, IdentityCore) and the convolutional LSTMs.

A core is called ``core(state, x)``, so each entry's inputs are ``(state, x)``:
the state comes from ``initial_state(batch, dtype=dtype)`` of a core built the
same way, plus noise (a zero state would leave the recurrent weights without
gradient), and the input is numpy-generated (jax.random compiles per shape).
The first argument (the state) carries the dtype the outputs must follow.
"""

import jax
import jax.numpy as jnp
import numpy as np

from pax.nn import (
    GRU,
    LSTM,
    Conv1DLSTM,
    Conv2DLSTM,
    Conv3DLSTM,
    DeepRNN,
    IdentityCore,
    ResetCore,
    VanillaRNN,
    deep_rnn_with_skip_connections,
)

from .registry import Entry

BATCH = 2


def _rng(key):
    return np.random.default_rng(int(np.asarray(jax.random.key_data(key)).ravel()[-1]))


def core_inputs(make, x_shape, with_reset=False):
    """``inputs(key, dtype) -> (state, x)`` (``(state, (x, should_reset))``)."""

    def inputs(key, dtype):
        rng = _rng(key)
        state = make(jax.random.PRNGKey(0)).initial_state(BATCH, dtype=dtype)
        state = jax.tree_util.tree_map(
            lambda s: s + jnp.asarray(0.5 * rng.normal(size=s.shape), dtype), state
        )
        x = jnp.asarray(rng.normal(size=x_shape), dtype)
        if with_reset:
            return state, (x, jnp.asarray(rng.random(BATCH) < 0.5))
        return state, x

    return inputs


def entry(name, make, x_shape, **kwargs):
    return Entry(name, make, core_inputs(make, x_shape), **kwargs)


def _deep(k):
    k1, k2 = jax.random.split(k)
    return DeepRNN([LSTM(3, 4, rng_key=k1), jax.nn.relu, GRU(4, 5, rng_key=k2)])


def _skip(k):
    k1, k2 = jax.random.split(k)
    return deep_rnn_with_skip_connections(
        [LSTM(3, 4, rng_key=k1), VanillaRNN(3 + 4, 5, rng_key=k2)]
    )


def _reset(k):
    return ResetCore(LSTM(3, 4, rng_key=k))


ENTRIES = [
    entry("VanillaRNN", lambda k: VanillaRNN(3, 4, rng_key=k), (BATCH, 3)),
    entry(
        "VanillaRNN-single-bias",
        lambda k: VanillaRNN(3, 4, double_bias=False, rng_key=k),
        (BATCH, 3),
    ),
    entry("LSTM", lambda k: LSTM(3, 4, rng_key=k), (BATCH, 3)),
    entry(
        "LSTM-forget-bias",
        lambda k: LSTM(3, 4, forget_gate_bias=1.0, rng_key=k),
        (BATCH, 3),
    ),
    entry("GRU", lambda k: GRU(3, 4, rng_key=k), (BATCH, 3)),
    entry("DeepRNN", _deep, (BATCH, 3)),
    entry("DeepRNN-skip", _skip, (BATCH, 3)),
    Entry("ResetCore", _reset, core_inputs(_reset, (BATCH, 3), with_reset=True)),
    # IdentityCore has no parameters: nothing to differentiate.
    entry("IdentityCore", lambda k: IdentityCore(), (BATCH, 3), differentiable=False),
    entry(
        "Conv1DLSTM",
        lambda k: Conv1DLSTM((6, 2), 3, 3, rng_key=k),
        (BATCH, 6, 2),
    ),
    entry(
        "Conv2DLSTM",
        lambda k: Conv2DLSTM((4, 5, 2), 3, (3, 2), rng_key=k),
        (BATCH, 4, 5, 2),
    ),
    entry(
        "Conv3DLSTM",
        lambda k: Conv3DLSTM((3, 3, 3, 2), 2, 2, rng_key=k),
        (BATCH, 3, 3, 3, 2),
    ),
]

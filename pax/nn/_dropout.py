"""Dropout: the ``dropout`` function and the ``Dropout`` module."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .._core.module import Module
from ._moving_averages import stateful_call
from ._utils import as_array, float_result_dtype, rng_key_or_next, who


def _check_rate(rate: float, owner: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise TypeError(
            f"{owner}: `dropout_rate` must be a float in [0, 1), got {rate!r}"
        )
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{owner}: `dropout_rate` must be in [0, 1), got {rate}")
    return float(rate)


def dropout(
    rng_key: jax.Array,
    dropout_rate: float,
    x: jax.Array,
    broadcast_dims: Sequence[int] = (),
) -> jax.Array:
    """Zero each element of ``x`` with probability ``dropout_rate``.

    Kept elements are scaled by ``1 / (1 - dropout_rate)`` so the expectation
    is unchanged (Haiku's formula). ``broadcast_dims`` share one keep/drop
    decision along those axes. Same shape and dtype as ``x`` for floating
    ``x``; integer or boolean ``x`` gives float32 (the kept values are scaled,
    so they are not integers).

    >>> import jax, jax.numpy as jnp, pax
    >>> y = pax.dropout(jax.random.PRNGKey(0), 0.5, jnp.ones((4,)))
    >>> sorted(set(y.tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    """
    rate = _check_rate(dropout_rate, "pax.dropout")
    x = as_array(x, "pax.dropout")
    x = x.astype(float_result_dtype(x))
    if rate == 0.0:
        return x
    keep_rate = 1.0 - rate
    shape = list(x.shape)
    for d in broadcast_dims:
        shape[d] = 1
    keep = jax.random.bernoulli(rng_key, keep_rate, shape=tuple(shape))
    keep = jnp.broadcast_to(keep, x.shape)
    return jnp.where(keep, x / jnp.asarray(keep_rate, x.dtype), jnp.zeros_like(x))


class Dropout(Module):
    """Dropout with its own rng key, carried as (non-trainable) state.

    In training mode with ``dropout_rate > 0`` each call splits the stored key
    and updates it, so the call must run on a copy: ``dropout, y =
    pax.purecall(dropout, x)`` (or inside ``pax.pure``). In eval mode, or at
    rate 0, it is the identity and a plain call works.

    Args:
      dropout_rate: probability of dropping an element, in ``[0, 1)``.
      broadcast_dims: axes along which one keep/drop decision is shared.
      rng_key: initial key; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[...]``, output the same shape and dtype; integer or boolean
    input gives float32 in every mode (DESIGN §8, "Integer input"), so a
    model's output dtype does not depend on ``train()`` / ``eval()``.

    >>> import jax, jax.numpy as jnp, pax
    >>> drop = pax.Dropout(0.5, rng_key=jax.random.PRNGKey(0))
    >>> drop, y = pax.purecall(drop, jnp.ones((2, 3)))
    >>> y.shape
    (2, 3)
    >>> bool((drop.eval()(jnp.ones((2, 3))) == 1).all())
    True
    """

    def __init__(
        self,
        dropout_rate: float,
        *,
        broadcast_dims: Sequence[int] = (),
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.dropout_rate = _check_rate(dropout_rate, type(self).__name__)
        self.broadcast_dims = tuple(broadcast_dims)
        self.rng_key = rng_key_or_next(rng_key)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``[...] -> [...]``: dropped in training mode, identity in eval mode."""
        x = as_array(x, who(self))
        x = x.astype(float_result_dtype(x))
        if not self.training or self.dropout_rate == 0.0:
            return x
        with jax.named_scope("pax.nn.Dropout"):
            with stateful_call(self, "its rng key (`rng_key`)"):
                self.rng_key, key = jax.random.split(self.rng_key)
            return dropout(key, self.dropout_rate, x, self.broadcast_dims)

"""Haiku's stand-alone random/array helpers: ``one_hot``, ``multinomial``, ``dropout``.

Each follows dm-haiku's definition exactly, so the same key gives the same
numbers as ``hk.multinomial`` / ``hk.dropout``.

``dropout`` is written out here rather than forwarded to
:func:`pax.nn.dropout`: the two agree on float inputs with a Python-float
rate, but Haiku's version also takes a rate that is a NumPy scalar (whose
precision changes the random draw), a JAX array or a tracer (e.g. a ``jit``
argument), and integer inputs, all of which ``pax.nn.dropout`` refuses or
treats differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["dropout", "multinomial", "one_hot"]


def one_hot(x: jax.Array, num_classes: int, dtype: Any = jnp.float32) -> jax.Array:
    """One-hot encode integer indices: shape ``x.shape + (num_classes,)``.

    Indices outside ``[0, num_classes)`` give an all-zero row. Same as
    ``jax.nn.one_hot(x, num_classes).astype(dtype)`` (Haiku's definition).

    >>> import jax.numpy as jnp
    >>> from pax.hk._utils import one_hot
    >>> one_hot(jnp.array([0, 2, 5]), 3)
    Array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.]], dtype=float32)
    """
    return jax.nn.one_hot(x, num_classes).astype(dtype)


def multinomial(rng: jax.Array, logits: jax.Array, num_samples: int) -> jax.Array:
    """Draw ``num_samples`` category indices per row of unnormalized ``logits``.

    Categories are on the last axis of ``logits``; the result has shape
    ``logits.shape[:-1] + (num_samples,)`` and JAX's default int dtype. The
    draw is ``jax.random.categorical`` laid out exactly as Haiku does it, so
    a key gives the same samples as ``hk.multinomial``.

    >>> import jax, jax.numpy as jnp
    >>> from pax.hk._utils import multinomial
    >>> logits = jnp.log(jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    >>> multinomial(jax.random.PRNGKey(0), logits, 4)
    Array([[1, 1, 1, 1],
           [2, 2, 2, 2]], dtype=int32)
    """
    if num_samples != 1:
        samples = jax.random.categorical(
            rng, logits, shape=(num_samples,) + tuple(logits.shape[:-1])
        )
        return jnp.moveaxis(samples, 0, -1)
    return jax.random.categorical(rng, logits)[..., None]


def _check_rate(rate: Any) -> bool:
    """Check a concrete rate; return True if it is zero. Traced rates pass."""
    try:
        if rate < 0 or rate >= 1:
            raise ValueError(f"dropout: rate must be in [0, 1), got {rate!r}")
        return bool(rate == 0.0)
    except jax.errors.ConcretizationTypeError:
        return False


def dropout(
    rng: jax.Array,
    rate: float,
    x: jax.Array,
    broadcast_dims: Sequence[int] = (),
) -> jax.Array:
    """Zero each element of ``x`` with probability ``rate``; scale the rest.

    Kept elements are divided by ``1 - rate``. ``broadcast_dims`` lists axes
    along which one keep/drop decision is shared. ``rate`` must be in
    ``[0, 1)`` (``ValueError`` otherwise, checked when it is concrete); at
    rate 0 ``x`` itself is returned and ``rng`` is not used (it may be
    ``None``). The rate may be a Python float, a NumPy scalar (a lower
    precision such as ``np.float16`` makes the draw cheaper, as in Haiku), a
    JAX array or a traced value. Same numbers as ``hk.dropout`` for the same
    key.

    >>> import jax, jax.numpy as jnp
    >>> from pax.hk._utils import dropout
    >>> y = dropout(jax.random.PRNGKey(0), 0.5, jnp.ones((2, 3)))
    >>> bool(jnp.all((y == 0) | (y == 2)))
    True
    >>> x = jnp.ones(3)
    >>> dropout(None, 0.0, x) is x
    True
    """
    if _check_rate(rate):
        return x
    if rng is None:
        raise TypeError(
            "dropout: `rng` must be a JAX random key when rate > 0, got None"
        )
    if not hasattr(x, "shape"):
        x = jnp.asarray(x)

    shape = list(x.shape)
    for dim in broadcast_dims:
        if not -len(shape) <= dim < len(shape):
            raise ValueError(
                "Broadcast dimension does not exist. Got dimension "
                f"{dim} for shape {shape}."
            )
        shape[dim] = 1

    keep_rate = 1.0 - rate
    keep = jax.random.bernoulli(rng, keep_rate, shape=shape)
    keep = jnp.broadcast_to(keep, x.shape)
    return keep * x / keep_rate

"""``Embed``: a trainable lookup table from integer ids to vectors."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._core.module import Module, parameters_method
from ..initializers import Initializer, TruncatedNormal
from ._utils import as_array, positive_int, rng_key_or_next, who

_LOOKUP_STYLES = ("ARRAY_INDEX", "ONE_HOT")


class Embed(Module):
    """Maps integer ids to rows of a trainable ``[vocab_size, embed_dim]`` table.

    Args:
      vocab_size: number of rows (ids ``0 .. vocab_size - 1``).
      embed_dim: size of each embedding vector.
      w_init: initializer for ``weight``, called ``w_init(rng_key, shape,
        dtype)``. Default (Haiku's): ``TruncatedNormal(stddev=1.0)``.
      lookup_style: ``"ARRAY_INDEX"`` (gather; the default) or ``"ONE_HOT"``
        (a one-hot matrix product, sometimes faster on TPU), as Haiku.
      precision: matmul precision for ``"ONE_HOT"``; ``None`` means
        ``jax.lax.Precision.HIGHEST`` (Haiku's default), so both styles agree.
      rng_key: key for ``w_init``; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input: integer ids of any shape ``[...]``; output ``[..., embed_dim]`` in
    the table's dtype. Trainable: ``weight``.

    >>> import jax, jax.numpy as jnp, pax
    >>> embed = pax.Embed(10, 4, rng_key=jax.random.PRNGKey(0))
    >>> embed(jnp.array([[1, 2, 3]])).shape
    (1, 3, 4)
    """

    parameters = parameters_method("weight")

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        w_init: Initializer | None = None,
        *,
        lookup_style: str = "ARRAY_INDEX",
        precision: jax.lax.Precision | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.vocab_size = positive_int(vocab_size, "vocab_size", owner)
        self.embed_dim = positive_int(embed_dim, "embed_dim", owner)
        style = str(lookup_style).upper()
        if style not in _LOOKUP_STYLES:
            raise ValueError(
                f"{owner}: `lookup_style` must be one of {_LOOKUP_STYLES}, "
                f"got {lookup_style!r}"
            )
        self.lookup_style = style
        self.precision = precision
        w_init = TruncatedNormal(stddev=1.0) if w_init is None else w_init
        self.weight = w_init(
            rng_key_or_next(rng_key), (self.vocab_size, self.embed_dim), jnp.float32
        )

    def __call__(self, ids: jax.Array) -> jax.Array:
        """``[...]`` integer ids -> ``[..., embed_dim]``."""
        ids = as_array(ids, who(self))
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(f"{who(self)}: expected integer ids, got dtype {ids.dtype}")
        with jax.named_scope("pax.nn.Embed"):
            if self.lookup_style == "ARRAY_INDEX":
                return self.weight[(ids,)]
            one_hot = jax.nn.one_hot(ids, self.vocab_size, dtype=self.weight.dtype)
            precision = (
                jax.lax.Precision.HIGHEST if self.precision is None else self.precision
            )
            return jnp.dot(one_hot, self.weight, precision=precision)

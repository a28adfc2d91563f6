"""``hk.Embed`` and ``hk.EmbedLookupStyle``: Haiku's embedding table,
computing with ``pax.nn.Embed``."""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

from .. import nn
from . import initializers
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import native, template


class EmbedLookupStyle(enum.Enum):
    """How ``Embed`` turns ids into rows: ``ARRAY_INDEX`` (a gather) or
    ``ONE_HOT`` (a one-hot matrix product)."""

    ARRAY_INDEX = 1
    ONE_HOT = 2


class Embed(Module):
    """Haiku's ``Embed``: looks ids up in a parameter ``embeddings`` of shape
    ``[vocab_size, embed_dim]`` (float32, default ``TruncatedNormal(1.0)``, or
    the given ``embedding_matrix``).

    Input: integer ids ``[...]``; output ``[..., embed_dim]``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda ids: hk.Embed(10, 4)(ids))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.array([1, 2]))
    >>> params["embed"]["embeddings"].shape
    (10, 4)
    >>> f.apply(params, None, jnp.array([[1, 2, 3]])).shape
    (1, 3, 4)
    """

    def __init__(
        self,
        vocab_size: int | None = None,
        embed_dim: int | None = None,
        embedding_matrix=None,
        w_init=None,
        lookup_style: str | EmbedLookupStyle = "ARRAY_INDEX",
        name: str | None = None,
        precision=jax.lax.Precision.HIGHEST,
    ):
        super().__init__(name=name)
        if embedding_matrix is None and not (vocab_size and embed_dim):
            raise ValueError(
                "hk.Embed must be supplied either with an initial `embedding_matrix` "
                "or with `embed_dim` and `vocab_size`."
            )
        if embedding_matrix is not None:
            matrix = jnp.asarray(embedding_matrix)
            for size, axis, arg in (
                (vocab_size, 0, "vocab_size"),
                (embed_dim, 1, "embed_dim"),
            ):
                if size and matrix.shape[axis] != size:
                    raise ValueError(
                        f"An `embedding_matrix` was supplied but the `{arg}` of "
                        f"{size} was not consistent with its shape {matrix.shape}."
                    )
            w_init = lambda shape, dtype: matrix  # noqa: E731
            vocab_size, embed_dim = matrix.shape
        self.vocab_size = vocab_size
        self.embed_dim = embed_dim
        self.lookup_style = lookup_style
        self.precision = precision
        self.w_init = w_init or initializers.TruncatedNormal()

    @property
    def embeddings(self) -> jax.Array:
        """The ``[vocab_size, embed_dim]`` table (the parameter ``embeddings``)."""
        spec = template(nn.Embed, self.vocab_size, self.embed_dim)
        inits = {"embeddings": self.w_init}
        arrays = fetch(record_for(nn.Embed), Context(), spec.shapes, inits=inits)
        return arrays[".weight"]

    def __call__(self, ids, lookup_style=None, precision=None) -> jax.Array:
        """``[...]`` integer ids -> ``[..., embed_dim]``; ``lookup_style`` and
        ``precision`` override the constructor's for this call."""
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(
                "hk.Embed's __call__ method must take an array of integer dtype "
                f"but was called with an array of {ids.dtype}"
            )
        style = lookup_style or self.lookup_style
        if isinstance(style, str):
            style = getattr(EmbedLookupStyle, style.upper())
        if not isinstance(style, EmbedLookupStyle):
            raise NotImplementedError(f"{style} is not supported by hk.Embed.")
        precision = self.precision if precision is None else precision
        table = jnp.asarray(self.embeddings)
        layer = native(
            nn.Embed,
            self.vocab_size,
            self.embed_dim,
            lookup_style=style.name,
            precision=precision,
            arrays={".weight": table},
        )
        return layer(ids)

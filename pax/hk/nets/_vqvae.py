"""``hk.nets.VectorQuantizer`` and ``hk.nets.VectorQuantizerEMA``: Haiku's
VQ-VAE bottlenecks, computing with ``pax.nets.VectorQuantizer`` /
``pax.nets.VectorQuantizerEMA``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ... import nets, purecall
from .. import initializers
from .._base import set_state
from .._mapping import Context, fetch, record_for
from .._module import Module
from .._moving_averages import ExponentialMovingAverage
from .._native import Template, template


def _codebook_init():
    # Haiku's default for both quantizers: VarianceScaling(1, fan_in, uniform)
    return initializers.VarianceScaling(distribution="uniform")


def _codebook(spec: Template, dtype: Any) -> jax.Array:
    """The ``embeddings`` through the quantizer's record (a parameter of
    ``VectorQuantizer``, state of ``VectorQuantizerEMA``)."""
    inits = {"embeddings": _codebook_init()}
    arrays = fetch(record_for(spec.type), Context(), spec.shapes, dtype, inits)
    return arrays[".embeddings"]


def _flat(prefix: str, tree: Any) -> dict[str, Any]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(p): v for p, v in leaves}


class VectorQuantizer(Module):
    """Haiku's ``VectorQuantizer``: the codebook is the parameter
    ``embeddings`` ``[embedding_dim, num_embeddings]`` (``dtype``), learned by
    gradient through the loss; ``is_training`` changes nothing.

    ``__call__(inputs, is_training)`` returns Haiku's dict (``quantize``,
    ``loss``, ``perplexity``, ``encodings``, ``encoding_indices``,
    ``distances``); ``quantize(encoding_indices)`` looks codes up.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(
    ...     lambda x: hk.nets.VectorQuantizer(4, 8, 0.25)(x, is_training=True))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 4)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'vector_quantizer': {'embeddings': (4, 8)}}
    >>> f.apply(params, None, jnp.ones((2, 4)))["quantize"].shape
    (2, 4)
    """

    def __init__(
        self,
        embedding_dim: int,
        num_embeddings: int,
        commitment_cost: float,
        dtype: Any = jnp.float32,
        name: str | None = "vector_quantizer",
        cross_replica_axis: str | None = None,
    ):
        super().__init__(name=name)
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.commitment_cost = commitment_cost
        self.cross_replica_axis = cross_replica_axis
        self._embedding_shape = [embedding_dim, num_embeddings]
        self._embedding_dtype = dtype

    def _template(self) -> Template:
        return template(
            nets.VectorQuantizer,
            self.embedding_dim,
            self.num_embeddings,
            self.commitment_cost,
            jnp.dtype(self._embedding_dtype),
            cross_replica_axis=self.cross_replica_axis or None,
        )

    @property
    def embeddings(self) -> jax.Array:
        return _codebook(self._template(), self._embedding_dtype)

    def _native(self) -> nets.VectorQuantizer:
        spec = self._template()
        return spec.build({".embeddings": _codebook(spec, self._embedding_dtype)})

    def __call__(self, inputs, is_training) -> dict[str, jax.Array]:
        """Quantize ``inputs`` ``[..., embedding_dim]`` (``is_training`` is
        accepted for Haiku's signature and ignored)."""
        del is_training
        return self._native()(inputs)

    def quantize(self, encoding_indices) -> jax.Array:
        """The codes ``[..., embedding_dim]`` of integer ``encoding_indices``."""
        return self._native().quantize(encoding_indices)


class VectorQuantizerEMA(Module):
    """Haiku's ``VectorQuantizerEMA``: the codebook is the state
    ``embeddings`` ``[embedding_dim, num_embeddings]``, replaced in training
    calls from the moving averages kept by the submodules ``ema_cluster_size``
    and ``ema_dw`` (``hk.ExponentialMovingAverage``, state ``counter``,
    ``hidden``, ``average``). An eval call (``is_training=False``) reads only
    ``embeddings`` and changes nothing.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(lambda x: hk.nets.VectorQuantizerEMA(
    ...     4, 8, 0.25, decay=0.9)(x, is_training=True))
    >>> params, state = f.init(jax.random.PRNGKey(0), jnp.ones((2, 4)))
    >>> sorted(state)  # doctest: +NORMALIZE_WHITESPACE
    ['vector_quantizer_ema', 'vector_quantizer_ema/~/ema_cluster_size',
     'vector_quantizer_ema/~/ema_dw']
    """

    def __init__(
        self,
        embedding_dim,
        num_embeddings,
        commitment_cost,
        decay,
        epsilon: float = 1e-5,
        dtype: Any = jnp.float32,
        cross_replica_axis: str | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if not 0 <= decay <= 1:
            raise ValueError("decay must be in range [0, 1]")
        self.embedding_dim = embedding_dim
        self.num_embeddings = num_embeddings
        self.decay = decay
        self.commitment_cost = commitment_cost
        self.epsilon = epsilon
        self.cross_replica_axis = cross_replica_axis
        self._embedding_shape = [embedding_dim, num_embeddings]
        self._dtype = dtype
        self._ema_cluster_size = ExponentialMovingAverage(
            decay=self.decay, name="ema_cluster_size"
        )
        self._ema_dw = ExponentialMovingAverage(decay=self.decay, name="ema_dw")

    def _template(self) -> Template:
        return template(
            nets.VectorQuantizerEMA,
            self.embedding_dim,
            self.num_embeddings,
            self.commitment_cost,
            self.decay,
            self.epsilon,
            jnp.dtype(self._dtype),
            self.cross_replica_axis or None,
        )

    @property
    def embeddings(self) -> jax.Array:
        return _codebook(self._template(), self._dtype)

    @property
    def ema_cluster_size(self) -> ExponentialMovingAverage:
        self._ema_cluster_size.initialize([self.num_embeddings], self._dtype)
        return self._ema_cluster_size

    @property
    def ema_dw(self) -> ExponentialMovingAverage:
        self._ema_dw.initialize(self._embedding_shape, self._dtype)
        return self._ema_dw

    def _native(self, is_training: bool) -> nets.VectorQuantizerEMA:
        d, k = self.embedding_dim, self.num_embeddings
        dtype = jnp.dtype(self._dtype)
        spec = self._template()
        arrays = {".embeddings": _codebook(spec, self._dtype)}
        if is_training:
            arrays.update(
                _flat(".ema_cluster_size", self.ema_cluster_size._native((k,), dtype))
            )
            arrays.update(_flat(".ema_dw", self.ema_dw._native((d, k), dtype)))
        else:
            # eval calls leave the averages alone (Haiku does not even create
            # their state): the native module gets unused zeros
            for prefix, shape in ((".ema_cluster_size", (k,)), (".ema_dw", (d, k))):
                arrays[prefix + ".averages"] = jnp.zeros(shape, dtype)
                arrays[prefix + ".counter"] = jnp.zeros((), jnp.int32)
                arrays[prefix + ".hidden"] = jnp.zeros(shape, dtype)
        module = spec.build(arrays)
        return module if is_training else module.eval()

    def __call__(self, inputs, is_training) -> dict[str, jax.Array]:
        """Quantize ``inputs`` ``[..., embedding_dim]``; when ``is_training``,
        update the averages and the codebook (used from the next call on)."""
        module = self._native(bool(is_training))
        if not is_training:
            return module(inputs)
        module, out = purecall(module, inputs)
        set_state("embeddings", module.embeddings)
        self._ema_cluster_size._store(module.ema_cluster_size, (self.num_embeddings,))
        self._ema_dw._store(module.ema_dw, tuple(self._embedding_shape))
        return out

    def quantize(self, encoding_indices) -> jax.Array:
        """The codes ``[..., embedding_dim]`` of integer ``encoding_indices``."""
        return self._native(False).quantize(encoding_indices)

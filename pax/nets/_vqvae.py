"""The vector-quantization bottleneck of VQ-VAE: ``VectorQuantizer`` (codebook
learned by gradient) and ``VectorQuantizerEMA`` (codebook from moving averages).

Both follow van den Oord et al., "Neural Discrete Representation Learning"
(2017, https://arxiv.org/abs/1711.00937), with Haiku's equations and outputs.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, parameters_method
from ..initializers import VarianceScaling
from ..nn._moving_averages import EMA, stateful_call
from ..nn._utils import (
    as_array,
    float_result_dtype,
    positive_int,
    rng_key_or_next,
    who,
)

# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------


def _real(value: Any, name: str, owner: str) -> float:
    """``value`` as a finite float (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{owner}: `{name}` must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{owner}: `{name}` must be finite, got {value}")
    return value


def _float_dtype(dtype: Any, owner: str) -> np.dtype:
    try:
        dtype = jnp.dtype(dtype)
    except TypeError:
        raise TypeError(f"{owner}: `dtype` must be a dtype, got {dtype!r}") from None
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{owner}: `dtype` must be a floating dtype, got {dtype}")
    return dtype


def _init_codebook(
    embedding_dim: int, num_embeddings: int, dtype: Any, rng_key: jax.Array | None
) -> jax.Array:
    # Haiku's default: uniform with variance 1 / embedding_dim (the fan-in of a
    # [embedding_dim, num_embeddings] matrix)
    init = VarianceScaling(1.0, "fan_in", "uniform")
    return init(rng_key_or_next(rng_key), (embedding_dim, num_embeddings), dtype)


def _check_input(module: Any, x: Any) -> jax.Array:
    x = as_array(x, who(module))
    if x.ndim < 1 or x.shape[-1] != module.embedding_dim:
        raise ValueError(
            f"{who(module)}: expected input with last dimension "
            f"{module.embedding_dim}, got shape {tuple(x.shape)}"
        )
    # integer input is quantized as float32 (squares of uint8 would wrap)
    return x.astype(float_result_dtype(x))


def _lookup(embeddings: jax.Array, encoding_indices: jax.Array) -> jax.Array:
    """Rows of the codebook: ``[...]`` integer indices -> ``[..., D]``."""
    return jnp.take(embeddings.T, encoding_indices, axis=0)


def _assign(x: jax.Array, embeddings: jax.Array) -> dict[str, jax.Array]:
    """Nearest code of every input vector (squared Euclidean distance)."""
    flat = x.reshape(-1, embeddings.shape[0])
    distances = (
        jnp.sum(jnp.square(flat), axis=1, keepdims=True)
        - 2 * jnp.matmul(flat, embeddings)
        + jnp.sum(jnp.square(embeddings), axis=0, keepdims=True)
    )
    flat_indices = jnp.argmin(distances, axis=1)
    encodings = jax.nn.one_hot(flat_indices, embeddings.shape[1], dtype=distances.dtype)
    encoding_indices = flat_indices.reshape(x.shape[:-1])
    return {
        "flat": flat,
        "distances": distances,
        "encodings": encodings,
        "encoding_indices": encoding_indices,
        "quantized": _lookup(embeddings, encoding_indices),
    }


def _outputs(
    x: jax.Array, a: dict, loss: jax.Array, cross_replica_axis: Any
) -> dict[str, jax.Array]:
    """Haiku's output dict (straight-through ``quantize`` and perplexity)."""
    quantized = a["quantized"]
    # straight-through estimator: the value of the code, the gradient of x
    quantize = x + jax.lax.stop_gradient(quantized - x)
    avg_probs = jnp.mean(a["encodings"], axis=0)
    if cross_replica_axis is not None:
        avg_probs = jax.lax.pmean(avg_probs, axis_name=cross_replica_axis)
    perplexity = jnp.exp(-jnp.sum(avg_probs * jnp.log(avg_probs + 1e-10)))
    return {
        "quantize": quantize,
        "loss": loss,
        "perplexity": perplexity,
        "encodings": a["encodings"],
        "encoding_indices": a["encoding_indices"],
        "distances": a["distances"],
    }


# ---------------------------------------------------------------------------
# VectorQuantizer
# ---------------------------------------------------------------------------


class VectorQuantizer(Module):
    """The VQ-VAE quantizer: snap every vector to its nearest codebook entry.

    The last axis of the input is the embedding space; every other axis is
    batch (a ``[B, H, W, D]`` input is ``B * H * W`` vectors quantized
    independently). The codebook ``embeddings`` ``[embedding_dim,
    num_embeddings]`` (one code per column) is a trainable parameter, learned
    from the codebook term of the loss::

        loss = mean((code - sg(x))**2) + commitment_cost * mean((sg(code) - x)**2)

    where ``sg`` is ``stop_gradient``: the first term moves codes towards the
    encoder outputs, the second commits the encoder to its codes. The call
    needs no training flag (it behaves the same in both modes). Integer input
    gives float32 output (it is quantized as float32). The distances are
    Haiku's, ``|x|² - 2 x·e + |e|²`` in that order.

    Args:
      embedding_dim: size ``D`` of each vector (the input's last axis).
      num_embeddings: number of codes ``K``.
      commitment_cost: weight of the commitment term (``beta`` in the paper,
        typically 0.25), a number >= 0.
      dtype: dtype of the codebook (float32). Outputs follow JAX's promotion
        of the input dtype and this one, as in Haiku: a bfloat16 input with a
        float32 codebook gives float32 outputs; use ``dtype=jnp.bfloat16`` to
        compute in bfloat16.
      cross_replica_axis: a named axis (``pmap``/``vmap``/``shard_map``) over
        which the code usage is averaged for ``perplexity``.
      rng_key: key for the codebook; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    The codebook starts as Haiku's: ``VarianceScaling(1.0, "fan_in",
    "uniform")``, i.e. uniform in ``[-sqrt(3 / D), sqrt(3 / D)]``.

    >>> import jax, jax.numpy as jnp, pax
    >>> vq = pax.nets.VectorQuantizer(4, 16, 0.25, rng_key=jax.random.PRNGKey(0))
    >>> out = vq(jnp.ones((2, 3, 4)))
    >>> out["quantize"].shape, out["encoding_indices"].shape, out["encodings"].shape
    ((2, 3, 4), (2, 3), (6, 16))
    >>> bool(jnp.allclose(out["quantize"], vq.quantize(out["encoding_indices"])))
    True
    """

    parameters = parameters_method("embeddings")

    def __init__(
        self,
        embedding_dim: int,
        num_embeddings: int,
        commitment_cost: float,
        dtype: Any = jnp.float32,
        *,
        cross_replica_axis: str | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", owner)
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings", owner)
        self.commitment_cost = _real(commitment_cost, "commitment_cost", owner)
        if self.commitment_cost < 0:
            raise ValueError(
                f"{owner}: `commitment_cost` must be >= 0, got {commitment_cost}"
            )
        self.cross_replica_axis = cross_replica_axis
        self.embeddings = _init_codebook(
            self.embedding_dim,
            self.num_embeddings,
            _float_dtype(dtype, owner),
            rng_key,
        )

    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        """Quantize ``x`` of shape ``[..., embedding_dim]``.

        The loss is ``q_latent_loss + commitment_cost * e_latent_loss`` (codebook
        term plus commitment term, each a mean over all elements of ``x``).

        Returns a dict with Haiku's keys (``M`` is the number of input
        vectors, the product of ``x.shape[:-1]``; ``K = num_embeddings``):

        * ``quantize``: ``x.shape``, the nearest code of every vector, with
          the straight-through gradient (``x + stop_gradient(code - x)``: the
          gradient w.r.t. ``x`` is the identity).
        * ``loss``: scalar, the loss to add to the model's.
        * ``perplexity``: scalar, ``exp(-sum(p * log p))`` of the average code
          usage ``p`` over the batch (``K`` when all codes are used equally).
        * ``encodings``: ``[M, K]`` one-hot codes of the flattened batch.
        * ``encoding_indices``: ``x.shape[:-1]``, integer code indices.
        * ``distances``: ``[M, K]`` squared distances to every code.
        """
        x = _check_input(self, x)
        with jax.named_scope("pax.nets.VectorQuantizer"):
            a = _assign(x, self.embeddings)
            code = a["quantized"]
            e_latent_loss = jnp.mean(jnp.square(jax.lax.stop_gradient(code) - x))
            q_latent_loss = jnp.mean(jnp.square(code - jax.lax.stop_gradient(x)))
            loss = q_latent_loss + self.commitment_cost * e_latent_loss
            return _outputs(x, a, loss, self.cross_replica_axis)

    def quantize(self, encoding_indices: jax.Array) -> jax.Array:
        """The codes of integer ``encoding_indices`` ``[...]``: ``[..., D]``."""
        return _lookup(self.embeddings, jnp.asarray(encoding_indices))


# ---------------------------------------------------------------------------
# VectorQuantizerEMA
# ---------------------------------------------------------------------------


class VectorQuantizerEMA(Module):
    """The VQ-VAE quantizer with a codebook updated by moving averages.

    Same assignment and outputs as :class:`VectorQuantizer`, but the codebook
    is not learned by gradient: in training mode each call counts, for every
    code ``i``, the vectors assigned to it (``n_i``) and their sum (``s_i``),
    and updates zero-debiased exponential moving averages of both
    (Haiku's ``ExponentialMovingAverage``, here :class:`pax.EMA`)::

        N_i = EMA(n_i)        m_i = EMA(s_i)
        N_i <- (N_i + epsilon) / (sum(N) + K * epsilon) * sum(N)   # Laplace
        e_i = m_i / N_i

    The new codebook is used from the next call on (the outputs of the call
    that updates it use the old one). The loss is the commitment term alone,
    ``commitment_cost * mean((sg(code) - x)**2)``.

    Modes: a training-mode call updates state, so it goes through
    ``pax.purecall`` (``vq, out = pax.purecall(vq, x)``; a plain call raises
    ``MutationError`` naming this module); in eval mode (``vq.eval()``) it is
    a plain call, quantizes with the current codebook and changes nothing.
    The outputs are the same in both modes. Integer input gives float32
    output (it is quantized as float32).

    Args:
      embedding_dim: size ``D`` of each vector (the input's last axis).
      num_embeddings: number of codes ``K``.
      commitment_cost: weight of the commitment term, a number >= 0.
      decay: decay of the moving averages, in ``[0, 1)`` (e.g. 0.99).
      epsilon: Laplace smoothing of the cluster sizes, > 0 (default 1e-5).
      dtype: dtype of the codebook and of the averages (float32). They keep
        it whatever the input dtype (Haiku stores whatever the update
        computes); outputs follow JAX's promotion of the input dtype and this
        one, as in :class:`VectorQuantizer`.
      cross_replica_axis: a named axis (``pmap``/``vmap``/``shard_map``): the
        counts and sums are summed over it (so every replica updates the
        codebook from the whole batch) and the code usage for ``perplexity``
        is averaged over it.
      rng_key: key for the initial codebook; ``None`` draws
        ``pax.next_rng_key()``.
      name: optional module name.

    State (nothing is trainable): ``embeddings`` ``[D, K]`` (initialized as in
    :class:`VectorQuantizer`), ``ema_cluster_size`` (an :class:`pax.EMA` of
    ``[K]``) and ``ema_dw`` (an :class:`pax.EMA` of ``[D, K]``), the names of
    Haiku's state.

    >>> import jax, jax.numpy as jnp, pax
    >>> vq = pax.nets.VectorQuantizerEMA(4, 16, 0.25, decay=0.99,
    ...                                  rng_key=jax.random.PRNGKey(0))
    >>> x = jax.random.normal(jax.random.PRNGKey(1), (8, 4))
    >>> new_vq, out = pax.purecall(vq, x)      # training: updates the codebook
    >>> bool(jnp.any(new_vq.embeddings != vq.embeddings))
    True
    >>> out = new_vq.eval()(x)                 # eval: a plain call
    >>> out["loss"].shape, out["encodings"].shape
    ((), (8, 16))
    """

    def __init__(
        self,
        embedding_dim: int,
        num_embeddings: int,
        commitment_cost: float,
        decay: float,
        epsilon: float = 1e-5,
        dtype: Any = jnp.float32,
        cross_replica_axis: str | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.embedding_dim = positive_int(embedding_dim, "embedding_dim", owner)
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings", owner)
        self.commitment_cost = _real(commitment_cost, "commitment_cost", owner)
        if self.commitment_cost < 0:
            raise ValueError(
                f"{owner}: `commitment_cost` must be >= 0, got {commitment_cost}"
            )
        self.decay = _real(decay, "decay", owner)
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(
                f"{owner}: `decay` must be in [0, 1), got {decay} (the "
                "zero-debiased averages divide by 1 - decay**t)"
            )
        self.epsilon = _real(epsilon, "epsilon", owner)
        if not self.epsilon > 0:
            raise ValueError(f"{owner}: `epsilon` must be > 0, got {epsilon}")
        self.cross_replica_axis = cross_replica_axis
        dtype = _float_dtype(dtype, owner)
        d, k = self.embedding_dim, self.num_embeddings
        self.embeddings = _init_codebook(d, k, dtype, rng_key)
        self.ema_cluster_size = EMA(
            jnp.zeros((k,), dtype), self.decay, debias=True, name="ema_cluster_size"
        )
        self.ema_dw = EMA(
            jnp.zeros((d, k), dtype), self.decay, debias=True, name="ema_dw"
        )

    def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
        """Quantize ``x`` of shape ``[..., embedding_dim]``; in training mode
        also update the codebook (run it through ``pax.purecall``).

        The loss is ``commitment_cost * e_latent_loss`` (the commitment term,
        a mean over all elements of ``x``), in both modes. Returns the dict
        described in :meth:`VectorQuantizer.__call__`.
        """
        x = _check_input(self, x)
        with jax.named_scope("pax.nets.VectorQuantizerEMA"):
            a = _assign(x, self.embeddings)
            e_latent_loss = jnp.mean(
                jnp.square(jax.lax.stop_gradient(a["quantized"]) - x)
            )
            if self.training:
                with stateful_call(self, "the codebook and its moving averages"):
                    self._update_codebook(a["flat"], a["encodings"])
            loss = self.commitment_cost * e_latent_loss
            return _outputs(x, a, loss, self.cross_replica_axis)

    def _update_codebook(self, flat: jax.Array, encodings: jax.Array) -> None:
        cluster_size = jnp.sum(encodings, axis=0)  # n_i
        dw = jnp.matmul(flat.T, encodings)  # s_i, one column per code
        if self.cross_replica_axis is not None:
            cluster_size, dw = jax.lax.psum(
                (cluster_size, dw), axis_name=self.cross_replica_axis
            )
        # stateful calls: outside pure these raise pax.MutationError
        ema_cluster_size = self.ema_cluster_size(cluster_size, update_stats=True)
        ema_dw = self.ema_dw(dw, update_stats=True)
        n = jnp.sum(ema_cluster_size)
        smoothed = (
            (ema_cluster_size + self.epsilon)
            / (n + self.num_embeddings * self.epsilon)
            * n
        )
        embeddings = ema_dw / smoothed.reshape(1, -1)
        self.embeddings = embeddings.astype(self.embeddings.dtype)

    def quantize(self, encoding_indices: jax.Array) -> jax.Array:
        """The codes of integer ``encoding_indices`` ``[...]``: ``[..., D]``."""
        return _lookup(self.embeddings, jnp.asarray(encoding_indices))

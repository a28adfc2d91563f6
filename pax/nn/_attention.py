"""Attention: ``MultiHeadAttention``, its key/value cache, masks and rotary
position embeddings.

Shapes, as used throughout this file: ``B`` batch, ``T`` query length, ``S``
key/value length, ``H`` heads, ``K`` key (and query) size per head, ``V``
value size per head, ``L`` the capacity of a :class:`KVCache`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, StateModule
from ..initializers import Initializer, VarianceScaling
from ._linear import Linear
from ._utils import as_array, positive_int, rng_key_or_next, who


def causal_mask(length: int) -> jax.Array:
    """A ``[1, 1, length, length]`` boolean mask, True on and below the diagonal.

    Position ``t`` may attend to positions ``0 .. t``. The two leading unit axes
    broadcast over batch and heads, so the mask can be passed to
    :class:`MultiHeadAttention` directly or combined with :func:`padding_mask`.

    Args:
      length: the sequence length ``T`` (queries and keys alike).

    >>> import pax
    >>> pax.nn.causal_mask(3)[0, 0]
    Array([[ True, False, False],
           [ True,  True, False],
           [ True,  True,  True]], dtype=bool)
    """
    length = positive_int(length, "length", "causal_mask")
    return jnp.tril(jnp.ones((length, length), dtype=bool)).reshape(
        (1, 1, length, length)
    )


def padding_mask(valid: jax.Array) -> jax.Array:
    """Turn a per-token ``[B, S]`` validity array into a ``[B, 1, 1, S]`` mask.

    Args:
      valid: ``[B, S]``, true (non-zero) where the key position holds a real
        token and false where it is padding.

    Returns:
      A boolean ``[B, 1, 1, S]`` mask that broadcasts over heads and queries:
      no query attends to a padded key. (Outputs at padded *query* positions are
      computed anyway; ignore them.)

    >>> import jax.numpy as jnp, pax
    >>> m = pax.nn.padding_mask(jnp.array([[1, 1, 0]]))
    >>> m.shape, m[0, 0, 0]
    ((1, 1, 1, 3), Array([ True,  True, False], dtype=bool))
    """
    valid = jnp.asarray(valid)
    if valid.ndim != 2:
        raise ValueError(
            f"padding_mask: expected a [batch, length] array, got shape "
            f"{tuple(valid.shape)}"
        )
    b, s = valid.shape
    return valid.astype(bool).reshape((b, 1, 1, s))


def combine_masks(*masks: jax.Array | None) -> jax.Array | None:
    """Logical AND of rank-4 boolean masks; ``None`` entries are skipped.

    Args:
      *masks: masks of rank 4 (e.g. ``[1, 1, T, T]`` from :func:`causal_mask`
        and ``[B, 1, 1, S]`` from :func:`padding_mask`), or ``None``.

    Returns:
      Their broadcast AND (``[B, 1, T, S]`` in the example), or ``None`` when
      every argument is ``None``.

    >>> import jax.numpy as jnp, pax
    >>> pad = pax.nn.padding_mask(jnp.ones((2, 3)))
    >>> m = pax.nn.combine_masks(pax.nn.causal_mask(3), pad, None)
    >>> m.shape
    (2, 1, 3, 3)
    """
    out = None
    for m in masks:
        if m is None:
            continue
        m = jnp.asarray(m)
        if m.ndim != 4:
            raise ValueError(
                f"combine_masks: every mask must have rank 4 "
                f"([batch, heads, q_len, k_len]), got shape {tuple(m.shape)}"
            )
        m = m.astype(bool)
        out = m if out is None else jnp.logical_and(out, m)
    return out


def apply_rotary(
    x: jax.Array, positions: jax.Array, *, base: float = 10000.0
) -> jax.Array:
    """Rotary position embedding (RoPE) of per-head vectors.

    The last axis (size ``D``, even) is split into halves ``x1 = x[..., :D/2]``
    and ``x2 = x[..., D/2:]``; dimension ``i`` is paired with ``i + D/2`` (the
    "rotate half" convention of GPT-NeoX and LLaMA, not the interleaved
    ``(2i, 2i+1)`` pairing). At position ``p`` each pair is rotated by the
    angle ``p * base ** (-2 i / D)``::

        out[..., i]       = x1[i] * cos(angle_i) - x2[i] * sin(angle_i)
        out[..., i + D/2] = x2[i] * cos(angle_i) + x1[i] * sin(angle_i)

    Rotating queries and keys this way makes their dot product depend on the
    positions only through their difference.

    Args:
      x: ``[..., T, H, D]`` per-head queries or keys (``D`` even).
      positions: ``[T]`` or ``[..., T]`` (leading axes equal to ``x``'s or 1)
        integer or float positions of the ``T`` tokens.
      base: the wavelength base (10000 in the RoFormer paper).

    Returns:
      ``[..., T, H, D]``, the dtype of ``x``; the angles and the rotation are
      computed in at least float32.

    >>> import jax.numpy as jnp, pax
    >>> x = jnp.ones((1, 3, 2, 4))
    >>> pax.nn.apply_rotary(x, jnp.arange(3)).shape
    (1, 3, 2, 4)
    """
    x = jnp.asarray(x)
    if x.ndim < 3:
        raise ValueError(
            f"apply_rotary: expected `x` of shape [..., T, heads, dim], got shape "
            f"{tuple(x.shape)}"
        )
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"apply_rotary: the last axis of `x` must be even, got {dim}")
    if not base > 0:
        raise ValueError(f"apply_rotary: `base` must be > 0, got {base}")
    pos = jnp.asarray(positions)
    lead = x.shape[:-3]
    pos_lead = pos.shape[:-1]
    if (
        pos.ndim == 0
        or pos.shape[-1] != x.shape[-3]
        or len(pos_lead) > len(lead)
        or any(p not in (1, n) for p, n in zip(pos_lead[::-1], lead[::-1]))
    ):
        raise ValueError(
            f"apply_rotary: `positions` of shape {tuple(pos.shape)} do not match "
            f"`x` of shape {tuple(x.shape)} (expected [T] or [..., T] with "
            f"T={x.shape[-3]})"
        )
    ftype = jnp.promote_types(x.dtype, jnp.float32)
    half = dim // 2
    inv_freq = jnp.asarray(1.0 / base ** (np.arange(half) * 2.0 / dim), ftype)
    angles = pos.astype(ftype)[..., None] * inv_freq.reshape((1,) * pos.ndim + (half,))
    # [*pos_lead, T, half] -> [1.., *pos_lead, T, 1, half] -> x's [..., T, H, half]
    pad = (1,) * (len(lead) - len(pos_lead))
    angles = angles.reshape(pad + angles.shape[:-1] + (1, half))
    angles = jnp.broadcast_to(angles, x.shape[:-1] + (half,))
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x1, x2 = x[..., :half].astype(ftype), x[..., half:].astype(ftype)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


def _check_mask(mask: Any, logits_shape: tuple, owner: str) -> jax.Array | None:
    """``mask`` as a boolean array of the logits' rank, or a clear error."""
    if mask is None:
        return None
    mask = as_array(mask, owner)
    if mask.ndim != len(logits_shape) or any(
        m not in (1, n) for m, n in zip(mask.shape, logits_shape)
    ):
        raise ValueError(
            f"{owner}: mask of shape {tuple(mask.shape)} cannot broadcast to the "
            f"attention logits [*batch, heads, q_len, k_len] of shape "
            f"{tuple(logits_shape)} (same rank required; each axis 1 or equal)"
        )
    return mask.astype(bool)


def _to_4d_mask(mask: jax.Array | None, lead: tuple) -> jax.Array | None:
    """A ``[*lead', h, t, s]`` mask as ``[prod(lead) or 1, h, t, s]``."""
    if mask is None:
        return None
    tail = mask.shape[len(lead) :]
    if all(m == 1 for m in mask.shape[: len(lead)]):
        return mask.reshape((1, *tail))
    mask = jnp.broadcast_to(mask, (*lead, *tail))
    return mask.reshape((math.prod(lead), *tail))


def _attend(
    q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None
) -> jax.Array:
    """``softmax(q k^T / sqrt(K), masked) v`` per head.

    ``q [B, T, H, K]``, ``k [B, S, H, K]``, ``v [B, S, H, V]``, ``mask`` None
    or boolean and broadcastable to ``[B, H, T, S]`` (rank 4); returns
    ``[B, T, H, V]``. Logits and softmax are computed in at least float32, the
    weights cast back to the inputs' dtype. Masked logits become a large
    finite negative number, so a query with nothing to attend to averages all
    values (as in Haiku). Haiku's order of operations: the logits are divided
    by ``sqrt(K)`` (not multiplied by its reciprocal, which differs in the
    last bit for most ``K``), then masked, then the softmax.
    """
    logits_dtype = jnp.promote_types(q.dtype, jnp.float32)
    logits = jnp.einsum("bthk,bshk->bhts", q, k, preferred_element_type=logits_dtype)
    logits = logits / np.sqrt(q.shape[-1]).astype(logits_dtype)
    if mask is not None:
        big_negative = -0.7 * float(jnp.finfo(jnp.float32).max)
        logits = jnp.where(mask, logits, jnp.asarray(big_negative, logits_dtype))
    weights = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    return jnp.einsum("bhts,bshv->bthv", weights, v)


def _concrete_int(x: jax.Array) -> int | None:
    """``int(x)`` if ``x`` is concrete, None while tracing."""
    try:
        return int(x)
    except (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerIntegerConversionError,
    ):
        return None


class KVCache(StateModule):
    """Keys and values of the positions decoded so far, for
    :meth:`MultiHeadAttention.decode`.

    Usually made by :meth:`MultiHeadAttention.init_cache`. All of it is
    non-trainable state; :meth:`MultiHeadAttention.decode` returns an updated
    copy (the cache itself is never modified in place).

    Args:
      batch_size: ``B``.
      max_length: ``L``, the most positions the cache can hold.
      num_heads: ``H``.
      key_size: ``K``, per head.
      value_size: ``V``, per head; default ``key_size``.
      dtype: storage dtype of keys and values (default float32).
      name: optional module name.

    State: ``keys [B, L, H, K]`` and ``values [B, L, H, V]`` (projected, and
    for a rotary attention already rotated, zeros where not yet written) and
    ``length``, an int32 scalar: how many positions are filled, which is also
    the position of the next token.

    >>> import pax
    >>> cache = pax.KVCache(2, 16, num_heads=4, key_size=8)
    >>> cache.keys.shape, int(cache.length)
    ((2, 16, 4, 8), 0)
    """

    def __init__(
        self,
        batch_size: int,
        max_length: int,
        num_heads: int,
        key_size: int,
        value_size: int | None = None,
        *,
        dtype: Any = jnp.float32,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        b = positive_int(batch_size, "batch_size", owner)
        n = positive_int(max_length, "max_length", owner)
        h = positive_int(num_heads, "num_heads", owner)
        k = positive_int(key_size, "key_size", owner)
        v = k if value_size is None else positive_int(value_size, "value_size", owner)
        self.keys = jnp.zeros((b, n, h, k), dtype)
        self.values = jnp.zeros((b, n, h, v), dtype)
        self.length = jnp.zeros((), jnp.int32)

    @property
    def batch_size(self) -> int:
        """``B``."""
        return self.keys.shape[0]

    @property
    def max_length(self) -> int:
        """``L``, the capacity in positions."""
        return self.keys.shape[1]


class MultiHeadAttention(Module):
    """Multi-head attention, with Haiku's math and parameters.

    ``softmax(Q K^T / sqrt(key_size)) V`` per head, where queries, keys and
    values are linear projections of the three inputs, followed by a linear
    projection of the concatenated heads.

    Args:
      num_heads: ``H``, the number of heads.
      key_size: ``K``, size of each head's queries and keys.
      w_init_scale: scale of the default weight initializer
        ``VarianceScaling(w_init_scale, "fan_in", "truncated_normal")``
        (Haiku's); ignored when ``w_init`` is given.
      value_size: ``V``, size of each head's values; default ``key_size``
        (as Haiku and the original PAX).
      model_size: output size; default ``num_heads * key_size``.
      query_size: last-axis size of ``query``; default ``num_heads * key_size``.
      key_input_size: last-axis size of ``key``; default ``num_heads *
        key_size``.
      value_input_size: last-axis size of ``value``; default ``num_heads *
        key_size``.
      w_init: initializer of the four projection weights, called
        ``w_init(rng_key, shape, dtype)``. Biases start at zero.
      with_bias: whether the projections have biases (default True).
      rotary: apply rotary position embeddings (:func:`apply_rotary`) to each
        head's queries and keys (default False); needs an even ``key_size``.
        Queries get positions ``0 .. T-1`` and keys ``0 .. S-1`` (in
        :meth:`decode`, the absolute positions in the cache).
      rotary_base: the rotary wavelength base (default 10000).
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Submodules (``pax.Linear``), with the Haiku parameter each one holds:

    ======================  ====================  =========================
    attribute               Haiku module          weight shape
    ======================  ====================  =========================
    ``query_projection``    ``query``             ``[query_size, H*K]``
    ``key_projection``      ``key``               ``[key_input_size, H*K]``
    ``value_projection``    ``value``             ``[value_input_size, H*V]``
    ``output_projection``   ``linear``            ``[H*V, model_size]``
    ======================  ====================  =========================

    (``weight``/``bias`` are Haiku's ``w``/``b``; head ``h`` owns columns
    ``h*K .. (h+1)*K - 1`` of a projection.)

    Numerics: Haiku's order of operations (logits divided by
    ``sqrt(key_size)``, masked, softmax), so float32 results match Haiku's;
    logits and softmax are computed in at least float32 (Haiku computes them
    in the input dtype, so bfloat16 results differ slightly and are more
    accurate here). Integer inputs give float32 output. A query whose mask
    row is all False averages all values uniformly, as in Haiku. Both
    :meth:`__call__` and :meth:`decode` are stateless: no ``pax.purecall`` is
    needed.

    >>> import jax, jax.numpy as jnp, pax
    >>> mha = pax.MultiHeadAttention(2, 4, rng_key=jax.random.PRNGKey(0))
    >>> x = jnp.ones((3, 5, 8))                      # [B, T, H*K]
    >>> mha(x, x, x, mask=pax.nn.causal_mask(5)).shape
    (3, 5, 8)
    """

    def __init__(
        self,
        num_heads: int,
        key_size: int,
        w_init_scale: float = 1.0,
        *,
        value_size: int | None = None,
        model_size: int | None = None,
        query_size: int | None = None,
        key_input_size: int | None = None,
        value_input_size: int | None = None,
        w_init: Initializer | None = None,
        with_bias: bool = True,
        rotary: bool = False,
        rotary_base: float = 10000.0,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__

        def size(value, arg, default):
            return default if value is None else positive_int(value, arg, owner)

        self.num_heads = positive_int(num_heads, "num_heads", owner)
        self.key_size = positive_int(key_size, "key_size", owner)
        width = self.num_heads * self.key_size
        self.value_size = size(value_size, "value_size", self.key_size)
        self.model_size = size(model_size, "model_size", width)
        self.query_size = size(query_size, "query_size", width)
        self.key_input_size = size(key_input_size, "key_input_size", width)
        self.value_input_size = size(value_input_size, "value_input_size", width)
        if w_init is None:
            if not w_init_scale > 0:
                raise ValueError(
                    f"{owner}: `w_init_scale` must be > 0, got {w_init_scale}"
                )
            w_init = VarianceScaling(w_init_scale, "fan_in", "truncated_normal")
        self.w_init_scale = w_init_scale
        self.with_bias = bool(with_bias)
        self.rotary = bool(rotary)
        if self.rotary and self.key_size % 2:
            raise ValueError(
                f"{owner}: `rotary=True` needs an even `key_size`, got {key_size}"
            )
        if not rotary_base > 0:
            raise ValueError(f"{owner}: `rotary_base` must be > 0, got {rotary_base}")
        self.rotary_base = float(rotary_base)

        keys = jax.random.split(rng_key_or_next(rng_key), 4)
        h, v = self.num_heads, self.value_size

        def linear(i, in_dim, out_dim, haiku_name):
            return Linear(
                in_dim,
                out_dim,
                self.with_bias,
                w_init,
                rng_key=keys[i],
                name=haiku_name,
            )

        self.query_projection = linear(0, self.query_size, width, "query")
        self.key_projection = linear(1, self.key_input_size, width, "key")
        self.value_projection = linear(2, self.value_input_size, h * v, "value")
        self.output_projection = linear(3, h * v, self.model_size, "linear")

    # -- helpers -------------------------------------------------------------
    def _check_inputs(self, query, key, value, rank: int | None) -> None:
        owner = who(self)
        for arg, x, size in (
            ("query", query, self.query_size),
            ("key", key, self.key_input_size),
            ("value", value, self.value_input_size),
        ):
            if x.ndim < 2 or (rank is not None and x.ndim != rank):
                shape = (
                    "[batch, length, features]" if rank else "[..., length, features]"
                )
                raise ValueError(
                    f"{owner}: expected `{arg}` of shape {shape}, got shape "
                    f"{tuple(x.shape)}"
                )
            if x.shape[-1] != size:
                raise ValueError(
                    f"{owner}: expected `{arg}` with last dimension {size}, got shape "
                    f"{tuple(x.shape)}"
                )
        if (
            key.ndim != query.ndim
            or value.ndim != query.ndim
            or key.shape[:-2] != query.shape[:-2]
            or value.shape[:-1] != key.shape[:-1]
        ):
            raise ValueError(
                f"{owner}: `query` [..., T, Dq], `key` [..., S, Dk] and `value` "
                f"[..., S, Dv] must share their leading (batch) axes, and `key` and "
                f"`value` their length S; got shapes {tuple(query.shape)}, "
                f"{tuple(key.shape)}, {tuple(value.shape)}"
            )

    def _project(self, query, key, value):
        """Per-head ``[..., T, H, K]``, ``[..., S, H, K]``, ``[..., S, H, V]``,
        in one common dtype."""
        h = self.num_heads
        q = self.query_projection(query)
        k = self.key_projection(key)
        v = self.value_projection(value)
        dtype = jnp.result_type(q, k, v)
        q = q.reshape((*q.shape[:-1], h, self.key_size)).astype(dtype)
        k = k.reshape((*k.shape[:-1], h, self.key_size)).astype(dtype)
        v = v.reshape((*v.shape[:-1], h, self.value_size)).astype(dtype)
        return q, k, v

    # -- full sequences --------------------------------------------------------
    def __call__(
        self,
        query: jax.Array,
        key: jax.Array,
        value: jax.Array,
        mask: jax.Array | None = None,
    ) -> jax.Array:
        """Attend from ``query`` to ``key``/``value``.

        Args:
          query: ``[..., T, query_size]``.
          key: ``[..., S, key_input_size]``, the same leading axes as ``query``.
          value: ``[..., S, value_input_size]``.
          mask: optional boolean, True where a query may attend to a key; rank
            ``query.ndim + 1``, broadcastable to ``[..., H, T, S]`` (each axis 1
            or equal), e.g. :func:`causal_mask`, :func:`padding_mask` or
            :func:`combine_masks` of both. ``None`` attends everywhere.

        Returns:
          ``[..., T, model_size]`` in the inputs' floating dtype.

        The logits and softmax are computed in at least float32, in Haiku's
        order of operations (logits divided by ``sqrt(key_size)``, masked,
        softmax). Integer inputs give float32 output (the projections compute
        in float32).
        """
        owner = who(self)
        query, key, value = (as_array(x, owner) for x in (query, key, value))
        self._check_inputs(query, key, value, rank=None)
        *lead, t, _ = query.shape
        s = key.shape[-2]
        h = self.num_heads
        mask = _check_mask(mask, (*lead, h, t, s), owner)
        with jax.named_scope("pax.nn.MultiHeadAttention"):
            q, k, v = self._project(query, key, value)
            n = math.prod(lead)
            q = q.reshape((n, t, h, self.key_size))
            k = k.reshape((n, s, h, self.key_size))
            v = v.reshape((n, s, h, self.value_size))
            if self.rotary:
                q = apply_rotary(q, jnp.arange(t), base=self.rotary_base)
                k = apply_rotary(k, jnp.arange(s), base=self.rotary_base)
            out = _attend(q, k, v, _to_4d_mask(mask, tuple(lead)))
            out = out.reshape((*lead, t, h * self.value_size))
            return self.output_projection(out)

    # -- incremental decoding ------------------------------------------------
    def init_cache(
        self, batch_size: int, max_length: int, dtype: Any = jnp.float32
    ) -> KVCache:
        """An empty :class:`KVCache` for :meth:`decode`.

        Args:
          batch_size: ``B``.
          max_length: ``L``, the most positions that will be decoded.
          dtype: storage dtype of the cached keys and values.

        Returns:
          A cache with ``keys [B, L, H, K]``, ``values [B, L, H, V]`` and
          ``length == 0``.
        """
        return KVCache(
            batch_size,
            max_length,
            self.num_heads,
            self.key_size,
            self.value_size,
            dtype=dtype,
        )

    def decode(
        self,
        cache: KVCache,
        query: jax.Array,
        key: jax.Array,
        value: jax.Array,
        mask: jax.Array | None = None,
    ) -> tuple[KVCache, jax.Array]:
        """Causal self-attention over the cache plus ``t`` new positions.

        A pure function: it returns the updated cache and changes neither the
        module nor ``cache`` (no ``pax.purecall`` needed; ``jax.jit`` and
        ``jax.lax.scan`` with the cache in the carry just work). The new tokens
        take positions ``cache.length .. cache.length + t - 1``; their keys and
        values are written there, and the query at position ``p`` attends to
        every cached position ``<= p``. Feeding a sequence one step (or one
        chunk) at a time therefore gives the outputs of ``self(x, x, x,
        mask=causal_mask(T))``.

        Args:
          cache: a :class:`KVCache` from :meth:`init_cache`.
          query: ``[B, t, query_size]``, the new tokens (``t >= 1``).
          key: ``[B, t, key_input_size]`` (for self-attention, the same tokens).
          value: ``[B, t, value_input_size]``.
          mask: optional boolean, broadcastable to ``[B, H, t, L]`` (rank 4),
            ANDed with the causal rule, e.g. ``padding_mask(valid)`` for a
            ``[B, L]`` ``valid`` marking padded positions of the cache.

        Returns:
          ``(new_cache, out)``: the cache with ``length`` advanced by ``t`` and
          ``out [B, t, model_size]``.

        Writing past ``L`` positions raises ``ValueError`` when ``cache.length``
        is concrete; under ``jax.jit`` it cannot be checked, and the write would
        be clamped to the end of the cache, so size ``max_length`` generously.

        >>> import jax, jax.numpy as jnp, pax
        >>> mha = pax.MultiHeadAttention(2, 4, rng_key=jax.random.PRNGKey(0))
        >>> cache = mha.init_cache(batch_size=1, max_length=8)
        >>> x = jnp.ones((1, 1, 8))
        >>> cache, y = mha.decode(cache, x, x, x)
        >>> int(cache.length), y.shape
        (1, (1, 1, 8))
        """
        owner = who(self)
        if not isinstance(cache, KVCache):
            raise TypeError(f"{owner}: `cache` must be a KVCache, got {type(cache)}")
        h, ks, vs = self.num_heads, self.key_size, self.value_size
        if cache.keys.shape[2:] != (h, ks) or cache.values.shape[2:] != (h, vs):
            raise ValueError(
                f"{owner}: cache of keys {tuple(cache.keys.shape)} and values "
                f"{tuple(cache.values.shape)} does not fit this module (expected "
                f"[B, L, {h}, {ks}] and [B, L, {h}, {vs}]); use `init_cache`"
            )
        query, key, value = (as_array(x, owner) for x in (query, key, value))
        self._check_inputs(query, key, value, rank=3)
        b, t = query.shape[:2]
        if key.shape[:2] != (b, t) or b != cache.batch_size:
            raise ValueError(
                f"{owner}: decode expects `query`, `key` and `value` of the same "
                f"batch size as the cache ({cache.batch_size}) and the same number "
                f"of new positions; got shapes {tuple(query.shape)}, "
                f"{tuple(key.shape)}, {tuple(value.shape)}"
            )
        size = cache.max_length
        filled = _concrete_int(cache.length)
        if t > size or (filled is not None and filled + t > size):
            raise ValueError(
                f"{owner}: the cache holds {filled} of {size} positions; cannot "
                f"add {t} more"
            )
        mask = _check_mask(mask, (b, h, t, size), owner)
        with jax.named_scope("pax.nn.MultiHeadAttention.decode"):
            q, k, v = self._project(query, key, value)
            start = cache.length
            positions = start + jnp.arange(t, dtype=start.dtype)
            if self.rotary:
                q = apply_rotary(q, positions, base=self.rotary_base)
                k = apply_rotary(k, positions, base=self.rotary_base)
            zero = jnp.zeros((), start.dtype)
            index = (zero, start, zero, zero)
            keys = jax.lax.dynamic_update_slice(
                cache.keys, k.astype(cache.keys.dtype), index
            )
            values = jax.lax.dynamic_update_slice(
                cache.values, v.astype(cache.values.dtype), index
            )
            visible = jnp.arange(size)[None, :] <= positions[:, None]  # [t, L]
            visible = visible.reshape((1, 1, t, size))
            if mask is not None:
                visible = jnp.logical_and(visible, mask)
            out = _attend(q, keys.astype(q.dtype), values.astype(q.dtype), visible)
            out = self.output_projection(out.reshape((b, t, h * vs)))
        cache = cache.replace(keys=keys, values=values, length=start + t)
        return cache, out

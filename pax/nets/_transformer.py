"""Decoder-only transformer: ``TransformerBlock``, ``Transformer`` and the
language model ``TransformerLM``.

The architecture is the one of Haiku's transformer example: pre-LayerNorm
blocks (attention, then a dense block widening by 4 with gelu), dropout on
each residual branch, a causal mask, and a final LayerNorm. The blocks are
stored and applied with :class:`pax.nn.LayerStack` (one ``lax.scan`` over the
layers); cached incremental decoding scans the same stacked blocks with a
stacked :class:`pax.nn.KVCache`.

Shapes: ``B`` batch, ``T`` sequence length, ``D`` model size, ``N`` layers,
``L`` cache capacity, ``H`` heads, ``K`` key size per head, ``V`` vocabulary.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import MutationError
from .._core.module import Module
from ..initializers import Initializer, TruncatedNormal, VarianceScaling
from ..nn._attention import (
    KVCache,
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    padding_mask,
)
from ..nn._dropout import Dropout
from ..nn._embed import Embed
from ..nn._layer_norm import LayerNorm
from ..nn._layer_stack import LayerStack
from ..nn._linear import Bias, Linear, _linear
from ..nn._utils import as_array, positive_int, rng_key_or_next, who

_POSITIONAL = ("learned", "rotary")


def _key_size(model_size: int, num_heads: int, key_size: Any, owner: str) -> int:
    if key_size is not None:
        return positive_int(key_size, "key_size", owner)
    if model_size % num_heads:
        raise ValueError(
            f"{owner}: `num_heads` (={num_heads}) must divide `model_size` "
            f"(={model_size}) when `key_size` is not given"
        )
    return model_size // num_heads


def _check_sequence(x: jax.Array, model_size: int, owner: str) -> None:
    if x.ndim != 3 or x.shape[-1] != model_size:
        raise ValueError(
            f"{owner}: expected an input of shape [batch, length, {model_size}], "
            f"got shape {tuple(x.shape)}"
        )


def _padding(mask: Any, shape: tuple, owner: str, what: str) -> jax.Array | None:
    """A ``[B, S]`` validity mask as ``[B, 1, 1, S]``, or a clear error."""
    if mask is None:
        return None
    mask = as_array(mask, owner)
    if mask.shape != shape:
        raise ValueError(
            f"{owner}: `mask` must be a [batch, {what}] boolean array of shape "
            f"{shape} (True = a real token), got shape {tuple(mask.shape)}"
        )
    return padding_mask(mask)


class TransformerBlock(Module):
    """One pre-LayerNorm decoder block (Haiku's transformer example)::

        x = x + dropout(attention(norm_1(x)))            # self-attention
        x = x + dropout(dense_2(gelu(dense_1(norm_2(x)))))  # dense, D -> w*D -> D

    Args:
      model_size: ``D``, the size of the input's last axis (and the output's).
      num_heads: ``H``.
      key_size: ``K``, per head; default ``model_size // num_heads``.
      widening_factor: the hidden size of the dense block is
        ``widening_factor * model_size`` (default 4).
      dropout_rate: dropout on the output of both branches, in training mode.
      w_init: initializer of every projection weight (attention and dense).
        Default ``VarianceScaling(2.0)`` (fan-in, truncated normal): Haiku's
        ``VarianceScaling(2 / num_layers)`` for one layer. :class:`Transformer`
        passes its own ``num_layers``.
      rotary: rotary position embeddings on queries and keys
        (:func:`pax.nn.apply_rotary`; needs an even ``key_size``).
      rng_key: key for the initializers and the dropout keys; ``None`` draws
        ``pax.next_rng_key()``.
      name: optional module name.

    Submodules: ``norm_1``, ``attention`` (:class:`pax.nn.MultiHeadAttention`),
    ``dropout_1``, ``norm_2``, ``dense_1``, ``dense_2``, ``dropout_2``. The two
    :class:`pax.nn.Dropout` carry rng keys as state: in training mode with
    ``dropout_rate > 0`` call the block through ``pax.purecall``.

    >>> import jax, jax.numpy as jnp, pax
    >>> block = pax.nets.TransformerBlock(8, 2, rng_key=jax.random.PRNGKey(0))
    >>> block(jnp.ones((2, 5, 8)), mask=pax.nn.causal_mask(5)).shape
    (2, 5, 8)
    """

    def __init__(
        self,
        model_size: int,
        num_heads: int,
        key_size: int | None = None,
        widening_factor: int = 4,
        dropout_rate: float = 0.0,
        *,
        w_init: Initializer | None = None,
        rotary: bool = False,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.model_size = positive_int(model_size, "model_size", owner)
        self.num_heads = positive_int(num_heads, "num_heads", owner)
        self.key_size = _key_size(self.model_size, self.num_heads, key_size, owner)
        self.widening_factor = positive_int(widening_factor, "widening_factor", owner)
        w_init = VarianceScaling(2.0) if w_init is None else w_init
        keys = jax.random.split(rng_key_or_next(rng_key), 5)
        d, hidden = self.model_size, self.widening_factor * self.model_size
        self.norm_1 = LayerNorm(d)
        self.attention = MultiHeadAttention(
            self.num_heads,
            self.key_size,
            model_size=d,
            query_size=d,
            key_input_size=d,
            value_input_size=d,
            w_init=w_init,
            rotary=rotary,
            rng_key=keys[0],
        )
        self.dropout_1 = Dropout(dropout_rate, rng_key=keys[1])
        self.norm_2 = LayerNorm(d)
        self.dense_1 = Linear(d, hidden, w_init=w_init, rng_key=keys[2])
        self.dense_2 = Linear(hidden, d, w_init=w_init, rng_key=keys[3])
        self.dropout_2 = Dropout(dropout_rate, rng_key=keys[4])

    @property
    def dropout_rate(self) -> float:
        return self.dropout_1.dropout_rate

    def _dense(self, x: jax.Array) -> jax.Array:
        return self.dense_2(jax.nn.gelu(self.dense_1(self.norm_2(x))))

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``[B, T, D] -> [B, T, D]``.

        ``mask``: optional boolean, broadcastable to ``[B, H, T, T]`` (rank 4),
        True where a query may attend to a key; ``None`` attends everywhere
        (the block adds no causal mask itself: :class:`Transformer` does).
        """
        owner = who(self)
        x = as_array(x, owner)
        _check_sequence(x, self.model_size, owner)
        with jax.named_scope("pax.nets.TransformerBlock"):
            h = self.norm_1(x)
            x = x + self.dropout_1(self.attention(h, h, h, mask=mask))
            return x + self.dropout_2(self._dense(x))

    def decode(
        self, cache: KVCache, x: jax.Array, mask: jax.Array | None = None
    ) -> tuple[KVCache, jax.Array]:
        """The block on ``t`` new positions after those in ``cache``:
        ``[B, t, D] -> (cache, [B, t, D])``, causal, no dropout (inference).

        ``mask``: optional, broadcastable to ``[B, H, t, L]``, ANDed with the
        causal rule (see :meth:`pax.nn.MultiHeadAttention.decode`).
        """
        owner = who(self)
        x = as_array(x, owner)
        _check_sequence(x, self.model_size, owner)
        with jax.named_scope("pax.nets.TransformerBlock.decode"):
            h = self.norm_1(x)
            cache, a = self.attention.decode(cache, h, h, h, mask=mask)
            x = x + a
            return cache, x + self._dense(x)


class Transformer(Module):
    """A decoder-only, pre-LayerNorm transformer: the model of Haiku's
    transformer example, with its blocks in a :class:`pax.nn.LayerStack`.

    ``num_layers`` :class:`TransformerBlock` s applied with one ``lax.scan``
    under a causal mask (position ``t`` sees positions ``<= t``), then a final
    LayerNorm. Weights start from Haiku's ``VarianceScaling(2 / num_layers)``.

    Args:
      model_size: ``D``, the size of the input's last axis (and the output's).
      num_heads: ``H``, attention heads per block.
      num_layers: ``N``, the number of blocks.
      key_size: ``K``, per head; default ``model_size // num_heads``.
      widening_factor: the dense block's hidden size is ``widening_factor *
        model_size`` (default 4).
      dropout_rate: dropout on each block's attention and dense outputs, in
        training mode only.
      w_init: initializer of every projection weight; default
        ``VarianceScaling(2 / num_layers)`` (fan-in, truncated normal), as
        Haiku's example.
      remat: rematerialise each block's activations in the backward pass
        (``LayerStack(remat=True)``): less memory, more compute.
      rotary: rotary position embeddings on every block's queries and keys
        (needs an even ``key_size``); otherwise the model has no positional
        information of its own (add it to the input, as :class:`TransformerLM`
        does by default).
      rng_key: key for the initializers and the dropout keys; ``None`` draws
        ``pax.next_rng_key()``.
      name: optional module name.

    Submodules: ``blocks`` (a :class:`pax.nn.LayerStack`; ``blocks[i]`` is
    block ``i``, every leaf of ``blocks.layers`` has a leading ``[N]`` axis)
    and ``final_norm``.

    Modes and state: in training mode with ``dropout_rate > 0`` each block's
    Dropout advances its rng key (the keys come out of the scan), so the call
    is ``model, y = pax.purecall(model, x)``. In eval mode (``model.eval()``),
    or with ``dropout_rate == 0``, the call is deterministic and plain:
    ``y = model(x)``. :meth:`decode` never applies dropout.

    >>> import jax, jax.numpy as jnp, pax
    >>> net = pax.nets.Transformer(8, 2, 2, rng_key=jax.random.PRNGKey(0))
    >>> x = jnp.ones((2, 5, 8))
    >>> y = net(x)
    >>> cache = net.init_cache(batch_size=2, max_length=5)
    >>> cache, y0 = net.decode(cache, x[:, :1])          # position 0
    >>> y.shape, bool(jnp.allclose(y0, y[:, :1], atol=1e-5))
    ((2, 5, 8), True)
    """

    def __init__(
        self,
        model_size: int,
        num_heads: int,
        num_layers: int,
        key_size: int | None = None,
        widening_factor: int = 4,
        dropout_rate: float = 0.0,
        *,
        w_init: Initializer | None = None,
        remat: bool = False,
        rotary: bool = False,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.model_size = positive_int(model_size, "model_size", owner)
        self.num_heads = positive_int(num_heads, "num_heads", owner)
        self.num_layers = positive_int(num_layers, "num_layers", owner)
        self.key_size = _key_size(self.model_size, self.num_heads, key_size, owner)
        self.widening_factor = positive_int(widening_factor, "widening_factor", owner)
        self.rotary = bool(rotary)
        if w_init is None:
            w_init = VarianceScaling(2.0 / self.num_layers)
        config = dict(
            model_size=self.model_size,
            num_heads=self.num_heads,
            key_size=self.key_size,
            widening_factor=self.widening_factor,
            dropout_rate=dropout_rate,
            w_init=w_init,
            rotary=self.rotary,
        )

        def make_block(key):
            return TransformerBlock(**config, rng_key=key)

        self.blocks = LayerStack(
            make_block, self.num_layers, remat=remat, rng_key=rng_key_or_next(rng_key)
        )
        self.final_norm = LayerNorm(self.model_size)

    @property
    def dropout_rate(self) -> float:
        return self.blocks.layers.dropout_rate

    def __call__(self, x: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``[B, T, D] -> [B, T, D]``, causal.

        Args:
          x: ``[B, T, model_size]`` input embeddings.
          mask: optional ``[B, T]`` boolean, False at padding positions: no
            position attends to them (their own outputs are computed anyway;
            ignore them). Combined with the causal mask.

        Returns:
          ``[B, T, model_size]``, the final LayerNorm's output, in ``x``'s
          floating dtype.
        """
        owner = who(self)
        x = as_array(x, owner)
        _check_sequence(x, self.model_size, owner)
        b, t, _ = x.shape
        pad = _padding(mask, (b, t), owner, "length")
        with jax.named_scope("pax.nets.Transformer"):
            full_mask = combine_masks(causal_mask(t), pad)
            try:
                h = self.blocks(x, mask=full_mask)
            except MutationError:
                raise MutationError(
                    f"{owner}: in training mode with dropout_rate="
                    f"{self.dropout_rate} the blocks' Dropout keys advance on every "
                    "call, so call a copy: `model, y = pax.purecall(model, x)` (or "
                    "inside `pax.pure`); `model.eval()` gives a plain, "
                    "deterministic call."
                ) from None
            return self.final_norm(h)

    # -- incremental decoding ------------------------------------------------
    def init_cache(
        self, batch_size: int, max_length: int, dtype: Any = jnp.float32
    ) -> KVCache:
        """An empty cache for :meth:`decode`: one :class:`pax.nn.KVCache` per
        block, stacked.

        Args:
          batch_size: ``B``.
          max_length: ``L``, the most positions that will be decoded.
          dtype: storage dtype of the cached keys and values.

        Returns:
          A ``KVCache`` whose leaves have a leading ``[num_layers]`` axis:
          ``keys [N, B, L, H, K]``, ``values [N, B, L, H, K]``, ``length [N]``
          (all equal: the number of positions decoded so far). Layer ``i``'s
          cache is ``jax.tree_util.tree_map(lambda a: a[i], cache)``.
        """
        one = self.blocks.layers.attention.init_cache(batch_size, max_length, dtype)
        n = self.num_layers
        return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), one)

    def decode(
        self, cache: KVCache, x: jax.Array, mask: jax.Array | None = None
    ) -> tuple[KVCache, jax.Array]:
        """Run ``t`` new positions (one token or a chunk) after those in the
        cache: ``[B, t, D] -> (new_cache, [B, t, D])``.

        A pure function (the module and ``cache`` are unchanged; the updated
        cache is returned), fit for ``jax.jit`` and for ``jax.lax.scan`` with
        the cache in the carry. The new positions are ``cache.length[0] ..
        cache.length[0] + t - 1``; feeding a sequence chunk by chunk gives the
        outputs of ``self.eval()(x)`` at every position. No dropout.

        Args:
          cache: from :meth:`init_cache` (or a previous :meth:`decode`).
          x: ``[B, t, model_size]``, the new positions' inputs.
          mask: optional ``[B, L]`` boolean over the cache's positions, False at
            padding: no position attends to those.

        Returns:
          ``(new_cache, y)`` with ``y [B, t, model_size]``.
        """
        owner = who(self)
        if not isinstance(cache, KVCache) or cache.length.shape != (self.num_layers,):
            raise ValueError(
                f"{owner}: `cache` must be the stacked KVCache of `init_cache` "
                f"(length of shape ({self.num_layers},)), got {cache!r}"
            )
        x = as_array(x, owner)
        _check_sequence(x, self.model_size, owner)
        pad = _padding(mask, cache.keys.shape[1:3], owner, "max_length")

        def body(h, block_and_cache):
            block, layer_cache = block_and_cache
            layer_cache, h = block.decode(layer_cache, h, mask=pad)
            return h, layer_cache

        with jax.named_scope("pax.nets.Transformer.decode"):
            h, cache = jax.lax.scan(body, x, (self.blocks.layers, cache))
            return cache, self.final_norm(h)


class TransformerLM(Module):
    """A language model around :class:`Transformer`, as Haiku's example:
    token embedding + positional information -> Transformer -> linear logits.

    Args:
      vocab_size: ``V``; tokens are ints in ``[0, V)``.
      model_size: ``D``.
      num_heads: attention heads per block.
      num_layers: number of blocks.
      max_length: the longest sequence (and cache) the model takes.
      key_size: per head; default ``model_size // num_heads``.
      widening_factor: dense hidden size is ``widening_factor * model_size``.
      dropout_rate: dropout inside the blocks (training mode).
      positional: ``"learned"`` (default, Haiku's example): a trainable
        ``[max_length, D]`` table added to the token embeddings; or
        ``"rotary"``: no table, rotary embeddings on every block's queries and
        keys (relative positions; needs an even ``key_size``).
      remat: rematerialise each block in the backward pass.
      tie_embeddings: ``False`` (default): the readout is its own
        ``Linear(D, V)``. ``True``: the readout reuses the token embedding's
        ``[V, D]`` matrix, ``logits = h @ embed.weight.T + output.bias``
        (``h`` the ``[B, T, D]`` final-norm output): ``embed.weight`` is one
        leaf, trained by both uses (their gradients add up), updated once by
        an optimizer and saved once; the model has ``V * D`` fewer parameters.
        The ``[V]`` output bias is kept (initialized to zeros, as the untied
        ``Linear``'s), so the tie removes exactly the ``[D, V]`` matrix and
        nothing else. The general mechanism for other trees is
        :class:`pax.Shared`.
      rng_key: key for every initializer; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Submodules: ``embed`` (``Embed(V, D)``, ``TruncatedNormal(0.02)``),
    ``position_embed`` (``Embed(max_length, D)``, ``TruncatedNormal(0.02)``; None
    for rotary), ``transformer``, ``output``: ``Linear(D, V)`` untied, or with
    ``tie_embeddings=True`` a ``Bias(V)`` holding only the readout bias
    (parameter paths ``.embed.weight`` ... ``.output.bias``; no
    ``.output.weight``). Same modes and state as :class:`Transformer`: training
    with dropout needs ``pax.purecall``.

    >>> import jax, jax.numpy as jnp, pax
    >>> lm = pax.nets.TransformerLM(16, 8, 2, 2, max_length=6,
    ...                             rng_key=jax.random.PRNGKey(0))
    >>> tokens = jnp.array([[1, 2, 3, 4]])
    >>> logits = lm(tokens)
    >>> logits.shape
    (1, 4, 16)
    >>> cache = lm.init_cache(batch_size=1)
    >>> cache, _ = lm.decode(cache, tokens[:, :3])        # prefill a prompt
    >>> cache, last = lm.decode(cache, tokens[:, 3:])     # one more token
    >>> bool(jnp.allclose(last[:, 0], logits[:, 3], atol=1e-5))
    True

    Tied input and output embeddings (``V * D = 128`` fewer parameters):

    >>> tied = pax.nets.TransformerLM(16, 8, 2, 2, max_length=6,
    ...                               tie_embeddings=True,
    ...                               rng_key=jax.random.PRNGKey(0))
    >>> count = lambda m: sum(x.size for x in jax.tree_util.tree_leaves(
    ...     m.parameters()))
    >>> count(lm) - count(tied), tied.output     # the readout keeps its bias
    (128, Bias(output_size=16))
    """

    def __init__(
        self,
        vocab_size: int,
        model_size: int,
        num_heads: int,
        num_layers: int,
        max_length: int,
        key_size: int | None = None,
        widening_factor: int = 4,
        dropout_rate: float = 0.0,
        *,
        positional: str = "learned",
        remat: bool = False,
        tie_embeddings: bool = False,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if not isinstance(tie_embeddings, (bool, np.bool_)):
            raise TypeError(
                f"{owner}: `tie_embeddings` must be a bool, got "
                f"{type(tie_embeddings).__name__}"
            )
        self.vocab_size = positive_int(vocab_size, "vocab_size", owner)
        self.model_size = positive_int(model_size, "model_size", owner)
        self.max_length = positive_int(max_length, "max_length", owner)
        if positional not in _POSITIONAL:
            raise ValueError(
                f"{owner}: `positional` must be one of {_POSITIONAL}, "
                f"got {positional!r}"
            )
        self.positional = positional
        keys = jax.random.split(rng_key_or_next(rng_key), 4)
        embed_init = TruncatedNormal(stddev=0.02)
        self.embed = Embed(vocab_size, model_size, embed_init, rng_key=keys[0])
        self.position_embed = (
            Embed(max_length, model_size, embed_init, rng_key=keys[1])
            if positional == "learned"
            else None
        )
        self.transformer = Transformer(
            model_size,
            num_heads,
            num_layers,
            key_size,
            widening_factor,
            dropout_rate,
            remat=remat,
            rotary=positional == "rotary",
            rng_key=keys[2],
        )
        if tie_embeddings:
            # the readout reads `embed.weight` at call time: no second copy
            self.output = Bias(vocab_size, rng_key=keys[3])
        else:
            # untied: the same attributes, names and treedef as before the option
            self.output = Linear(model_size, vocab_size, rng_key=keys[3])

    @property
    def tie_embeddings(self) -> bool:
        """Whether the readout reuses ``embed.weight`` (see the class doc)."""
        return isinstance(self.output, Bias)

    def _readout(self, h: jax.Array) -> jax.Array:
        """``[B, T, D] -> [B, T, V]`` logits."""
        if isinstance(self.output, Bias):
            # Linear's math with the embedding matrix transposed: the same
            # casts (computes in h's dtype) and bias add as the untied readout
            return _linear(h, self.embed.weight.T, self.output.bias, None)
        return self.output(h)

    def _check_tokens(self, tokens: Any) -> jax.Array:
        owner = who(self)
        tokens = as_array(tokens, owner)
        if tokens.ndim != 2:
            raise ValueError(
                f"{owner}: expected integer tokens of shape [batch, length], got "
                f"shape {tuple(tokens.shape)}"
            )
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise TypeError(f"{owner}: expected integer tokens, got {tokens.dtype}")
        return tokens

    def _embed(self, tokens: jax.Array, start: Any) -> jax.Array:
        x = self.embed(tokens)
        if self.position_embed is not None:
            positions = start + jnp.arange(tokens.shape[1])
            x = x + self.position_embed(positions)[None]
        return x

    def __call__(self, tokens: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``[B, T]`` integer tokens -> ``[B, T, vocab_size]`` next-token logits.

        Position ``t``'s logits depend on tokens ``0 .. t`` only. ``mask``:
        optional ``[B, T]`` boolean, False at padding (see
        :meth:`Transformer.__call__`). ``T <= max_length``.
        """
        tokens = self._check_tokens(tokens)
        if tokens.shape[1] > self.max_length:
            raise ValueError(
                f"{who(self)}: sequences of length {tokens.shape[1]} exceed "
                f"max_length={self.max_length}"
            )
        with jax.named_scope("pax.nets.TransformerLM"):
            h = self.transformer(self._embed(tokens, 0), mask)
            return self._readout(h)

    def init_cache(
        self, batch_size: int, max_length: int | None = None, dtype: Any = jnp.float32
    ) -> KVCache:
        """An empty cache for :meth:`decode` (see
        :meth:`Transformer.init_cache`); ``max_length`` defaults to (and may not
        exceed) the model's."""
        length = self.max_length if max_length is None else max_length
        length = positive_int(length, "max_length", who(self))
        if length > self.max_length:
            raise ValueError(
                f"{who(self)}: a cache of max_length={length} exceeds the model's "
                f"max_length={self.max_length}"
            )
        return self.transformer.init_cache(batch_size, length, dtype)

    def decode(
        self, cache: KVCache, tokens: jax.Array, mask: jax.Array | None = None
    ) -> tuple[KVCache, jax.Array]:
        """Logits for ``t`` new tokens after those in the cache:
        ``[B, t]`` ints -> ``(new_cache, [B, t, vocab_size])``.

        Pure and jit-able (see :meth:`Transformer.decode`): prefill a prompt
        with one call, then feed one sampled token at a time; the logits equal
        those of ``self.eval()(all_tokens)`` at the same positions. No dropout.
        ``mask``: optional ``[B, L]`` boolean over the cache's positions.
        """
        tokens = self._check_tokens(tokens)
        with jax.named_scope("pax.nets.TransformerLM.decode"):
            x = self._embed(tokens, cache.length[0])
            cache, h = self.transformer.decode(cache, x, mask)
            return cache, self._readout(h)

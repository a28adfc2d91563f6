"""Rule sets that ship with the library: FSDP and Megatron tensor parallelism."""

from __future__ import annotations

import re
from typing import Any

import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

from ._specs import leaf_dtype, leaf_shape

__all__ = ["fsdp_rules", "transformer_rules"]


class _FSDP:
    """Shard a floating leaf along its largest dimension the axis divides."""

    def __init__(self, axis: str, min_size: int):
        self.axis = axis
        self.min_size = min_size

    def __repr__(self) -> str:
        return f"fsdp_rules(axis={self.axis!r}, min_size={self.min_size})"

    def __call__(self, path: str, leaf: Any, mesh: Mesh | None) -> PartitionSpec:
        if mesh is None:
            raise ValueError(
                f"pax.sharding: {self!r} needs the mesh to choose a dimension "
                f"(leaf `{path}`): pass `mesh=` to partition_specs"
            )
        if self.axis not in mesh.shape:
            raise ValueError(
                f"pax.sharding: {self!r}: {self.axis!r} is not an axis of the mesh "
                f"(axes {tuple(mesh.axis_names)})"
            )
        shape = leaf_shape(leaf)
        size = 1
        for d in shape:
            size *= d
        if not jnp.issubdtype(leaf_dtype(leaf), jnp.inexact) or size < self.min_size:
            return PartitionSpec()
        n = mesh.shape[self.axis]
        best = None
        for dim, d in enumerate(shape):  # ties go to the later dimension
            if d % n == 0 and (best is None or d >= shape[best]):
                best = dim
        if best is None:
            return PartitionSpec()
        return PartitionSpec(*([None] * best), self.axis)


def fsdp_rules(axis: str = "data", min_size: int = 2**10) -> list[Any]:
    """Fully sharded data parallelism (ZeRO-3): every parameter split over ``axis``.

    Each floating-point leaf of at least ``min_size`` elements is sharded
    along its largest dimension that the mesh axis' size divides (ties: the
    later dimension); smaller leaves, leaves with no such dimension and
    non-float leaves are replicated. The same rule applied to optimizer state
    shards Adam's moments exactly like their parameters.

    It is a rule set of one callable item ``(path, leaf, mesh) -> spec``, so it
    needs the mesh (:func:`shard` and :func:`init` pass it) and it matches
    every leaf: put overrides before it, ``[(r"embed", P()), *fsdp_rules()]``.

    Args:
      axis: the mesh axis to shard over.
      min_size: leaves with fewer elements stay replicated.

    >>> import jax, pax
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> fc = pax.Linear(64, 32, rng_key=jax.random.PRNGKey(0))
    >>> specs = pax.sharding.partition_specs(fc, pax.sharding.fsdp_rules(),
    ...                                      mesh=mesh)
    >>> specs.weight, specs.bias        # 64 x 32 >= 1024 elements; 32 < 1024
    (P('data',), P())
    """
    if not isinstance(axis, str):
        raise TypeError(f"pax.sharding.fsdp_rules: `axis` must be a str, got {axis!r}")
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ValueError(
            f"pax.sharding.fsdp_rules: `min_size` must be a non-negative int, "
            f"got {min_size!r}"
        )
    return [_FSDP(axis, min_size)]


class _Trailing:
    """A regex rule whose spec names the leaf's *last* dimensions: leading
    dimensions (a LayerStack's layer axis) are left unsharded."""

    def __init__(self, pattern: str, *trailing: Any):
        self.pattern = re.compile(pattern)
        self.trailing = trailing

    def __repr__(self) -> str:
        return f"({self.pattern.pattern!r}, trailing {PartitionSpec(*self.trailing)})"

    def __call__(self, path: str, leaf: Any, mesh: Mesh | None) -> Any:
        if not self.pattern.search(path):
            return None
        lead = len(leaf_shape(leaf)) - len(self.trailing)
        if lead < 0:
            return PartitionSpec(*self.trailing)  # too long: the check reports it
        return PartitionSpec(*([None] * lead), *self.trailing)


def transformer_rules(model_axis: str = "model", data_axis: str | None = None):
    """Megatron-style tensor parallelism for ``pax.nets.Transformer`` /
    ``TransformerLM`` (and ``TransformerBlock``).

    Split over ``model_axis`` (``m``; weights are ``[in, out]``):

    * ``attention.{query,key,value}_projection`` and ``dense_1`` (the first
      MLP layer): by output features, weight ``(None, m)``, bias ``(m,)``;
    * ``attention.output_projection`` and ``dense_2``: by input features,
      weight ``(m, None)``, bias replicated;
    * ``embed`` (token table ``[V, D]``): by vocabulary, ``(m, None)``;
      ``output`` (the logits ``Linear(D, V)``): by vocabulary, weight
      ``(None, m)``, bias ``(m,)``;
    * ``position_embed`` and every LayerNorm: replicated.

    Heads are contiguous in the projections' output features, so
    ``num_heads`` divisible by the axis size keeps every head on one device.
    Specs name the *last* dimensions of a leaf: the blocks' leading layer axis
    (they live in a :class:`pax.nn.LayerStack`) stays unsharded.

    With ``data_axis``, the other feature dimension of each split matrix and
    embedding is also sharded over ``data_axis`` (FSDP + tensor parallel);
    biases and norms are never sharded over it.

    The set covers every leaf of the transformer nets (rng keys are
    replicated anyway); for a model around them add its own rules first, or
    pass ``default=PartitionSpec()``.

    >>> import jax, pax
    >>> mesh = pax.sharding.make_mesh((1,), ("model",))
    >>> lm = pax.nets.TransformerLM(32, 16, 2, 2, max_length=8,
    ...                             rng_key=jax.random.PRNGKey(0))
    >>> specs = pax.sharding.partition_specs(
    ...     lm, pax.sharding.transformer_rules(), mesh=mesh)
    >>> specs.transformer.blocks.layers.dense_1.weight   # [layers, D, 4D]
    P(None, None, 'model')
    >>> specs.transformer.blocks.layers.dense_2.weight
    P(None, 'model', None)
    >>> specs.embed.weight                               # [V, D]: by vocabulary
    P('model', None)
    """
    if not isinstance(model_axis, str):
        raise TypeError(
            f"pax.sharding.transformer_rules: `model_axis` must be a str, "
            f"got {model_axis!r}"
        )
    if data_axis is not None and not isinstance(data_axis, str):
        raise TypeError(
            f"pax.sharding.transformer_rules: `data_axis` must be a str or None, "
            f"got {data_axis!r}"
        )
    if data_axis == model_axis:
        raise ValueError(
            f"pax.sharding.transformer_rules: `data_axis` and `model_axis` must "
            f"differ, both are {model_axis!r}"
        )
    m, d = model_axis, data_axis
    qkv = r"attention\.(query|key|value)_projection"
    return [
        _Trailing(qkv + r"\.weight$", d, m),
        _Trailing(qkv + r"\.bias$", m),
        _Trailing(r"attention\.output_projection\.weight$", m, d),
        _Trailing(r"attention\.output_projection\.bias$", None),
        _Trailing(r"dense_1\.weight$", d, m),
        _Trailing(r"dense_1\.bias$", m),
        _Trailing(r"dense_2\.weight$", m, d),
        _Trailing(r"dense_2\.bias$", None),
        _Trailing(r"(^|\.)embed\.weight$", m, d),
        _Trailing(r"(^|\.)output\.weight$", d, m),
        _Trailing(r"(^|\.)output\.bias$", m),
        (r"position_embed\.weight$", PartitionSpec()),
        (r"norm(_\d+)?\.(scale|offset)$", PartitionSpec()),
    ]

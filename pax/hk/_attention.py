"""``hk.MultiHeadAttention``: Haiku's attention module, computing with
``pax.nn.MultiHeadAttention``."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from .. import nn
from . import initializers
from ._mapping import Context, fetch, record_for
from ._module import Module, transparent
from ._native import Template, template


class _Projection(Module):
    """The parameters of one ``hk.Linear`` (``w [input_size, output_size]``,
    ``b [output_size]``, input dtype), created in the same order and scope as
    Haiku's, without computing anything."""

    def __init__(self, output_size, with_bias, w_init, b_init, name):
        super().__init__(name=name)
        self.output_size = output_size
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs: jax.Array, spec: Template, prefix: str) -> dict:
        """The arrays at ``prefix`` of the attention's native ``spec``."""
        if not jnp.shape(inputs):
            raise ValueError("Input must not be scalar.")
        inits = {"w": self.w_init, "b": self.b_init}
        twin = record_for(nn.Linear)
        return fetch(twin, Context(), spec.shapes, inputs.dtype, inits, prefix=prefix)


class MultiHeadAttention(Module):
    """Haiku's ``MultiHeadAttention``: ``softmax(Q K^T / sqrt(key_size)) V``
    per head, with ``hk.Linear``-style projections ``query``, ``key``,
    ``value`` (to ``num_heads * key_size`` / ``* value_size``) and ``linear``
    (to ``model_size``).

    ``query [..., T, D_q]``, ``key [..., S, D_k]``, ``value [..., S, D_v]``,
    optional ``mask`` of the logits' rank, broadcastable to ``[..., H, T, S]``
    (True = attend); output ``[..., T, model_size]``. Pass ``w_init`` (or the
    deprecated ``w_init_scale``).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     w_init = hk.initializers.VarianceScaling(1.0)
    ...     return hk.MultiHeadAttention(2, 3, w_init=w_init)(x, x, x)
    >>> f = hk.transform(f)
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 5, 6)))
    >>> sorted(params)[:2], f.apply(params, None, jnp.ones((1, 5, 6))).shape
    (['multi_head_attention/key', 'multi_head_attention/linear'], (1, 5, 6))
    """

    def __init__(
        self,
        num_heads: int,
        key_size: int,
        w_init_scale: float | None = None,
        *,
        w_init=None,
        with_bias: bool = True,
        b_init=None,
        value_size: int | None = None,
        model_size: int | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.num_heads = num_heads
        self.key_size = key_size
        self.value_size = value_size or key_size
        self.model_size = model_size or key_size * num_heads
        if w_init_scale is not None:
            warnings.warn(
                "w_init_scale is deprecated; please pass an explicit weight "
                "initialiser instead.",
                DeprecationWarning,
                stacklevel=2,
            )
        if w_init and w_init_scale:
            raise ValueError("Please provide only `w_init`, not `w_init_scale`.")
        if w_init is None and w_init_scale is None:
            raise ValueError(
                "Please provide a weight initializer: `w_init`. `w_init` will "
                "become mandatory once `w_init_scale` is fully deprecated."
            )
        if w_init is None:
            w_init = initializers.VarianceScaling(w_init_scale)
        self.w_init = w_init
        self.with_bias = with_bias
        self.b_init = b_init

    @transparent
    def _projection(self, size: int, name: str | None) -> _Projection:
        return _Projection(size, self.with_bias, self.w_init, self.b_init, name)

    def __call__(
        self,
        query: jax.Array,
        key: jax.Array,
        value: jax.Array,
        mask: jax.Array | None = None,
    ) -> jax.Array:
        """``[..., T, D_q], [..., S, D_k], [..., S, D_v] -> [..., T, model_size]``."""
        h = self.num_heads
        for x in (query, key, value):
            if not jnp.shape(x):
                raise ValueError("Input must not be scalar.")
        spec = template(
            nn.MultiHeadAttention,
            h,
            self.key_size,
            value_size=self.value_size,
            model_size=self.model_size,
            query_size=query.shape[-1],
            key_input_size=key.shape[-1],
            value_input_size=value.shape[-1],
            with_bias=bool(self.with_bias),
        )
        arrays = {}
        for x, size, name, prefix in (
            (query, h * self.key_size, "query", ".query_projection"),
            (key, h * self.key_size, "key", ".key_projection"),
            (value, h * self.value_size, "value", ".value_projection"),
        ):
            arrays.update(self._projection(size, name)(x, spec, prefix))
        if mask is not None and jnp.ndim(mask) != query.ndim + 1:
            raise ValueError(
                f"Mask dimensionality {jnp.ndim(mask)} must match logits "
                f"dimensionality {query.ndim + 1}."
            )
        # Haiku's output projection sees the attended values, whose dtype is
        # that of the three projections combined.
        attn = jax.ShapeDtypeStruct(
            (*query.shape[:-1], h * self.value_size),
            jnp.result_type(query.dtype, key.dtype, value.dtype),
        )
        linear = self._projection(self.model_size, "linear")
        arrays.update(linear(attn, spec, ".output_projection"))
        return spec.build(arrays)(query, key, value, mask=mask)

"""``hk.Linear``: Haiku's dense layer, computing with ``pax.nn.Linear``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn
from . import initializers
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import template

LINEAR = record_for(nn.Linear)


class Linear(Module):
    """Haiku's ``Linear``: ``y = x @ w + b`` with parameters ``w``
    ``[input_size, output_size]`` and ``b`` ``[output_size]`` in the input's
    dtype; ``w`` defaults to ``TruncatedNormal(1 / sqrt(input_size))``, ``b``
    to zeros.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Linear(4)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'linear': {'b': (4,), 'w': (3, 4)}}
    >>> f.apply(params, None, jnp.ones((2, 3))).shape
    (2, 4)
    """

    def __init__(
        self,
        output_size: int,
        with_bias: bool = True,
        w_init=None,
        b_init=None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.input_size = None
        self.output_size = output_size
        self.with_bias = with_bias
        self.w_init = w_init
        self.b_init = b_init or jnp.zeros

    def __call__(self, inputs: jax.Array, *, precision=None) -> jax.Array:
        """``[..., input_size] -> [..., output_size]``."""
        if not jnp.shape(inputs):
            raise ValueError("Input must not be scalar.")
        input_size = self.input_size = inputs.shape[-1]
        dtype = inputs.dtype
        w_init = self.w_init
        if w_init is None:
            w_init = initializers.TruncatedNormal(stddev=1.0 / np.sqrt(input_size))
        spec = template(nn.Linear, input_size, self.output_size, self.with_bias)
        inits = {"w": w_init, "b": self.b_init}
        arrays = fetch(LINEAR, Context(), spec.shapes, dtype, inits)
        return spec.build(arrays)(inputs, precision=precision)

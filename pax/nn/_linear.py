"""Dense layers: ``Linear`` and ``Bias``."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, parameters_method
from ..initializers import Initializer, TruncatedNormal, zeros
from ._utils import (
    as_array,
    compute_dtype,
    init_keys,
    positive_int,
    rng_key_or_next,
    who,
)


class Linear(Module):
    """A linear map over the last axis: ``y = x @ weight + bias``.

    Args:
      in_dim: size of the input's last axis.
      out_dim: size of the output's last axis.
      with_bias: add a bias (default True). Without one, ``bias`` is None.
      w_init: initializer for ``weight`` ``[in_dim, out_dim]``, called
        ``w_init(rng_key, shape, dtype)``. Default (Haiku's):
        ``TruncatedNormal(stddev=1 / sqrt(in_dim))``.
      b_init: initializer for ``bias`` ``[out_dim]``. Default: zeros.
      rng_key: key for the initializers; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[..., in_dim]`` (at least rank 1), output ``[..., out_dim]``, in the
    input's floating dtype. Trainable: ``weight``, ``bias``.

    >>> import jax, jax.numpy as jnp, pax
    >>> fc = pax.Linear(3, 4, rng_key=jax.random.PRNGKey(0))
    >>> fc
    Linear(in_dim=3, out_dim=4, with_bias=True)
    >>> fc(jnp.ones((2, 3))).shape
    (2, 4)
    """

    parameters = parameters_method("weight", "bias")

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        with_bias: bool = True,
        w_init: Initializer | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.in_dim = positive_int(in_dim, "in_dim", owner)
        self.out_dim = positive_int(out_dim, "out_dim", owner)
        self.with_bias = bool(with_bias)
        if w_init is None:
            w_init = TruncatedNormal(stddev=1.0 / np.sqrt(self.in_dim))
        b_init = zeros if b_init is None else b_init
        w_key, b_key = init_keys(
            rng_key_or_next(rng_key), (w_init, b_init if self.with_bias else None)
        )
        self.weight = w_init(w_key, (self.in_dim, self.out_dim), jnp.float32)
        if self.with_bias:
            self.bias = b_init(b_key, (self.out_dim,), jnp.float32)
        else:
            self.bias = None

    def __call__(self, x: jax.Array, *, precision=None) -> jax.Array:
        """``[..., in_dim] -> [..., out_dim]``."""
        x = as_array(x, self)
        shape = x.shape
        if not shape or shape[-1] != self.in_dim:
            raise ValueError(
                f"{who(self)}: expected input with last dimension {self.in_dim}, "
                f"got shape {tuple(shape)}"
            )
        return _linear(x, self.weight, self.bias, precision)


@functools.partial(jax.jit, static_argnums=3, inline=True)
def _linear(x, weight, bias, precision):
    """``Linear``'s math. Jitted, so that an eager call is one dispatch (the
    casts, the product and the bias add compile together, traced once per
    shape and dtype); ``inline`` puts the same operations into an enclosing
    trace, so ``jit``/``grad``/``vmap`` of a model see no extra call."""
    with jax.named_scope("pax.nn.Linear"):
        dtype = compute_dtype(x, weight)
        y = jnp.dot(x.astype(dtype), weight.astype(dtype), precision=precision)
        if bias is not None:
            y = y + jnp.broadcast_to(bias.astype(dtype), y.shape)
        return y


def bias_shape(
    input_shape: Sequence[int], bias_dims: Sequence[int] | None
) -> tuple[int, ...]:
    """Haiku's ``Bias`` parameter shape for an input shape (batch axis first).

    Args:
      input_shape: shape of a batched input ``[N, *rest]``.
      bias_dims: ``None``: every axis but the batch axis; ``[]``: a scalar;
        otherwise the listed axes (negative counts from the end) keep their
        size, the others become 1, and leading unit axes are stripped.

    Returns:
      The bias shape, which broadcasts against ``input_shape``.

    Raises:
      ValueError: ``bias_dims`` names the batch axis.

    >>> bias_shape((8, 4, 5, 6), None), bias_shape((8, 4, 5, 6), [])
    ((4, 5, 6), ())
    >>> bias_shape((8, 4, 5, 6), [-1]), bias_shape((8, 4, 5, 6), [1, 3])
    ((6,), (4, 1, 6))
    """
    rank = len(input_shape)
    if bias_dims is None:
        return tuple(input_shape[1:])
    if not bias_dims:
        return ()
    shape = [1] * rank
    for dim in bias_dims:
        d = dim % rank
        if d == 0:
            raise ValueError("Bias: `bias_dims` cannot include the batch axis (0).")
        shape[d] = input_shape[d]
    start = next((i for i in range(1, rank) if shape[i] != 1), rank)
    return tuple(shape[start:])


class Bias(Module):
    """Adds a learned bias, with Haiku's ``bias_dims`` semantics.

    Args:
      output_size: the input's shape without the batch axis (an int means
        ``(output_size,)``).
      bias_dims: axes of the full input ``[batch, *output_size]`` that get their
        own bias values (negative axes count from the end); ``None`` (default)
        means every non-batch axis, ``[]`` a single scalar. Other axes share
        values (broadcast).
      b_init: initializer for ``bias``; default zeros.
      rng_key: key for ``b_init``; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    Input ``[..., *output_size]``, same-shaped output. Trainable: ``bias``.

    >>> import jax.numpy as jnp, pax
    >>> b = pax.Bias((3, 4), bias_dims=[-1])
    >>> b.bias.shape
    (4,)
    >>> b(jnp.ones((2, 3, 4))).shape
    (2, 3, 4)
    """

    parameters = parameters_method("bias")

    def __init__(
        self,
        output_size: int | Sequence[int],
        bias_dims: Sequence[int] | None = None,
        b_init: Initializer | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if isinstance(output_size, (int, np.integer)):
            output_size = (output_size,)
        self.output_size = tuple(
            positive_int(s, "output_size", owner) for s in output_size
        )
        self.bias_dims = None if bias_dims is None else tuple(bias_dims)
        rank = len(self.output_size) + 1
        for d in self.bias_dims or ():
            if not -rank <= d < rank:
                raise ValueError(
                    f"{owner}: `bias_dims` entry {d} is out of range for an input "
                    f"of rank {rank} (batch axis + output_size {self.output_size})"
                )
        shape = bias_shape((1, *self.output_size), self.bias_dims)
        b_init = zeros if b_init is None else b_init
        self.bias = b_init(rng_key_or_next(rng_key), shape, jnp.float32)

    def __call__(self, x: jax.Array, multiplier: jax.Array | None = None) -> jax.Array:
        """``[..., *output_size] -> [..., *output_size]``; ``x + multiplier * bias``."""
        x = as_array(x, self)
        shape = x.shape
        n = len(self.output_size)
        if len(shape) < n or shape[len(shape) - n :] != self.output_size:
            raise ValueError(
                f"{who(self)}: expected input whose trailing shape is "
                f"{self.output_size}, got shape {tuple(shape)}"
            )
        return _bias(x, self.bias, multiplier)


@functools.partial(jax.jit, inline=True)
def _bias(x, bias, multiplier):
    """``Bias``'s math, one dispatch when eager (see ``_linear``)."""
    with jax.named_scope("pax.nn.Bias"):
        dtype = compute_dtype(x, bias)
        b = jnp.broadcast_to(bias.astype(dtype), x.shape)
        if multiplier is not None:
            b = b * multiplier
        return x.astype(dtype) + b

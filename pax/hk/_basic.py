"""Haiku's basic layers: ``Sequential``, ``Bias``, ``Reshape``, ``Flatten``,
``BatchApply`` and ``expand_apply``, computing with their ``pax.nn``
counterparts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .. import nn
from ..nn.internal_api import bias_shape
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import template

BIAS = record_for(nn.Bias)


class Sequential(Module):
    """Haiku's ``Sequential``: calls ``layers`` in order, passing any extra
    arguments to the first layer only.

    The layers keep the names they were given where they were constructed
    (usually outside this module). Input: what the first layer takes; output:
    what the last returns.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Sequential([hk.Linear(3), jax.nn.relu])(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 4)))
    >>> list(params), f.apply(params, None, jnp.ones((2, 4))).shape
    (['linear'], (2, 3))
    """

    def __init__(self, layers: Iterable[Callable[..., Any]], name: str | None = None):
        super().__init__(name=name)
        self.layers = tuple(layers)

    def __call__(self, inputs, *args, **kwargs):
        """``layers[-1](...layers[1](layers[0](inputs, *args, **kwargs)))``."""
        out = inputs
        for i, layer in enumerate(self.layers):
            out = layer(out, *args, **kwargs) if i == 0 else layer(out)
        return out


class Bias(Module):
    """Haiku's ``Bias``: adds a learned bias ``b`` (input dtype, default zeros)
    whose shape follows ``bias_dims``.

    Input ``[batch, *rest]`` (rank >= 2), same-shaped output. ``b`` has shape
    ``rest`` (``bias_dims=None``), ``()`` (``bias_dims=[]``) or the listed
    axes with the others set to 1 and leading ones dropped.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Bias(bias_dims=[-1])(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((2, 3, 4)))
    >>> params["bias"]["b"].shape
    (4,)
    """

    def __init__(
        self,
        output_size: Sequence[int] | None = None,
        bias_dims: Sequence[int] | None = None,
        b_init=None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.output_size = output_size
        self.bias_dims = bias_dims
        self.b_init = b_init or jnp.zeros
        self.bias_shape = None

    def __call__(self, inputs: jax.Array, multiplier=None) -> jax.Array:
        """``[batch, *rest] -> [batch, *rest]``: ``inputs + multiplier * b``."""
        if jnp.ndim(inputs) < 2:
            raise ValueError(
                f"Bias: input has rank {jnp.ndim(inputs)}, expected at least 2"
            )
        rest = tuple(inputs.shape[1:])
        if self.output_size is not None:
            expected = self.output_size
            if not isinstance(expected, Sequence):
                expected = (expected,)
            if tuple(expected) != rest:
                raise ValueError(
                    f"Input shape must be {(-1, *expected)} not {inputs.shape}"
                )
        dims = None if self.bias_dims is None else tuple(self.bias_dims)
        for dim in dims or ():
            d = dim % inputs.ndim if dim < 0 else dim
            if d == 0:
                raise ValueError("Cannot apply bias across the minibatch dimension.")
            if d >= inputs.ndim:
                raise ValueError(
                    f"Dimension {d} (bias_dims={dims!r}) out of range for input "
                    f"of rank {inputs.ndim}."
                )
        shape = bias_shape(inputs.shape, dims)
        self.bias_shape = shape
        self.input_size = rest
        spec = template(nn.Bias, rest, dims)
        arrays = fetch(BIAS, Context(), spec.shapes, inputs.dtype, {"b": self.b_init})
        return spec.build(arrays)(inputs, multiplier)


class Reshape(Module):
    """Haiku's ``Reshape``: reshapes the axes after the leading
    ``preserve_dims`` (or, if negative, the last ``-preserve_dims``) to
    ``output_shape`` (one ``-1`` allowed).

    Input ``[*lead, *rest]``, output ``[*lead, *output_shape]``; an input with
    at most ``preserve_dims`` axes is returned unchanged. No parameters.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Reshape((-1, 2))(x))
    >>> f.apply({}, None, jnp.ones((3, 2, 4))).shape
    (3, 4, 2)
    """

    def __init__(
        self,
        output_shape: Sequence[int],
        preserve_dims: int = 1,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if preserve_dims == 0:
            raise ValueError("Argument preserve_dims should be non-zero.")
        if output_shape.count(-1) > 1:
            raise ValueError("-1 can only occur once in `output_shape`.")
        self.output_shape = tuple(output_shape)
        self.preserve_dims = preserve_dims

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """``[*lead, *rest] -> [*lead, *output_shape]``."""
        return nn.Reshape(self.output_shape, self.preserve_dims)(inputs)


class Flatten(Reshape):
    """Haiku's ``Flatten``: merges the axes after the leading
    ``preserve_dims`` (or, if negative, the last ``-preserve_dims``) into one.

    Input ``[*lead, *rest]``, output ``[*lead, prod(rest)]``; an input with at
    most ``preserve_dims`` axes is returned unchanged. No parameters.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Flatten()(x))
    >>> f.apply({}, None, jnp.ones((3, 2, 4))).shape
    (3, 8)
    """

    def __init__(self, preserve_dims: int = 1, name: str | None = None):
        super().__init__(output_shape=(-1,), preserve_dims=preserve_dims, name=name)


class BatchApply:
    """Haiku's ``BatchApply`` (a plain class, not a module): calls ``f`` with
    the leading ``num_dims`` axes of its array inputs merged, then splits
    them back out of every output.

    Inputs ``[d_1, ..., d_n, *rest]`` reach ``f`` as ``[d_1 * ... * d_n,
    *rest]``; arrays with fewer axes pass unchanged. Computes with
    ``pax.nn.BatchApply``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.BatchApply(hk.Linear(4))(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((5, 2, 3)))
    >>> f.apply(params, None, jnp.ones((5, 2, 3))).shape
    (5, 2, 4)
    """

    def __init__(self, f: Callable[..., Any], num_dims: int = 2):
        self._f = f
        self.num_dims = num_dims

    def __call__(self, *args, **kwargs):
        """``f`` over merged leading axes; outputs with those axes restored."""
        n = self.num_dims
        if not any(getattr(x, "ndim", 0) >= n for x in jax.tree.leaves((args, kwargs))):
            raise ValueError(
                f"BatchApply requires at least one input with ndim >= {n}."
            )
        return nn.BatchApply(self._f, n)(*args, **kwargs)


def expand_apply(f: Callable[..., Any], axis: int = 0) -> Callable[..., Any]:
    """Haiku's ``expand_apply``: wraps ``f`` so that its array inputs gain a
    size-1 axis at ``axis`` (0 or -1) and its outputs lose it again.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> hk.expand_apply(lambda x: x.sum(0, keepdims=True))(jnp.ones((2, 3))).shape
    (2, 3)
    """
    if axis not in (0, -1):
        raise ValueError("expand_apply currently only supports axis=0 or axis=-1.")
    return nn.expand_apply(f, axis)

"""``hk.initializers``: Haiku's initializers, called ``init(shape, dtype)``.

Each wraps the ``pax.initializers`` class of the same name (one
implementation of the math) and draws its key from ``hk.next_rng_key()``;
``Constant`` and ``Identity`` draw no key, as in Haiku, so the key sequence
of a transformed function matches dm-haiku's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import jax.numpy as jnp

from .. import initializers as _pax
from ._base import next_rng_key

__all__ = [
    "Constant",
    "Identity",
    "Initializer",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "UniformScaling",
    "VarianceScaling",
]


class Initializer(Protocol):
    """Anything called as ``init(shape, dtype) -> array``."""

    def __call__(self, shape: Sequence[int], dtype: Any) -> Any: ...


class _Adapter:
    """Haiku's calling form over a ``pax.initializers`` instance."""

    _random = True
    _native: Any

    def __call__(self, shape: Sequence[int], dtype: Any = jnp.float32):
        key = next_rng_key() if self._random else None
        return self._native(key, shape, dtype)

    def __repr__(self) -> str:
        return f"hk.initializers.{self._native!r}"


class Constant(_Adapter):
    """Fill with ``constant`` (no randomness).

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda: hk.get_parameter(
    ...     "b", [2], init=hk.initializers.Constant(0.5)))
    >>> f.init(None)["~"]["b"]
    Array([0.5, 0.5], dtype=float32)
    """

    _random = False

    def __init__(self, constant: Any):
        self.constant = constant
        self._native = _pax.Constant(constant)


class RandomNormal(_Adapter):
    """Normal samples with ``mean`` and ``stddev``."""

    def __init__(self, stddev: float = 1.0, mean: float = 0.0):
        self.stddev, self.mean = stddev, mean
        self._native = _pax.RandomNormal(stddev, mean)


class TruncatedNormal(_Adapter):
    """Normal samples truncated to ``[lower, upper]`` standard deviations."""

    def __init__(
        self,
        stddev: float = 1.0,
        mean: float = 0.0,
        lower: float = -2.0,
        upper: float = 2.0,
    ):
        self.stddev, self.mean, self.lower, self.upper = stddev, mean, lower, upper
        self._native = _pax.TruncatedNormal(stddev, mean, lower, upper)


class RandomUniform(_Adapter):
    """Uniform samples in ``[minval, maxval)``.

    As in dm-haiku, ``minval > maxval`` is accepted (``pax.initializers``
    refuses it): ``jax.random.uniform`` then clamps every sample to
    ``minval``, and so does this.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda: hk.get_parameter(
    ...     "w", [2], init=hk.initializers.RandomUniform(3.0)))
    >>> f.init(jax.random.PRNGKey(0))["~"]["w"]
    Array([3., 3.], dtype=float32)
    """

    def __init__(self, minval: float = 0.0, maxval: float = 1.0):
        self.minval, self.maxval = minval, maxval
        # an empty interval at `minval` gives dm-haiku's clamped samples
        upper = maxval if minval <= maxval else minval
        self._native = _pax.RandomUniform(minval, upper)


class VarianceScaling(_Adapter):
    """Samples with variance ``scale / n`` (``n`` from ``mode``); see
    ``pax.initializers.VarianceScaling``."""

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        fan_in_axes: Sequence[int] | None = None,
    ):
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.fan_in_axes = fan_in_axes
        self._native = _pax.VarianceScaling(scale, mode, distribution, fan_in_axes)


class UniformScaling(_Adapter):
    """Uniform in ``±scale * sqrt(3 / input_size)``."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self._native = _pax.UniformScaling(scale)


class Orthogonal(_Adapter):
    """A (semi-)orthogonal matrix along ``axis``, times ``scale``."""

    def __init__(self, scale: float = 1.0, axis: int = -1):
        self.scale, self.axis = scale, axis
        self._native = _pax.Orthogonal(scale, axis)


class Identity(_Adapter):
    """``gain`` times the identity (no randomness)."""

    _random = False

    def __init__(self, gain: float = 1.0):
        self.gain = gain
        self._native = _pax.Identity(gain)

"""Initializers with Haiku's semantics and ``jax.nn.initializers``' calling form.

Every initializer is called ``init(rng_key, shape, dtype=jnp.float32)`` — the
convention of ``jax.nn.initializers`` — so any of those (for example
``jax.nn.initializers.orthogonal()``) works wherever PAX takes ``w_init``,
``b_init`` or ``scale_init``. ``pax.hk`` adapts them to Haiku's
``init(shape, dtype)`` form.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

try:  # JAX's public hook for "which trace is current"
    from jax.extend.core import get_opaque_trace_state as _trace_state
except ImportError:  # pragma: no cover - older JAX: always the traced path
    _trace_state = None

__all__ = [
    "Initializer",
    "Constant",
    "Identity",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "UniformScaling",
    "VarianceScaling",
    "compute_fans",
    "zeros",
    "ones",
    "glorot_uniform",
    "glorot_normal",
    "lecun_uniform",
    "lecun_normal",
    "he_uniform",
    "he_normal",
]

Shape = Sequence[int]

# Standard deviation of a unit normal truncated to [-2, 2]
# (scipy.stats.truncnorm.std(a=-2, b=2)).
_TRUNCATED_STD = 0.87962566103423978


# ---------------------------------------------------------------------------
# Fast paths for eager construction.
#
# Building a model eagerly runs every initializer once per parameter. Done op
# by op, each of ``s * truncated_normal(...) + m`` is a separate dispatch and,
# in a fresh process, a separate compilation per shape. ``TruncatedNormal``
# runs as one jitted program per (shape, dtype) instead, and ``Constant``
# fills on the host and transfers with ``jax.device_put`` (nothing to compile;
# unlike ``jnp.asarray``, which runs a small program per shape, it does not
# wait for the computations already queued). Values are bit-identical to the
# op-by-op computation:
#   * scalar hyperparameters are converted with ``np.asarray(value, dtype)``,
#     which is what ``jax.lax.convert_element_type`` itself does for Python
#     and NumPy scalars;
#   * ``jax.random.truncated_normal`` is a jitted program already; it ends in
#     a clip, which XLA cannot reassociate a product through, so ``stddev *
#     sample`` is the same single rounding inside the program as outside;
#   * XLA contracts ``stddev * sample + mean`` into a fused multiply-add (one
#     rounding instead of two), which changes nothing when ``mean`` is zero
#     (adding zero is exact) but does otherwise: a non-zero mean is added by a
#     separate eager op, as before;
#   * a constant's value is computed once by the op-by-op path and cached.
# (``RandomNormal`` keeps the op-by-op path: inside one program XLA
# reassociates ``stddev * (sqrt(2) * erf_inv(u))``, which changes the last
# bit.) Anything else (array hyperparameters, non-canonical dtypes, a
# constant while JAX traces) takes the op-by-op path.
# ---------------------------------------------------------------------------

_EAGER_STATE = None if _trace_state is None else _trace_state(convention="haiku")
_SCALAR_TYPES = (bool, int, float, complex, np.generic)


def _eager() -> bool:
    """True in plain eager evaluation (not while JAX traces a function)."""
    return _trace_state is not None and _trace_state(convention="haiku") == _EAGER_STATE


@functools.cache
def _canonical_cached(dtype: Any) -> np.dtype | None:
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:
        return None
    if jax.dtypes.canonicalize_dtype(np_dtype) != np_dtype:
        return None
    if not (jnp.issubdtype(np_dtype, jnp.number) or np_dtype == np.bool_):
        return None
    return np_dtype


def _canonical(dtype: Any) -> np.dtype | None:
    """``dtype`` as a NumPy dtype if it is a number or bool dtype that JAX
    uses as it is (float64 without x64, for instance, is not), else None."""
    try:
        return _canonical_cached(dtype)
    except TypeError:  # an unhashable dtype argument
        return None


@functools.cache
def _inexact(np_dtype: np.dtype) -> bool:
    """Floating or complex (bfloat16 and the other ML dtypes included)."""
    return bool(jnp.issubdtype(np_dtype, jnp.inexact))


@functools.cache
def _complex(np_dtype: np.dtype) -> bool:
    return bool(jnp.issubdtype(np_dtype, jnp.complexfloating))


def _host_scalar(value: Any, dtype: np.dtype) -> np.ndarray | None:
    """``value`` converted to ``dtype`` exactly as ``convert_element_type``
    converts a scalar (None when ``value`` is not a scalar)."""
    if not isinstance(value, _SCALAR_TYPES):
        return None
    return np.asarray(value, dtype)


@functools.lru_cache(maxsize=1024)
def _fill_value(constant: Any, kind: type, text: str, dtype: Any) -> np.ndarray | None:
    """The 0-d value ``Constant(constant)`` gives in ``dtype``, computed once
    by the op-by-op path; None if the host path does not apply. ``kind`` and
    ``text`` (the type and repr of ``constant``) are part of the cache key:
    ``1 == 1.0 == True`` and ``0.0 == -0.0``."""
    del text
    np_dtype = _canonical(dtype)
    if np_dtype is None:
        return None
    if issubclass(kind, complex | np.complexfloating) and not _complex(np_dtype):
        return None  # the op-by-op path warns about the discarded part
    value = np.asarray(jnp.asarray(constant).astype(np_dtype))
    if value.dtype != np_dtype:
        return None
    return value


@functools.partial(jax.jit, static_argnums=(5, 6), inline=True)
def _scaled_truncated_normal(key, lower, upper, stddev, mean, shape, dtype):
    """``stddev * truncated_normal(key, lower, upper) + mean`` in one program;
    ``mean`` is None when the caller adds it (see above)."""
    real_dtype = jnp.finfo(dtype).dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        parts = jax.random.truncated_normal(key, lower, upper, (2, *shape), real_dtype)
        unscaled = parts[0] + 1j * parts[1]
    else:
        unscaled = jax.random.truncated_normal(key, lower, upper, shape, real_dtype)
    scaled = stddev * unscaled
    return scaled if mean is None else scaled + mean


class Initializer(Protocol):
    """Anything called as ``init(rng_key, shape, dtype) -> array``."""

    def __call__(self, rng_key: jax.Array, shape: Shape, dtype: Any = ...) -> jax.Array:
        """Return an array of ``shape`` and ``dtype``."""


def _shape(shape: Shape, who: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(
            f"{who}: `shape` must be a sequence of ints, got {shape!r}"
        ) from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{who}: `shape` must not have negative sizes, got {shape}")
    return shape


class _Base:
    """Shared repr: ``Name(arg=value, ...)`` from the constructor arguments."""

    _fields: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class Constant(_Base):
    """Fill with a constant (broadcast to ``shape``).

    >>> import jax, pax
    >>> pax.initializers.Constant(0.5)(jax.random.PRNGKey(0), (2,))
    Array([0.5, 0.5], dtype=float32)
    """

    _fields = ("constant",)

    def __init__(self, constant: Any):
        self.constant = constant

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "Constant")
        c = self.constant
        if isinstance(c, _SCALAR_TYPES) and _eager():
            try:
                value = _fill_value(c, type(c), repr(c), dtype)
            except TypeError:  # an unhashable dtype argument
                value = None
            if value is not None:
                # filled on the host and transferred: no dispatch to compile
                if value.tobytes() == bytes(value.itemsize):
                    return jax.device_put(np.zeros(shape, value.dtype))
                return jax.device_put(np.full(shape, value))
        return jnp.broadcast_to(jnp.asarray(c), shape).astype(dtype)


class RandomNormal(_Base):
    """Sample ``mean + stddev * N(0, 1)``.

    >>> import jax, pax
    >>> pax.initializers.RandomNormal(0.01)(jax.random.PRNGKey(0), (3, 2)).shape
    (3, 2)
    """

    _fields = ("stddev", "mean")

    def __init__(self, stddev: float = 1.0, mean: float = 0.0):
        if not np.iscomplexobj(stddev) and np.any(np.asarray(stddev) < 0):
            raise ValueError(f"RandomNormal: `stddev` must be >= 0, got {stddev}")
        self.stddev = stddev
        self.mean = mean

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "RandomNormal")
        m = jax.lax.convert_element_type(self.mean, dtype)
        s = jax.lax.convert_element_type(self.stddev, dtype)
        return m + s * jax.random.normal(rng_key, shape, dtype)


class TruncatedNormal(_Base):
    """Sample ``mean + stddev * N(0, 1)`` truncated to ``[lower, upper]``.

    ``stddev`` is that of the *untruncated* normal (as in Haiku); the default
    bounds are ±2 standard deviations.

    >>> import jax, pax
    >>> w = pax.initializers.TruncatedNormal(0.1)(jax.random.PRNGKey(0), (1000,))
    >>> bool(abs(w).max() <= 0.2)
    True
    """

    _fields = ("stddev", "mean", "lower", "upper")

    def __init__(
        self,
        stddev: float = 1.0,
        mean: float = 0.0,
        lower: float = -2.0,
        upper: float = 2.0,
    ):
        if np.any(np.asarray(stddev) < 0):
            raise ValueError(f"TruncatedNormal: `stddev` must be >= 0, got {stddev}")
        if np.any(np.asarray(lower) >= np.asarray(upper)):
            raise ValueError(
                f"TruncatedNormal: `lower` ({lower}) must be below `upper` ({upper})"
            )
        self.stddev = stddev
        self.mean = mean
        self.lower = lower
        self.upper = upper

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "TruncatedNormal")
        np_dtype = _canonical(dtype)
        if np_dtype is not None and _inexact(np_dtype):
            m = _host_scalar(self.mean, np_dtype)
            s = _host_scalar(self.stddev, jnp.finfo(np_dtype).dtype)
            if m is not None and s is not None:
                if not m:  # zero: added inside the program (exact)
                    return _scaled_truncated_normal(
                        rng_key, self.lower, self.upper, s, m, shape, np_dtype
                    )
                scaled = _scaled_truncated_normal(
                    rng_key, self.lower, self.upper, s, None, shape, np_dtype
                )
                return scaled + jnp.asarray(m)
        real_dtype = jnp.finfo(dtype).dtype
        m = jax.lax.convert_element_type(self.mean, dtype)
        s = jax.lax.convert_element_type(self.stddev, real_dtype)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            parts = jax.random.truncated_normal(
                rng_key, self.lower, self.upper, (2, *shape), real_dtype
            )
            unscaled = parts[0] + 1j * parts[1]
        else:
            unscaled = jax.random.truncated_normal(
                rng_key, self.lower, self.upper, shape, real_dtype
            )
        return s * unscaled + m


class RandomUniform(_Base):
    """Sample uniformly from ``[minval, maxval)``.

    >>> import jax, pax
    >>> w = pax.initializers.RandomUniform(-1.0, 1.0)(jax.random.PRNGKey(0), (4,))
    >>> bool((w >= -1).all() and (w < 1).all())
    True
    """

    _fields = ("minval", "maxval")

    def __init__(self, minval: float = 0.0, maxval: float = 1.0):
        if not minval <= maxval:
            raise ValueError(
                f"RandomUniform: `minval` ({minval}) must not exceed "
                f"`maxval` ({maxval})"
            )
        self.minval = minval
        self.maxval = maxval

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "RandomUniform")
        return jax.random.uniform(rng_key, shape, dtype, self.minval, self.maxval)


def compute_fans(shape: Shape, fan_in_axes: Sequence[int] | None = None):
    """Return ``(fan_in, fan_out)`` of a weight shape, Haiku's rule.

    * scalar: (1, 1); vector ``[n]``: (n, n); matrix ``[in, out]``: (in, out);
    * rank ≥ 3 (a convolution kernel ``[*spatial, in, out]``):
      ``fan_in = in * prod(spatial)``, ``fan_out = out * prod(spatial)``;
    * with ``fan_in_axes``: ``fan_in`` is the product of those axes' sizes and
      ``fan_out`` that of the others (rank ≥ 3 only, as in Haiku).

    >>> compute_fans((3, 3, 16, 32))
    (144, 288)
    """
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    if fan_in_axes is not None:
        axes = {a % len(shape) for a in fan_in_axes}
        fan_in = int(np.prod([shape[i] for i in axes]))
        fan_out = int(np.prod([s for i, s in enumerate(shape) if i not in axes]))
        return fan_in, fan_out
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


class VarianceScaling(_Base):
    """Scale the variance to the weight's fan: ``s = scale / n``.

    ``n`` is ``fan_in``, ``fan_out`` or their average (``mode``; see
    :func:`compute_fans`). Samples have mean 0 and standard deviation
    ``sqrt(s)`` (after truncation for ``"truncated_normal"``, whose underlying
    normal is widened by 1/0.8796); ``"uniform"`` samples lie in
    ``[-sqrt(3 s), sqrt(3 s)]``.

    Named presets (functions in this module returning a ``VarianceScaling``):

    ==============  ============================================
    preset          arguments
    ==============  ============================================
    glorot_uniform  ``(1.0, "fan_avg", "uniform")``
    glorot_normal   ``(1.0, "fan_avg", "truncated_normal")``
    lecun_uniform   ``(1.0, "fan_in", "uniform")``
    lecun_normal    ``(1.0, "fan_in", "truncated_normal")``
    he_uniform      ``(2.0, "fan_in", "uniform")``
    he_normal       ``(2.0, "fan_in", "truncated_normal")``
    ==============  ============================================

    >>> import jax, pax
    >>> init = pax.initializers.VarianceScaling(2.0, "fan_in", "normal")
    >>> init(jax.random.PRNGKey(0), (3, 3, 8, 16)).shape
    (3, 3, 8, 16)
    """

    _fields = ("scale", "mode", "distribution", "fan_in_axes")

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        fan_in_axes: Sequence[int] | None = None,
    ):
        if not scale > 0:
            raise ValueError(
                f"VarianceScaling: `scale` must be a positive float, got {scale}"
            )
        if mode not in _MODES:
            raise ValueError(
                f"VarianceScaling: Invalid `mode` argument {mode!r}: `mode` must "
                f"be one of {_MODES}"
            )
        distribution = str(distribution).lower()
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"VarianceScaling: Invalid `distribution` argument "
                f"{distribution!r}: `distribution` must be one of {_DISTRIBUTIONS}"
            )
        self.scale = scale
        self.mode = mode
        self.distribution = distribution
        self.fan_in_axes = None if fan_in_axes is None else tuple(fan_in_axes)

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "VarianceScaling")
        fan_in, fan_out = compute_fans(shape, self.fan_in_axes)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}
        s = self.scale / max(1.0, n[self.mode])
        if self.distribution == "truncated_normal":
            # the constant is rounded to the parameter dtype first, as Haiku
            # does, so that values are bit-identical to dm-haiku's
            stddev = np.sqrt(s) / np.asarray(_TRUNCATED_STD, dtype=dtype)
            return TruncatedNormal(stddev=stddev)(rng_key, shape, dtype)
        if self.distribution == "normal":
            return RandomNormal(stddev=np.sqrt(s))(rng_key, shape, dtype)
        limit = np.sqrt(3.0 * s)
        return RandomUniform(-limit, limit)(rng_key, shape, dtype)


class UniformScaling(_Base):
    """Uniform in ``[-m, m]`` with ``m = scale * sqrt(3 / prod(shape[:-1]))``."""

    _fields = ("scale",)

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "UniformScaling")
        input_size = max(1, int(np.prod(shape[:-1])))
        limit = np.sqrt(3.0 / input_size) * self.scale
        return RandomUniform(-limit, limit)(rng_key, shape, dtype)


class Orthogonal(_Base):
    """A (semi-)orthogonal matrix, rows orthonormal along ``axis``.

    Other axes are flattened; if ``axis`` is the shorter side, columns are
    orthonormal instead. Requires a rank ≥ 2 shape.

    >>> import jax, jax.numpy as jnp, pax
    >>> q = pax.initializers.Orthogonal()(jax.random.PRNGKey(0), (4, 4))
    >>> bool(jnp.allclose(q @ q.T, jnp.eye(4), atol=1e-5))
    True
    """

    _fields = ("scale", "axis")

    def __init__(self, scale: float = 1.0, axis: int = -1):
        self.scale = scale
        self.axis = axis

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "Orthogonal")
        if len(shape) < 2:
            raise ValueError(
                "Orthogonal initializer requires at least a 2D shape (rank >= 2), "
                f"got {shape}"
            )
        n_rows = shape[self.axis]
        n_cols = int(np.prod(shape)) // n_rows
        tall = (n_rows, n_cols) if n_rows > n_cols else (n_cols, n_rows)
        q, r = jnp.linalg.qr(jax.random.normal(rng_key, tall, dtype))
        q = q * jnp.sign(jnp.diag(r))[None, :]
        if n_rows < n_cols:
            q = q.T
        rest = tuple(s for i, s in enumerate(shape) if i != self.axis % len(shape))
        q = jnp.moveaxis(q.reshape((n_rows, *rest)), 0, self.axis)
        return jax.lax.convert_element_type(self.scale, dtype) * q


class Identity(_Base):
    """``gain`` times the identity matrix (broadcast over leading axes)."""

    _fields = ("gain",)

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, rng_key, shape: Shape, dtype=jnp.float32) -> jax.Array:
        shape = _shape(shape, "Identity")
        if len(shape) < 2:
            raise ValueError(
                "Identity initializer requires at least a 2D shape (rank >= 2), "
                f"got {shape}"
            )
        eye = jnp.broadcast_to(jnp.eye(shape[-2], shape[-1], dtype=dtype), shape)
        return jax.lax.convert_element_type(self.gain, dtype) * eye


zeros = Constant(0.0)
"""Fill with zeros (``init(rng_key, shape, dtype)``; the key is ignored)."""

ones = Constant(1.0)
"""Fill with ones (``init(rng_key, shape, dtype)``; the key is ignored)."""


def glorot_uniform() -> VarianceScaling:
    """``VarianceScaling(1.0, "fan_avg", "uniform")`` (Xavier uniform)."""
    return VarianceScaling(1.0, "fan_avg", "uniform")


def glorot_normal() -> VarianceScaling:
    """``VarianceScaling(1.0, "fan_avg", "truncated_normal")`` (Xavier normal)."""
    return VarianceScaling(1.0, "fan_avg", "truncated_normal")


def lecun_uniform() -> VarianceScaling:
    """``VarianceScaling(1.0, "fan_in", "uniform")``."""
    return VarianceScaling(1.0, "fan_in", "uniform")


def lecun_normal() -> VarianceScaling:
    """``VarianceScaling(1.0, "fan_in", "truncated_normal")``."""
    return VarianceScaling(1.0, "fan_in", "truncated_normal")


def he_uniform() -> VarianceScaling:
    """``VarianceScaling(2.0, "fan_in", "uniform")`` (Kaiming uniform)."""
    return VarianceScaling(2.0, "fan_in", "uniform")


def he_normal() -> VarianceScaling:
    """``VarianceScaling(2.0, "fan_in", "truncated_normal")`` (Kaiming normal)."""
    return VarianceScaling(2.0, "fan_in", "truncated_normal")

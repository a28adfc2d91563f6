"""Helpers shared by the layer families (argument checks, dtypes, errors)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.rng import next_rng_key


def who(module: Any) -> str:
    """How an error names a module: its repr, e.g. ``Linear(in_dim=3, ...)``.

    A string is taken as the name itself, so helpers may be given either the
    module (and name it only when they raise) or a ready-made name."""
    return module if isinstance(module, str) else repr(module)


def rng_key_or_next(rng_key: jax.Array | None) -> jax.Array:
    """``rng_key`` if given, else the next key of the global sequence."""
    return next_rng_key() if rng_key is None else rng_key


@functools.partial(jax.jit, static_argnums=1, inline=True)
def _split_to_tuple(rng_key: jax.Array, num: int) -> tuple[jax.Array, ...]:
    return tuple(jax.random.split(rng_key, num))


def split_key(rng_key: jax.Array, num: int = 2) -> tuple[jax.Array, ...]:
    """``tuple(jax.random.split(rng_key, num))``, the same keys, in one
    dispatch when eager (not a split and then one slicing op per key)."""
    return _split_to_tuple(rng_key, num)


def init_keys(rng_key: jax.Array, inits: Sequence[Any]) -> tuple[jax.Array, ...]:
    """One key per initializer, ``split_key(rng_key, len(inits))``; when every
    initializer is None or a :class:`pax.initializers.Constant` (which ignores
    its key) nothing is split and ``rng_key`` stands for all of them."""
    from ..initializers import Constant

    if all(i is None or type(i) is Constant for i in inits):
        return (rng_key,) * len(inits)
    return split_key(rng_key, len(inits))


def _got(value: Any) -> str:
    """How an argument error shows a value: ``'1e-5' (str)``."""
    return f"{value!r} ({type(value).__name__})"


def positive_int(value: Any, name: str, owner: str) -> int:
    """Check that ``value`` is an int > 0 (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: `{name}` must be a positive int, got {_got(value)}")
    if value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive int, got {value}")
    return int(value)


def real_number(
    value: Any,
    name: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` as a finite Python float, checked against ``[low, high]``
    (``(low, high]`` with ``low_open``); ``TypeError`` for a non-number (bools
    and strings refused), ``ValueError`` for a number out of range. The error
    names ``owner`` and the argument ``name``:

    >>> real_number(0.5, "decay_rate", "BatchNorm", low=0.0, high=1.0)
    0.5
    >>> real_number("1e-5", "eps", "BatchNorm2D", low=0.0, low_open=True)
    Traceback (most recent call last):
    ...
    TypeError: BatchNorm2D: `eps` must be a positive float, got '1e-5' (str)
    """
    if low is not None and high is not None:
        lo = "(" if low_open else "["
        expected = f"a float in {lo}{low:g}, {high:g}]"
    elif low == 0 and low_open:
        expected = "a positive float"
    elif low is not None:
        expected = f"a float {'>' if low_open else '>='} {low:g}"
    else:
        expected = "a finite float"
    is_real = isinstance(value, (int, float, np.integer, np.floating)) or (
        isinstance(value, (np.ndarray, jax.Array))
        and value.ndim == 0
        and (
            jnp.issubdtype(value.dtype, jnp.integer)
            or jnp.issubdtype(value.dtype, jnp.floating)
        )
    )
    if isinstance(value, (bool, np.bool_)) or not is_real:
        raise TypeError(f"{owner}: `{name}` must be {expected}, got {_got(value)}")
    number = float(value)
    if (
        not np.isfinite(number)
        or (low is not None and (number <= low if low_open else number < low))
        or (high is not None and number > high)
    ):
        raise ValueError(f"{owner}: `{name}` must be {expected}, got {value!r}")
    return number


def float_result_dtype(x: Any) -> np.dtype:
    """The dtype a layer that computes in floating point returns for ``x``:
    ``x``'s own dtype if it is floating (or complex), else float32 — integer
    and bool input give float32 output, nothing is truncated back to the
    integer dtype (DESIGN §8 "Integer input"; a mixed-precision policy casts
    the output afterwards).

    >>> float_result_dtype(jnp.ones(2, jnp.uint8)), float_result_dtype(jnp.ones(2))
    (dtype('float32'), dtype('float32'))
    >>> float_result_dtype(jnp.ones(2, jnp.bfloat16))
    dtype(bfloat16)
    """
    dtype = jnp.result_type(x)
    if jnp.issubdtype(dtype, jnp.inexact):
        return dtype
    return jnp.dtype(jnp.float32)


def replicate(value: Any, n: int, name: str, owner: str) -> tuple[int, ...]:
    """An int or a sequence of ``n`` positive ints, as an ``n``-tuple.

    >>> replicate(3, 2, "kernel_shape", "Conv2D")
    (3, 3)
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) != n:
            raise ValueError(
                f"{owner}: `{name}` must be an int or a sequence of length {n}, "
                f"got {value!r}"
            )
    else:
        raise TypeError(
            f"{owner}: `{name}` must be an int or a sequence of length {n}, "
            f"got {value!r}"
        )
    for v in values:
        positive_int(v, name, owner)
    return tuple(int(v) for v in values)


def compute_dtype(x: jax.Array, param: jax.Array) -> Any:
    """The dtype a layer computes in: the input's if floating, else the param's.

    PAX stores parameters in float32 (or what they were created as) and, like
    Haiku, computes in the input's floating dtype, so bfloat16 or float64
    inputs keep their dtype.
    """
    if jnp.issubdtype(x.dtype, jnp.floating) or jnp.issubdtype(
        x.dtype, jnp.complexfloating
    ):
        return x.dtype
    return param.dtype


def check_rank(x: jax.Array, allowed: Sequence[int], owner: Any, what: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is one of ``allowed``; ``owner``
    is the module or its name (see :func:`who`)."""
    if x.ndim not in allowed:
        ranks = " or ".join(str(r) for r in allowed)
        raise ValueError(
            f"{who(owner)}: expected {what} of rank {ranks}, got shape {tuple(x.shape)}"
        )


def as_array(x: Any, owner: Any) -> jax.Array:
    """``jnp.asarray(x)`` with a clear error for non-array input.

    A JAX array (or tracer) is returned as it is, at no cost. ``None``,
    strings, and nested sequences that are not numbers raise a ``TypeError``
    naming ``owner``: the module (named by :func:`who` only when the error is
    raised, so callers need not build the name on every call) or its name:

    >>> as_array(None, "Linear(in_dim=3, out_dim=4)")
    Traceback (most recent call last):
    ...
    TypeError: Linear(in_dim=3, out_dim=4): expected an array input, got NoneType
    """
    if isinstance(x, jax.Array):
        return x
    if x is None or isinstance(x, (str, bytes)):
        raise TypeError(
            f"{who(owner)}: expected an array input, got {type(x).__name__}"
        )
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{who(owner)}: expected an array input, got {type(x).__name__} ({e})"
        ) from e


def norm_dtype(x: jax.Array) -> Any:
    """Normalization layers compute in at least float32 (bf16 in, f32 math)."""
    return jnp.promote_types(x.dtype, jnp.float32)


def broadcast_param(p: jax.Array, ndim: int, axis: int, dtype: Any) -> jax.Array:
    """Reshape a ``[C]`` parameter to broadcast along ``axis`` of a rank-``ndim``
    input (explicit, for strict rank promotion)."""
    shape = [1] * ndim
    shape[axis] = p.shape[0]
    return p.astype(dtype).reshape(shape)


def check_call_affine(module: Any, scale: Any, offset: Any) -> None:
    """Normalization layers: refuse a call-time ``scale``/``offset`` that the
    module already creates itself (Haiku's rule)."""
    for name, given in (("scale", scale), ("offset", offset)):
        if getattr(module, f"create_{name}") and given is not None:
            raise ValueError(
                f"{who(module)}: cannot pass `{name}` at call time if "
                f"`create_{name}=True`"
            )


def affine(own: Any, given: Any, x: jax.Array, axis: int, dtype: Any) -> Any:
    """The scale/offset a normalization layer applies, broadcast to ``x``: its
    own ``[C]`` parameter along ``axis``, else one given at call time, else
    None."""
    if own is not None:
        return jnp.broadcast_to(broadcast_param(own, x.ndim, axis, dtype), x.shape)
    if given is not None:
        return jnp.broadcast_to(jnp.asarray(given, dtype), x.shape)
    return None


def init_affine(
    module: Any,
    create_scale: bool,
    create_offset: bool,
    scale_init: Any,
    offset_init: Any,
    eps: float,
    rng_key: jax.Array | None,
    shape: tuple[int, ...] | None = None,
) -> None:
    """Normalization layers: validate and set ``create_scale``,
    ``create_offset``, ``eps``, ``scale`` (default ones) and ``offset``
    (default zeros), each ``shape`` (default ``[num_channels]``) or None."""
    from ..initializers import ones, zeros

    owner = type(module).__name__
    if not create_scale and scale_init is not None:
        raise ValueError(f"{owner}: cannot set `scale_init` if `create_scale=False`")
    if not create_offset and offset_init is not None:
        raise ValueError(f"{owner}: cannot set `offset_init` if `create_offset=False`")
    module.eps = real_number(eps, "eps", owner, low=0.0, low_open=True)
    module.create_scale = bool(create_scale)
    module.create_offset = bool(create_offset)
    rng_key = rng_key_or_next(rng_key)
    scale_init = (scale_init or ones) if create_scale else None
    offset_init = (offset_init or zeros) if create_offset else None
    s_key, o_key = init_keys(rng_key, (scale_init, offset_init))
    c = (module.num_channels,) if shape is None else tuple(shape)
    module.scale = None if scale_init is None else scale_init(s_key, c, jnp.float32)
    module.offset = None if offset_init is None else offset_init(o_key, c, jnp.float32)

"""Validation of PRNG key arguments (used when a module is constructed)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_rng_key"]

_UINT32 = np.dtype(np.uint32)


def check_rng_key(rng_key: Any, owner: str, name: str = "rng_key") -> None:
    """Raise ``TypeError`` naming ``owner`` unless ``rng_key`` is a PRNG key.

    Accepted: typed keys (``jax.random.key``) and raw keys
    (``jax.random.PRNGKey``: an unsigned integer array whose last axis holds
    the key data), concrete or traced.
    """
    dtype = getattr(rng_key, "dtype", None)
    shape = getattr(rng_key, "shape", None)
    if dtype == _UINT32 and shape:  # the common case: a raw threefry key
        return
    if dtype is not None and shape is not None:
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            return
        if np.issubdtype(dtype, np.unsignedinteger) and len(shape) >= 1:
            return
        got = f"an array of dtype {dtype} and shape {tuple(shape)}"
    else:
        got = f"{rng_key!r} ({type(rng_key).__name__})"
    hint = ""
    if isinstance(rng_key, int) and not isinstance(rng_key, bool):
        hint = f"; to seed, pass `{name}=jax.random.PRNGKey({rng_key})`"
    raise TypeError(
        f"{owner}: `{name}` must be a JAX PRNG key (`jax.random.key(seed)` or "
        f"`jax.random.PRNGKey(seed)`), got {got}{hint}."
    )

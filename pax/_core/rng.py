"""Randomness: a global, seedable key sequence and the ``RngSeq`` module."""

from __future__ import annotations

import threading
import warnings

import jax
import numpy as np

from .keys import check_rng_key
from .module import Module, constructing

try:  # JAX's public hook for "which trace is current" (Haiku uses it too)
    from jax.extend.core import get_opaque_trace_state as _trace_state
except ImportError:  # pragma: no cover - older JAX: no detection
    _trace_state = None

__all__ = [
    "seed_rng_key",
    "next_rng_key",
    "RngSeq",
    "as_rng_key",
    "check_rng_key",
    "TracedRngWarning",
]


class TracedRngWarning(UserWarning):
    """``pax.next_rng_key()`` was called while JAX was tracing a function.

    The key is drawn once, when JAX traces: under ``jax.jit`` / ``lax.scan`` it
    is a constant of the compiled program (every call gets the same
    "randomness"), and under ``jax.vmap`` every element of the batch gets the
    same key. Pass a key into the traced function instead, or carry a
    :class:`pax.RngSeq` as state. Building modules while tracing (for example
    ``jax.eval_shape(lambda: pax.nets.ResNet50(3, 1000))``) does not warn.
    Silence it with ``warnings.filterwarnings("ignore",
    category=pax.TracedRngWarning)``.
    """


_TRACED_MSG = (
    "pax.next_rng_key() was called while JAX was tracing a function "
    "(jax.jit, jax.vmap, lax.scan, ...): the key is drawn once, at trace time, "
    "so it is a constant of the compiled program (the same mask/noise on every "
    "call, and on every element under vmap). Pass a key in as an argument "
    "(e.g. `jax.jit(f)(x, key)` with `key = jax.random.split(key)[0]` per "
    "step), or keep a `pax.RngSeq` in your model's state and draw from it "
    "inside `pax.pure`. Silence with "
    "warnings.filterwarnings('ignore', category=pax.TracedRngWarning)."
)
_DEFAULT_SEED = 42
_lock = threading.Lock()
_state: dict[str, jax.Array | None] = {"key": None}

# The trace state of plain eager evaluation, read when pax is imported.
_EAGER_STATE = None if _trace_state is None else _trace_state(convention="haiku")


def _is_tracing() -> bool:
    """True while JAX traces or transforms a function (not eager evaluation)."""
    if _EAGER_STATE is None:
        return False
    return _trace_state(convention="haiku") != _EAGER_STATE


def seed_rng_key(seed: int) -> None:
    """Reset the global key sequence that :func:`next_rng_key` draws from.

    Same seed, same sequence of keys, so the same model when layers are built
    with ``rng_key=None``. The sequence starts from seed 42 if never seeded.

    >>> import pax
    >>> pax.seed_rng_key(0); a = pax.next_rng_key()
    >>> pax.seed_rng_key(0); b = pax.next_rng_key()
    >>> bool((a == b).all())
    True
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"pax.seed_rng_key expects an int seed, got {seed!r}")
    with _lock, jax.ensure_compile_time_eval():
        _state["key"] = jax.random.PRNGKey(seed)


def next_rng_key() -> jax.Array:
    """Draw the next key of the global sequence (thread-safe).

    Returns:
      A raw ``uint32[2]`` key, usable with every ``jax.random`` function.
      It is a concrete array even when called while JAX traces a function.

    Warns:
      TracedRngWarning: when called while JAX traces a function (``jax.jit``,
        ``jax.vmap``, ``lax.scan``, ...) outside module construction: the key
        is then a constant of the traced program. Building a module while
        tracing (``jax.eval_shape(lambda: pax.Linear(2, 3))``) draws keys
        without a warning.
    """
    if not constructing() and _is_tracing():
        warnings.warn(_TRACED_MSG, TracedRngWarning, stacklevel=2)
    with _lock, jax.ensure_compile_time_eval():
        key = _state["key"]
        if key is None:
            key = jax.random.PRNGKey(_DEFAULT_SEED)
        key, sub = jax.random.split(key)
        _state["key"] = key
    return sub


def as_rng_key(rng_key: jax.Array | None) -> jax.Array:
    """``rng_key`` if given, else the next key of the global sequence."""
    return next_rng_key() if rng_key is None else rng_key


class RngSeq(Module):
    """A module that yields rng keys, carrying its key as (non-trainable) state.

    Drawing a key updates the module, so draw inside :func:`pax.pure`:

    >>> import jax, pax
    >>> seq = pax.RngSeq(seed=1)
    >>> seq, key = pax.module_and_value(seq.next_rng_key)()
    >>> key.shape
    (2,)

    Args:
      seed: integer seed; ignored if ``rng_key`` is given. With neither, the
        key comes from :func:`pax.next_rng_key`.
      rng_key: a raw (``jax.random.PRNGKey``) or typed (``jax.random.key``)
        key.
      name: optional module name.
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if rng_key is None and seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise TypeError(f"RngSeq: `seed` must be an int, got {seed!r}")
            rng_key = jax.random.PRNGKey(seed)
        elif rng_key is None:
            rng_key = next_rng_key()
        self._rng_key = rng_key

    def next_rng_key(self, num_keys: int = 1) -> jax.Array:
        """Return a new key (``num_keys == 1``) or an array of ``num_keys`` keys.

        Mutates the module's key: call it inside :func:`pax.pure`.
        """
        if not isinstance(num_keys, int) or num_keys < 1:
            raise ValueError(
                f"RngSeq.next_rng_key: `num_keys` must be a positive int, "
                f"got {num_keys!r}"
            )
        keys = jax.random.split(self._rng_key, num_keys + 1)
        self._rng_key = keys[0]
        return keys[1] if num_keys == 1 else keys[1:]

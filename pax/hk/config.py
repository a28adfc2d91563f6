"""``hk.config``: Haiku's global options that user code may set.

``rng_reserve_size`` (keys split at a time when ``next_rng_key`` runs out)
and ``module_auto_repr`` take effect; ``check_jax_usage`` and
``restore_flatmap`` are accepted and recorded only.
"""

from __future__ import annotations

import contextlib
import dataclasses


@dataclasses.dataclass
class Config:
    check_jax_usage: bool = False
    module_auto_repr: bool = True
    restore_flatmap: bool = False
    rng_reserve_size: int = 1


_config = Config()


def get_config() -> Config:
    """The current options."""
    return _config


def _apply(**options) -> dict:
    old = {}
    for name, value in options.items():
        if value is None:
            continue
        if not hasattr(_config, name):
            raise TypeError(f"hk.config: unknown option {name!r}")
        if name == "rng_reserve_size" and value <= 0:
            raise ValueError(f"rng_reserve_size must be > 0, got {value}")
        old[name] = getattr(_config, name)
        setattr(_config, name, value)
    return old


def set(**options) -> None:  # noqa: A001 - Haiku's name
    """Set options, e.g. ``hk.config.set(module_auto_repr=False)``."""
    _apply(**options)


@contextlib.contextmanager
def context(**options):
    """Set options inside a ``with`` block only."""
    old = _apply(**options)
    try:
        yield
    finally:
        _apply(**old)

"""``hk.config``: Haiku's global options that user code may set.

* ``check_jax_usage`` (default ``False``): make Haiku APIs with side effects
  (``hk.get_parameter``, ``hk.get_state``, ``hk.set_state``,
  ``hk.next_rng_key``...) raise ``JaxUsageError`` (a ``ValueError``) when
  called inside a raw JAX transform or control-flow function (``jax.jit``,
  ``jax.vmap``, ``jax.lax.cond``...) entered inside the transformed
  function; the ``hk.*`` versions (``hk.vmap``, ``hk.cond``...) stay
  allowed. See ``hk.experimental.check_jax_usage``.
* ``module_auto_repr``: generate ``repr`` of modules from their arguments.
* ``rng_reserve_size``: keys split at a time when ``next_rng_key`` runs out.
* ``restore_flatmap``: accepted and recorded only.

>>> import jax, jax.numpy as jnp, pax.hk as hk
>>> def f(x):
...     w = hk.get_parameter("w", [], init=jnp.ones)
...     return jax.vmap(lambda x: x * w)(x)  # fine: no Haiku call inside
>>> with hk.config.context(check_jax_usage=True):
...     params = hk.transform(f).init(None, jnp.ones([2]))
>>> params["~"]["w"]
Array(1., dtype=float32)
"""

from __future__ import annotations

__all__ = ["Config", "get_config", "set", "context"]

import contextlib
import dataclasses


@dataclasses.dataclass
class Config:
    """``pax.hk``'s global switches, as ``haiku.config``'s fields.

    Read them with ``hk.config.get_config()``; change them for a block with
    ``hk.config.context(check_jax_usage=True)``.

    >>> import pax.hk as hk
    >>> hk.config.get_config().check_jax_usage
    False
    """

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
    """Set options, e.g. ``hk.config.set(module_auto_repr=False)``.

    Options: ``check_jax_usage``, ``module_auto_repr``, ``restore_flatmap``,
    ``rng_reserve_size`` (see the module docstring); ``None`` leaves one
    unchanged.
    """
    _apply(**options)


@contextlib.contextmanager
def context(**options):
    """Set options inside a ``with`` block only.

    >>> import pax.hk as hk
    >>> with hk.config.context(check_jax_usage=True):
    ...     hk.config.get_config().check_jax_usage
    True
    >>> hk.config.get_config().check_jax_usage
    False
    """
    old = _apply(**options)
    try:
        yield
    finally:
        _apply(**old)

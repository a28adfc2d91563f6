"""Exceptions raised by the PAX core."""

from __future__ import annotations

__all__ = ["MutationError", "LeakedTracerError", "UnknownAttributeError"]


class MutationError(AttributeError):
    """Raised when a module is modified outside ``pax.pure``.

    PAX modules are immutable once ``__init__`` returns. A method that updates
    state (a counter, BatchNorm statistics, a dropout key) must run on a copy
    inside :func:`pax.pure` or :func:`pax.purecall`; a one-off change is a
    functional update with ``module.replace(...)``.
    """


class UnknownAttributeError(AttributeError, ValueError):
    """Raised by ``Module.replace`` for an attribute the module does not have.

    It is both an ``AttributeError`` (the attribute does not exist) and a
    ``ValueError`` (the argument is invalid).
    """


class LeakedTracerError(ValueError):
    """Raised when a module leaves ``pax.pure`` holding a dead JAX tracer.

    This happens when the pure function runs a JAX transformation (``jax.jit``,
    ``jax.grad``, ...) inside itself and stores a value computed *inside* that
    transformation on a module, instead of returning it from the transformed
    function.
    """


# Exported as ``pax.MutationError`` etc.: tracebacks and reprs name them so.
for _cls in (MutationError, UnknownAttributeError, LeakedTracerError):
    _cls.__module__ = "pax"
del _cls

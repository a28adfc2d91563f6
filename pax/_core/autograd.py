"""Gradients with respect to a module's trainable parameters."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

from .module import Module

__all__ = ["grad", "value_and_grad"]


def _check_module(fn_name: str, module: Any) -> None:
    if not isinstance(module, Module):
        raise TypeError(
            f"pax.{fn_name}: the function's first argument must be a pax.Module "
            f"(the one to differentiate), got {type(module).__name__}."
        )


def value_and_grad(
    f: Callable[..., Any], has_aux: bool = False
) -> Callable[..., tuple[Any, Any]]:
    """Like ``jax.value_and_grad``, with respect to the trainable parameters of
    ``f``'s first argument, a module.

    ``f(module, *args, **kwargs)`` must return a scalar (or ``(scalar, aux)``
    with ``has_aux=True``). The gradient has the structure of
    ``module.parameters()``: a module of the same type whose non-trainable
    leaves (BatchNorm statistics, rng keys, counters) are ``None``. Other
    arguments are not differentiated.

    Returns:
      ``g(module, *args, **kwargs) -> (value, grads)``, where ``value`` is
      ``f``'s output (``(loss, aux)`` with ``has_aux``).

    >>> import jax, jax.numpy as jnp, pax
    >>> fc = pax.Linear(2, 1, rng_key=jax.random.PRNGKey(0))
    >>> loss, grads = pax.value_and_grad(lambda m, x: m(x).sum())(fc, jnp.ones((3, 2)))
    >>> type(grads).__name__, grads.weight.shape
    ('Linear', (2, 1))
    """

    @functools.wraps(f)
    def wrapper(module, *args, **kwargs):
        _check_module("value_and_grad", module)

        def of_params(params):
            return f(module.update_parameters(params), *args, **kwargs)

        return jax.value_and_grad(of_params, has_aux=has_aux)(module.parameters())

    return wrapper


def grad(f: Callable[..., Any], has_aux: bool = False) -> Callable[..., Any]:
    """Like ``jax.grad``, with respect to the trainable parameters of ``f``'s
    first argument (see :func:`value_and_grad`).

    Returns:
      ``g(module, *args, **kwargs) -> grads`` (``(grads, aux)`` with
      ``has_aux``), ``grads`` shaped like ``module.parameters()``.

    >>> import jax, jax.numpy as jnp, pax
    >>> bn = pax.BatchNorm1D(2)
    >>> g = pax.grad(lambda m, x: m.eval()(x).sum())(bn, jnp.ones((1, 3, 2)))
    >>> g.offset, g.mean_ema.averages is None
    (Array([3., 3.], dtype=float32), True)
    """

    value_and_grad_f = value_and_grad(f, has_aux=has_aux)

    @functools.wraps(f)
    def wrapper(module, *args, **kwargs):
        value, grads = value_and_grad_f(module, *args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return wrapper

"""``pax.utils``: training-loop helpers built on the core."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from ._core.autograd import value_and_grad
from ._core.module import Module
from ._core.pure import pure, purecall
from .optim import apply_updates

__all__ = ["build_update_fn", "scan"]

_LOSS_FN_CONTRACT = (
    "pax.utils.build_update_fn: `loss_fn(model, *inputs)` must return "
    "`(loss, (aux, model))` — a scalar loss, then a pair of anything you want "
    "back and the (possibly updated) model, e.g.\n"
    "    def loss_fn(model, x, y):\n"
    "        model, logits = pax.purecall(model, x)\n"
    "        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()\n"
    "        return loss, (loss, model)\n"
)


def build_update_fn(loss_fn: Callable[..., Any]) -> Callable[..., Any]:
    """Build ``update_fn(model, optimizer, *inputs) -> (model, optimizer, aux)``.

    One training step: gradients of ``loss_fn`` with respect to the model's
    trainable parameters (:func:`pax.value_and_grad`), optimizer update (any
    :func:`pax.optim.from_optax` optimizer), parameters updated on the model
    returned by ``loss_fn`` (so state changes made in the forward pass, such as
    BatchNorm statistics, are kept). The result is pure: wrap it in
    ``jax.jit``.

    Args:
      loss_fn: ``loss_fn(model, *inputs) -> (loss, (aux, model))``.

    Raises:
      TypeError: at trace time, if ``loss_fn`` returns anything else.

    >>> import jax, jax.numpy as jnp, optax, pax
    >>> def loss_fn(model, x, y):
    ...     loss = jnp.mean((model(x) - y) ** 2)
    ...     return loss, (loss, model)
    >>> model = pax.Linear(1, 1, rng_key=jax.random.PRNGKey(0))
    >>> opt = pax.optim.from_optax(optax.sgd(0.1), model.parameters())
    >>> update_fn = jax.jit(pax.utils.build_update_fn(loss_fn))
    >>> x = jnp.ones((4, 1)); y = 3 * x
    >>> for _ in range(50):
    ...     model, opt, loss = update_fn(model, opt, x, y)
    >>> bool(loss < 1e-3)
    True
    """

    def checked_loss(model, *inputs):
        out = loss_fn(model, *inputs)
        if not (
            isinstance(out, tuple)
            and len(out) == 2
            and isinstance(out[1], tuple)
            and len(out[1]) == 2
            and isinstance(out[1][1], Module)
        ):
            raise TypeError(_LOSS_FN_CONTRACT + f"got {_describe(out)}.")
        if type(out[1][1]) is not type(model):
            raise TypeError(
                _LOSS_FN_CONTRACT
                + f"the returned model is a {type(out[1][1]).__name__}, the input "
                f"model a {type(model).__name__}."
            )
        return out

    grad_fn = value_and_grad(checked_loss, has_aux=True)

    def update_fn(model, optimizer, *inputs):
        (_, (aux, new_model)), grads = grad_fn(model, *inputs)
        optimizer, updates = purecall(optimizer, grads, model.parameters())
        return apply_updates(new_model, updates), optimizer, aux

    return update_fn


def _describe(out: Any) -> str:
    if isinstance(out, tuple):
        return "a tuple of (" + ", ".join(type(x).__name__ for x in out) + ")"
    return f"a {type(out).__name__}"


def scan(
    fn: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any,
    length: int | None = None,
    reverse: bool = False,
    unroll: int = 1,
) -> tuple[Any, Any]:
    """``jax.lax.scan`` where ``fn(carry, x) -> (carry, y)`` may update modules
    in the carry in place.

    ``fn`` runs under :func:`pax.pure`: modules in ``carry`` (and ``x``) are
    mutable copies inside it, so stateful calls (BatchNorm in training mode, a
    counter, an ``RngSeq``) need no ``purecall``; return the carry as usual.

    >>> import jax.numpy as jnp, pax
    >>> bn = pax.BatchNorm(2)
    >>> def step(bn, x):
    ...     return bn, bn(x)          # a training-mode call: updates `bn`
    >>> bn, ys = pax.utils.scan(step, bn, jnp.ones((5, 3, 2)))
    >>> int(bn.mean_ema.counter), ys.shape
    (5, (5, 3, 2))
    """
    return jax.lax.scan(
        pure(fn), init, xs, length=length, reverse=reverse, unroll=unroll
    )

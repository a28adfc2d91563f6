"""``pax.optim``: optax optimizers as PAX modules, and ``apply_updates``.

No optimizer math lives here: optax computes every update. The module only
carries optax's state so that it travels through ``jax.jit``, ``pax.pure`` and
``pax.save`` like any other module.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from ._core.frozen import thaw
from ._core.module import Module

__all__ = ["OptaxOptimizer", "from_optax", "apply_updates"]


class OptaxOptimizer(Module):
    """An optax ``GradientTransformation`` and its state, as a module.

    Build it with :func:`from_optax`. Calling it updates the state, so call it
    through ``pax.purecall``:

    >>> import jax, jax.numpy as jnp, optax, pax
    >>> fc = pax.Linear(2, 1, rng_key=jax.random.PRNGKey(0))
    >>> opt = pax.optim.from_optax(optax.sgd(0.1), fc.parameters())
    >>> grads = pax.grad(lambda m: m(jnp.ones((1, 2))).sum())(fc)
    >>> opt, updates = pax.purecall(opt, grads, fc.parameters())
    >>> fc = pax.apply_updates(fc, updates)

    Attributes:
      transformation: the optax ``GradientTransformation`` (static).
      state: optax's state for the parameters (non-trainable leaves).
    """

    def __init__(
        self,
        transformation: optax.GradientTransformation,
        params: Any,
        *,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if not (hasattr(transformation, "init") and hasattr(transformation, "update")):
            raise TypeError(
                "pax.optim.from_optax: expected an optax GradientTransformation "
                f"(with `init` and `update`), got {type(transformation).__name__}"
            )
        self.transformation = transformation
        self.state = transformation.init(params)

    def __call__(self, grads: Any, params: Any = None) -> Any:
        """Return optax's updates for ``grads`` (and ``params``, which some
        transformations such as ``adamw`` need); updates ``state``."""
        # The module holds its state's dicts/lists frozen; optax compares the
        # state's structure with the gradients', which hold plain ones.
        updates, self.state = self.transformation.update(
            grads, thaw(self.state), params
        )
        return updates


def from_optax(
    transformation: optax.GradientTransformation, params: Any
) -> OptaxOptimizer:
    """Wrap any optax ``GradientTransformation`` for ``params``.

    Args:
      transformation: e.g. ``optax.adam(1e-3)``, ``optax.chain(...)``, with
        schedules, masks, clipping: anything optax accepts.
      params: the parameters it will update, usually ``model.parameters()``.

    Returns:
      An :class:`OptaxOptimizer`; ``opt, updates = pax.purecall(opt, grads,
      params)``.
    """
    return OptaxOptimizer(transformation, params)


def _is_none(x: Any) -> bool:
    return x is None


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype.

    ``params`` may be the parameters (``model.parameters()``) or the whole
    model: ``None`` leaves in ``updates`` (non-trainable state) keep the
    model's values, so ``model = pax.apply_updates(model, updates)`` works.
    Raises ``ValueError`` naming the first differing path if the structures
    do not line up.
    """
    p_leaves, treedef = jax.tree_util.tree_flatten(params, is_leaf=_is_none)
    u_leaves, u_treedef = jax.tree_util.tree_flatten(updates, is_leaf=_is_none)
    if treedef != u_treedef:
        p_keys = _paths(params)
        u_keys = _paths(updates)
        if p_keys != u_keys:
            for i, (a, b) in enumerate(zip(p_keys + ["-"], u_keys + ["-"])):
                if a != b:
                    raise ValueError(
                        f"pax.apply_updates: `params` and `updates` differ at leaf "
                        f"{i}: `{a}` vs `{b}`"
                    )
    new = [
        p if u is None or p is None else (p + u).astype(p.dtype)
        for p, u in zip(p_leaves, u_leaves)
    ]
    return jax.tree_util.tree_unflatten(treedef, new)


def _paths(tree: Any) -> list[str]:
    pairs = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_none)[0]
    return [jax.tree_util.keystr(k) for k, _ in pairs]

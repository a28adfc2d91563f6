"""``pax.hk.to_pax``: a transformed Haiku function with its parameters and
state, as one ``pax.Module`` (trainable params, non-trainable state)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax

from .. import Module, parameters_method
from ._transform import (
    MultiTransformed,
    MultiTransformedWithState,
    Transformed,
    TransformedWithState,
)


def _plain(tree: Mapping | None) -> dict:
    return {m: dict(values) for m, values in (tree or {}).items()}


class HaikuModule(Module):
    """A Haiku program as a PAX module (see :func:`to_pax`).

    Trainable: ``params`` (the Haiku params dict). State: ``state`` (the Haiku
    state dict) and ``rng_key`` (when given). Calling it runs ``apply``; when
    the program has state or draws random keys the call changes the module,
    so make it with ``model, out = pax.purecall(model, *args)``.
    """

    parameters = parameters_method("params")

    def __init__(
        self,
        transformed: Transformed | TransformedWithState,
        params: Mapping,
        state: Mapping | None = None,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if isinstance(transformed, (MultiTransformed, MultiTransformedWithState)):
            raise TypeError(
                "to_pax takes one transformed function; for multi_transform pass "
                "each apply separately"
            )
        if not isinstance(transformed, (Transformed, TransformedWithState)):
            raise TypeError(
                "to_pax expects the result of hk.transform / "
                f"hk.transform_with_state, got {type(transformed).__name__}"
            )
        self.apply_fn = transformed.apply
        self.with_state = isinstance(transformed, TransformedWithState)
        if state and not self.with_state:
            raise ValueError(
                "to_pax: state given for a function transformed without state "
                "(use hk.transform_with_state)"
            )
        self.params = _plain(params)
        self.state = _plain(state) if self.with_state else None
        self.rng_key = rng_key

    def __repr__(self) -> str:
        count = len(jax.tree_util.tree_leaves(self.params))
        modules = ", ".join(list(self.params)[:3]) + (
            ", ..." if len(self.params) > 3 else ""
        )
        return (
            f"HaikuModule(params: {count} arrays in [{modules}], "
            f"with_state={self.with_state})"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        rng = None
        if self.rng_key is not None:
            self.rng_key, rng = jax.random.split(self.rng_key)
        if not self.with_state:
            return self.apply_fn(self.params, rng, *args, **kwargs)
        out, state = self.apply_fn(self.params, self.state, rng, *args, **kwargs)
        if jax.tree_util.tree_leaves(state):
            self.state = _plain(state)
        return out


def to_pax(
    transformed: Transformed | TransformedWithState,
    params: Mapping,
    state: Mapping | None = None,
    *,
    rng_key: jax.Array | None = None,
) -> HaikuModule:
    """Wrap a transformed Haiku function and its params (and state) as a
    ``pax.Module``: ``pax.grad`` differentiates the params, optax trains them
    through ``pax.optim``, ``pax.save`` checkpoints them.

    >>> import jax, jax.numpy as jnp, pax, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Linear(2)(x))
    >>> params = f.init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    >>> model = hk.to_pax(f, params)
    >>> model(jnp.ones((1, 3))).shape
    (1, 2)
    >>> grads = pax.grad(lambda m, x: m(x).sum())(model, jnp.ones((1, 3)))
    >>> grads.params["linear"]["w"].shape
    (3, 2)
    """
    return HaikuModule(transformed, params, state, rng_key=rng_key)

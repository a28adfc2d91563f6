"""Whole-module transformations: freezing, selecting parameters, modes."""

from __future__ import annotations

from typing import TypeVar

import jax

from .module import Module, _get_spec, _new_like, _paths

__all__ = [
    "freeze_parameters",
    "unfreeze_parameters",
    "select_parameters",
    "enable_train_mode",
    "enable_eval_mode",
]

M = TypeVar("M", bound=Module)


def _set_frozen(module: Module, frozen: bool) -> Module:
    d = dict(module.__dict__)
    spec = _get_spec(module)
    if frozen:
        d["_pax_frozen"] = True
        spec = spec.with_attr("_pax_frozen", True)
    elif "_pax_frozen" in d:
        del d["_pax_frozen"]
        spec = spec.without_attr("_pax_frozen")
    else:
        return module
    return _new_like(module, d, spec)


def _require_module(fn_name: str, module: object) -> None:
    if not isinstance(module, Module):
        raise TypeError(
            f"pax.{fn_name} expects a pax.Module, got {type(module).__name__}."
        )


def freeze_parameters(module: M) -> M:
    """A copy in which no parameter is trainable, at any depth.

    ``frozen.parameters()`` then has only ``None`` leaves. Use it for
    fine-tuning: freeze a pretrained body, then put new (trainable) layers
    next to it.

    >>> import jax.numpy as jnp, pax
    >>> class W(pax.ParameterModule):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = jnp.ones((2,))
    >>> print(pax.freeze_parameters(W()).parameters().w)
    None
    """
    _require_module("freeze_parameters", module)
    return module.apply(lambda m: _set_frozen(m, True))


def unfreeze_parameters(module: M, origin: M | None = None) -> M:
    """Undo :func:`freeze_parameters`.

    Args:
      module: a frozen module (or one with frozen parts).
      origin: optional; the module before freezing. If given, the result has
        ``origin``'s classification of trainable parameters at every level
        (parts that were frozen in ``origin`` stay frozen) and ``module``'s
        current values. If omitted, every part is unfrozen.

    Raises:
      ValueError: ``origin`` has a different structure (first differing path
        named).
    """
    _require_module("unfreeze_parameters", module)
    if origin is None:
        return module.apply(lambda m: _set_frozen(m, False))
    _require_module("unfreeze_parameters", origin)
    leaves = jax.tree_util.tree_leaves(module)
    mine = _paths(module, none_is_leaf=False)
    theirs = _paths(origin, none_is_leaf=False)
    if mine != theirs:
        for i, (a, b) in enumerate(zip(mine + ["<nothing>"], theirs + ["<nothing>"])):
            if a != b:
                raise ValueError(
                    "pax.unfreeze_parameters: `origin` does not match the module "
                    f"at leaf {i}: module has `{a}`, origin has `{b}`."
                )
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(origin), leaves)


def select_parameters(module: M) -> M:
    """``module.parameters()``: trainable leaves kept, the rest ``None``."""
    _require_module("select_parameters", module)
    return module.parameters()


def enable_train_mode(module: M) -> M:
    """``module.train()``: a copy with every submodule in training mode."""
    _require_module("enable_train_mode", module)
    return module.train()


def enable_eval_mode(module: M) -> M:
    """``module.eval()``: a copy with every submodule in evaluation mode."""
    _require_module("enable_eval_mode", module)
    return module.eval()

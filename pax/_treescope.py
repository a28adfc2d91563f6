"""Treescope rendering of ``pax.Module`` (``Module.__treescope_repr__``).

A module renders in constructor form, ``Linear(in_dim=2, ..., weight=...,
bias=...)``: its static attributes (sizes, flags, functions), then its arrays
and submodules, each under its real attribute name (so treescope's copyable
paths are ``module.layers[0].weight``). Arrays render as treescope summarises
them (dtype, shape, statistics; values fold away). Each array attribute is
marked at the end of its line: ``# trainable`` for what
:meth:`pax.Module.parameters` keeps, ``# state`` for everything else (batch-norm
statistics, rng keys, counters, frozen parameters), and its name is coloured
(blue for trainable, orange for state) in the HTML view.

``treescope`` is an optional dependency (``pip install pax-jax[inspect]``); it
is imported only when treescope itself asks a module to render.
"""

from __future__ import annotations

from typing import Any

import jax

from ._core.module import Module, _get_spec, is_module

# attribute names not shown: pax bookkeeping, and ``_training`` (shown as
# ``training=False`` in eval mode: the ``training`` property reads it)
_HIDDEN = frozenset({"_pax_repr", "_pax_frozen", "_training", "_pax_tie"})
_TRAINABLE_COLOR = "#1f6fb5"
_STATE_COLOR = "#b5651d"


def _array_leaves(value: Any, keep_none: bool = False) -> list:
    leaves = jax.tree_util.tree_leaves(
        value, is_leaf=lambda x: is_module(x) or (keep_none and x is None)
    )
    return [x for x in leaves if not isinstance(x, Module)]


def _kind(value: Any, params_value: Any) -> str | None:
    """``"trainable"``, ``"state"`` or ``"trainable+state"`` for an attribute
    holding arrays (None if it holds none of its own)."""
    if isinstance(value, Module):
        return None
    mine = [
        x
        for x in _array_leaves(value, keep_none=True)
        if hasattr(x, "shape") and hasattr(x, "dtype")
    ]
    if not mine:
        return None
    theirs = _array_leaves(params_value, keep_none=True)
    mine_all = _array_leaves(value, keep_none=True)
    if len(theirs) != len(mine_all):
        return "state"
    flags = {
        p is not None
        for x, p in zip(mine_all, theirs)
        if hasattr(x, "shape") and hasattr(x, "dtype")
    }
    if flags == {True}:
        return "trainable"
    if flags == {False}:
        return "state"
    return "trainable+state"


def _attributes(module: Module) -> list[tuple[str, Any, str | None]]:
    """``(name, value, kind)`` for every attribute shown, in attribute order."""
    d = module.__dict__
    spec = _get_spec(module)
    children = set(spec.child_names) if spec is not None else set()
    try:
        params = module.parameters()
    except Exception:  # noqa: BLE001 - a broken ``parameters`` marks nothing
        params = None
    out = []
    for name, value in d.items():
        if name in _HIDDEN or (name == "name" and value is None):
            continue
        kind = None
        if name in children:
            p_value = params.__dict__.get(name) if isinstance(params, Module) else None
            kind = _kind(value, p_value)
        out.append((name, value, kind))
    if not d.get("_training", True):
        out.append(("training", False, None))
    return out


def render(module: Module, path: str | None, subtree_renderer: Any) -> Any:
    """The treescope rendering of ``module`` (see the module docstring)."""
    from treescope import formatting_util, rendering_parts

    attributes = _attributes(module)
    children = []
    for i, (name, value, kind) in enumerate(attributes):
        child_path = None if path is None else f"{path}.{name}"
        if i < len(attributes) - 1:
            comma = rendering_parts.siblings(
                ",",
                rendering_parts.fold_condition(collapsed=rendering_parts.text(" ")),
            )
        else:
            comma = rendering_parts.fold_condition(expanded=rendering_parts.text(","))
        label: Any = rendering_parts.text(f"{name}=")
        extra = []
        if kind is not None:
            color = _STATE_COLOR if kind == "state" else _TRAINABLE_COLOR
            label = rendering_parts.custom_text_color(label, color)
            extra.append(
                rendering_parts.comment_color(rendering_parts.text(f"  # {kind}"))
            )
        line = rendering_parts.siblings_with_annotations(
            label,
            subtree_renderer(value, path=child_path),
            comma,
            extra_annotations=extra,
        )
        children.append(rendering_parts.build_full_line_with_annotations(line))

    cls = type(module)
    prefix = rendering_parts.siblings(
        rendering_parts.roundtrip_condition(roundtrip=rendering_parts.text("<")),
        rendering_parts.maybe_qualified_type_name(cls),
        "(",
    )
    suffix = rendering_parts.siblings(
        ")",
        rendering_parts.roundtrip_condition(roundtrip=rendering_parts.text(">")),
    )
    return rendering_parts.build_foldable_tree_node_from_children(
        prefix=prefix,
        children=children,
        suffix=suffix,
        path=path,
        background_color=formatting_util.color_from_string(cls.__qualname__),
        # a module that holds arrays starts expanded (so the markers, line
        # comments, show) unless the layout needs the room
        expand_state=(
            rendering_parts.ExpandState.WEAKLY_EXPANDED
            if any(kind is not None for _, _, kind in attributes)
            else rendering_parts.ExpandState.WEAKLY_COLLAPSED
        ),
    )

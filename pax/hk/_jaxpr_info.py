"""``hk.experimental.jaxpr_info``: which Haiku module each JAX operation of a
function belongs to, with parameter counts and (optionally) flop estimates.

`make_model_info` traces a function with `jax.make_jaxpr` and walks the
resulting jaxpr. Every `hk.Module` method runs under `jax.named_call` with the
module's local name, so each equation's name stack
(``eqn.source_info.name_stack``, an attribute of the public
`jax.extend.core.JaxprEqn`) says which modules it ran in: equations are grouped
into a tree of `Module` records, one per name scope. Call-like equations with
a jaxpr of their own (``jit``, ``scan``, ``while``, ``custom_jvp_call``, ...)
become nested `Module` records named after the call. Parameter and state
counts come from `hk.experimental.eval_summary`.

`format_module` renders the tree as indented text; `as_html` /
`as_html_page` as a collapsible HTML tree.

Only the public `jax.extend.core` objects returned by `jax.make_jaxpr` are
read; nothing from ``jax._src``.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
from jax.extend import core as jex_core

from . import _summarise

__all__ = [
    "Expression",
    "Module",
    "as_html",
    "as_html_page",
    "css",
    "format_module",
    "js",
    "make_model_info",
]


@dataclasses.dataclass
class Module:
    """A Haiku module (or name scope, or nested call) and what runs in it.

    Attributes:
      name: the module's local name (``"conv2_d"``), or the call's label
        (``"scan length=3 unroll=1"``, a ``jit``'s function name).
      flops: estimated flops of everything inside, sub-modules included
        (``None`` unless `make_model_info` got ``compute_flops``).
      expressions: the operations directly inside, in program order; those
        with a ``submodule`` stand for nested modules.
      total_param_size: number of parameter elements the module (with its
        sub-modules) owns.
      param_info: parameter shapes by name relative to the module
        (``"./w": "f32[3,4]"``).
      total_state_size: like ``total_param_size``, for Haiku state.
      state_info: like ``param_info``, for Haiku state.
    """

    name: str
    flops: int | None = None
    expressions: list[Expression] = dataclasses.field(default_factory=list)
    total_param_size: int = 0
    param_info: dict[str, str] = dataclasses.field(default_factory=dict)
    total_state_size: int = 0
    state_info: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Expression:
    """One JAX operation (a jaxpr equation), or a nested module.

    Attributes:
      primitive: the primitive's name (``"add"``, ``"conv_general_dilated"``);
        ``"name_scope"`` for a module grouping.
      invars: space-separated input names (``"a b"``, literals as written by
        JAX), or ``"<n> inputs"`` when there are 10 or more.
      outvars: space-separated output names, shortened the same way.
      flops: estimated flops (``None`` unless ``compute_flops`` was given).
      details: input and output types, ``"in f32[2,3], out f32[2,4]"``.
      params: the equation's parameters, as strings.
      submodule: for a module or a call with a jaxpr of its own, its contents.
      first_outvar: the first output's name (orders expressions).
      name_stack: the Haiku module scopes the operation ran in, outermost
        first (``["my_model", "conv2_d"]``).
    """

    primitive: str
    invars: str
    outvars: str
    flops: int | None = None
    details: str = ""
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    submodule: Module | None = None
    first_outvar: str = ""
    name_stack: Sequence[str] = dataclasses.field(default_factory=list)


ComputeFlopsFn = Callable[[jex_core.JaxprEqn, Expression], int]


# ---------------------------------------------------------------------------
# naming variables and types
# ---------------------------------------------------------------------------


def _letters(index: int) -> str:
    """``0 -> 'a'``, ``25 -> 'z'``, ``26 -> 'ba'``: JAX's way of naming vars."""
    digits = []
    while True:
        index, digit = divmod(index, 26)
        digits.append(chr(ord("a") + digit))
        if not index:
            return "".join(reversed(digits))


def _order_key(name: str) -> tuple[int, str]:
    """Sort key putting var names in binding order, dropped outputs last."""
    return (1000 if name == "_" else len(name), name)


def _atom_name(atom: Any, numbering: Mapping[Any, int]) -> str:
    if isinstance(atom, jex_core.DropVar):
        return "_"
    if isinstance(atom, jex_core.Literal):
        return str(atom)
    return _letters(numbering[atom])


def _type_name(atom: Any) -> str:
    aval = atom.aval
    short = getattr(aval, "str_short", None)
    if short is not None:
        return short().replace("float", "f")
    return str(aval)


def _shorten(names: list[str], many: str) -> str:
    return " ".join(names) if len(names) < 10 else many


# ---------------------------------------------------------------------------
# name stacks
# ---------------------------------------------------------------------------

# Transformation wrappers JAX puts around a scope name: ``jvp(my_model)``.
_WRAPPED = re.compile(r"^(?:\w+\()*(.*?)\)*$")


def _is_native_scope(component: str) -> bool:
    """A scope PAX's own layers (`pax.nn`) open around their computation."""
    match = _WRAPPED.match(component)
    inner = match.group(1) if match else component
    return inner.startswith("pax.")


def _module_scopes(eqn: jex_core.JaxprEqn) -> list[str]:
    """The name scopes ``eqn`` ran in, outermost first.

    `pax.hk` layers are built on `pax.nn` modules, which open a scope of their
    own (``pax.nn.ConvND``). Inside a Haiku module that scope is an
    implementation detail, so it is left out: operations belong to the Haiku
    module, as they do in Haiku.
    """
    source_info = getattr(eqn, "source_info", None)
    text = str(getattr(source_info, "name_stack", "") or "")
    scopes = []
    for component in text.split("/") if text else []:
        if scopes and _is_native_scope(component):
            continue
        scopes.append(component)
    return scopes


# ---------------------------------------------------------------------------
# walking a jaxpr
# ---------------------------------------------------------------------------


def _unwrap(jaxpr: Any) -> jex_core.Jaxpr:
    """The open `Jaxpr` of a `ClosedJaxpr` (or the jaxpr itself)."""
    return jaxpr.jaxpr if isinstance(jaxpr, jex_core.ClosedJaxpr) else jaxpr


def _nested_call(eqn: jex_core.JaxprEqn) -> tuple[str, jex_core.Jaxpr, int] | None:
    """``(label, jaxpr, times it runs)`` for call-like equations, else None."""
    name, params = eqn.primitive.name, eqn.params
    if name in ("jit", "pjit", "closed_call", "core_call", "named_call", "xla_call"):
        inner = params.get("jaxpr", params.get("call_jaxpr"))
        return str(params.get("name", name)), _unwrap(inner), 1
    if name in ("custom_jvp_call", "custom_vjp_call"):
        return name.removesuffix("_call"), _unwrap(params["call_jaxpr"]), 1
    if name in ("custom_jvp_call_jaxpr", "custom_vjp_call_jaxpr"):
        return name.removesuffix("_call_jaxpr"), _unwrap(params["fun_jaxpr"]), 1
    if name in ("checkpoint", "remat", "remat2"):
        return "remat", _unwrap(params["jaxpr"]), 1
    if name == "scan":
        label = f"scan length={params['length']} unroll={params['unroll']}"
        # The body jaxpr is one step, whatever the unrolling.
        return label, _unwrap(params["jaxpr"]), int(params["length"])
    if name == "while":
        # The condition is not shown; the trip count is unknown.
        return "while", _unwrap(params["body_jaxpr"]), 1
    if name == "shard_map":
        mesh = params.get("mesh")
        return "shard_map", _unwrap(params["jaxpr"]), int(getattr(mesh, "size", 1))
    if name in ("xla_pmap", "remat_call"):
        return f"{name} {params['name']}", _unwrap(params["call_jaxpr"]), 1
    return None


def _live_eqns(jaxpr: jex_core.Jaxpr) -> list[jex_core.JaxprEqn]:
    """The equations that contribute to the outputs, in program order."""
    needed = {v for v in jaxpr.outvars if isinstance(v, jex_core.Var)}
    live = []
    for eqn in reversed(jaxpr.eqns):
        if any(v in needed for v in eqn.outvars):
            live.append(eqn)
            needed.update(v for v in eqn.invars if isinstance(v, jex_core.Var))
    live.reverse()
    return live


def _walk(
    jaxpr: jex_core.Jaxpr, compute_flops: ComputeFlopsFn | None, module: Module
) -> int | None:
    """Fill ``module.expressions`` from ``jaxpr``; return its total flops."""
    binders = [*jaxpr.constvars, *jaxpr.invars]
    binders += [v for eqn in jaxpr.eqns for v in eqn.outvars]
    numbering = {v: i for i, v in enumerate(binders)}

    total = None if compute_flops is None else 0
    for eqn in _live_eqns(jaxpr):
        outvars = sorted(
            (_atom_name(v, numbering) for v in eqn.outvars), key=_order_key
        )
        invars = [_atom_name(v, numbering) for v in eqn.invars]
        expression = Expression(
            primitive=eqn.primitive.name,
            invars=_shorten(invars, f"{len(invars)} inputs"),
            outvars=_shorten(outvars, f"{outvars[0]}, {len(outvars) - 1} more outputs"),
            first_outvar=outvars[0],
            name_stack=_module_scopes(eqn),
        )
        nested = _nested_call(eqn)
        if nested is not None:
            label, inner, times = nested
            expression.submodule = Module(name=label)
            flops = _walk(inner, compute_flops, expression.submodule)
            if flops is not None:
                flops *= times
            expression.submodule.flops = flops
            expression.flops = flops
            if flops is None or flops > 0:
                module.expressions.append(expression)
        else:
            parts = []
            if eqn.invars:
                parts.append("in " + ", ".join(_type_name(v) for v in eqn.invars))
            if eqn.outvars:
                parts.append("out " + ", ".join(_type_name(v) for v in eqn.outvars))
            expression.details = ", ".join(parts)
            expression.params = {k: str(v) for k, v in eqn.params.items()}
            flops = None if compute_flops is None else compute_flops(eqn, expression)
            expression.flops = flops
            module.expressions.append(expression)
        if total is not None:
            total += flops or 0
    module.expressions.sort(key=lambda e: _order_key(e.first_outvar))
    module.flops = total
    return total


def _group_by_scope(module: Module) -> None:
    """Nest ``module``'s expressions into one `Module` per name scope."""
    flat = list(module.expressions)
    module.expressions.clear()
    if module.flops:
        module.flops = 0  # summed again below
    open_scopes = [module]
    for expression in flat:
        if expression.submodule is not None:
            _group_by_scope(expression.submodule)
        scopes = list(expression.name_stack)
        del open_scopes[len(scopes) + 1 :]
        for depth, scope in enumerate(scopes, start=1):
            if depth < len(open_scopes) and open_scopes[depth].name != scope:
                del open_scopes[depth:]
            if depth == len(open_scopes):
                child = Module(name=scope)
                open_scopes[-1].expressions.append(
                    Expression(
                        primitive="name_scope",
                        invars="",
                        outvars="",
                        submodule=child,
                    )
                )
                open_scopes.append(child)
        open_scopes[-1].expressions.append(expression)
        if expression.flops:
            for scope_module in open_scopes:
                scope_module.flops = (scope_module.flops or 0) + expression.flops


def _relative(key: str, prefix: str) -> str:
    key = key.replace("/~/", "/")
    return "." + key[len(prefix) :] if key.startswith(prefix) else key


def _add_sizes(
    module: Module, path: str, records: Mapping[str, _summarise.MethodInvocation]
) -> None:
    """Fill parameter/state counts of ``module`` (at ``path``) and below."""
    record = records.get(path)
    if record is not None:
        details = record.module_details
        module.total_param_size = sum(s.size for s in details.params.values())
        module.total_state_size = sum(s.size for s in details.state.values())
        module.param_info = {
            _relative(k, path): str(s) for k, s in details.params.items()
        }
        module.state_info = {
            _relative(k, path): str(s) for k, s in details.state.items()
        }
    for expression in module.expressions:
        if expression.submodule is not None:
            sub = expression.submodule
            _add_sizes(sub, f"{path}/{sub.name}", records)


def make_model_info(
    f: Callable[..., Any],
    name: str | None = None,
    include_module_info: bool = True,
    compute_flops: ComputeFlopsFn | None = None,
    axis_env: Sequence[tuple[Any, int]] | None = None,
) -> Callable[..., Module]:
    """Return a function that maps example arguments of ``f`` to a `Module`
    tree describing the operations ``f`` runs, grouped by Haiku module.

    Args:
      f: the function to describe, e.g. the ``apply`` of an `hk.transform`, or
        a `jax.grad` of a loss that calls it.
      name: the name of the root `Module` (default: ``f.__name__``).
      include_module_info: also count each Haiku module's parameters and
        state (runs ``f`` once more, abstractly, via
        `hk.experimental.eval_summary`).
      compute_flops: optional ``compute_flops(eqn, expression) -> int``
        estimating the flops of one equation; totals are then filled in.
      axis_env: sizes of named axes, as for `jax.make_jaxpr`.

    Returns:
      ``info_fn(*args, **kwargs) -> Module``.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> from pax.hk.experimental import jaxpr_info
    >>> f = hk.transform(lambda x: hk.Linear(3)(x))
    >>> x = jnp.ones((2, 4))
    >>> params = f.init(jax.random.PRNGKey(0), x)
    >>> info = jaxpr_info.make_model_info(f.apply)(params, None, x)
    >>> print(jaxpr_info.format_module(info).strip())
    apply_fn
      linear 15 params
        dot_general in f32[2,4], f32[4,3], out f32[2,3]
        broadcast_in_dim in f32[3], out f32[2,3]
        add in f32[2,3], f32[2,3], out f32[2,3]
    >>> info.expressions[0].submodule.param_info
    {'./b': 'f32[3]', './w': 'f32[4,3]'}
    """
    root_name = name or getattr(f, "__name__", None) or "fn"
    trace = jax.make_jaxpr(f, axis_env=axis_env)

    def info_fn(*args: Any, **kwargs: Any) -> Module:
        closed = trace(*args, **kwargs)
        root = Module(name=root_name)
        _walk(closed.jaxpr, compute_flops, root)
        _group_by_scope(root)
        if include_module_info:
            # A fresh function object, so eval_summary treats `f` (maybe a
            # transformed function's apply) as plain code to run.
            summary = _summarise.eval_summary(lambda *a, **k: f(*a, **k))
            records = {
                r.module_details.module.module_name.replace("/~/", "/"): r
                for r in summary(*args, **kwargs)
            }
            for expression in root.expressions:
                if expression.submodule is not None:
                    sub = expression.submodule
                    _add_sizes(sub, sub.name, records)
        return root

    return info_fn


# ---------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------


def _si(n: int, unit: str, precision: int = 4) -> str:
    """``4624, 'params' -> '4.624 kparams'`` (decimal prefixes, up to exa)."""
    for prefix, exponent in (
        ("E", 18),
        ("P", 15),
        ("T", 12),
        ("G", 9),
        ("M", 6),
        ("k", 3),
    ):
        if n > 10**exponent:
            return f"{n / 10**exponent:.{precision}g} {prefix}{unit}"
    return f"{n} {unit}"


def format_module(module: Module, depth: int = 0) -> str:
    """Render a `Module` tree as indented text, one line per module or
    operation, two spaces per level.

    >>> from pax.hk.experimental import jaxpr_info
    >>> types = "in f32[], f32[], out f32[]"
    >>> add = jaxpr_info.Expression("add", "a b", "c", details=types)
    >>> mod = jaxpr_info.Module("f", expressions=[add], total_param_size=2000)
    >>> print(jaxpr_info.format_module(mod), end="")
    f 2 kparams
      add in f32[], f32[], out f32[]
    """
    line = "  " * depth + module.name
    if module.flops is not None:
        line += " " + _si(module.flops, "flops")
    if module.total_param_size > 0:
        line += " " + _si(module.total_param_size, "params")
    if module.total_state_size > 0:
        line += " " + _si(module.total_state_size, "state")
    lines = [line + "\n"]
    for expression in module.expressions:
        lines.append(_format_expression(expression, depth + 1))
    return "".join(lines)


def _format_expression(expression: Expression, depth: int) -> str:
    if expression.submodule is not None:
        return format_module(expression.submodule, depth)
    line = "  " * depth + expression.primitive
    if expression.flops is not None:
        line += " " + _si(expression.flops, "flops")
    return f"{line} {expression.details}\n"


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------


def css() -> str:
    """The style sheet `as_html` output expects (embed it in the page).

    >>> from pax.hk.experimental import jaxpr_info
    >>> ".jaxpr-info" in jaxpr_info.css()
    True
    """
    return """
.jaxpr-info { font-family: monospace; }
.jaxpr-info ul { list-style: none; margin: 0; padding-left: 1.5em;
  border-left: 1px dotted #999; }
.jaxpr-info summary { cursor: pointer; }
.jaxpr-info .flops, .jaxpr-info .sizes { color: grey; margin-left: 0.5em; }
.jaxpr-info .primitive { color: #3f48b0; }
.jaxpr-info .vars { color: #555; }
.jaxpr-info .has-tip { position: relative; }
.jaxpr-info .tip { display: none; position: absolute; left: 2em; top: 1.3em;
  z-index: 1; background: #e3eaff; padding: 6px; border-radius: 4px;
  white-space: pre; }
.jaxpr-info .has-tip:hover > .tip { display: block; }
"""


def js() -> str:
    """The script `as_html_page` embeds: ``jaxprInfoExpandAll(open)`` opens
    or closes every node of the tree.

    >>> from pax.hk.experimental import jaxpr_info
    >>> "jaxprInfoExpandAll" in jaxpr_info.js()
    True
    """
    return """
function jaxprInfoExpandAll(open) {
  for (const node of document.querySelectorAll('.jaxpr-info details')) {
    node.open = open;
  }
}
"""


def _sizes(module: Module) -> str:
    parts = []
    if module.flops is not None:
        parts.append(_si(module.flops, "flops"))
    if module.total_param_size > 0:
        parts.append(_si(module.total_param_size, "params"))
    if module.total_state_size > 0:
        parts.append(_si(module.total_state_size, "state"))
    return (
        f'<span class="sizes">{html.escape(", ".join(parts))}</span>' if parts else ""
    )


def _table(title: str, rows: Mapping[str, str]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table><tr><th colspan=2>{title}</th></tr>{body}</table>"


def as_html(
    module: Module, min_flop: int = 1000, outvars: str = "", last: bool = False
) -> str:
    """Render a `Module` tree as nested, collapsible HTML (``<details>``).

    Embed it with the outputs of `css` (and `js`), or use `as_html_page`.

    Args:
      module: the tree, from `make_model_info`.
      min_flop: hide operations estimated below this many flops (only when
        flops were computed).
      outvars: the names of the module's outputs, shown before its name.
      last: kept for compatibility with Haiku's signature; unused.

    Returns:
      An HTML fragment.

    >>> from pax.hk.experimental import jaxpr_info
    >>> text = jaxpr_info.as_html(jaxpr_info.Module("f"))
    >>> text.startswith('<div class="jaxpr-info">') and "<b>f</b>" in text
    True
    """
    del last
    return f'<div class="jaxpr-info">{_module_html(module, min_flop, outvars)}</div>'


def _module_html(module: Module, min_flop: int, outvars: str) -> str:
    head = f"<b>{html.escape(module.name)}</b>"
    if outvars:
        head = f'<span class="vars">{html.escape(outvars)} =</span> {head}'
    tables = _table("Params", module.param_info) + _table("State", module.state_info)
    tip = f'<span class="tip">{tables}</span>' if tables else ""
    head = f'<span class="has-tip">{head}{_sizes(module)}{tip}</span>'
    shown = [e for e in module.expressions if e.flops is None or e.flops >= min_flop]
    if not shown:
        return head
    items = "".join(f"<li>{_expression_html(e, min_flop)}</li>" for e in shown)
    return f"<details><summary>{head}</summary><ul>{items}</ul></details>"


def _expression_html(expression: Expression, min_flop: int) -> str:
    if expression.submodule is not None:
        return _module_html(expression.submodule, min_flop, expression.outvars)
    tip_lines = [expression.details] + [
        f"{k}: {v}" for k, v in expression.params.items()
    ]
    tip = html.escape("\n".join(line for line in tip_lines if line))
    flops = ""
    if expression.flops is not None:
        flops = f'<span class="flops">{_si(expression.flops, "flops")}</span>'
    return (
        f'<span class="has-tip"><span class="vars">'
        f"{html.escape(expression.outvars)} =</span> "
        f'<span class="primitive">{html.escape(expression.primitive)}</span> '
        f'<span class="vars">{html.escape(expression.invars)}</span>{flops}'
        f'<span class="tip">{tip}</span></span>'
    )


def as_html_page(module: Module, min_flop: int = 1000) -> str:
    """A whole HTML page showing `as_html` of ``module`` (with `css`, `js`).

    >>> from pax.hk.experimental import jaxpr_info
    >>> page = jaxpr_info.as_html_page(jaxpr_info.Module("f"))
    >>> page.startswith("<!DOCTYPE html>") and "<b>f</b>" in page
    True
    """
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset='utf-8'>\n"
        f"<style>{css()}</style>\n<script>{js()}</script>\n</head>\n<body>\n"
        "<button onclick='jaxprInfoExpandAll(true)'>expand all</button>\n"
        "<button onclick='jaxprInfoExpandAll(false)'>collapse all</button>\n"
        f"{as_html(module, min_flop=min_flop)}\n</body>\n</html>\n"
    )

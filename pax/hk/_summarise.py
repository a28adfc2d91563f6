"""``hk.experimental.eval_summary`` / ``tabulate``: which module methods a
function calls, with argument, output and parameter shapes.

The function runs abstractly (``jax.eval_shape`` of ``init`` then ``apply``),
so nothing is computed; a method interceptor records every module method call
that returns. ``tabulate`` renders those records as a text table (drawn here,
no extra dependency).
"""

from __future__ import annotations

import dataclasses
import decimal
import pprint
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from . import _base, _stateful, _transform
from ._module import MethodContext, Module, intercept_methods
from .data_structures import _short_dtype

__all__ = [
    "ArraySpec",
    "MethodInvocation",
    "ModuleDetails",
    "eval_summary",
    "fast_eval_shape",
    "tabulate",
]


def _format_spec(x: Any) -> str:
    return f"{_short_dtype(x.dtype)}[{','.join(str(d) for d in x.shape)}]"


@dataclasses.dataclass(frozen=True)
class ArraySpec:
    """The shape and dtype of an array (what a summary keeps of it).

    Prints compactly as ``<dtype>[<dims>]``:

    >>> import jax.numpy as jnp
    >>> from pax.hk.experimental import ArraySpec
    >>> spec = ArraySpec.from_array(jnp.zeros((8, 3), jnp.bfloat16))
    >>> spec, spec.size
    (bf16[8,3], 24)

    Attributes:
      shape: the array's shape.
      dtype: the array's dtype.
    """

    shape: Sequence[int]
    dtype: Any

    def __repr__(self) -> str:
        return _format_spec(self)

    __str__ = __repr__

    @property
    def size(self) -> int:
        """Number of elements (product of ``shape``)."""
        return int(np.prod(self.shape))

    @classmethod
    def from_array(cls, array: Any) -> ArraySpec:
        """The spec of anything with ``shape`` and ``dtype`` (arrays, tracers,
        ``jax.ShapeDtypeStruct``)."""
        return cls(array.shape, array.dtype)


def _spec_tree(tree: Any) -> Any:
    """``tree`` with every JAX array (or tracer) replaced by its ArraySpec."""
    return jax.tree.map(
        lambda x: ArraySpec.from_array(x) if isinstance(x, jax.Array) else x, tree
    )


@dataclasses.dataclass(frozen=True)
class ModuleDetails:
    """A module, the method invoked on it, and its parameters and state.

    ``params`` / ``state`` are the module's ``params_dict()`` /
    ``state_dict()`` (its own and its submodules', keyed ``"mod/sub/name"``)
    with arrays replaced by :class:`ArraySpec`.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> def f(x):
    ...     return hk.Linear(4)(x)
    >>> record = hk.experimental.eval_summary(f)(jnp.ones([2, 3]))[0]
    >>> details = record.module_details
    >>> details.module.module_name, details.method_name
    ('linear', '__call__')
    >>> details.params
    {'linear/b': f32[4], 'linear/w': f32[3,4]}

    Attributes:
      module: the :class:`~pax.hk.Module` instance.
      method_name: the method invoked on it (for a module on the call stack,
        the method its children are named after).
      params: parameter specs by full name.
      state: state specs by full name.
    """

    module: Module
    method_name: str
    params: Mapping[str, ArraySpec]
    state: Mapping[str, ArraySpec]

    @classmethod
    def of(cls, module: Module, method_name: str) -> ModuleDetails:
        """Snapshot ``module``'s parameters and state (inside a transform)."""
        return cls(
            module=module,
            method_name=method_name,
            params=jax.tree.map(ArraySpec.from_array, module.params_dict()),
            state=jax.tree.map(ArraySpec.from_array, module.state_dict()),
        )


@dataclasses.dataclass(frozen=True)
class MethodInvocation:
    """One module method call, as recorded by :func:`eval_summary`.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> f = lambda x: hk.nets.MLP([5, 2])(x)
    >>> record = hk.experimental.eval_summary(f)(jnp.ones([4, 3]))[1]
    >>> record.module_details.module.module_name
    'mlp/~/linear_0'
    >>> record.args_spec, record.kwargs_spec, record.output_spec
    ((f32[4,3],), {}, f32[4,5])
    >>> [d.module.module_name for d in record.call_stack]
    ['mlp/~/linear_0', 'mlp']

    Attributes:
      module_details: the module and method invoked.
      args_spec: positional arguments, arrays replaced by :class:`ArraySpec`.
      kwargs_spec: keyword arguments, arrays replaced by :class:`ArraySpec`.
      output_spec: what the method returned, arrays replaced by
        :class:`ArraySpec`.
      context: the :class:`~pax.hk.experimental.MethodContext` the method
        interceptor received.
      call_stack: details of the modules whose methods were running, innermost
        first: the invoked module itself, then its caller, and so on.
    """

    module_details: ModuleDetails
    args_spec: tuple[Any, ...]
    kwargs_spec: dict[str, Any]
    output_spec: Any
    context: MethodContext
    call_stack: Sequence[ModuleDetails]


# methods whose calls are not recorded (``ModuleDetails.of`` itself calls the
# two dict methods)
_NOT_RECORDED = ("__init__", "params_dict", "state_dict")


def _is_internal(cls: type | None, method_name: str) -> bool:
    """A method of pax's own plumbing: a private method of a module that ships
    with pax, or any method of a private module class of pax (e.g. the
    parameter holders behind ``hk.LSTM``). Haiku's modules have no such
    methods, so summaries leave them out."""
    if cls is None or not cls.__module__.startswith("pax."):
        return False
    private = method_name.startswith("_") and not method_name.endswith("__")
    return private or cls.__name__.startswith("_")


def _defining_class(module: Any, method_name: str) -> type | None:
    for cls in type(module).__mro__:
        if method_name in vars(cls):
            return cls
    return None


def _call_stack() -> tuple[ModuleDetails, ...]:
    stack = _base.current_frame().module_stack
    return tuple(
        ModuleDetails.of(s.module, s.method_name)
        for s in reversed(stack)
        if not _is_internal(_defining_class(s.module, s.method_name), s.method_name)
    )


def _recorder(records: list) -> Callable[..., Any]:
    """A method interceptor appending a MethodInvocation per call to
    ``records``, in call order (a caller before its callees)."""

    def record(next_fn, args, kwargs, context):
        if context.method_name in _NOT_RECORDED or _is_internal(
            context.orig_class, context.method_name
        ):
            return next_fn(*args, **kwargs)
        index = len(records)
        records.append(None)  # keep the caller's slot ahead of its callees'
        out = next_fn(*args, **kwargs)
        records[index] = MethodInvocation(
            module_details=ModuleDetails.of(context.module, context.method_name),
            args_spec=_spec_tree(args),
            kwargs_spec=_spec_tree(kwargs),
            output_spec=_spec_tree(out),
            context=context,
            call_stack=_call_stack(),
        )
        return out

    return record


def eval_summary(
    f: Callable[..., Any] | Any,
) -> Callable[..., list[MethodInvocation]]:
    """Record the module method calls that ``f`` makes, without computing.

    ``f`` is a function using modules (or the result of ``hk.transform`` /
    ``hk.transform_with_state``, or its ``init``/``apply``: the original
    function is used). The returned callable takes ``f``'s arguments, traces
    ``init`` then ``apply`` with ``jax.eval_shape`` (parameters initialised
    from a fixed key) and returns one :class:`MethodInvocation` per method
    call made during ``apply``, in the order the calls started (a caller
    before its callees). Calls of ``__init__``, ``params_dict`` and
    ``state_dict``, calls that raise, and private helper methods of the
    modules pax ships (internal plumbing with no Haiku counterpart) are not
    recorded.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> f = lambda x: hk.nets.MLP([300, 100, 10])(x)
    >>> x = jnp.ones([8, 28 * 28])
    >>> for i in hk.experimental.eval_summary(f)(x):
    ...     name = i.module_details.module.module_name
    ...     print(f"{name:14} {i.args_spec[0]} -> {i.output_spec}")
    mlp            f32[8,784] -> f32[8,10]
    mlp/~/linear_0 f32[8,784] -> f32[8,300]
    mlp/~/linear_1 f32[8,300] -> f32[8,100]
    mlp/~/linear_2 f32[8,100] -> f32[8,10]

    See also :func:`tabulate`, which prints these records as a table.
    """
    try:
        f = _transform.get_original_fn(f)
    except AttributeError:
        pass

    def summarise(*args: Any, **kwargs: Any) -> list[MethodInvocation]:
        records: list[MethodInvocation] = []

        def logged(*a, **k):
            with intercept_methods(_recorder(records)):
                f(*a, **k)

        plain = _transform.transform_with_state(f)
        recorded = _transform.transform_with_state(logged)

        def init_then_apply(*a, **k):
            init_key, apply_key = jax.random.split(jax.random.PRNGKey(42))
            params, state = plain.init(init_key, *a, **k)
            recorded.apply(params, state, apply_key, *a, **k)

        with jax.disable_jit():
            jax.eval_shape(init_then_apply, *args, **kwargs)
        return records

    return summarise


def fast_eval_shape(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``jax.eval_shape(fun, *args, **kwargs)``, usable inside a transform.

    Inside a transformed function it traces ``fun`` like ``hk.eval_shape``
    (modules and parameters may be used; nothing is stored) with parameter
    initialisers replaced by zeros; outside one it is ``jax.eval_shape``.
    Haiku's version takes further tracing shortcuts (e.g. skipping dropout);
    the shapes and dtypes returned are the same.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.Linear(5)(x))
    >>> params = hk.experimental.fast_eval_shape(
    ...     f.init, jax.random.PRNGKey(0), jnp.ones([2, 3]))
    >>> params["linear"]["w"]
    ShapeDtypeStruct(shape=(3, 5), dtype=float32)
    """
    if not _base.inside_transform():
        return jax.eval_shape(fun, *args, **kwargs)

    def zeros(next_creator, shape, dtype, init, context):
        del init, context
        return next_creator(shape, dtype, lambda s, d: np.zeros(s, d))

    with _base.custom_creator(zeros):
        return _stateful.eval_shape(fun, *args, **kwargs)


# ---------------------------------------------------------------------------
# tabulate
# ---------------------------------------------------------------------------


def _owned_params(details: ModuleDetails) -> dict[str, ArraySpec]:
    """Parameters stored directly under the module (not its submodules)."""
    out = {}
    for full_name, spec in details.params.items():
        owner, name = full_name.rsplit("/", 1)
        if owner == details.module.module_name:
            out[name] = spec
    return out


def _format_owned_params(record: MethodInvocation) -> str:
    owned = _owned_params(record.module_details)
    order = sorted(owned.items(), key=lambda kv: (-kv[1].size, kv[0]))
    return "\n".join(f"{name}: {_format_spec(spec)}" for name, spec in order)


def _format_input(record: MethodInvocation) -> str:
    text = ", ".join(pprint.pformat(a) for a in record.args_spec)
    if record.kwargs_spec:
        text += "\n" + ", ".join(
            f"{k}={pprint.pformat(v)}" for k, v in record.kwargs_spec.items()
        )
    return text


def _format_output(record: MethodInvocation) -> str:
    return pprint.pformat(record.output_spec)


def _class_name(module: Any) -> str:
    return type(module).__name__


def _format_call_stack(record: MethodInvocation) -> str:
    def entry(details: ModuleDetails) -> str:
        label = _class_name(details.module)
        if details.method_name != "__call__":
            label += f".{details.method_name}"
        return f"{details.module.module_name} ({label})"

    return "\n └ ".join(entry(d) for d in record.call_stack)


def _param_count(record: MethodInvocation) -> str:
    return f"{sum(s.size for s in record.module_details.params.values()):,}"


def _format_bytes(num_bytes: int) -> str:
    """``1070440`` -> ``"1.07 MB"`` (powers of 1000, decimal arithmetic)."""
    value = decimal.Decimal(num_bytes)
    unit = "B"
    for bigger in ("KB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value /= 1000
        unit = bigger
    return f"{value:.2f} {unit}"


def _param_bytes(record: MethodInvocation) -> str:
    params = record.module_details.params.values()
    return _format_bytes(sum(s.size * np.dtype(s.dtype).itemsize for s in params))


# name -> (header, cell formatter, alignment)
_COLUMNS: dict[str, tuple[str, Callable[[MethodInvocation], str], str]] = {
    "module": ("Module", _format_call_stack, "left"),
    "config": ("Config", lambda r: repr(r.module_details.module), "left"),
    "owned_params": ("Module params", _format_owned_params, "left"),
    "input": ("Input", _format_input, "left"),
    "output": ("Output", _format_output, "left"),
    "params_size": ("Param count", _param_count, "right"),
    "params_bytes": ("Param bytes", _param_bytes, "right"),
}

_FILTERS: dict[str, Callable[[MethodInvocation], bool]] = {
    "has_output": lambda r: r.output_spec is not None,
    "has_params": lambda r: bool(r.module_details.params),
}

DEFAULT_COLUMNS = (
    "module",
    "config",
    "owned_params",
    "input",
    "output",
    "params_size",
    "params_bytes",
)
DEFAULT_FILTERS = ("has_output",)


def _grid(headers: list[str], rows: list[list[str]], aligns: list[str]) -> str:
    """A ``+---+`` bordered text table; cells may span several lines.

    Every column is as wide as its widest line, and at least two characters
    wider than its header; ``=`` separates the header from the rows.
    """
    cells = [[c.strip().split("\n") for c in row] for row in rows]
    widths = [len(h) + 2 for h in headers]
    for row in cells:
        for i, lines in enumerate(row):
            widths[i] = max(widths[i], *(len(line) for line in lines))

    def rule(char: str) -> str:
        return "+" + "+".join(char * (w + 2) for w in widths) + "+"

    def render(row: list[list[str]]) -> list[str]:
        height = max(len(lines) for lines in row)
        out = []
        for k in range(height):
            parts = []
            for lines, width, align in zip(row, widths, aligns):
                text = lines[k] if k < len(lines) else ""
                parts.append(
                    text.rjust(width) if align == "right" else text.ljust(width)
                )
            out.append("| " + " | ".join(parts) + " |")
        return out

    lines = [rule("-"), *render([[h] for h in headers]), rule("=")]
    for row in cells:
        lines += render(row)
        lines.append(rule("-"))
    return "\n".join(lines)


def tabulate(
    f: Callable[..., Any] | Any,
    *,
    columns: Sequence[str] | None = DEFAULT_COLUMNS,
    filters: Sequence[str] | None = DEFAULT_FILTERS,
    tabulate_kwargs: Mapping[str, Any] | None = None,
) -> Callable[..., str]:
    """A text table of the module method calls ``f`` makes (see
    :func:`eval_summary`), one row per call.

    >>> import jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.nets.MLP([30, 10])(x))
    >>> cols = ("module", "owned_params", "output", "params_size")
    >>> print(hk.experimental.tabulate(f, columns=cols)(jnp.ones([8, 64])))
    +-------------------------+-----------------+-----------+---------------+
    | Module                  | Module params   | Output    |   Param count |
    +=========================+=================+===========+===============+
    | mlp (MLP)               |                 | f32[8,10] |         2,260 |
    +-------------------------+-----------------+-----------+---------------+
    | mlp/~/linear_0 (Linear) | w: f32[64,30]   | f32[8,30] |         1,950 |
    |  └ mlp (MLP)            | b: f32[30]      |           |               |
    +-------------------------+-----------------+-----------+---------------+
    | mlp/~/linear_1 (Linear) | w: f32[30,10]   | f32[8,10] |           310 |
    |  └ mlp (MLP)            | b: f32[10]      |           |               |
    +-------------------------+-----------------+-----------+---------------+

    Columns (``columns``; by default all of them, in this order, as Haiku's
    table): ``module`` (name and
    class, ``Class.method`` for methods other than ``__call__``, then the
    calling modules, one per line), ``config`` (the module's ``repr``),
    ``owned_params`` (parameters stored directly under the module, largest
    first), ``input``, ``output`` (shapes as ``f32[8,64]``), ``params_size``
    and ``params_bytes`` (the module's parameters, submodules included).

    Filters (``filters``, default ``("has_output",)``): ``has_output`` drops
    calls returning ``None``; ``has_params`` drops modules without parameters.

    Args:
      f: a function using modules, or a transformed function.
      columns: names of the columns to show (``None``: the default ones).
      filters: names of the filters to apply (``None``: the default ones).
      tabulate_kwargs: keyword arguments for the ``tabulate`` package, as in
        Haiku. Without them (or with only ``tablefmt="grid"``) the table is
        drawn here, as above; any other formatting needs ``tabulate``
        installed (``pip install tabulate``).

    Returns:
      A callable taking ``f``'s arguments and returning the table (or
      ``"No modules matching filters."``).
    """
    summarise = eval_summary(f)
    columns = DEFAULT_COLUMNS if columns is None else tuple(columns)
    filters = DEFAULT_FILTERS if filters is None else tuple(filters)
    bad = [c for c in columns if c not in _COLUMNS]
    if bad:
        raise ValueError(f"Invalid column(s) {bad}, valid columns {list(_COLUMNS)}")
    bad = [c for c in filters if c not in _FILTERS]
    if bad:
        raise ValueError(f"Invalid filter(s) {bad}, valid filters {list(_FILTERS)}")
    kwargs = dict(tabulate_kwargs or {})
    native = not kwargs or kwargs == {"tablefmt": "grid"}
    if not native:
        try:
            import tabulate as tabulate_lib
        except ImportError as e:
            raise ImportError(
                "hk.experimental.tabulate draws grid tables itself; other "
                f"formats (tabulate_kwargs={kwargs!r}) need the `tabulate` "
                "package: pip install tabulate"
            ) from e

    specs = [_COLUMNS[c] for c in columns]
    checks = [_FILTERS[c] for c in filters]

    def table(*args: Any, **kw: Any) -> str:
        rows = [
            [fmt(record) for _, fmt, _ in specs]
            for record in summarise(*args, **kw)
            if all(check(record) for check in checks)
        ]
        if not rows:
            return "No modules matching filters."
        headers = [header for header, _, _ in specs]
        aligns = [align for _, _, align in specs]
        if native:
            return _grid(headers, rows, aligns)
        return tabulate_lib.tabulate(rows, headers=headers, colalign=aligns, **kwargs)

    return table

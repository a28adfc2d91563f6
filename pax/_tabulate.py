"""``pax.tabulate``: a table of a module's submodules, sizes and output shapes.

How it works (see :func:`tabulate`):

* Counts come from shapes only: the module is walked once, each leaf is
  attributed to the module that owns it, and ``module.parameters()`` says
  which leaves are trainable. An abstract module (``jax.eval_shape`` of a
  constructor: ``jax.ShapeDtypeStruct`` leaves) works as well as a real one.
* Output shapes, when example inputs are given, come from *one*
  ``jax.eval_shape`` of the whole call. While it traces, the ``__call__`` of
  every module class in the tree is wrapped by a recorder that notes each
  module's output shapes; the classes are restored when the trace ends, so
  there is no cost (and no change) to a module call at any other time.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import io
import math
import threading
from typing import Any

import jax
import numpy as np

from ._core.module import Module, is_module
from ._core.pure import pure
from ._core.shared import Shared

__all__ = ["tabulate"]

# tabulate patches module classes while it traces; one at a time
_PATCH_LOCK = threading.RLock()
_RECORDING = threading.local()
_INPUT_TYPES = (jax.Array, np.ndarray, np.generic, jax.ShapeDtypeStruct)


@dataclasses.dataclass
class _Row:
    path: str
    depth: int
    cls: str
    params: int = 0  # trainable elements, this module and its submodules
    state: int = 0  # non-trainable elements, likewise
    nbytes: int = 0
    dtypes: dict = dataclasses.field(default_factory=dict)  # insertion-ordered set
    outputs: list = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------
# counting
# ---------------------------------------------------------------------------


def _nbytes(shape: tuple, dtype: Any) -> int:
    size = math.prod(shape)
    try:
        itemsize = dtype.itemsize
    except AttributeError:  # pragma: no cover - an odd dtype object
        itemsize = np.dtype(dtype).itemsize
    return int(size) * int(itemsize)


def _is_none_or_module(root: Module):
    return lambda x: x is None or (x is not root and isinstance(x, Module))


def _walk(module: Module, params: Any, keys: tuple, depth: int, rows: list) -> _Row:
    """Append the rows of ``module`` and its submodules (pre-order); return its
    row with subtree totals filled in."""
    row = _Row(jax.tree_util.keystr(keys), depth, type(module).__name__)
    rows.append(row)
    pairs = jax.tree_util.tree_flatten_with_path(
        module, is_leaf=_is_none_or_module(module)
    )[0]
    if isinstance(params, Module) and type(params) is type(module):
        p_leaves = jax.tree_util.tree_leaves(params, is_leaf=_is_none_or_module(params))
    else:  # a custom ``parameters`` returned something else: all state
        p_leaves = [None] * len(pairs)
    if len(p_leaves) != len(pairs):  # pragma: no cover - defensive
        p_leaves = [None] * len(pairs)
    for (path, leaf), p_leaf in zip(pairs, p_leaves):
        if isinstance(leaf, Module):
            sub = _walk(leaf, p_leaf, keys + tuple(path), depth + 1, rows)
            row.params += sub.params
            row.state += sub.state
            row.nbytes += sub.nbytes
            row.dtypes.update(sub.dtypes)
            continue
        shape = getattr(leaf, "shape", None)
        dtype = getattr(leaf, "dtype", None)
        if shape is None or dtype is None:
            continue
        size = int(math.prod(shape))
        if p_leaf is not None:
            row.params += size
        else:
            row.state += size
        row.nbytes += _nbytes(tuple(shape), dtype)
        row.dtypes[str(dtype)] = None
    return row


def _module_paths(module: Module) -> dict[int, str]:
    """``id(submodule) -> key path`` for every module in ``module``."""
    out = {id(module): ""}

    def visit(m: Module, keys: tuple) -> None:
        pairs = jax.tree_util.tree_flatten_with_path(m, is_leaf=_is_none_or_module(m))
        for path, leaf in pairs[0]:
            if isinstance(leaf, Module):
                sub_keys = keys + tuple(path)
                out.setdefault(id(leaf), jax.tree_util.keystr(sub_keys))
                visit(leaf, sub_keys)

    visit(module, ())
    return out


def _module_classes(module: Module) -> list[type]:
    seen: dict[type, None] = {type(module): None}
    for leaf in jax.tree_util.tree_leaves(
        module, is_leaf=lambda x: x is not module and is_module(x)
    ):
        if isinstance(leaf, Module):
            seen.update(dict.fromkeys(_module_classes(leaf)))
    return list(seen)


# ---------------------------------------------------------------------------
# recording calls
# ---------------------------------------------------------------------------


class TabulateError(ValueError):
    """The example call failed; the message names the module whose call failed."""


def _describe(tree: Any) -> str:
    """Shapes and dtypes of a tree of arrays, e.g. ``(float32[2, 3], None)``."""

    def leaf(x):
        if hasattr(x, "shape") and hasattr(x, "dtype"):
            return _Text(f"{x.dtype}{list(x.shape)}")
        return x

    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return str(leaf(tree))
    return repr(jax.tree_util.tree_map(leaf, tree, is_leaf=is_module))


class _Text(str):
    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


class _Recorder:
    def __init__(self):
        self.paths: dict[int, str] = {}
        self.outputs: dict[str, list[str]] = {}
        self.stack: list[Module] = []

    def call(self, original, module, args, kwargs):
        path = self.paths.get(id(module))
        if path is None or (self.stack and self.stack[-1] is module):
            # a module built during the call, or ``super().__call__``
            return original(module, *args, **kwargs)
        self.stack.append(module)
        try:
            if isinstance(module, Shared):
                out = self._call_shared(original, module, path, args, kwargs)
            else:
                out = original(module, *args, **kwargs)
        except TabulateError:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised with the module named
            inputs = ", ".join(
                [_describe(a) for a in args]
                + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
            )
            raise TabulateError(
                f"pax.tabulate: calling {type(module).__name__} at "
                f"`{path or '(root)'}` with ({inputs}) failed: "
                f"{type(e).__name__}: {e}"
            ) from e
        finally:
            self.stack.pop()
        self.outputs.setdefault(path, []).append(_describe(out))
        return out

    def _call_shared(self, original, module, path, args, kwargs):
        # A Shared calls a tree it rebuilds (and copies) on every call, so its
        # submodules are new objects: call that tree here, after telling the
        # recorder their paths (``<path>.tree...``, as the table lists them).
        # Only the output matters: tabulate discards every state change.
        tree = module.rebuild()
        if not isinstance(tree, Module):
            return original(module, *args, **kwargs)
        prefix = f"{path}.tree"

        def run(copy):
            for key, sub_path in _module_paths(copy).items():
                self.paths.setdefault(key, prefix + sub_path)
            return copy(*args, **kwargs)

        return pure(run)(tree)


def _recording_call(original):
    @functools.wraps(original)
    def __call__(self, *args, **kwargs):
        recorder = getattr(_RECORDING, "recorder", None)
        if recorder is None:  # another thread, while tabulate runs
            return original(self, *args, **kwargs)
        return recorder.call(original, self, args, kwargs)

    return __call__


def _patch(classes: list[type]) -> list[tuple[type, Any]]:
    """Wrap each class's ``__call__``; return what ``_unpatch`` restores."""
    undo = []
    for cls in classes:
        original = None
        for base in cls.__mro__:
            if "__call__" in base.__dict__:
                original = base.__dict__["__call__"]
                break
        if not inspect.isfunction(original):
            continue  # not callable, or an unusual descriptor: left alone
        undo.append((cls, cls.__dict__.get("__call__", _MISSING)))
        type.__setattr__(cls, "__call__", _recording_call(original))
    return undo


_MISSING = object()


def _unpatch(undo: list[tuple[type, Any]]) -> None:
    for cls, previous in reversed(undo):
        if previous is _MISSING:
            type.__delattr__(cls, "__call__")
        else:
            type.__setattr__(cls, "__call__", previous)


def _record_outputs(module: Module, args: tuple, kwargs: dict) -> dict[str, list]:
    leaves, treedef = jax.tree_util.tree_flatten(module)
    in_leaves, in_def = jax.tree_util.tree_flatten((args, kwargs))
    dynamic = [i for i, x in enumerate(in_leaves) if isinstance(x, _INPUT_TYPES)]
    recorder = _Recorder()

    @pure
    def call(m, call_args, call_kwargs):
        recorder.paths = _module_paths(m)
        m(*call_args, **call_kwargs)

    def run(module_leaves, dynamic_leaves):
        m = jax.tree_util.tree_unflatten(treedef, module_leaves)
        full = list(in_leaves)
        for i, x in zip(dynamic, dynamic_leaves):
            full[i] = x
        call_args, call_kwargs = jax.tree_util.tree_unflatten(in_def, full)
        call(m, call_args, call_kwargs)

    with _PATCH_LOCK:
        undo = _patch(_module_classes(module))
        _RECORDING.recorder = recorder
        try:
            jax.eval_shape(run, leaves, [in_leaves[i] for i in dynamic])
        except TabulateError as e:
            # raised afresh, from the call's own error: the trace's frames
            # (eval_shape, the recorder) would only hide it
            raise TabulateError(str(e)) from e.__cause__
        finally:
            _RECORDING.recorder = None
            _unpatch(undo)
    return recorder.outputs


# ---------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
    raise AssertionError  # pragma: no cover


def _output_text(outputs: list[str]) -> str:
    if not outputs:
        return ""
    if len(outputs) == 1 or all(o == outputs[0] for o in outputs):
        text = outputs[0]
    else:
        text = " | ".join(dict.fromkeys(outputs))
    if len(outputs) > 1:
        text += f" (x{len(outputs)} calls)"
    return text


def _plain_table(header: list[str], body: list[list[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells):
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule]
    lines.extend(line(r) for r in body[:-1])
    lines.append(rule)
    lines.append(line(body[-1]))
    return "\n".join(lines)


def _rich_table(title: str, header: list[str], body: list[list[str]], right: set[int]):
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_footer=False)
    for i, name in enumerate(header):
        table.add_column(name, justify="right" if i in right else "left")
    for r in body[:-1]:
        table.add_row(*r)
    table.add_section()
    table.add_row(*body[-1], style="bold")
    buffer = io.StringIO()
    width = sum(max(len(r[i]) for r in [header, *body]) + 3 for i in range(len(header)))
    Console(file=buffer, width=max(width + 4, 80), color_system=None).print(table)
    return buffer.getvalue().rstrip("\n")


def tabulate(
    module: Module, *example_inputs: Any, rich: bool | None = False, **example_kwargs
) -> str:
    """A table of ``module`` and every submodule, one row each.

    Rows come depth-first, in attribute order; each shows the module's key
    path (``.layers[0]``, ``.block_groups[1].blocks[0].conv_0``, the same
    paths as :meth:`pax.Module.state_dict` keys; the top row is ``(root)``),
    its class, and, *including its submodules*: the number of trainable
    parameters (elements of the leaves :meth:`pax.Module.parameters` keeps),
    of non-trainable state elements (batch-norm statistics, rng keys,
    counters, frozen parameters), the bytes of both, and their dtypes. A last
    row gives the totals.

    With example inputs, ``module(*example_inputs, **example_kwargs)`` is
    traced once with ``jax.eval_shape`` (nothing is computed) on a private
    copy, as :func:`pax.purecall` would run it (a training-mode BatchNorm may
    update its statistics), and an ``output`` column gives the shapes and
    dtypes each module returned (``(xN calls)`` for a module called N
    times). Inputs may be arrays or ``jax.ShapeDtypeStruct``; other values
    (flags, strings) are passed as they are. Modules called from inside a
    ``jax.lax.scan`` or ``vmap`` body (:class:`pax.nn.LayerStack`) get no
    output of their own.

    ``module`` may be abstract: ``jax.eval_shape(lambda k: Net(..., rng_key=k),
    key)`` gives a module of ``jax.ShapeDtypeStruct`` s, counted without
    allocating anything.

    Args:
      module: a :class:`pax.Module`.
      *example_inputs: positional arguments of a call (optional).
      rich: ``False`` (default): plain text with aligned columns; ``True``: a
        ``rich`` table (needs the ``rich`` package, ``pip install
        pax-jax[inspect]``); ``None``: ``rich`` when it is installed.
      **example_kwargs: keyword arguments of the call.

    Returns:
      The table, as a string (``print`` it).

    Raises:
      TypeError: ``module`` is not a :class:`pax.Module`, or example inputs
        were given for a module without ``__call__``.
      ValueError: the example call failed; the message names the class and
        path of the innermost module whose call failed and the shapes it got.
      ImportError: ``rich=True`` without ``rich`` installed.

    Example:

    >>> import jax, jax.numpy as jnp, pax
    >>> net = pax.Sequential(
    ...     pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0)),
    ...     jax.nn.relu,
    ...     pax.Linear(3, 1, rng_key=jax.random.PRNGKey(1)),
    ... )
    >>> print(pax.tabulate(net, jnp.ones((4, 2))))
    path        module      params  state  bytes  dtypes   output
    ----------  ----------  ------  -----  -----  -------  -------------
    (root)      Sequential      13      0   52 B  float32  float32[4, 1]
    .layers[0]  Linear           9      0   36 B  float32  float32[4, 3]
    .layers[1]  Lambda           0      0    0 B           float32[4, 3]
    .layers[2]  Linear           4      0   16 B  float32  float32[4, 1]
    ----------  ----------  ------  -----  -----  -------  -------------
    total                       13      0   52 B
    """
    if not isinstance(module, Module):
        raise TypeError(
            f"pax.tabulate expects a pax.Module, got {type(module).__name__}."
        )
    rows: list[_Row] = []
    root = _walk(module, module.parameters(), (), 0, rows)
    with_outputs = bool(example_inputs or example_kwargs)
    if with_outputs:
        if not any("__call__" in c.__dict__ for c in type(module).__mro__[:-1]):
            raise TypeError(
                f"pax.tabulate: {type(module).__name__} is not callable (it has "
                "no `__call__`), so example inputs cannot be passed to it."
            )
        outputs = _record_outputs(module, example_inputs, example_kwargs)
        for row in rows:
            row.outputs = outputs.get(row.path, [])

    header = ["path", "module", "params", "state", "bytes", "dtypes"]
    if with_outputs:
        header.append("output")
    right = {2, 3, 4}
    body = []
    for row in rows:
        cells = [
            row.path or "(root)",
            row.cls,
            f"{row.params:,}",
            f"{row.state:,}",
            _human_bytes(row.nbytes),
            ",".join(sorted(row.dtypes)),
        ]
        if with_outputs:
            cells.append(_output_text(row.outputs))
        body.append(cells)
    total = ["total", "", f"{root.params:,}", f"{root.state:,}"]
    total += [_human_bytes(root.nbytes), ""] + ([""] if with_outputs else [])
    body.append(total)

    use_rich = rich
    if rich is None:
        try:
            import rich as _rich  # noqa: F401
        except ImportError:
            use_rich = False
        else:
            use_rich = True
    if use_rich:
        try:
            return _rich_table(type(module).__name__, header, body, right)
        except ImportError as e:
            raise ImportError(
                "pax.tabulate(..., rich=True) needs the `rich` package: "
                "pip install rich (or pax-jax[inspect])."
            ) from e
    return _plain_table(header, body, right)

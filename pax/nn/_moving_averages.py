"""Exponential moving averages: ``EMA`` over any pytree of arrays, and
``EMAParamsTree`` (one ``EMA`` per leaf of a parameter tree)."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import MutationError
from .._core.module import Module, _ArrayImpl
from ._utils import as_array, who


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _is_host(x: Any) -> bool:
    """A numeric NumPy array or scalar (transferred with ``jax.device_put``)."""
    return isinstance(x, np.ndarray | np.generic) and (
        x.dtype == np.bool_ or jnp.issubdtype(x.dtype, jnp.number)
    )


def _zeros_like(x: jax.Array) -> jax.Array:
    """``jnp.zeros_like(x)``; for a concrete, uncommitted, strongly typed
    array the zeros are filled on the host and transferred (``jax.device_put``:
    no program to run, or to compile in a fresh process)."""
    if (
        type(x) is _ArrayImpl  # a concrete array, not a tracer
        and not x.weak_type
        and not x.committed
        and isinstance(x.dtype, np.dtype)
    ):
        return jax.device_put(np.zeros(x.shape, x.dtype))
    return jnp.zeros_like(x)


def resolve_update_stats(module: Module, update_stats: Any) -> bool:
    """Whether a call stores its update: ``update_stats`` when given (an
    explicit request, as Haiku's flag), else the module's mode."""
    if update_stats is None:
        return bool(module.training)
    if not isinstance(update_stats, (bool, np.bool_)):
        raise TypeError(
            f"{who(module)}: `update_stats` must be None (follow the module's "
            f"mode), True or False, got {update_stats!r}"
        )
    return bool(update_stats)


@contextlib.contextmanager
def stateful_call(
    module: Module, what: str, has_update_stats: bool = False
) -> Iterator[None]:
    """Re-raise a ``MutationError`` of a state update (``module``'s own or a
    submodule's) naming ``module``, the module the user called, and the fix;
    the original message follows."""
    try:
        yield
    except MutationError as e:
        also = " (or pass `update_stats=False`)" if has_update_stats else ""
        raise MutationError(
            f"{who(module)}: this call updates {what}, so it must run "
            "on a copy: `module, out = pax.purecall(module, ...)` (or inside "
            "`pax.pure`); `module.eval()` gives a call that changes nothing"
            f"{also}.\n{e}"
        ) from None


class EMA(Module):
    """An exponential moving average of a pytree, carried as state.

    Each call with a value ``x`` (same structure and shapes as
    ``initial_value``) advances a step counter ``t`` and updates, for every
    floating leaf, ``hidden = decay * hidden + (1 - decay) * x``. The returned
    (and stored) average is ``hidden`` itself, or with ``debias=True`` Haiku's
    zero-debiased ``hidden / (1 - decay**t)`` — there ``hidden`` starts at zero
    and ``initial_value`` is only what ``averages`` holds before the first
    update. Without debiasing ``hidden`` *is* ``averages`` and starts at
    ``initial_value``.

    Modes: in training mode (the default) a call updates the state, so it
    runs on a copy, ``ema, avg = pax.purecall(ema, value)`` or inside
    :func:`pax.pure` (a plain call raises ``MutationError``). In eval mode
    (``ema.eval()``) a call changes nothing, needs no ``pure`` and returns the
    current ``averages`` (``value`` is only checked). ``update_stats``
    overrides the mode for one call, as Haiku's flag: ``True`` updates (eval
    mode too), ``False`` returns the average this update *would* give without
    storing it (Haiku's read-only call).

    Args:
      initial_value: a pytree of arrays (the averages before any update).
      decay_rate: the decay, in ``[0, 1]``; close to 1 averages slowly.
      debias: Haiku's zero-debiasing (Adam's bias correction).
      allow_int: accept integer leaves; they are not averaged, each update
        stores the latest value. Without it integer leaves raise ``TypeError``.
      warmup_length: Haiku's warm-up: for the first ``warmup_length`` calls the
        decay is 0 (the average follows the input), then ``decay_rate``.
        Exclusive with ``debias``.
      name: optional module name.

    The averages keep the dtypes of ``initial_value`` (values fed in are cast),
    so a float32 average of bfloat16 values stays float32.

    State: ``averages`` (the tree), ``counter`` (int32 step count; starts at
    ``-warmup_length``) and, with ``debias``, ``hidden``. No trainable
    parameters.

    >>> import jax.numpy as jnp, pax
    >>> ema = pax.EMA(jnp.zeros(2), decay_rate=0.5)
    >>> ema, avg = pax.purecall(ema, jnp.ones(2))
    >>> avg
    Array([0.5, 0.5], dtype=float32)
    >>> ema, avg = pax.purecall(pax.EMA(jnp.zeros(2), 0.5, debias=True), jnp.ones(2))
    >>> avg
    Array([1., 1.], dtype=float32)
    >>> ema.eval()(3 * jnp.ones(2))  # eval: the current average, nothing changes
    Array([1., 1.], dtype=float32)
    """

    def __init__(
        self,
        initial_value: Any,
        decay_rate: float,
        debias: bool = False,
        allow_int: bool = False,
        *,
        warmup_length: int = 0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if not 0.0 <= float(decay_rate) <= 1.0:
            raise ValueError(
                f"{owner}: `decay_rate` must be in [0, 1], got {decay_rate}"
            )
        if not isinstance(warmup_length, (int, np.integer)) or warmup_length < 0:
            raise ValueError(
                f"{owner}: `warmup_length` must be an int >= 0, got {warmup_length!r}"
            )
        if warmup_length and debias:
            raise ValueError(
                f"{owner}: `debias` and `warmup_length` are exclusive (warm-up "
                "starts the average from the inputs; there is no bias to remove)."
            )
        leaves, treedef = jax.tree_util.tree_flatten(initial_value)
        # NumPy leaves stay on the host for now (None); others become arrays
        on_host = [_is_host(x) for x in leaves]
        arrays = [None if h else jnp.asarray(x) for x, h in zip(leaves, on_host)]
        if not leaves:
            raise ValueError(f"{owner}: `initial_value` has no array leaves")
        floats = [
            jnp.issubdtype(x.dtype, jnp.inexact) if h else _is_float(a)
            for x, a, h in zip(leaves, arrays, on_host)
        ]
        if not allow_int and not all(floats):
            raise TypeError(
                f"{owner}: `initial_value` has non-floating leaves; pass "
                "`allow_int=True` to carry them (they are replaced, not averaged)."
            )
        self.decay_rate = float(decay_rate)
        self.debias = bool(debias)
        self.allow_int = bool(allow_int)
        self.warmup_length = int(warmup_length)
        # One transfer for the NumPy leaves, the counter and, with debiasing,
        # the zero hidden state of the NumPy float leaves: ``jax.device_put``
        # gives the arrays ``jnp.asarray``/``jnp.zeros_like`` would (dtypes
        # canonicalized, strongly typed, uncommitted) without a program to run
        # (or, in a fresh process, to compile). It reads its input later, or
        # keeps it, so it gets copies: the caller may write to its arrays.
        host = [np.array(x) for x, h in zip(leaves, on_host) if h]
        zeros = []
        if self.debias:
            zeros = [
                np.zeros(np.shape(x), x.dtype)
                for x, h, f in zip(leaves, on_host, floats)
                if h and f
            ]
        counter = np.asarray(-self.warmup_length, np.int32)
        put = iter(jax.device_put([*host, counter, *zeros]))
        arrays = [next(put) if h else a for a, h in zip(arrays, on_host)]
        self.counter = next(put)
        self.averages = jax.tree_util.tree_unflatten(treedef, arrays)
        if self.debias:
            hidden = [
                (next(put) if h else _zeros_like(a)) if f else a
                for a, h, f in zip(arrays, on_host, floats)
            ]
            self.hidden = jax.tree_util.tree_unflatten(treedef, hidden)
        else:
            self.hidden = None

    def __call__(self, value: Any, update_stats: bool | None = None) -> Any:
        """Update with ``value`` (same structure/shapes); return the new average.

        Args:
          value: a pytree with ``initial_value``'s structure and leaf shapes.
          update_stats: ``None`` (default) follows the mode: training mode
            updates and returns the new average, eval mode returns the current
            ``averages`` and changes nothing. ``True`` updates whatever the
            mode; ``False`` returns the new average without storing it.

        Raises:
          ValueError: ``value`` differs from ``initial_value`` in structure or
            leaf shapes.
          MutationError: an updating call outside ``pax.purecall`` /
            ``pax.pure``.
        """
        update = resolve_update_stats(self, update_stats)
        value = jax.tree_util.tree_map(lambda x: as_array(x, who(self)), value)
        pairs, treedef = jax.tree_util.tree_flatten_with_path(value)
        ref_pairs, ref_treedef = jax.tree_util.tree_flatten_with_path(self.averages)
        # Compare key paths, not treedefs: the module stores its containers
        # frozen (a dict as a FrozenDict), the caller passes plain ones.
        if treedef != ref_treedef and [jax.tree_util.keystr(p) for p, _ in pairs] != [
            jax.tree_util.keystr(p) for p, _ in ref_pairs
        ]:
            raise ValueError(
                f"{who(self)}: `value` has structure {treedef}, expected {ref_treedef}"
            )
        for (_, x), (_, a) in zip(pairs, ref_pairs):
            if x.shape != a.shape:
                raise ValueError(
                    f"{who(self)}: `value` has a leaf of shape {x.shape}, "
                    f"expected {a.shape}"
                )

        def like_value(tree):  # ``tree``'s leaves in the caller's containers
            return jax.tree_util.tree_unflatten(
                treedef, jax.tree_util.tree_leaves(tree)
            )

        if update_stats is None and not update:
            return like_value(self.averages)  # eval mode: the current average
        with jax.named_scope("pax.nn.EMA"):
            counter = self.counter + 1
            hidden = like_value(self.hidden if self.debias else self.averages)

            def step(h, x):
                if not _is_float(h):
                    return x.astype(h.dtype)
                decay = jnp.asarray(self.decay_rate, h.dtype)
                if self.warmup_length > 0:
                    decay = jnp.where(counter <= 0, jnp.zeros_like(decay), decay)
                return h * decay + x.astype(h.dtype) * (1 - decay)

            new_hidden = jax.tree_util.tree_map(step, hidden, value)
            if self.debias:

                def unbias(h):
                    if not _is_float(h):
                        return h
                    decay = jnp.asarray(self.decay_rate, h.dtype)
                    # Haiku's arithmetic: a float to an int32 power
                    return h / (1 - jnp.power(decay, counter))

                averages = jax.tree_util.tree_map(unbias, new_hidden)
            else:
                averages = new_hidden
            if update:
                with stateful_call(self, "the moving average", True):
                    self.counter = counter
                    self.averages = averages
                    if self.debias:
                        self.hidden = new_hidden
            return averages


# ---------------------------------------------------------------------------
# Trees of parameters (shared with ``SNParamsTree`` in ``_spectral_norm.py``)
# ---------------------------------------------------------------------------


class _LeafText:
    """Stands in for a leaf when a template tree is printed (``float32[3, 4]``)."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _TreeTemplate:
    """Structure, leaf path strings, shapes and dtypes of a template tree.

    Static (hashable) data: no arrays are kept, so a module holding one
    flattens to the same treedef whatever the values were.
    """

    __slots__ = ("treedef", "paths", "shapes", "dtypes")

    def __init__(self, treedef: Any, paths: tuple, shapes: tuple, dtypes: tuple):
        self.treedef = treedef
        self.paths = paths
        self.shapes = shapes
        self.dtypes = dtypes

    @classmethod
    def build(cls, like: Any, owner: str) -> tuple[_TreeTemplate, list[jax.Array]]:
        """The template of ``like`` and its leaves (as arrays)."""
        pairs, treedef = jax.tree_util.tree_flatten_with_path(like)
        leaves = [as_array(x, owner) for _, x in pairs]
        template = cls(
            treedef,
            tuple(jax.tree_util.keystr(p) for p, _ in pairs),
            tuple(tuple(x.shape) for x in leaves),
            tuple(np.dtype(x.dtype) for x in leaves),
        )
        return template, leaves

    def check(self, tree: Any, owner: str) -> list[tuple[str, Any]]:
        """``(path, leaf)`` pairs of ``tree``; ``ValueError`` unless it matches."""
        pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
        paths = tuple(jax.tree_util.keystr(p) for p, _ in pairs)
        if paths != self.paths:
            expected, got = set(self.paths), set(paths)
            missing = [p for p in self.paths if p not in got]
            extra = [p for p in paths if p not in expected]
            if missing:
                what = f"it has no leaf at `{missing[0]}`"
            elif extra:
                what = f"it has an unexpected leaf at `{extra[0]}`"
            else:
                what = f"its leaves come in another order: {paths}"
            raise ValueError(
                f"{owner}: `tree` does not match the template tree: {what} "
                f"(expected leaves {list(self.paths)})"
            )
        if treedef != self.treedef:
            raise ValueError(
                f"{owner}: `tree` has the template's leaf paths but other "
                f"containers: got {treedef}, expected {self.treedef}"
            )
        out = [(path, leaf) for path, (_, leaf) in zip(paths, pairs)]
        for (path, leaf), shape in zip(out, self.shapes):
            if tuple(np.shape(leaf)) != shape:
                raise ValueError(
                    f"{owner}: leaf `{path}` has shape {tuple(np.shape(leaf))}, "
                    f"expected {shape}"
                )
        return out

    def describe(self) -> str:
        """The template with each leaf shown as ``dtype[shape]``."""
        texts = [
            _LeafText(f"{d.name}{list(s)}") for d, s in zip(self.dtypes, self.shapes)
        ]
        try:
            return repr(jax.tree_util.tree_unflatten(self.treedef, texts))
        except Exception:  # noqa: BLE001 - a container that refuses odd leaves
            return f"<tree with {len(texts)} leaves>"

    def _key(self) -> tuple:
        return (self.treedef, self.paths, self.shapes, self.dtypes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _TreeTemplate) and (
            self is other or self._key() == other._key()
        )

    def __hash__(self) -> int:
        return hash((self.paths, self.shapes))


def _check_ignore_regex(ignore_regex: Any, owner: str) -> str:
    """``ignore_regex`` as a valid regular-expression string."""
    if not isinstance(ignore_regex, str):
        raise TypeError(
            f"{owner}: `ignore_regex` must be a string, got {ignore_regex!r}"
        )
    try:
        re.compile(ignore_regex)
    except re.error as e:
        raise ValueError(
            f"{owner}: `ignore_regex` {ignore_regex!r} is not a valid regular "
            f"expression: {e}"
        ) from None
    return ignore_regex


def _is_ignored(ignore_regex: str, path: str) -> bool:
    """Haiku's rule: a non-empty regex that ``re.match``es the path string."""
    return bool(ignore_regex) and re.match(ignore_regex, path) is not None


class EMAParamsTree(Module):
    """An exponential moving average of every leaf of a parameter tree.

    ``like`` is a template tree (a Haiku-style ``{"linear": {"w": ..., "b":
    ...}}`` dict, ``module.parameters()`` of a PAX module, any pytree of
    arrays). Every floating leaf whose *path string* does not match
    ``ignore_regex`` gets its own :class:`EMA`; a call returns the tree with
    each of those leaves replaced by its moving average, and every other leaf
    (ignored or non-floating) as given. Typical use: keep an averaged copy of a
    model's weights for evaluation.

    The math is Haiku's ``EMAParamsTree`` (``hk.ExponentialMovingAverage`` per
    leaf): the hidden average starts at zero and after ``t`` updates is
    ``hidden = decay * hidden + (1 - decay) * x``; the result is ``hidden /
    (1 - decay**t)`` with ``zero_debias`` (so the first average equals the
    first value) and ``hidden`` itself without. With ``warmup_length = k`` the
    decay is 0 for the first ``k`` calls (the average follows the value), then
    ``decay``.

    The path string of a leaf is ``jax.tree_util.keystr`` of its key path:
    ``['linear']['w']`` for a nested dict, ``.weight`` or ``.layers[0].weight``
    for a PAX module (Haiku matches ``linear/w`` instead; ``pax.hk`` translates).
    ``ignore_regex`` is tested with ``re.match`` (anchored at the start), e.g.
    ``r".*\\['b'\\]"`` skips every ``b``; the empty string ignores nothing.

    Args:
      like: the template tree; only its structure, paths, shapes and dtypes
        are kept (each ``EMA`` stores its average in the leaf's dtype).
      decay: the decay, in ``[0, 1)`` with ``zero_debias`` and ``[0, 1]``
        without; close to 1 averages slowly.
      zero_debias: Haiku's zero-debiasing (default True).
      warmup_length: number of initial calls during which the average just
        follows the value (an int >= 0). Needs ``zero_debias=False``.
      ignore_regex: leaves whose path string matches are not averaged.
      name: optional module name.

    State: ``emas``, a dict from path string to :class:`EMA` (each with its
    ``counter``, ``averages`` and, with ``zero_debias``, ``hidden``). No
    trainable parameters.

    Modes: in training mode (the default) a call updates every average, so it
    runs through ``pax.purecall`` / ``pax.pure`` (a plain call raises
    ``MutationError`` naming this module). In eval mode (``ema.eval()``) a
    plain call changes nothing and returns the tree with the *current*
    averages. ``update_stats=True`` / ``False`` overrides the mode for one
    call, as in :class:`EMA` (``False``: the averages this update would give,
    not stored).

    >>> import jax.numpy as jnp, pax
    >>> params = {"linear": {"w": jnp.ones((2, 3)), "b": jnp.zeros((3,))}}
    >>> ema = pax.EMAParamsTree(params, decay=0.5)
    >>> ema, avg = pax.purecall(ema, params)  # zero-debiased: the value itself
    >>> avg["linear"]["w"].tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    >>> twice = {"linear": {"w": 3 * jnp.ones((2, 3)), "b": jnp.zeros((3,))}}
    >>> ema, avg = pax.purecall(ema, twice)  # (0.5 * 1 + 3) * 0.5 / 0.75
    >>> round(float(avg["linear"]["w"][0, 0]), 4)
    2.3333
    >>> avg = ema.eval()(params)  # eval: the stored averages, nothing changes
    >>> round(float(avg["linear"]["w"][0, 0]), 4)
    2.3333
    """

    def __init__(
        self,
        like: Any,
        decay: float,
        zero_debias: bool = True,
        warmup_length: int = 0,
        ignore_regex: str = "",
        *,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if isinstance(decay, bool) or not isinstance(decay, (int, float, np.number)):
            raise TypeError(f"{owner}: `decay` must be a float, got {decay!r}")
        decay = float(decay)
        if not (math.isfinite(decay) and 0.0 <= decay <= 1.0):
            raise ValueError(f"{owner}: `decay` must be in [0, 1], got {decay}")
        if zero_debias and decay == 1.0:
            raise ValueError(
                f"{owner}: `decay` must be < 1 with zero_debias=True (the debiased "
                "average divides by 1 - decay**t)"
            )
        if (
            isinstance(warmup_length, bool)
            or not isinstance(warmup_length, (int, np.integer))
            or warmup_length < 0
        ):
            raise ValueError(
                f"{owner}: `warmup_length` must be an int >= 0, got {warmup_length!r}"
            )
        if warmup_length and zero_debias:
            raise ValueError(
                f"{owner}: `warmup_length` > 0 needs zero_debias=False (the "
                "warm-up starts the average from the values: nothing to debias)"
            )
        self.decay = decay
        self.zero_debias = bool(zero_debias)
        self.warmup_length = int(warmup_length)
        self.ignore_regex = _check_ignore_regex(ignore_regex, owner)
        self.template, leaves = _TreeTemplate.build(like, owner)
        self.emas = {
            path: EMA(
                jnp.zeros(x.shape, x.dtype),
                self.decay,
                debias=self.zero_debias,
                warmup_length=self.warmup_length,
                name=path,
            )
            for path, x in zip(self.template.paths, leaves)
            if _is_float(x) and not _is_ignored(self.ignore_regex, path)
        }

    def __repr__(self) -> str:
        parts = [
            f"like={self.template.describe()}",
            f"decay={self.decay}",
            f"zero_debias={self.zero_debias}",
            f"warmup_length={self.warmup_length}",
            f"ignore_regex={self.ignore_regex!r}",
        ]
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __call__(self, tree: Any, update_stats: bool | None = None) -> Any:
        """A tree with ``like``'s structure and leaf shapes -> the same.

        Averaged leaves come back in the dtype of the given leaf (the stored
        average keeps the template's dtype); other leaves are returned as
        given. ``update_stats``: ``None`` follows the mode (training: update
        and return the new averages; eval: return the current averages,
        change nothing), ``True`` updates, ``False`` computes the new averages
        without storing them (a plain call). A tree whose structure or leaf
        shapes differ from ``like`` raises ``ValueError`` naming the first
        differing path.
        """
        update = resolve_update_stats(self, update_stats)
        current = update_stats is None and not update
        pairs = self.template.check(tree, who(self))
        out = []
        with stateful_call(self, "its moving averages", True):
            for path, leaf in pairs:
                ema = self.emas.get(path)
                if ema is None:
                    out.append(leaf)
                    continue
                leaf = jnp.asarray(leaf)
                avg = ema.averages if current else ema(leaf, update_stats=update)
                out.append(avg.astype(leaf.dtype) if _is_float(leaf) else avg)
        return jax.tree_util.tree_unflatten(self.template.treedef, out)

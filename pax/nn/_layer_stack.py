"""Layer stacking: ``LayerStack``, N copies of a layer applied with one scan."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.errors import MutationError
from .._core.module import Module
from .._core.pure import purecall
from ._utils import as_array, positive_int, rng_key_or_next


class LayerStack(Module):
    """``num_layers`` copies of a layer, stored stacked and applied with one
    ``jax.lax.scan``: the PAX counterpart of ``hk.experimental.layer_stack``
    and ``nnx.Scan``.

    ``make_layer(rng_key)`` is called once per layer, each time with its own
    key (``jax.random.split(rng_key, num_layers)[i]``). The layers must share
    one structure: same module types, same static fields (sizes, functions,
    mode, names), same leaf shapes and dtypes. They are stored as **one**
    module, ``layers``, whose every leaf (parameters and state alike) has a
    leading ``[num_layers]`` axis: a stack of ``Linear(4, 8)`` holds
    ``layers.weight`` ``[num_layers, 4, 8]`` and ``layers.bias``
    ``[num_layers, 8]``. That module is a template, not a layer you can call:
    use ``stack[i]`` for layer ``i`` (leaves sliced, a plain module).

    The call is a single scan over the layers, so tracing and compile time do
    not grow with depth. Every layer must map the carry ``x`` to an output of
    the same structure, shapes and dtypes; the one exception is a floating
    output of another floating dtype, which is cast back to the carry's dtype
    (so :func:`pax.apply_mp_policy`, which casts each layer's output, works
    on a whole stack). An integer or boolean input leaf that the layers map
    to a floating one (a ``Linear`` gives float32) starts the carry in that
    floating dtype, as DESIGN §8 ("Integer input") asks.

    State: if the layers update state when called (BatchNorm in training
    mode, Dropout), the updated per-layer states come back from the scan and
    are stored in ``layers``, so the stack's call then needs
    ``stack, y = pax.purecall(stack, x)``, exactly like the layer's own call;
    a stateless call (Linear, eval-mode BatchNorm) is a plain ``stack(x)``.
    ``stack.train()`` / ``stack.eval()`` switch every layer at once (the mode
    is a static field shared by all layers).

    Args:
      make_layer: ``make_layer(rng_key) -> pax.Module``; called
        ``num_layers`` times.
      num_layers: number of layers, a positive int.
      remat: rematerialise each layer's activations in the backward pass
        (wraps the scan body in ``jax.checkpoint``): less memory, more
        compute; same values and gradients.
      unroll: how many layers each iteration of the scan runs (``jax.lax.scan``'s
        ``unroll``; ``True`` unrolls completely): fewer loop iterations, more
        compile time. Default 1.
      rng_key: split into one key per layer; ``None`` draws
        ``pax.next_rng_key()``.
      name: optional module name.

    Representation: ``repr`` is ``LayerStack(num_layers=N, layer=<repr of a
    layer>)`` (plus ``remat``/``name`` when set); ``summary()`` shows the
    stacked layer once, as ``N × <layer summary>``.

    >>> import jax, jax.numpy as jnp, pax
    >>> stack = pax.LayerStack(
    ...     lambda k: pax.Linear(4, 4, rng_key=k), 3, rng_key=jax.random.PRNGKey(0)
    ... )
    >>> stack
    LayerStack(num_layers=3, layer=Linear(in_dim=4, out_dim=4, with_bias=True))
    >>> stack.layers.weight.shape, stack[0].weight.shape, len(stack)
    ((3, 4, 4), (4, 4), 3)
    >>> x = jnp.ones((2, 4))
    >>> y = stack(x)
    >>> bool(jnp.allclose(y, stack[2](stack[1](stack[0](x))), atol=1e-6))
    True
    >>> print(stack.summary())
    LayerStack(num_layers=3)
    └── 3 × Linear(in_dim=4, out_dim=4, with_bias=True)
    """

    def __init__(
        self,
        make_layer: Callable[[jax.Array], Module],
        num_layers: int,
        *,
        remat: bool = False,
        unroll: int | bool = 1,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if not callable(make_layer):
            raise TypeError(
                f"{owner}: `make_layer` must be a function rng_key -> pax.Module, "
                f"got {make_layer!r}"
            )
        self.num_layers = positive_int(num_layers, "num_layers", owner)
        self.remat = bool(remat)
        if isinstance(unroll, bool):
            self.unroll = unroll
        else:
            self.unroll = positive_int(unroll, "unroll", owner)
        keys = jax.random.split(rng_key_or_next(rng_key), self.num_layers)
        layers = []
        for i in range(self.num_layers):
            layer = make_layer(keys[i])
            if not isinstance(layer, Module):
                raise TypeError(
                    f"{owner}: `make_layer` must return a pax.Module, got "
                    f"{type(layer).__name__} for layer {i}"
                )
            if i > 0:
                _check_same_structure(layers[0], layer, i, owner)
            layers.append(layer)
        self.layers = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *layers)

    # -- inspection ---------------------------------------------------------
    def _short_repr(self) -> str:
        parts = [f"num_layers={self.num_layers}"]
        if self.remat:
            parts.append("remat=True")
        if self.unroll is not False and self.unroll != 1:
            parts.append(f"unroll={self.unroll}")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __repr__(self) -> str:
        text = self._short_repr()
        return f"{text[:-1]}, layer={self.layers!r})"

    def _summary_line(self) -> str:
        return self._short_repr()

    def summary(self, *, table: bool = False) -> str:
        """The stack, then the stacked layer once, as ``N × <layer summary>``;
        with ``table=True``, ``pax.tabulate(self)``."""
        if table:
            return super().summary(table=True)
        sub = self.layers.summary().split("\n")
        lines = [self._summary_line(), f"└── {self.num_layers} × {sub[0]}"]
        lines.extend("    " + line for line in sub[1:])
        return "\n".join(lines)

    # -- indexing -----------------------------------------------------------
    def __len__(self) -> int:
        return self.num_layers

    def __getitem__(self, index: int | slice) -> Module:
        """``stack[i]``: layer ``i`` as a plain module (negative ``i`` counts
        from the end); ``stack[a:b]``: a ``LayerStack`` of those layers."""
        if isinstance(index, slice):
            picked = range(self.num_layers)[index]
            if len(picked) == 0:
                raise ValueError(
                    f"{self._short_repr()}: the slice {index} selects no layer; a "
                    "LayerStack needs at least one"
                )
            idx = np.asarray(picked)
            layers = jax.tree_util.tree_map(lambda x: x[idx], self.layers)
            return self.replace(layers=layers, num_layers=len(picked))
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(
                f"{self._short_repr()}: layer index must be an int or a slice, "
                f"got {type(index).__name__}"
            )
        i = int(index)
        if not -self.num_layers <= i < self.num_layers:
            raise IndexError(f"{self._short_repr()}: layer index {i} is out of range")
        i %= self.num_layers
        return jax.tree_util.tree_map(lambda x: x[i], self.layers)

    def __iter__(self) -> Iterator[Module]:
        return (self[i] for i in range(self.num_layers))

    # -- call -----------------------------------------------------------------
    def __call__(self, x: Any, *per_layer_args: Any, **kwargs: Any) -> Any:
        """Apply the layers in order: ``x = layer_i(x, *args_i, **kwargs)``.

        Args:
          x: the input and scan carry (an array or a pytree of arrays); every
            layer must return the same structure, shapes and dtypes (or
            another floating dtype, cast back to the carry's).
          *per_layer_args: pytrees whose leaves have a leading
            ``[num_layers]`` axis; layer ``i`` gets slice ``i`` of each, as
            extra positional arguments after ``x``.
          **kwargs: passed unchanged to every layer.

        Returns:
          The last layer's output, shaped like ``x``.

        Raises:
          ValueError: a per-layer argument without the leading
            ``[num_layers]`` axis, or a layer whose output differs from its
            input in structure, shape or dtype.
          MutationError: the layers updated their state but the stack was not
            called through ``pax.purecall`` / ``pax.pure``.
        """
        self._check_per_layer_args(per_layer_args)
        layers = self.layers
        x = self._as_input(x, per_layer_args, kwargs)
        info: dict[str, Any] = {}

        def body(carry, xs):
            layer, args = xs
            new_layer, out = purecall(layer, carry, *args, **kwargs)
            out = self._as_carry(carry, out)
            old_leaves, old_def = jax.tree_util.tree_flatten(layer)
            new_leaves, new_def = jax.tree_util.tree_flatten(new_layer)
            if new_def == old_def:
                # Emit only the leaves the call replaced (state), not the
                # parameters it left alone.
                changed = tuple(
                    i
                    for i, (a, b) in enumerate(zip(old_leaves, new_leaves))
                    if a is not b
                )
                info["treedef"], info["changed"] = None, changed
                return out, [new_leaves[i] for i in changed]
            info["treedef"], info["changed"] = new_def, None
            return out, new_leaves

        if self.remat:
            body = jax.checkpoint(body, prevent_cse=False)
        with jax.named_scope("pax.nn.LayerStack"):
            y, emitted = jax.lax.scan(
                body,
                x,
                (layers, per_layer_args),
                length=self.num_layers,
                unroll=self.unroll,
            )
        if info["treedef"] is not None:
            new_layers = jax.tree_util.tree_unflatten(info["treedef"], emitted)
        elif info["changed"]:
            leaves, treedef = jax.tree_util.tree_flatten(layers)
            for i, leaf in zip(info["changed"], emitted):
                leaves[i] = leaf
            new_layers = jax.tree_util.tree_unflatten(treedef, leaves)
        else:
            return y
        try:
            self.layers = new_layers
        except MutationError as e:
            raise MutationError(
                f"{self._short_repr()}: the layers updated their state during the "
                "call (BatchNorm in training mode, Dropout, ...), so the stack "
                "must be called on a copy: `stack, y = pax.purecall(stack, x)` "
                "(or inside `pax.pure`); use `stack.eval()` for a stateless "
                f"call.\n{e}"
            ) from None
        return y

    def _as_input(self, x: Any, per_layer_args: tuple, kwargs: dict) -> Any:
        """``x`` with array leaves (a clear error otherwise), integer or
        boolean leaves promoted to the floating dtype the layers return for
        them (DESIGN §8, "Integer input"), so the scan carry has one dtype."""
        leaves, treedef = jax.tree_util.tree_flatten(x)
        leaves = [as_array(leaf, self._short_repr()) for leaf in leaves]
        x = jax.tree_util.tree_unflatten(treedef, leaves)
        if all(jnp.issubdtype(leaf.dtype, jnp.inexact) for leaf in leaves):
            return x
        first = jax.tree_util.tree_map(lambda a: a[0], (self.layers, per_layer_args))

        def call_first(layer, carry, args):
            return purecall(layer, carry, *args, **kwargs)[1]

        out = jax.eval_shape(call_first, first[0], x, first[1])
        out_leaves, out_def = jax.tree_util.tree_flatten(out)
        if out_def != treedef:
            return x  # the carry check in the scan body reports it
        return jax.tree_util.tree_unflatten(
            treedef,
            [
                a.astype(b.dtype)
                if not jnp.issubdtype(a.dtype, jnp.inexact)
                and jnp.issubdtype(b.dtype, jnp.inexact)
                and a.shape == b.shape
                else a
                for a, b in zip(leaves, out_leaves)
            ],
        )

    def _check_per_layer_args(self, per_layer_args: tuple) -> None:
        for j, arg in enumerate(per_layer_args):
            pairs = jax.tree_util.tree_flatten_with_path(arg)[0]
            for path, leaf in pairs:
                shape = np.shape(leaf)
                if not shape or shape[0] != self.num_layers:
                    where = f"per-layer argument {j}{jax.tree_util.keystr(path)}"
                    raise ValueError(
                        f"{self._short_repr()}: {where} must have a leading axis "
                        f"of size num_layers={self.num_layers}, got shape {shape}"
                    )

    def _as_carry(self, x: Any, y: Any) -> Any:
        """Check that a layer's output ``y`` can be the next carry; cast a
        floating output of another floating dtype back to the carry's dtype."""
        x_leaves, x_def = jax.tree_util.tree_flatten(x)
        y_leaves, y_def = jax.tree_util.tree_flatten(y)
        same = x_def == y_def and all(
            np.shape(a) == np.shape(b)
            and (
                jnp.result_type(a) == jnp.result_type(b)
                or (_is_float(a) and _is_float(b))
            )
            for a, b in zip(x_leaves, y_leaves)
        )
        if not same:
            raise ValueError(
                f"{self._short_repr()}: each layer must return an output of the "
                "same structure, shape and dtype as its input (the scan carry); "
                f"{self.layers!r} maps {_describe(x)} to {_describe(y)}"
            )
        y_leaves = [
            b if jnp.result_type(a) == jnp.result_type(b) else b.astype(a.dtype)
            for a, b in zip(x_leaves, y_leaves)
        ]
        return jax.tree_util.tree_unflatten(y_def, y_leaves)


def _is_float(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _describe(tree: Any) -> str:
    def one(leaf):
        return f"{jnp.result_type(leaf)}{list(np.shape(leaf))}"

    leaves, treedef = jax.tree_util.tree_flatten(tree)
    if treedef == jax.tree_util.tree_structure(0):
        return one(leaves[0])
    return str(jax.tree_util.tree_unflatten(treedef, [one(x) for x in leaves]))


# ---------------------------------------------------------------------------
# structure check, with a message that says why two layers differ
# ---------------------------------------------------------------------------


def _check_same_structure(first: Module, layer: Module, i: int, owner: str) -> None:
    first_pairs, first_def = jax.tree_util.tree_flatten_with_path(first)
    pairs, treedef = jax.tree_util.tree_flatten_with_path(layer)
    if treedef == first_def:
        for (path, a), (_, b) in zip(first_pairs, pairs):
            sa, sb = np.shape(a), np.shape(b)
            da, db = jnp.result_type(a), jnp.result_type(b)
            if sa != sb or da != db:
                why = (
                    f"leaf `{jax.tree_util.keystr(path)}` is {db}{list(sb)}, "
                    f"layer 0 has {da}{list(sa)}"
                )
                break
        else:
            return
    else:
        why = _structure_difference(first, layer, first_pairs, pairs)
    raise ValueError(
        f"{owner}: every layer must have the same structure (types, static "
        f"fields, leaf shapes and dtypes), but layer {i} differs from layer 0: "
        f"{why}. `make_layer` must build the same layer for every key (define "
        "functions it uses outside it, so they are the same object)."
    )


def _structure_difference(first, layer, first_pairs, pairs) -> str:
    if type(first) is not type(layer):
        return f"it is a {type(layer).__name__}, layer 0 a {type(first).__name__}"
    found = _static_difference(first, layer, "")
    if found is not None:
        return found
    first_paths = [jax.tree_util.keystr(p) for p, _ in first_pairs]
    paths = [jax.tree_util.keystr(p) for p, _ in pairs]
    if first_paths != paths:
        for k in range(max(len(paths), len(first_paths))):
            a = first_paths[k] if k < len(first_paths) else "<nothing>"
            b = paths[k] if k < len(paths) else "<nothing>"
            if a != b:
                return f"leaf {k} is `{b}`, layer 0 has `{a}`"
    return f"{layer!r} vs {first!r} have different pytree structures"


def _static_difference(a: Any, b: Any, path: str) -> str | None:
    """The first static (non-array) field where modules ``a`` and ``b`` differ."""
    if type(a) is not type(b):
        return f"`{path or '.'}` is {_kind(b)}, layer 0 has {_kind(a)}"
    if isinstance(a, Module):
        da, db = vars(a), vars(b)
        keys = [k for k in da if k != "_pax_repr"]
        keys += [k for k in db if k not in da and k != "_pax_repr"]
        for key in keys:
            if key not in da or key not in db:
                return f"field `{path}.{key}` is present in only one of them"
            found = _static_difference(da[key], db[key], f"{path}.{key}")
            if found is not None:
                return found
        if not _equal(da.get("_pax_repr"), db.get("_pax_repr")):
            return f"`{path or '.'}` was built as {b!r}, layer 0 as {a!r}"
        return None
    if isinstance(a, jax.Array | np.ndarray | np.generic):
        return None
    a_leaves, a_def = jax.tree_util.tree_flatten(a, is_leaf=_is_module)
    b_leaves, b_def = jax.tree_util.tree_flatten(b, is_leaf=_is_module)
    if a_def != b_def:
        return f"field `{path}` is {b!r}, layer 0 has {a!r}"
    if a_def.num_leaves == 1 and a_leaves and a_leaves[0] is a:
        if not _equal(a, b):
            return f"static field `{path}` is {b!r}, layer 0 has {a!r}"
        return None
    for k, (x, y) in enumerate(zip(a_leaves, b_leaves)):
        found = _static_difference(x, y, f"{path}[{k}]")
        if found is not None:
            return found
    return None


def _kind(x: Any) -> str:
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        return f"an array {jnp.result_type(x)}{list(np.shape(x))}"
    if isinstance(x, Module):
        return f"a {type(x).__name__}"
    return repr(x)


def _is_module(x: Any) -> bool:
    return isinstance(x, Module)


def _equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an odd __eq__ means "not equal"
        return False

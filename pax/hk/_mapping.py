"""One record per ``pax.nn`` / ``pax.nets`` layer that has a Haiku twin.

A :class:`HaikuTwin` says, once, how a native layer's arrays appear in the
Haiku program that builds the twin layer:

- ``module_name``: Haiku's default module name (``linear``, ``batch_norm``);
  ``None`` means the snake case of the native class name (``Conv2D`` ->
  ``conv2_d``), a callable computes it from the native module.
- ``leaves``: one :class:`Leaf` per Haiku array the module itself owns, **in
  the order Haiku creates them** (initializers draw rng keys in that order):
  the native ``keystr`` path (``".weight"``), Haiku's array name (``"w"``),
  whether Haiku keeps it as a parameter or as state, and the shape
  transformation native -> Haiku (``None``: the same shape).
- ``children``: submodules Haiku creates, each a :class:`Child` naming the
  native attribute, Haiku's module name for it and the twin it follows;
  ``scope`` is how their names join the parent's (``"/~/"`` for modules
  Haiku builds in ``__init__``, ``"/"`` for those built in ``__call__``).
- ``context``: reads from a native module what Haiku's shapes depend on
  beyond the native shape (a :class:`Context`: the input rank, the channel
  layout, the parameter axis).

Two readers use the records:

- the ``pax.hk`` layers call :func:`fetch` with the native layer's leaf
  shapes (``pax.hk._native.template(...).shapes``): it computes each Haiku
  shape, calls ``hk.get_parameter`` / ``hk.get_state`` with Haiku's name,
  shape, dtype and initializer, and returns the arrays reshaped to the native
  layout, keyed by native path, ready for ``template.build``. Children are
  fetched by the hk submodule that owns them (Haiku scopes the names by the
  module that calls ``get_parameter``);
- ``hk.to_haiku_params`` / ``hk.from_haiku_params`` (``_convert.py``) walk a
  native module and turn each record into export/load entries.

Adding a Haiku twin of a native layer is one record here (plus its tests).

>>> import pax
>>> from pax.hk import _mapping
>>> twin = _mapping.record_for(pax.nn.Conv2D)
>>> [(leaf.path, leaf.name) for leaf in twin.leaves]
[('.weight', 'w'), ('.bias', 'b')]
>>> twin.leaves[1].haiku_shape((8,), _mapping.Context(channels_last=False,
...                                                   spatial_dims=2))
(8, 1, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp

from .. import nets, nn
from ._module import camel_to_snake

Shape = tuple[int, ...]
ShapeFn = Callable[[Shape, "Context"], Shape]


@dataclasses.dataclass(frozen=True)
class Context:
    """What a Haiku shape depends on beyond the native shape.

    Attributes:
      input_ndim: rank of the layer's inputs (batch axes included), where
        known; :meth:`ndim` raises when a shape needs it and it is not known.
      channels_last: the channel layout (channels-first biases are
        ``[C, 1, ..., 1]`` in Haiku).
      spatial_dims: number of spatial axes after the channels of a
        channels-first input (default: ``input_ndim - 2``).
      param_axes: axes along which Haiku's per-channel arrays extend (may be
        negative; several only for a ``BatchNorm`` over a general ``axis``,
        where ``input_shape`` gives their sizes).
      input_shape: the input's shape, where known.
      value_shape: inside a parent that averages a reshaped value (the moving
        averages of ``BatchNorm``): the parent's shape function for it.
      owner: how errors name the layer.
    """

    input_ndim: int | None = None
    channels_last: bool = True
    spatial_dims: int | None = None
    param_axes: tuple[int, ...] = (-1,)
    input_shape: Shape | None = None
    value_shape: Callable[[Shape], Shape] | None = None
    owner: str = "layer"

    def ndim(self) -> int:
        if self.input_ndim is None:
            raise ValueError(
                f"{self.owner}: Haiku's parameter shapes for this layer depend on "
                "the rank of its inputs; pass input_ndim= (e.g. 4 for NHWC images)."
            )
        return self.input_ndim


# -- shape transformations (native shape, context) -> Haiku shape ------------


def channels_first_bias(s: Shape, ctx: Context) -> Shape:
    """``[C]`` channels last; ``[C, 1, ..., 1]`` (one 1 per spatial axis)
    channels first."""
    if ctx.channels_last:
        return s
    n = ctx.spatial_dims if ctx.spatial_dims is not None else ctx.ndim() - 2
    return (*s, *(1,) * n)


def per_channel(s: Shape, ctx: Context) -> Shape:
    """An array of the input's rank, ``C`` along the parameter axis and 1
    elsewhere (``BatchNorm``'s parameters and statistics)."""
    ndim = ctx.ndim()
    axes = {a % ndim for a in ctx.param_axes}
    if len(axes) == 1:
        return tuple(s[0] if i in axes else 1 for i in range(ndim))
    assert ctx.input_shape is not None, "several parameter axes need input_shape"
    return tuple(ctx.input_shape[i] if i in axes else 1 for i in range(ndim))


def per_channel_unless_last(s: Shape, ctx: Context) -> Shape:
    """``LayerNorm``/``RMSNorm``'s ``param_axis``: ``[C]`` for the last axis
    alone, else an array of the input's rank with the native sizes along the
    parameter axes (in the order of ``ctx.param_axes``) and 1 elsewhere
    (``(2, 3)`` on axes ``(0, -1)`` of a rank-3 input: ``(2, 1, 3)``)."""
    axes = ctx.param_axes
    if axes == (-1,) or (ctx.input_ndim is not None and axes == (ctx.input_ndim - 1,)):
        return s
    ndim = ctx.ndim()
    absolute = [a % ndim for a in axes]
    if absolute == [ndim - 1]:
        return s
    sizes = dict(zip(absolute, s, strict=True))
    return tuple(sizes.get(i, 1) for i in range(ndim))


def averaged_value(s: Shape, ctx: Context) -> Shape:
    """The moving average of a value: the value's shape, as the parent that
    owns the average shapes it (``BatchNorm``), else the native one."""
    return s if ctx.value_shape is None else ctx.value_shape(s)


# -- records -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One Haiku array of a record.

    Attributes:
      path: the native leaf, a ``keystr`` path relative to the module.
      name: Haiku's array name.
      kind: ``"param"`` (``hk.get_parameter``) or ``"state"``
        (``hk.get_state``).
      shape: native shape -> Haiku shape; ``None``: the same.
      fallback: the native path that holds the array when ``path`` does not
        exist (an EMA without debiasing keeps Haiku's ``hidden`` as its
        ``averages``). A native path claimed by an earlier leaf is exported
        under this name too, but loaded from the first one only.
      read: whether the Haiku layer reads it before computing (``False``:
        Haiku only writes it, or reads it elsewhere; :func:`fetch` skips it).
      dtype: a fixed dtype (``counter`` is int32), else the layer's.
    """

    path: str
    name: str
    kind: Literal["param", "state"] = "param"
    shape: ShapeFn | None = None
    fallback: str | None = None
    read: bool = True
    dtype: Any = None

    def haiku_shape(self, native_shape: Shape, ctx: Context) -> Shape:
        native_shape = tuple(native_shape)
        return native_shape if self.shape is None else self.shape(native_shape, ctx)

    def source(self, present: Callable[[str], bool]) -> str | None:
        """The native path holding this array (``None``: the module has none)."""
        if present(self.path):
            return self.path
        if self.fallback is not None and present(self.fallback):
            return self.fallback
        return None


@dataclasses.dataclass(frozen=True)
class Child:
    """A submodule Haiku creates: the native attribute ``path``, Haiku's
    module ``name`` for it (made unique in the scope: ``linear``,
    ``linear_1``) and, for moving averages of a reshaped value, the parent's
    ``value_shape`` transformation (evaluated with the parent's context)."""

    path: str
    name: str
    value_shape: ShapeFn | None = None


def _no_context(module: Any, input_ndim: int | None) -> Context:
    del module
    return Context(input_ndim=input_ndim)


@dataclasses.dataclass(frozen=True)
class HaikuTwin:
    """The Haiku twin of one native layer (see the module docstring)."""

    native: type
    module_name: str | Callable[[Any], str] | None = None
    leaves: tuple[Leaf, ...] = ()
    children: tuple[Child, ...] = ()
    scope: str = "/~/"
    context: Callable[[Any, int | None], Context] = _no_context
    check: Callable[[Any], None] | None = None

    def haiku_name(self, module: Any) -> str:
        if self.module_name is None:
            return camel_to_snake(type(module).__name__)
        if callable(self.module_name):
            return self.module_name(module)
        return self.module_name

    def leaf(self, name: str) -> Leaf:
        return next(leaf for leaf in self.leaves if leaf.name == name)


def _bias(path: str = ".bias", shape: ShapeFn | None = None) -> Leaf:
    return Leaf(path, "b", shape=shape)


_LINEAR_LEAVES = (Leaf(".weight", "w"), _bias())
_EMA_LEAVES = (
    Leaf(".counter", "counter", "state", dtype=jnp.int32),
    Leaf(".hidden", "hidden", "state", averaged_value, fallback=".averages"),
    Leaf(".averages", "average", "state", averaged_value, read=False),
)


def _conv_context(m: Any, input_ndim: int | None) -> Context:
    return Context(input_ndim, m.channels_last, m.num_spatial_dims)


def _norm_owner(m: Any) -> str:
    return f"{type(m).__name__}(num_channels={m.num_channels})"


def _batch_norm_context(m: Any, input_ndim: int | None) -> Context:
    fmt = m.data_format  # a letter-by-letter format spells the input's rank
    named = fmt in ("channels_last", "channels_first") or "..." in fmt
    if input_ndim is None and not named:
        input_ndim = len(fmt)
    return Context(input_ndim, param_axes=(m.channel_axis,), owner=_norm_owner(m))


def _layer_norm_context(m: Any, input_ndim: int | None) -> Context:
    axes = m.param_axis
    axes = tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)
    return Context(input_ndim, param_axes=axes, owner=_norm_owner(m))


def _group_norm_context(m: Any, input_ndim: int | None) -> Context:
    return Context(input_ndim, m.channel_axis == -1, owner=_norm_owner(m))


def _single_ema(m: Any) -> None:
    if m.averages is None or not hasattr(m.averages, "shape"):
        raise ValueError(
            f"{type(m).__name__}: only an EMA of a single array has a Haiku "
            "counterpart (hk.ExponentialMovingAverage)"
        )


def _haiku_forget_gate_bias(m: Any) -> None:
    # hk.LSTM and hk.ConvNDLSTM add a fixed 1.0 to the forget gate; weights
    # taken from (or given to) a native LSTM with another bias would compute
    # something else under the same names.
    if m.forget_gate_bias != 1.0:
        raise ValueError(
            f"{type(m).__name__}: Haiku's LSTMs add a fixed forget gate bias of "
            f"1.0, but this one has forget_gate_bias={m.forget_gate_bias}, so "
            "the same weights would compute a different recurrence. Build the "
            "native LSTM with forget_gate_bias=1.0 to exchange weights with "
            "Haiku."
        )


def _conv_lstm_name(m: Any) -> str:
    return camel_to_snake(f"Conv{m.num_spatial_dims}DLSTM")


_SCALE_OFFSET = (
    ("scale", per_channel_unless_last),
    ("offset", per_channel_unless_last),
)

RECORDS: dict[type, HaikuTwin] = {
    twin.native: twin
    for twin in (
        HaikuTwin(nn.Linear, leaves=_LINEAR_LEAVES),
        HaikuTwin(nn.Bias, leaves=(_bias(),)),
        HaikuTwin(nn.Embed, leaves=(Leaf(".weight", "embeddings"),)),
        # ConvND covers the depthwise convolutions (its subclasses)
        HaikuTwin(
            nn.ConvND,
            leaves=(Leaf(".weight", "w"), _bias(shape=channels_first_bias)),
            context=_conv_context,
        ),
        HaikuTwin(
            nn.ConvNDTranspose,
            leaves=(Leaf(".weight", "w"), _bias(shape=channels_first_bias)),
            context=_conv_context,
        ),
        HaikuTwin(
            nn.SeparableDepthwiseConv2D,
            children=(
                Child(".conv1", "depthwise_conv2_d"),
                Child(".conv2", "depthwise_conv2_d"),
            ),
        ),
        HaikuTwin(
            nn.EMA,
            "exponential_moving_average",
            leaves=_EMA_LEAVES,
            check=_single_ema,
        ),
        # Haiku creates the moving averages first, then scale and offset
        HaikuTwin(
            nn.BatchNorm,
            "batch_norm",
            leaves=(
                Leaf(".scale", "scale", shape=per_channel),
                Leaf(".offset", "offset", shape=per_channel),
            ),
            children=(
                Child(".mean_ema", "mean_ema", per_channel),
                Child(".var_ema", "var_ema", per_channel),
            ),
            context=_batch_norm_context,
        ),
        HaikuTwin(  # also InstanceNorm (a subclass)
            nn.LayerNorm,
            leaves=tuple(Leaf(f".{n}", n, shape=f) for n, f in _SCALE_OFFSET),
            context=_layer_norm_context,
        ),
        HaikuTwin(
            nn.RMSNorm,
            leaves=(Leaf(".scale", "scale", shape=per_channel_unless_last),),
            context=_layer_norm_context,
        ),
        HaikuTwin(
            nn.GroupNorm,
            leaves=(
                Leaf(".scale", "scale", shape=channels_first_bias),
                Leaf(".offset", "offset", shape=channels_first_bias),
            ),
            context=_group_norm_context,
        ),
        HaikuTwin(
            nn.SpectralNorm,
            leaves=(
                Leaf(".u0", "u0", "state"),
                Leaf(".sigma", "sigma", "state", read=False),
            ),
        ),
        HaikuTwin(
            nn.MultiHeadAttention,
            children=(
                Child(".query_projection", "query"),
                Child(".key_projection", "key"),
                Child(".value_projection", "value"),
                Child(".output_projection", "linear"),
            ),
            scope="/",
        ),
        HaikuTwin(
            nn.VanillaRNN,
            children=(
                Child(".input_to_hidden", "linear"),
                Child(".hidden_to_hidden", "linear"),
            ),
            scope="/",
        ),
        HaikuTwin(
            nn.LSTM,
            children=(Child(".linear", "linear"),),
            scope="/",
            check=_haiku_forget_gate_bias,
        ),
        HaikuTwin(
            nn.GRU,
            leaves=(Leaf(".w_i", "w_i"), Leaf(".w_h", "w_h"), Leaf(".b", "b")),
        ),
        HaikuTwin(
            nn.ConvNDLSTM,
            _conv_lstm_name,
            children=(
                Child(".input_to_hidden", "input_to_hidden"),
                Child(".hidden_to_hidden", "hidden_to_hidden"),
            ),
            scope="/",
            check=_haiku_forget_gate_bias,
        ),
        HaikuTwin(nets.VectorQuantizer, leaves=(Leaf(".embeddings", "embeddings"),)),
        HaikuTwin(
            nets.VectorQuantizerEMA,
            leaves=(Leaf(".embeddings", "embeddings", "state"),),
            children=(
                Child(".ema_cluster_size", "ema_cluster_size"),
                Child(".ema_dw", "ema_dw"),
            ),
        ),
    )
}


def record_for(module_or_cls: Any) -> HaikuTwin | None:
    """The record of a native module or class (the nearest base class with
    one: ``Conv2D`` and ``DepthwiseConv2D`` use ``ConvND``'s), else None."""
    cls = module_or_cls if isinstance(module_or_cls, type) else type(module_or_cls)
    for base in cls.__mro__:
        if base in RECORDS:
            return RECORDS[base]
    return None


def fetch(
    twin: HaikuTwin,
    ctx: Context,
    shapes: Mapping[str, Shape],
    dtype: Any = None,
    inits: Mapping[str, Any] | None = None,
    prefix: str = "",
) -> dict[str, jax.Array]:
    """The record's own arrays, created or read through Haiku.

    For each leaf in ``twin.leaves`` (Haiku's order) that the native layer
    has (``shapes``: native path -> shape, e.g. ``template(...).shapes``) and
    that Haiku reads: ``hk.get_parameter`` (or ``hk.get_state``) of its name
    with the Haiku shape, ``dtype`` (or the leaf's fixed dtype) and
    ``inits[name]``, reshaped to the native shape. Must run inside the hk
    module that owns the arrays.

    Args:
      prefix: the native path of this record inside ``shapes`` (e.g.
        ``".linear"`` for an LSTM's projection); the returned keys keep it.

    Returns:
      ``{native path: array}``.
    """
    from ._base import get_parameter, get_state

    inits = inits or {}
    arrays: dict[str, jax.Array] = {}
    for leaf in twin.leaves:
        path = leaf.source(lambda p: prefix + p in shapes)
        if path is None or not leaf.read or prefix + path in arrays:
            continue
        path = prefix + path
        native_shape = tuple(shapes[path])
        hk_shape = leaf.haiku_shape(native_shape, ctx)
        get = get_parameter if leaf.kind == "param" else get_state
        leaf_dtype = leaf.dtype if leaf.dtype is not None else dtype
        value = get(leaf.name, hk_shape, leaf_dtype, init=inits.get(leaf.name))
        if hk_shape != native_shape:
            value = jnp.reshape(value, native_shape)
        arrays[path] = value
    return arrays

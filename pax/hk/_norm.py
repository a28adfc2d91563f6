"""Haiku's normalization layers (``BatchNorm``, ``LayerNorm``, ``RMSNorm``,
``GroupNorm``, ``InstanceNorm``), computing with the ``pax.nn`` layers.

Parameters and state have Haiku's names, shapes (e.g. ``(1, ..., C)`` batch
statistics) and dtypes (the input's); they are reshaped to the ``[C]`` layout
of the ``pax.nn`` layer that does the arithmetic. ``pax.nn`` normalization
layers compute in float32 (or wider) and cast the output back, where Haiku
computes in the input dtype: for bfloat16 inputs results agree only to
bfloat16 precision.
"""

from __future__ import annotations

import collections.abc

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn, purecall
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._moving_averages import ExponentialMovingAverage
from ._native import Template, template


def _axes_or_slice(axis):
    if isinstance(axis, slice):
        return axis
    if isinstance(axis, int):
        return (axis,)
    if isinstance(axis, collections.abc.Iterable) and all(
        isinstance(a, int) for a in axis
    ):
        return tuple(axis)
    raise ValueError(f"`axis` should be an int, slice or iterable of ints. Got: {axis}")


def _abs_axes(axis, ndim: int) -> tuple[int, ...]:
    if isinstance(axis, slice):
        return tuple(range(ndim)[axis])
    return tuple(sorted({a % ndim for a in axis}))


def _native_param_axis(shape, param_axis: tuple[int, ...]):
    """``(num_channels, param_axis)`` of the native layer for Haiku's sorted
    absolute ``param_axis``: ints for one axis, tuples for several."""
    param_axis = tuple(sorted(set(param_axis)))
    if len(param_axis) == 1:
        return shape[param_axis[0]], param_axis[0]
    return tuple(shape[a] for a in param_axis), param_axis


def _fetch(spec: Template, ctx: Context, dtype, inits) -> dict:
    """The layer's ``scale``/``offset`` through its record (Haiku's shapes,
    reshaped to the native ``[C]``)."""
    return fetch(record_for(spec.type), ctx, spec.shapes, dtype, inits)


class BatchNorm(Module):
    """Haiku's ``BatchNorm``: normalizes with batch statistics (training) or
    their zero-debiased moving averages (``is_training=False``).

    Parameters ``scale``/``offset`` and the moving averages (state
    ``batch_norm/~/mean_ema`` and ``batch_norm/~/var_ema``) are shaped like the
    reduced input, ``(1, ..., C)``, in the input dtype. Input ``[N, ..., C]``
    (or channels first); output the same.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(
    ...     lambda x, t: hk.BatchNorm(True, True, 0.9)(x, is_training=t))
    >>> x = jnp.arange(6.0).reshape(3, 2)
    >>> params, state = f.init(None, x, True)
    >>> params["batch_norm"]["scale"].shape, sorted(state)
    ((1, 2), ['batch_norm/~/mean_ema', 'batch_norm/~/var_ema'])
    >>> y, state = f.apply(params, state, None, x, True)
    >>> y.shape
    (3, 2)
    """

    def __init__(
        self,
        create_scale: bool,
        create_offset: bool,
        decay_rate: float,
        eps: float = 1e-5,
        scale_init=None,
        offset_init=None,
        axis=None,
        cross_replica_axis=None,
        cross_replica_axis_index_groups=None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        super().__init__(name=name)
        if not create_scale and scale_init is not None:
            raise ValueError("Cannot set `scale_init` if `create_scale=False`")
        if not create_offset and offset_init is not None:
            raise ValueError("Cannot set `offset_init` if `create_offset=False`")
        if cross_replica_axis is None and cross_replica_axis_index_groups is not None:
            raise ValueError(
                "`cross_replica_axis` name must be specified"
                "if `cross_replica_axis_index_groups` are used."
            )
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.decay_rate = decay_rate
        self.eps = eps
        self.scale_init = scale_init or jnp.ones
        self.offset_init = offset_init or jnp.zeros
        self.axis = axis
        self.cross_replica_axis = cross_replica_axis
        self.cross_replica_axis_index_groups = cross_replica_axis_index_groups
        self.channel_index = nn.channel_index(data_format, f"hk.{type(self).__name__}")
        self.mean_ema = ExponentialMovingAverage(decay_rate, name="mean_ema")
        self.var_ema = ExponentialMovingAverage(decay_rate, name="var_ema")

    def _stats(self, ema, is_training, test_local_stats, shape, dtype):
        """The ``pax.nn.EMA`` leaves for one moving average (Haiku reads the
        state only where it uses it; unused leaves get placeholders)."""
        if is_training:
            m = ema._native(shape, dtype)
            flat = (int(np.prod(shape)),)
            return {
                "averages": m.averages.reshape(flat),
                "counter": m.counter,
                "hidden": m.hidden.reshape(flat),
            }
        if test_local_stats:
            average = jnp.zeros(shape, jnp.float32)
        else:
            average = ema.average
        average = jnp.reshape(average, (-1,))
        return {
            "averages": average,
            "counter": jnp.zeros((), jnp.int32),
            "hidden": average,
        }

    def __call__(
        self,
        inputs: jax.Array,
        is_training: bool,
        test_local_stats: bool = False,
        scale: jax.Array | None = None,
        offset: jax.Array | None = None,
    ) -> jax.Array:
        """Normalize ``inputs`` (shape kept)."""
        if self.create_scale and scale is not None:
            raise ValueError("Cannot pass `scale` at call time if `create_scale=True`.")
        if self.create_offset and offset is not None:
            raise ValueError(
                "Cannot pass `offset` at call time if `create_offset=True`."
            )
        inputs = jnp.asarray(inputs)
        ndim = inputs.ndim
        channel_index = self.channel_index % ndim
        if self.axis is not None:
            axis = tuple(sorted(a % ndim for a in self.axis))
        else:
            axis = tuple(i for i in range(ndim) if i != channel_index)
        kept = tuple(i for i in range(ndim) if i not in axis)
        stat_shape = tuple(1 if i in axis else inputs.shape[i] for i in range(ndim))
        dtype = inputs.dtype

        # Haiku's order: moving averages first, then scale, then offset. The
        # averages have the dtype of Haiku's batch mean (float for integer
        # input); the parameters the input's dtype.
        stat_dtype = jax.eval_shape(lambda: jnp.mean(jnp.zeros((1,), dtype))).dtype
        stats = {
            name: self._stats(
                ema, is_training, test_local_stats, stat_shape, stat_dtype
            )
            for name, ema in (("mean_ema", self.mean_ema), ("var_ema", self.var_ema))
        }
        arrays = {f".{n}.{k}": v for n, d in stats.items() for k, v in d.items()}
        ctx = Context(ndim, param_axes=kept, input_shape=tuple(inputs.shape))
        inits = {"scale": self.scale_init, "offset": self.offset_init}

        general = kept not in ((ndim - 1,), (1,))
        x = inputs
        data_format = "channels_last" if kept == (ndim - 1,) else "channels_first"
        if general:
            # General ``axis``: the kept axes become one channels-last axis.
            perm = axis + kept
            moved = tuple(inputs.shape[i] for i in perm)
            flat_shape = tuple(inputs.shape[i] for i in axis) + (
                int(np.prod([inputs.shape[i] for i in kept])),
            )

            def to_flat(a):
                a = jnp.broadcast_to(jnp.asarray(a), inputs.shape)
                return a.transpose(perm).reshape(flat_shape)

            x, data_format = to_flat(inputs), "channels_last"
            scale = None if scale is None else to_flat(scale)
            offset = None if offset is None else to_flat(offset)
        num_channels = int(np.prod([inputs.shape[i] for i in kept]))
        spec = template(
            nn.BatchNorm,
            num_channels,
            self.create_scale,
            self.create_offset,
            float(self.decay_rate),
            float(self.eps),
            data_format,
            cross_replica_axis=self.cross_replica_axis,
            cross_replica_axis_index_groups=self.cross_replica_axis_index_groups,
        )
        arrays.update(_fetch(spec, ctx, dtype, inits))
        bn = spec.build(arrays)
        kwargs = dict(scale=scale, offset=offset, test_local_stats=test_local_stats)
        if is_training:
            bn, y = purecall(bn, x, **kwargs)
            self.mean_ema._store(bn.mean_ema, stat_shape)
            self.var_ema._store(bn.var_ema, stat_shape)
        else:
            y = bn.eval()(x, **kwargs)
        if general:
            y = y.reshape(moved).transpose(np.argsort(perm))
        return y


class LayerNorm(Module):
    """Haiku's ``LayerNorm``: normalizes over ``axis`` then applies ``scale``
    and ``offset`` along ``param_axis`` (default the last axis; shape ``(C,)``,
    or ``(1, ..., C, ..., 1)`` for another axis).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.LayerNorm(-1, True, True)(x))
    >>> params = f.init(None, jnp.ones((2, 3)))
    >>> jax.tree_util.tree_map(jnp.shape, params)
    {'layer_norm': {'offset': (3,), 'scale': (3,)}}
    >>> f.apply(params, None, jnp.array([[1.0, 2.0, 3.0]]))
    Array([[-1.2247..., 0. , 1.2247...]], dtype=float32)
    """

    def __init__(
        self,
        axis,
        create_scale: bool,
        create_offset: bool,
        eps: float = 1e-5,
        scale_init=None,
        offset_init=None,
        use_fast_variance: bool = False,
        name: str | None = None,
        *,
        param_axis=None,
    ):
        super().__init__(name=name)
        if not create_scale and scale_init is not None:
            raise ValueError("Cannot set `scale_init` if `create_scale=False`.")
        if not create_offset and offset_init is not None:
            raise ValueError("Cannot set `offset_init` if `create_offset=False`.")
        self.axis = _axes_or_slice(axis)
        self.eps = eps
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.scale_init = scale_init or jnp.ones
        self.offset_init = offset_init or jnp.zeros
        self.use_fast_variance = use_fast_variance
        self._param_axis_passed_explicitly = param_axis is not None
        self.param_axis = (-1,) if param_axis is None else _axes_or_slice(param_axis)

    def __call__(self, inputs, scale=None, offset=None) -> jax.Array:
        """Normalize ``inputs`` (shape and dtype kept)."""
        inputs = jnp.asarray(inputs)
        if self.create_scale and scale is not None:
            raise ValueError("Cannot pass `scale` at call time if `create_scale=True`.")
        if self.create_offset and offset is not None:
            raise ValueError(
                "Cannot pass `offset` at call time if `create_offset=True`."
            )
        ndim = inputs.ndim
        axis = _abs_axes(self.axis, ndim)
        param_axis = _abs_axes(self.param_axis, ndim)
        num_channels, native_axis = _native_param_axis(inputs.shape, param_axis)
        spec = template(
            nn.LayerNorm,
            num_channels,
            axis=axis,
            param_axis=native_axis,
            create_scale=self.create_scale,
            create_offset=self.create_offset,
            eps=float(self.eps),
            use_fast_variance=bool(self.use_fast_variance),
        )
        inits = {"scale": self.scale_init, "offset": self.offset_init}
        ctx = Context(ndim, param_axes=tuple(sorted(set(param_axis))))
        layer = spec.build(_fetch(spec, ctx, inputs.dtype, inits))
        return layer(inputs, scale, offset)


class InstanceNorm(LayerNorm):
    """Haiku's ``InstanceNorm``: a :class:`LayerNorm` over the spatial axes
    with per-channel ``scale``/``offset`` (``(C,)`` channels last,
    ``(1, C, 1, ...)`` channels first).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.InstanceNorm(True, True)(x))
    >>> params = f.init(None, jnp.ones((2, 4, 4, 3)))
    >>> params["instance_norm"]["scale"].shape
    (3,)
    """

    def __init__(
        self,
        create_scale: bool,
        create_offset: bool,
        eps: float = 1e-5,
        scale_init=None,
        offset_init=None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        param_axis = nn.channel_index(data_format, f"hk.{type(self).__name__}")
        axis = slice(2, None) if param_axis == 1 else slice(1, -1)
        super().__init__(
            axis=axis,
            create_scale=create_scale,
            create_offset=create_offset,
            eps=eps,
            scale_init=scale_init,
            offset_init=offset_init,
            param_axis=param_axis,
            name=name,
        )


class RMSNorm(Module):
    """Haiku's ``RMSNorm``: ``x / sqrt(mean(x², axis) + eps) * scale``, with
    ``scale`` along ``param_axis`` (default the last axis).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.RMSNorm(-1)(x))
    >>> params = f.init(None, jnp.ones((2, 3)))
    >>> params["rms_norm"]["scale"].shape
    (3,)
    """

    def __init__(
        self,
        axis,
        eps: float = 1e-5,
        scale_init=None,
        name: str | None = None,
        create_scale: bool = True,
        *,
        param_axis=None,
    ):
        super().__init__(name=name)
        if not create_scale and scale_init is not None:
            raise ValueError("Cannot set `scale_init` if `create_scale=False`.")
        if isinstance(axis, slice):
            self.axis = axis
        elif isinstance(axis, int):
            self.axis = (axis,)
        elif isinstance(axis, collections.abc.Iterable) and all(
            isinstance(ax, int) for ax in axis
        ):
            self.axis = tuple(axis)
        else:
            raise ValueError("`axis` should be an int, slice or iterable of ints.")
        self.eps = eps
        self.create_scale = create_scale
        self.scale_init = scale_init or jnp.ones
        self.param_axis = (-1,) if param_axis is None else _axes_or_slice(param_axis)

    def __call__(self, inputs) -> jax.Array:
        """Normalize ``inputs`` (shape and dtype kept)."""
        inputs = jnp.asarray(inputs)
        ndim = inputs.ndim
        axis = _abs_axes(self.axis, ndim)
        param_axis = _abs_axes(self.param_axis, ndim)
        num_channels, native_axis = _native_param_axis(inputs.shape, param_axis)
        spec = template(
            nn.RMSNorm,
            num_channels,
            axis=axis,
            param_axis=native_axis,
            eps=float(self.eps),
            create_scale=self.create_scale,
        )
        ctx = Context(ndim, param_axes=tuple(sorted(set(param_axis))))
        inits = {"scale": self.scale_init}
        return spec.build(_fetch(spec, ctx, inputs.dtype, inits))(inputs)


class GroupNorm(Module):
    """Haiku's ``GroupNorm``: splits the channels into ``groups`` and
    normalizes each group over ``axis``; ``scale``/``offset`` are ``(C,)``
    (channels last) or ``(C, 1, ...)`` (channels first).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform(lambda x: hk.GroupNorm(2)(x))
    >>> params = f.init(None, jnp.ones((2, 3, 4)))
    >>> params["group_norm"]["offset"].shape
    (4,)
    """

    def __init__(
        self,
        groups: int,
        axis=slice(1, None),
        create_scale: bool = True,
        create_offset: bool = True,
        eps: float = 1e-5,
        scale_init=None,
        offset_init=None,
        data_format: str = "channels_last",
        name: str | None = None,
    ):
        super().__init__(name=name)
        if isinstance(axis, slice):
            self.axis = axis
        elif isinstance(axis, int):
            self.axis = (axis,)
        elif isinstance(axis, collections.abc.Iterable) and all(
            isinstance(ax, int) for ax in axis
        ):
            self.axis = tuple(axis)
        else:
            raise ValueError("`axis` should be an int, slice or iterable of ints.")
        self.groups = groups
        self.eps = eps
        self.data_format = data_format
        self.channel_index = nn.channel_index(data_format, f"hk.{type(self).__name__}")
        self.create_scale = create_scale
        self.create_offset = create_offset
        self.rank = None
        if create_scale:
            self.scale_init = scale_init or jnp.ones
        elif scale_init is not None:
            raise ValueError("Cannot set `scale_init` if `create_scale=False`.")
        if create_offset:
            self.offset_init = offset_init or jnp.zeros
        elif offset_init is not None:
            raise ValueError("Cannot set `offset_init` if `create_offset=False`.")

    def __call__(self, x, scale=None, offset=None) -> jax.Array:
        """Normalize ``x`` per group (shape and dtype kept)."""
        if self.rank is not None and x.ndim != self.rank:
            raise ValueError(
                "The rank of the inputs cannot change between calls, the original "
                f"call was rank={self.rank} but this call was rank={x.ndim}."
            )
        if self.create_scale and scale is not None:
            raise ValueError("Cannot pass `scale` at call time if `create_scale=True`.")
        if self.create_offset and offset is not None:
            raise ValueError(
                "Cannot pass `offset` at call time if `create_offset=True`."
            )
        channels = x.shape[self.channel_index]
        if channels % self.groups != 0:
            raise ValueError(
                "The number of channels must be divisible by the number of groups, "
                f"was channels={channels}, groups={self.groups}"
            )
        self.rank = x.ndim
        spec = template(
            nn.GroupNorm,
            self.groups,
            channels,
            _abs_axes(self.axis, x.ndim),
            self.create_scale,
            self.create_offset,
            float(self.eps),
            data_format=(
                "channels_last" if self.channel_index == -1 else "channels_first"
            ),
        )
        ctx = Context(x.ndim, channels_last=self.channel_index == -1)
        inits = {
            "scale": getattr(self, "scale_init", None),
            "offset": getattr(self, "offset_init", None),
        }
        layer = spec.build(_fetch(spec, ctx, x.dtype, inits))
        if scale is not None:
            scale = jax.lax.broadcast_to_rank(jnp.asarray(scale), x.ndim)
        if offset is not None:
            offset = jax.lax.broadcast_to_rank(jnp.asarray(offset), x.ndim)
        return layer(x, scale, offset)

"""Batch normalization: ``BatchNorm``, ``BatchNorm1D``, ``BatchNorm2D``."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module, parameters_method
from ..initializers import Initializer
from ._data_format import channel_index
from ._moving_averages import EMA, stateful_call
from ._utils import (
    affine,
    as_array,
    broadcast_param,
    check_call_affine,
    float_result_dtype,
    init_affine,
    norm_dtype,
    positive_int,
    real_number,
    who,
)


def _check_axis_name(axis_name: Any, owner: str) -> None:
    """``cross_replica_axis``: None, an axis name or a sequence of names."""
    names = axis_name if isinstance(axis_name, (tuple, list)) else (axis_name,)
    if axis_name is not None and not all(
        isinstance(n, str) or (isinstance(n, Hashable) and not isinstance(n, bool))
        for n in names
    ):
        raise TypeError(
            f"{owner}: `cross_replica_axis` must be None, an axis name or a "
            f"sequence of axis names, got {axis_name!r}"
        )


def _affine(own: Any, given: Any, x: jax.Array, ch: int, dtype: Any) -> Any:
    """Own ``[C]`` scale/offset shaped to broadcast along ``ch`` (per-channel
    arithmetic, as Haiku's ``(1, ..., C)`` parameters), else a call-time one
    broadcast to ``x``, else None."""
    if own is not None:
        return broadcast_param(own, x.ndim, ch, dtype)
    return affine(None, given, x, ch, dtype)


class BatchNorm(Module):
    """Normalizes each channel with batch statistics (training) or running
    averages (eval), as Haiku's ``BatchNorm``.

    Training mode (the default): ``y = (x - mean) * inv + offset`` with ``inv
    = scale * rsqrt(var + eps)`` (Haiku's order of operations), the mean and
    (biased) variance of the batch over every axis but the channel axis, and
    the running averages are updated — the call mutates state, so run it as
    ``bn, y = pax.purecall(bn, x)``. Eval mode (``bn.eval()``): the running
    averages are used instead and nothing changes, a plain ``bn(x)`` works.

    The running averages are Haiku's zero-debiased moving averages (two
    :class:`EMA` submodules, ``mean_ema`` and ``var_ema``, with ``debias=True``):
    after ``t`` updates with decay ``d`` the average is ``h_t / (1 - d**t)``
    where ``h_t = d h_{t-1} + (1 - d) stat_t``. Before any update they hold
    mean 0 and variance 1 (Haiku cannot run eval mode before training at all).

    Statistics and arithmetic are float32 (or wider) whatever the input dtype;
    the output is cast back to a floating input's dtype, and integer input
    (e.g. uint8 images) gives float32 output.

    Args:
      num_channels: size of the channel axis.
      create_scale: learn a per-channel ``scale`` (initialised by
        ``scale_init``, default ones). If False, ``scale`` may be passed at call
        time.
      create_offset: learn a per-channel ``offset`` (``offset_init``, default
        zeros). If False, ``offset`` may be passed at call time.
      decay_rate: decay of the running averages.
      eps: added to the variance.
      data_format: ``"channels_last"`` (``"NWC"``, ``"NHWC"``, ``"N...C"``,
        ...) or ``"channels_first"`` (``"NCW"``, ``"NCHW"``, ``"NC..."``, ...);
        any spelling :func:`pax.nn.channel_index` accepts (``BatchNorm1D`` /
        ``BatchNorm2D``: letter formats of their rank).
      scale_init, offset_init: initializers, ``init(rng_key, shape, dtype)``.
      cross_replica_axis: name(s) of a mapped axis (``jax.pmap``, ``shard_map``,
        ``jax.vmap`` with ``axis_name``) to average batch statistics over.
      cross_replica_axis_index_groups: device groups for that average
        (``jax.lax.pmean``'s ``axis_index_groups``).
      rng_key: key for random initializers; ``None`` draws one.
      name: optional module name.

    Input ``[N, ..., C]`` (channels last) or ``[N, C, ...]``; output the same
    shape and dtype (float32 for integer input). Trainable: ``scale``,
    ``offset`` (shape ``[C]``). State: ``mean_ema``, ``var_ema``.
    """

    keep_float32_under_mixed_precision = True
    parameters = parameters_method("scale", "offset")

    def __init__(
        self,
        num_channels: int,
        create_scale: bool = True,
        create_offset: bool = True,
        decay_rate: float = 0.9,
        eps: float = 1e-5,
        data_format: str = "channels_last",
        *,
        scale_init: Initializer | None = None,
        offset_init: Initializer | None = None,
        cross_replica_axis: str | Sequence[str] | None = None,
        cross_replica_axis_index_groups: Sequence[Sequence[int]] | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.num_channels = positive_int(num_channels, "num_channels", owner)
        decay_rate = real_number(decay_rate, "decay_rate", owner, low=0.0, high=1.0)
        _check_axis_name(cross_replica_axis, owner)
        if cross_replica_axis is None and cross_replica_axis_index_groups is not None:
            raise ValueError(
                f"{owner}: `cross_replica_axis_index_groups` needs `cross_replica_axis`"
            )
        init_affine(
            self, create_scale, create_offset, scale_init, offset_init, eps, rng_key
        )
        self.decay_rate = decay_rate
        self.data_format = data_format
        self.channel_axis = channel_index(
            data_format, owner, num_spatial_dims=self._num_spatial_dims
        )
        self.cross_replica_axis = cross_replica_axis
        self.cross_replica_axis_index_groups = cross_replica_axis_index_groups
        # NumPy initial values: EMA transfers them, the same float32 arrays as
        # ``jnp.zeros``/``jnp.ones`` without an op to dispatch
        c = (self.num_channels,)
        self.mean_ema = EMA(np.zeros(c, np.float32), self.decay_rate, debias=True)
        self.var_ema = EMA(np.ones(c, np.float32), self.decay_rate, debias=True)

    # rank a letter-by-letter ``data_format`` must fit (see ``channel_index``);
    # None: any, the 1D/2D subclasses fix it
    _num_spatial_dims: int | None = None

    def __call__(
        self,
        x: jax.Array,
        *,
        scale: jax.Array | None = None,
        offset: jax.Array | None = None,
        test_local_stats: bool = False,
    ) -> jax.Array:
        """Normalize ``x`` (shape kept).

        Args:
          x: input with the channel axis where ``data_format`` says.
          scale, offset: call-time scale/offset, broadcastable to ``x``; only
            when the module does not create its own.
          test_local_stats: in eval mode, normalize with the batch statistics
            (running averages untouched), as Haiku's flag.
        """
        x = as_array(x, who(self))
        check_call_affine(self, scale, offset)
        if x.ndim < 2 or x.shape[self.channel_axis] != self.num_channels:
            raise ValueError(
                f"{who(self)}: expected input with {self.num_channels} channels on "
                f"axis {self.channel_axis}, got shape {tuple(x.shape)}"
            )
        with jax.named_scope("pax.nn.BatchNorm"):
            dtype = norm_dtype(x)
            ch = self.channel_axis % x.ndim
            axes = tuple(i for i in range(x.ndim) if i != ch)
            xf = x.astype(dtype)
            if self.training or test_local_stats:
                mean = jnp.mean(xf, axes)
                mean_sq = jnp.mean(jnp.square(xf), axes)
                if self.cross_replica_axis is not None:
                    mean, mean_sq = jax.lax.pmean(
                        (mean, mean_sq),
                        axis_name=self.cross_replica_axis,
                        axis_index_groups=self.cross_replica_axis_index_groups,
                    )
                var = mean_sq - jnp.square(mean)
            else:
                mean = self.mean_ema.averages.astype(dtype)
                var = self.var_ema.averages.astype(dtype)
            if self.training:
                with stateful_call(self, "the running mean and variance"):
                    self.mean_ema(mean, update_stats=True)
                    self.var_ema(var, update_stats=True)
            # Haiku's order of operations: inv = scale * rsqrt(var + eps), then
            # (x - mean) * inv + offset.
            inv = jax.lax.rsqrt(
                broadcast_param(var, x.ndim, ch, dtype) + jnp.asarray(self.eps, dtype)
            )
            scale = _affine(self.scale, scale, x, ch, dtype)
            if scale is not None:
                inv = scale * inv
            y = (xf - broadcast_param(mean, x.ndim, ch, dtype)) * inv
            offset = _affine(self.offset, offset, x, ch, dtype)
            if offset is not None:
                y = y + offset
            return y.astype(float_result_dtype(x))


class BatchNorm1D(BatchNorm):
    """:class:`BatchNorm` for ``[N, W, C]`` (``"NWC"``) or ``[N, C, W]``
    (``"NCW"``) inputs; the seed signature.

    >>> import jax, jax.numpy as jnp, pax
    >>> bn = pax.BatchNorm1D(3)
    >>> x = jax.random.normal(jax.random.PRNGKey(0), (4, 5, 3))
    >>> bn, y = pax.purecall(bn, x)          # training: updates statistics
    >>> y.shape, bn.mean_ema.counter
    ((4, 5, 3), Array(1, dtype=int32))
    >>> bn.eval()(x).shape                   # eval: a plain call
    (4, 5, 3)
    """

    def __init__(
        self,
        num_channels: int,
        create_scale: bool = True,
        create_offset: bool = True,
        decay_rate: float = 0.9,
        eps: float = 1e-5,
        data_format: str = "NWC",
        *,
        scale_init: Initializer | None = None,
        offset_init: Initializer | None = None,
        cross_replica_axis: str | Sequence[str] | None = None,
        cross_replica_axis_index_groups: Sequence[Sequence[int]] | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            num_channels,
            create_scale,
            create_offset,
            decay_rate,
            eps,
            data_format,
            scale_init=scale_init,
            offset_init=offset_init,
            cross_replica_axis=cross_replica_axis,
            cross_replica_axis_index_groups=cross_replica_axis_index_groups,
            rng_key=rng_key,
            name=name,
        )

    _num_spatial_dims = 1


class BatchNorm2D(BatchNorm):
    """:class:`BatchNorm` for ``[N, H, W, C]`` (``"NHWC"``) or ``[N, C, H, W]``
    (``"NCHW"``) inputs; the seed signature.

    >>> import jax, jax.numpy as jnp, pax
    >>> bn = pax.BatchNorm2D(8, data_format="NCHW")
    >>> bn, y = pax.purecall(bn, jnp.ones((2, 8, 4, 4)))
    >>> y.shape
    (2, 8, 4, 4)
    """

    def __init__(
        self,
        num_channels: int,
        create_scale: bool = True,
        create_offset: bool = True,
        decay_rate: float = 0.9,
        eps: float = 1e-5,
        data_format: str = "NHWC",
        *,
        scale_init: Initializer | None = None,
        offset_init: Initializer | None = None,
        cross_replica_axis: str | Sequence[str] | None = None,
        cross_replica_axis_index_groups: Sequence[Sequence[int]] | None = None,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(
            num_channels,
            create_scale,
            create_offset,
            decay_rate,
            eps,
            data_format,
            scale_init=scale_init,
            offset_init=offset_init,
            cross_replica_axis=cross_replica_axis,
            cross_replica_axis_index_groups=cross_replica_axis_index_groups,
            rng_key=rng_key,
            name=name,
        )

    _num_spatial_dims = 2

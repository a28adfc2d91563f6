"""``GroupNorm``: normalization over groups of channels."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from .._core.module import Module, parameters_method
from ..initializers import Initializer
from ._data_format import channel_index
from ._layer_norm import _check_axes, _resolve
from ._utils import (
    affine,
    as_array,
    check_call_affine,
    float_result_dtype,
    init_affine,
    norm_dtype,
    positive_int,
    who,
)


class GroupNorm(Module):
    """Splits the channels into ``groups`` and normalizes each group of each
    example over ``axis`` (Haiku's ``GroupNorm``).

    The channel axis is split into ``[groups, num_channels // groups]``; the
    mean and variance are taken over ``axis`` (default: every axis but the
    batch axis), with the channel axis standing for the channels *within* a
    group, so each group has its own statistics. Then a per-channel
    ``scale``/``offset`` is applied, in Haiku's order of operations
    (``(x - mean) * rsqrt(var + eps)``, then ``* scale``, then ``+ offset``).
    Arithmetic is float32 or wider; the output has a floating input's dtype,
    and integer input gives float32 output.

    Args:
      groups: number of channel groups; must divide ``num_channels``.
      num_channels: size of the channel axis.
      axis: axes to normalize over (int, sequence of ints or slice); must
        include the channel axis. Default ``slice(1, None)``.
      create_scale: learn ``scale`` ``[num_channels]`` (default ones); if
        False, ``scale`` may be passed at call time.
      create_offset: learn ``offset`` ``[num_channels]`` (default zeros); if
        False, ``offset`` may be passed at call time.
      eps: added to the variance.
      scale_init, offset_init: initializers ``init(rng_key, shape, dtype)``.
      data_format: ``"channels_last"`` (``[N, ..., C]``) or
        ``"channels_first"`` (``[N, C, ...]``), or any spelling
        :func:`pax.nn.channel_index` accepts (``"NHWC"``, ``"NCW"``,
        ``"N...C"``, ``"NC..."``, ...).
      rng_key: key for random initializers; ``None`` draws one.
      name: optional module name.

    Input ``[N, ..., C]`` (or channels first); output the same shape.
    Trainable: ``scale``, ``offset``.

    >>> import jax, jax.numpy as jnp, pax
    >>> gn = pax.GroupNorm(2, 4)
    >>> gn(jax.random.normal(jax.random.PRNGKey(0), (3, 5, 4))).shape
    (3, 5, 4)
    """

    keep_float32_under_mixed_precision = True
    parameters = parameters_method("scale", "offset")

    def __init__(
        self,
        groups: int,
        num_channels: int,
        axis: int | Sequence[int] | slice = slice(1, None),
        create_scale: bool = True,
        create_offset: bool = True,
        eps: float = 1e-5,
        scale_init: Initializer | None = None,
        offset_init: Initializer | None = None,
        data_format: str = "channels_last",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.groups = positive_int(groups, "groups", owner)
        self.num_channels = positive_int(num_channels, "num_channels", owner)
        if self.num_channels % self.groups:
            raise ValueError(
                f"{owner}: `groups` (={self.groups}) must divide `num_channels` "
                f"(={self.num_channels})"
            )
        self.axis = _check_axes(axis, owner)
        self.data_format = data_format
        self.channel_axis = channel_index(data_format, owner)
        init_affine(
            self, create_scale, create_offset, scale_init, offset_init, eps, rng_key
        )

    def __call__(
        self,
        x: jax.Array,
        scale: jax.Array | None = None,
        offset: jax.Array | None = None,
    ) -> jax.Array:
        """Normalize ``x`` per group (shape and dtype kept).

        ``scale``/``offset`` (broadcastable to ``x``) may be given only when the
        module does not create its own.
        """
        x = as_array(x, who(self))
        check_call_affine(self, scale, offset)
        if x.ndim < 2 or x.shape[self.channel_axis] != self.num_channels:
            raise ValueError(
                f"{who(self)}: expected input with {self.num_channels} channels on "
                f"axis {self.channel_axis}, got shape {tuple(x.shape)}"
            )
        ch = self.channel_axis % x.ndim
        axes = _resolve(self.axis, x.ndim, who(self))
        if ch not in axes:
            raise ValueError(
                f"{who(self)}: `axis` {axes} must include the channel axis {ch}"
            )
        per_group = self.num_channels // self.groups
        # channel axis -> (groups, per_group); reductions use the per_group axis
        grouped_shape = (*x.shape[:ch], self.groups, per_group, *x.shape[ch + 1 :])
        grouped_axes = tuple(a + 1 if a >= ch else a for a in axes)
        with jax.named_scope("pax.nn.GroupNorm"):
            dtype = norm_dtype(x)
            g = x.astype(dtype).reshape(grouped_shape)
            mean = jnp.mean(g, grouped_axes, keepdims=True)
            var = jnp.var(g, grouped_axes, keepdims=True)
            g = (g - jnp.broadcast_to(mean, g.shape)) * jnp.broadcast_to(
                jax.lax.rsqrt(var + jnp.asarray(self.eps, dtype)), g.shape
            )
            y = g.reshape(x.shape)
            scale = affine(self.scale, scale, x, ch, dtype)
            offset = affine(self.offset, offset, x, ch, dtype)
            if scale is not None:
                y = y * scale
            if offset is not None:
                y = y + offset
            return y.astype(float_result_dtype(x))

"""Haiku's moving averages: ``hk.ExponentialMovingAverage`` and
``hk.EMAParamsTree``, computing with ``pax.nn.EMA``."""

from __future__ import annotations

import re
import warnings
from typing import Any

import jax
import jax.numpy as jnp

from .. import nn, purecall
from . import initializers
from ._base import get_state, set_state
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import template


def _ema(shape, dtype, decay, debias, warmup_length, *, rng_key=None):
    """``pax.nn.EMA`` from a hashable configuration (``native`` needs one; the
    key it passes is not used: an EMA draws no randomness)."""
    del rng_key
    return nn.EMA(
        jnp.zeros(shape, dtype), decay, debias=debias, warmup_length=warmup_length
    )


class ExponentialMovingAverage(Module):
    """Haiku's ``ExponentialMovingAverage``: a (zero-debiased) moving average
    of a value, kept as state ``counter`` (int32 ``[]``), ``hidden`` and
    ``average`` (shape and dtype of the value).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(
    ...     lambda x: hk.ExponentialMovingAverage(0.5)(x))
    >>> _, state = f.init(None, jnp.ones(2))
    >>> out, state = f.apply({}, state, None, 3 * jnp.ones(2))
    >>> out
    Array([3., 3.], dtype=float32)
    >>> sorted(state["exponential_moving_average"])
    ['average', 'counter', 'hidden']
    """

    def __init__(
        self,
        decay,
        zero_debias: bool = True,
        warmup_length: int = 0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.decay = decay
        self.warmup_length = warmup_length
        self.zero_debias = zero_debias
        if warmup_length < 0:
            raise ValueError(
                f"`warmup_length` is {warmup_length}, but should be non-negative."
            )
        if warmup_length and zero_debias:
            raise ValueError(
                "Zero debiasing does not make sense when warming up the value of "
                "the average to an initial value. Set zero_debias=False if "
                "setting warmup_length to a non-zero value."
            )

    def initialize(self, shape, dtype=jnp.float32):
        """If uninitialized, sets ``hidden`` and ``average`` to zeros."""
        if hasattr(shape, "shape"):
            warnings.warn(
                "Passing a value into initialize instead of a shape/dtype is "
                "deprecated; use `ema.initialize(v.shape, v.dtype)`.",
                category=DeprecationWarning,
                stacklevel=2,
            )
            shape, dtype = shape.shape, shape.dtype
        get_state("hidden", shape, dtype, init=jnp.zeros)
        get_state("average", shape, dtype, init=jnp.zeros)

    def __call__(self, value, update_stats: bool = True) -> jax.Array:
        """Update with ``value`` (any shape); return the new average."""
        if not isinstance(value, jax.Array):
            value = jnp.asarray(value)
        ema = self._native(value.shape, value.dtype)
        # Haiku's flag is an explicit request: pass it as one (pax.nn.EMA's
        # default would follow the module's mode instead).
        update_stats = bool(update_stats)
        ema, average = purecall(ema, value, update_stats)
        if update_stats:
            self._store(ema, value.shape)
        return average

    # Used by ``hk.BatchNorm`` as well: the state as a ``pax.nn.EMA``, and back.
    def _native(self, shape, dtype) -> nn.EMA:
        spec = template(
            _ema,
            tuple(shape),
            jnp.dtype(dtype),
            float(self.decay),
            bool(self.zero_debias),
            int(self.warmup_length),
        )
        inits = {
            "counter": initializers.Constant(-self.warmup_length),
            "hidden": jnp.zeros,
        }
        arrays = fetch(record_for(nn.EMA), Context(), spec.shapes, dtype, inits)
        # with debiasing the native EMA recomputes ``averages`` from ``hidden``
        # (Haiku's ``average`` is only written): any array of its shape will do
        arrays.setdefault(".averages", arrays.get(".hidden"))
        return spec.build(arrays)

    def _store(self, ema: nn.EMA, shape) -> None:
        hidden = ema.hidden if self.zero_debias else ema.averages
        set_state("counter", ema.counter)
        set_state("hidden", jnp.reshape(hidden, shape))
        set_state("average", jnp.reshape(ema.averages, shape))

    @property
    def average(self):
        return get_state("average")


class EMAParamsTree(Module):
    """Haiku's ``EMAParamsTree``: one :class:`ExponentialMovingAverage` per
    leaf of a ``{module: {name: array}}`` tree (named ``module__name`` with
    ``~`` spelled ``_tilde_``); leaves whose ``module/name`` matches
    ``ignore_regex`` are returned unchanged.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> params = {"linear": {"w": jnp.ones((2, 3))}}
    >>> f = hk.transform_with_state(lambda p: hk.EMAParamsTree(0.2)(p))
    >>> _, state = f.init(None, params)
    >>> avg, state = f.apply({}, state, None, params)
    >>> sorted(state)
    ['ema_params_tree/linear__w']
    """

    def __init__(
        self,
        decay,
        zero_debias: bool = True,
        warmup_length: int = 0,
        ignore_regex: str = "",
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.decay = decay
        self.zero_debias = zero_debias
        self.warmup_length = warmup_length
        self.ignore_regex = ignore_regex

    def __call__(self, tree, update_stats: bool = True) -> Any:
        """``{module: {name: array}}`` -> the same tree of moving averages."""
        from .data_structures import to_haiku_dict

        def maybe_ema(k, v):
            if self.ignore_regex and re.match(self.ignore_regex, k):
                return v
            ema_name = k.replace("/", "__").replace("~", "_tilde_")
            return ExponentialMovingAverage(
                self.decay, self.zero_debias, self.warmup_length, name=ema_name
            )(v, update_stats=update_stats)

        new_values = {}
        for module_name, param_dict in tree.items():
            new_values[module_name] = {
                k: maybe_ema("/".join([module_name, k]), v)
                for k, v in param_dict.items()
            }
        return to_haiku_dict(new_values)

"""Haiku's ``hk.SpectralNorm`` and ``hk.SNParamsTree``, computing with
``pax.nn.SpectralNorm``."""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

from .. import nn, purecall
from . import initializers
from ._base import get_state, set_state
from ._mapping import Context, fetch, record_for
from ._module import Module
from ._native import template


class SpectralNorm(Module):
    """Haiku's ``SpectralNorm``: divides a matrix (rank > 2 values are viewed
    as ``[-1, last]``) by its largest singular value, estimated by power
    iteration; state ``u0`` ``[1, last]`` (``RandomNormal`` init) and
    ``sigma`` ``[]``, in the value's dtype.

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(lambda w: hk.SpectralNorm()(w))
    >>> params, state = f.init(jax.random.PRNGKey(0), jnp.eye(2))
    >>> jax.tree_util.tree_map(jnp.shape, state)
    {'spectral_norm': {'sigma': (), 'u0': (1, 2)}}
    """

    def __init__(self, eps: float = 1e-4, n_steps: int = 1, name: str | None = None):
        super().__init__(name=name)
        self.eps = eps
        self.n_steps = n_steps

    def __call__(
        self, value, update_stats: bool = True, error_on_non_matrix: bool = False
    ) -> jax.Array:
        """``value`` (rank >= 2) divided by its spectral norm (shape kept)."""
        value = jnp.asarray(value)
        if value.ndim <= 1:
            raise ValueError(
                "Spectral normalization is not well defined for scalar or vector "
                "inputs."
            )
        if value.ndim > 2 and error_on_non_matrix:
            raise ValueError(f"Input is {value.ndim}D but error_on_non_matrix is True")
        spec = template(
            nn.SpectralNorm, tuple(value.shape), float(self.eps), int(self.n_steps)
        )
        inits = {"u0": initializers.RandomNormal()}
        arrays = fetch(
            record_for(nn.SpectralNorm), Context(), spec.shapes, value.dtype, inits
        )
        # Haiku reads ``sigma`` only through the property; the update rewrites it
        arrays[".sigma"] = jnp.ones((), value.dtype)
        layer = spec.build(arrays)
        # Haiku's flag is an explicit request (pax.nn's default follows the mode)
        update_stats = bool(update_stats)
        layer, out = purecall(layer, value, update_stats)
        if update_stats:
            set_state("u0", layer.u0)
            set_state("sigma", layer.sigma)
        return out

    @property
    def u0(self):
        return get_state("u0")

    @property
    def sigma(self):
        return get_state("sigma", shape=(), init=jnp.ones)


class SNParamsTree(Module):
    """Haiku's ``SNParamsTree``: a :class:`SpectralNorm` per leaf of a
    ``{module: {name: array}}`` tree (named ``module__name``, ``~`` spelled
    ``_tilde``); leaves whose ``module/name`` matches ``ignore_regex`` are
    returned unchanged (vectors must be ignored, as in Haiku).

    >>> import jax, jax.numpy as jnp, pax.hk as hk
    >>> f = hk.transform_with_state(lambda p: hk.SNParamsTree()(p))
    >>> _, state = f.init(jax.random.PRNGKey(0), {"linear": {"w": jnp.eye(2)}})
    >>> sorted(state)
    ['sn_params_tree/linear__w']
    """

    def __init__(
        self,
        eps: float = 1e-4,
        n_steps: int = 1,
        ignore_regex: str = "",
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.eps = eps
        self.n_steps = n_steps
        self.ignore_regex = ignore_regex

    def __call__(self, tree, update_stats: bool = True) -> Any:
        """``{module: {name: array}}`` -> the same tree, spectrally normalized."""
        from .data_structures import to_haiku_dict

        def maybe_sn(k, v):
            if self.ignore_regex and re.match(self.ignore_regex, k):
                return v
            sn_name = k.replace("/", "__").replace("~", "_tilde")
            return SpectralNorm(self.eps, self.n_steps, name=sn_name)(
                v, update_stats=update_stats
            )

        new_values = {}
        for module_name, param_dict in tree.items():
            new_values[module_name] = {
                k: maybe_sn("/".join([module_name, k]), v)
                for k, v in param_dict.items()
            }
        return to_haiku_dict(new_values)

"""Spectral normalization: ``SpectralNorm`` and ``SNParamsTree``.

A matrix ``W`` is divided by an estimate of its largest singular value,
obtained by power iteration from a vector ``u0`` that is carried between calls
as state (Miyato et al., 2018, https://arxiv.org/abs/1802.05957). The math is
Haiku's (``hk.SpectralNorm`` / ``hk.SNParamsTree``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._core.module import Module
from ._moving_averages import (
    _check_ignore_regex,
    _is_ignored,
    _TreeTemplate,
    resolve_update_stats,
    stateful_call,
)
from ._utils import as_array, positive_int, rng_key_or_next, who

__all__ = ["SNParamsTree", "SpectralNorm"]


def _check_eps(eps: Any, owner: str) -> float:
    """``eps`` as a float; it must be a finite number >= 0."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.number)):
        raise TypeError(f"{owner}: `eps` must be a float >= 0, got {eps!r}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{owner}: `eps` must be a finite float >= 0, got {eps}")
    return float(eps)


def _unit(x: jax.Array, eps: float) -> jax.Array:
    """``x`` scaled to (almost) unit l2 norm over all of its elements.

    ``eps`` sits under the square root: ``x / sqrt(sum(x**2) + eps)``.
    """
    sq_norm = jnp.sum(x * x, keepdims=True)
    return x * jax.lax.rsqrt(sq_norm + jnp.asarray(eps, x.dtype))


class SpectralNorm(Module):
    """Divides a matrix by (an estimate of) its largest singular value.

    The value ``W`` (of shape ``input_shape``; a rank > 2 value is viewed as the
    matrix ``[prod(input_shape[:-1]), input_shape[-1]]``) is normalized with
    ``n_steps`` steps of power iteration that start from the stored vector
    ``u0``::

        u = u0
        repeat n_steps:  v = unit(u @ W.T);  u = unit(v @ W)
        sigma = v @ W @ u.T        # u and v are constants for gradients
        output = W / sigma

    where ``unit(x) = x / sqrt(sum(x ** 2) + eps)``. Gradients flow through
    ``W`` (also through ``sigma``'s dependence on ``W``) but not through ``u0``
    (``jax.lax.stop_gradient``), as in Haiku.

    Args:
      input_shape: the shape of the value it normalizes, e.g. a weight's shape
        ``(in_dim, out_dim)`` (an int means ``(input_shape,)``). A rank 0 or 1
        shape is allowed: such values are not matrices, every call returns
        them unchanged and updates nothing (or raises when
        ``error_on_non_matrix=True``; Haiku always raises for them).
      eps: small constant added to squared norms in the power iteration
        (a float >= 0; default ``1e-4``).
      n_steps: power-iteration steps per call (a positive int; default 1).
      rng_key: key for the initial ``u0``; ``None`` draws ``pax.next_rng_key()``.
      name: optional module name.

    State (non-trainable; no trainable parameters):
      ``u0``: ``[1, input_shape[-1]]`` float32, drawn from a unit normal (as
        Haiku's ``RandomNormal``); ``None`` for a rank < 2 ``input_shape``.
      ``sigma``: float32 scalar, the last estimated singular value; starts at
        1.0.

    Modes: every call runs the power iteration from the stored ``u0`` and
    returns the same output; the mode decides whether the new ``u0`` and
    ``sigma`` are stored. In training mode (the default) they are, so the call
    runs on a copy: ``sn, w_bar = pax.purecall(sn, w)`` or inside
    :func:`pax.pure` (a plain call raises ``MutationError``). In eval mode
    (``sn.eval()``) a plain call changes nothing. ``update_stats=True`` /
    ``False`` overrides the mode for one call, as Haiku's flag.

    >>> import jax, jax.numpy as jnp, pax
    >>> sn = pax.SpectralNorm((3, 2), n_steps=20, rng_key=jax.random.PRNGKey(0))
    >>> w = jnp.array([[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> sn, w_bar = pax.purecall(sn, w)
    >>> w_bar.shape, round(float(sn.sigma), 3)
    ((3, 2), 3.0)
    >>> bool(jnp.allclose(sn.eval()(w), w_bar))  # eval: a plain call
    True
    """

    def __init__(
        self,
        input_shape: int | Sequence[int],
        eps: float = 1e-4,
        n_steps: int = 1,
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        if isinstance(input_shape, (int, np.integer)):
            input_shape = (input_shape,)
        if isinstance(input_shape, str) or not isinstance(input_shape, Sequence):
            raise TypeError(
                f"{owner}: `input_shape` must be a sequence of positive ints, "
                f"got {input_shape!r}"
            )
        self.input_shape = tuple(
            positive_int(d, "input_shape", owner) for d in input_shape
        )
        self.eps = _check_eps(eps, owner)
        self.n_steps = positive_int(n_steps, "n_steps", owner)
        key = rng_key_or_next(rng_key)
        if len(self.input_shape) >= 2:
            self.u0 = jax.random.normal(key, (1, self.input_shape[-1]), jnp.float32)
        else:
            self.u0 = None
        self.sigma = jnp.ones((), jnp.float32)

    def __call__(
        self,
        value: jax.Array,
        update_stats: bool | None = None,
        error_on_non_matrix: bool = False,
    ) -> jax.Array:
        """``input_shape -> input_shape``: ``value`` divided by its top singular value.

        Args:
          value: an array of shape ``input_shape``.
          update_stats: store the new ``u0`` and ``sigma`` (needs
            ``pax.purecall`` / ``pax.pure``); ``None`` (default) follows the
            mode (training: store; eval: change nothing), ``True`` / ``False``
            override it. The output does not depend on it.
          error_on_non_matrix: raise ``ValueError`` for a value that is not a
            matrix (rank != 2) instead of reshaping a rank > 2 value to
            ``[-1, input_shape[-1]]`` or returning a rank < 2 value unchanged.

        The output has ``value``'s floating dtype (float32 for an integer
        value); the arithmetic runs in at least float32.
        """
        update = resolve_update_stats(self, update_stats)
        value = as_array(value, who(self))
        if tuple(value.shape) != self.input_shape:
            raise ValueError(
                f"{who(self)}: expected a value of shape {self.input_shape}, "
                f"got shape {tuple(value.shape)}"
            )
        if value.ndim != 2 and error_on_non_matrix:
            raise ValueError(
                f"{who(self)}: spectral normalization needs a matrix (rank 2); "
                f"got a value of rank {value.ndim} and error_on_non_matrix=True"
            )
        if value.ndim < 2:
            return value
        with jax.named_scope("pax.nn.SpectralNorm"):
            dtype = jnp.promote_types(value.dtype, jnp.float32)
            if jnp.issubdtype(value.dtype, jnp.inexact):
                out_dtype = value.dtype
            else:
                out_dtype = dtype
            w = value.astype(dtype).reshape(-1, self.input_shape[-1])
            u = self.u0.astype(dtype)
            v = None
            for _ in range(self.n_steps):
                v = _unit(jnp.matmul(u, w.T), self.eps)
                u = _unit(jnp.matmul(v, w), self.eps)
            u = jax.lax.stop_gradient(u)
            v = jax.lax.stop_gradient(v)
            sigma = jnp.matmul(jnp.matmul(v, w), u.T)[0, 0]
            out = (w / sigma).reshape(self.input_shape).astype(out_dtype)
            if update:
                with stateful_call(self, "`u0` and `sigma`", True):
                    self.u0 = u.astype(self.u0.dtype)
                    self.sigma = sigma.astype(self.sigma.dtype)
            return out


class SNParamsTree(Module):
    """Spectral normalization of every matrix in a tree of arrays.

    ``like`` is a template tree (a Haiku-style ``{"linear": {"w": ..., "b":
    ...}}`` dict, ``module.parameters()`` of a PAX module, any pytree of
    arrays). Every floating leaf of rank >= 2 whose *path string* does not
    match ``ignore_regex`` gets its own :class:`SpectralNorm` (rank > 2
    leaves are viewed as ``[-1, last]`` matrices); every other leaf (biases,
    scalars, integers, ignored leaves) is passed through unchanged. This is
    Haiku's ``SNParamsTree`` except that Haiku raises on vector leaves unless
    ``ignore_regex`` excludes them.

    The path string of a leaf is ``jax.tree_util.keystr`` of its key path:
    ``['linear']['w']`` for a nested dict, ``.weight`` or ``.layers[0].weight``
    for a PAX module (Haiku matches ``linear/w`` instead; ``pax.hk`` translates).
    ``ignore_regex`` is tested with ``re.match`` (anchored at the start), e.g.
    ``r".*\\['b'\\]"`` skips every ``b``; the empty string ignores nothing.

    Args:
      like: the template tree; only its structure, paths, shapes and dtypes
        are kept.
      eps: ``SpectralNorm``'s ``eps`` (float >= 0; default ``1e-4``).
      n_steps: power-iteration steps per call (positive int; default 1).
      ignore_regex: leaves whose path string matches are left alone.
      rng_key: key for the ``u0`` vectors (split per leaf); ``None`` draws
        ``pax.next_rng_key()``.
      name: optional module name.

    State: ``norms``, a dict from path string to :class:`SpectralNorm` (each
    with its ``u0`` and ``sigma``). No trainable parameters.

    Modes: the output does not depend on the mode. In training mode (the
    default) a call stores every new ``u0``/``sigma``, so it runs through
    ``pax.purecall`` / ``pax.pure`` (a plain call raises ``MutationError``
    naming this module); in eval mode (``sn.eval()``) a plain call changes
    nothing. ``update_stats=True`` / ``False`` overrides the mode for one call.

    >>> import jax, jax.numpy as jnp, pax
    >>> params = {"linear": {"w": jnp.ones((3, 4)), "b": jnp.ones((4,))}}
    >>> sn = pax.SNParamsTree(params, rng_key=jax.random.PRNGKey(0))
    >>> list(sn.norms)
    ["['linear']['w']"]
    >>> sn, out = pax.purecall(sn, params)
    >>> out["linear"]["w"].shape, bool((out["linear"]["b"] == 1).all())
    ((3, 4), True)
    """

    def __init__(
        self,
        like: Any,
        eps: float = 1e-4,
        n_steps: int = 1,
        ignore_regex: str = "",
        *,
        rng_key: jax.Array | None = None,
        name: str | None = None,
    ):
        super().__init__(name=name)
        owner = type(self).__name__
        self.eps = _check_eps(eps, owner)
        self.n_steps = positive_int(n_steps, "n_steps", owner)
        self.ignore_regex = _check_ignore_regex(ignore_regex, owner)
        self.template, leaves = _TreeTemplate.build(like, owner)
        chosen = [
            (path, x.shape)
            for path, x in zip(self.template.paths, leaves)
            if x.ndim >= 2
            and jnp.issubdtype(x.dtype, jnp.inexact)
            and not _is_ignored(self.ignore_regex, path)
        ]
        keys = jax.random.split(rng_key_or_next(rng_key), max(len(chosen), 1))
        self.norms = {
            path: SpectralNorm(shape, self.eps, self.n_steps, rng_key=k, name=path)
            for (path, shape), k in zip(chosen, keys)
        }

    def __repr__(self) -> str:
        parts = [
            f"like={self.template.describe()}",
            f"eps={self.eps}",
            f"n_steps={self.n_steps}",
            f"ignore_regex={self.ignore_regex!r}",
        ]
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __call__(self, tree: Any, update_stats: bool | None = None) -> Any:
        """A tree with ``like``'s structure and leaf shapes -> the same.

        Normalized leaves keep their floating dtype; other leaves are returned
        as given. ``update_stats`` as in :class:`SpectralNorm` (``None``
        follows this module's mode). A tree whose structure or leaf shapes
        differ from ``like`` raises ``ValueError`` naming the first differing
        path.
        """
        update = resolve_update_stats(self, update_stats)
        pairs = self.template.check(tree, who(self))
        out = []
        with stateful_call(self, "the power-iteration state", True):
            for path, leaf in pairs:
                sn = self.norms.get(path)
                out.append(leaf if sn is None else sn(leaf, update_stats=update))
        return jax.tree_util.tree_unflatten(self.template.treedef, out)

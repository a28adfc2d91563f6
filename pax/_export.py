"""``pax.export_inference``: a trained model's inference function as a
``jax.export`` artifact that runs without PAX."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ._core.module import is_module

__all__ = ["export_inference"]


def _spec(x: Any, batch: Any, batch_axis: int | None) -> jax.ShapeDtypeStruct:
    """``x``'s shape and dtype, its ``batch_axis`` replaced by ``batch``."""
    if isinstance(x, jax.ShapeDtypeStruct):
        shape, dtype = tuple(x.shape), x.dtype
    else:
        shape, dtype = np.shape(x), jax.numpy.result_type(x)
    if batch_axis is not None:
        if not shape:
            raise ValueError(
                "pax.export_inference: an example argument is a scalar, which "
                f"has no batch axis {batch_axis}; pass batch_axis=None for a "
                "fixed shape, or close over the scalar."
            )
        shape = list(shape)
        shape[batch_axis] = batch  # raises IndexError for an axis out of range
        shape = tuple(shape)
    return jax.ShapeDtypeStruct(shape, dtype)


def export_inference(
    fn_or_module: Callable[..., Any],
    *example_args: Any,
    batch_axis: int | None = 0,
    platforms: Sequence[str] | None = None,
) -> jax.export.Exported:
    """Export an inference function with a symbolic batch size (``jax.export``).

    Args:
      fn_or_module: a :class:`pax.Module` (called as ``module(*args)``) or any
        function of arrays. A module is first switched to eval mode
        (:func:`pax.enable_eval_mode`), so that e.g. ``BatchNorm`` uses its
        running averages and ``Dropout`` is off. Its weights are baked into
        the artifact as constants.
      *example_args: arrays (or pytrees of arrays, or
        ``jax.ShapeDtypeStruct``) with the shapes and dtypes of one call;
        their values are not used.
      batch_axis: the axis of every argument that becomes the symbolic batch
        dimension ``b`` (one dimension shared by all arguments, so they must
        agree), or ``None`` for fixed shapes.
      platforms: where the artifact may run, e.g. ``("cpu", "cuda")``
        (default: the current backend only), as ``jax.export.export``.

    Returns:
      A ``jax.export.Exported``: ``exported.serialize()`` gives the bytes to
      ship; ``jax.export.deserialize(data).call(x)`` runs them on any batch
      size, in a process that imports only ``jax`` (no PAX, no model code).

    The recipe it implements, for when you want to write it out yourself::

        model = pax.enable_eval_mode(model)
        (b,) = jax.export.symbolic_shape("b")
        spec = jax.ShapeDtypeStruct((b, 784), jnp.float32)
        exported = jax.export.export(jax.jit(lambda x: model(x)))(spec)
        data = exported.serialize()            # a bytearray: write it to a file
        # elsewhere, with only jax installed:
        y = jax.export.deserialize(data).call(x)   # any batch size

    Use one ``symbolic_shape`` call (one scope) for all arguments sharing
    ``b``; this helper does that for you.

    >>> import jax, jax.numpy as jnp, numpy as np, pax
    >>> model = pax.nets.MLP(3, [8, 2], rng_key=jax.random.PRNGKey(0))
    >>> exported = pax.export_inference(model, jnp.zeros((1, 3)))
    >>> exported.in_avals
    (ShapedArray(float32[b,3]),)
    >>> restored = jax.export.deserialize(exported.serialize())
    >>> x = jnp.ones((5, 3))
    >>> np.testing.assert_allclose(restored.call(x), model(x), rtol=1e-6)
    """
    fn = fn_or_module
    if is_module(fn):
        module = fn.eval()
        fn = lambda *args: module(*args)  # noqa: E731 - a module is not a function
    elif not callable(fn):
        raise TypeError(
            "pax.export_inference: expected a pax.Module or a function, got "
            f"{type(fn).__name__}."
        )
    (batch,) = jax.export.symbolic_shape("b")
    specs = jax.tree_util.tree_map(
        lambda x: _spec(x, batch, batch_axis),
        example_args,
        is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct),
    )
    return jax.export.export(jax.jit(fn), platforms=platforms)(*specs)

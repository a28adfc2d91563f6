"""Registry entries: SpectralNorm, SNParamsTree, EMAParamsTree.

All three update state on a default call in training mode (so they are
``stateful``) and change nothing in eval mode, which the cross-cutting vmap
check uses. None of them has trainable parameters (``differentiable=False``).
"""

import jax
import jax.numpy as jnp

from pax.nn import EMAParamsTree, SNParamsTree, SpectralNorm

from .registry import Entry


def normal(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


# A Haiku-style parameter tree: two matrices (one rank 4), a vector, a scalar.
SHAPES = {
    "linear": {"w": (3, 4), "b": (4,)},
    "conv": {"w": (2, 2, 3, 5)},
    "scale": (),
}


def _is_shape(x):
    return isinstance(x, tuple)


def like(dtype=jnp.float32):
    return jax.tree_util.tree_map(
        lambda s: jnp.zeros(s, dtype), SHAPES, is_leaf=_is_shape
    )


def tree_input(key, dtype):
    """The tree of parameters, as the call's single argument."""
    shapes, treedef = jax.tree_util.tree_flatten(SHAPES, is_leaf=_is_shape)
    keys = jax.random.split(key, len(shapes))
    leaves = [jax.random.normal(k, s, dtype) for k, s in zip(keys, shapes)]
    return (jax.tree_util.tree_unflatten(treedef, leaves),)


ENTRIES = [
    Entry(
        "SpectralNorm",
        lambda k: SpectralNorm((3, 4), rng_key=k),
        normal((3, 4)),
        stateful=True,
        differentiable=False,
    ),
    Entry(
        "SpectralNorm-rank3-steps",
        lambda k: SpectralNorm((2, 3, 4), n_steps=3, rng_key=k),
        normal((2, 3, 4)),
        stateful=True,
        differentiable=False,
    ),
    Entry(
        "SNParamsTree",
        lambda k: SNParamsTree(like(), n_steps=2, rng_key=k),
        tree_input,
        stateful=True,
        differentiable=False,
    ),
    Entry(
        "EMAParamsTree",
        lambda k: EMAParamsTree(like(), 0.9),
        tree_input,
        stateful=True,
        differentiable=False,
    ),
    Entry(
        "EMAParamsTree-warmup-ignore",
        lambda k: EMAParamsTree(
            like(), 0.5, zero_debias=False, warmup_length=1, ignore_regex=r".*\['b'\]"
        ),
        tree_input,
        stateful=True,
        differentiable=False,
    ),
]

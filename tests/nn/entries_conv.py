"""Registry entries: convolutions, transposed, depthwise and separable.

Weight shapes repeat on purpose (``(3, 3, 4)``, ``(3, 3, 3, 4)``,
``(2, 2, 2, 3, 4)``): the default initializer compiles once per shape.
"""

import jax
import jax.numpy as jnp
import numpy as np

from pax.nn import (
    Conv1D,
    Conv1DTranspose,
    Conv2D,
    Conv2DTranspose,
    Conv3D,
    Conv3DTranspose,
    ConvND,
    ConvNDTranspose,
    DepthwiseConv1D,
    DepthwiseConv2D,
    DepthwiseConv3D,
    SeparableDepthwiseConv2D,
)
from pax.nn.pad import causal

from .registry import Entry


def normal(shape):
    """Inputs from numpy, seeded by the key (jax.random compiles per shape)."""

    def inputs(key, dtype):
        seed = int(np.asarray(jax.random.key_data(key)).ravel()[-1])
        x = np.random.default_rng(seed).normal(size=shape)
        return (jnp.asarray(x, dtype),)

    return inputs


# a fixed 0/1 mask for the (3, 3, 3, 4) kernel
MASK = (np.arange(3 * 3 * 3 * 4).reshape(3, 3, 3, 4) % 3 != 0).astype(np.float32)

ENTRIES = [
    Entry("Conv1D", lambda k: Conv1D(3, 4, 3, rng_key=k), normal((2, 8, 3))),
    Entry(
        "Conv1D-NCW-stride2-causal",
        lambda k: Conv1D(3, 4, 3, 2, padding=causal, data_format="NCW", rng_key=k),
        normal((2, 3, 8)),
    ),
    Entry(
        "ConvND-1d-channels_first-rate2",
        lambda k: ConvND(1, 3, 4, 3, rate=2, data_format="channels_first", rng_key=k),
        normal((2, 3, 9)),
    ),
    Entry("Conv2D", lambda k: Conv2D(3, 4, 3, rng_key=k), normal((2, 6, 6, 3))),
    Entry(
        "Conv2D-NCHW-groups-valid",
        lambda k: Conv2D(
            6,
            4,
            3,
            padding="VALID",
            data_format="NCHW",
            feature_group_count=2,
            rng_key=k,
        ),
        normal((2, 6, 5, 5)),
    ),  # fmt: skip
    Entry(
        "Conv2D-mask-unbatched-stride2",
        lambda k: Conv2D(3, 4, 3, stride=2, mask=MASK, rng_key=k),
        normal((6, 6, 3)),
    ),
    Entry("Conv3D", lambda k: Conv3D(3, 4, 2, rng_key=k), normal((1, 4, 4, 4, 3))),
    Entry(
        "Conv3D-NCDHW-stride2",
        lambda k: Conv3D(3, 4, 2, stride=2, data_format="NCDHW", rng_key=k),
        normal((1, 3, 4, 4, 4)),
    ),
    Entry(
        "Conv1DTranspose",
        lambda k: Conv1DTranspose(4, 3, 3, stride=2, rng_key=k),
        normal((2, 5, 4)),
    ),
    Entry(
        "Conv2DTranspose-output_shape",
        lambda k: Conv2DTranspose(4, 3, 3, stride=2, output_shape=(9, 10), rng_key=k),
        normal((2, 5, 5, 4)),
    ),
    Entry(
        "Conv2DTranspose-NCHW-valid",
        lambda k: Conv2DTranspose(
            4, 3, 3, stride=2, padding="VALID", data_format="NCHW", rng_key=k
        ),
        normal((2, 4, 4, 4)),
    ),
    Entry(
        "Conv3DTranspose",
        lambda k: Conv3DTranspose(4, 3, 2, stride=2, rng_key=k),
        normal((1, 2, 3, 2, 4)),
    ),
    Entry(
        "ConvNDTranspose-2d-pairs-nobias",
        lambda k: ConvNDTranspose(
            2, 4, 3, 3, 2, padding=(1, 1), with_bias=False, rng_key=k
        ),
        normal((2, 4, 4, 4)),
    ),
    Entry(
        "DepthwiseConv1D",
        lambda k: DepthwiseConv1D(4, 1, 3, rng_key=k),
        normal((2, 8, 4)),
    ),
    Entry(
        "DepthwiseConv2D-NCHW-multiplier2",
        lambda k: DepthwiseConv2D(2, 2, 3, stride=2, data_format="NCHW", rng_key=k),
        normal((2, 2, 6, 6)),
    ),
    Entry(
        "DepthwiseConv3D-rate2",
        lambda k: DepthwiseConv3D(4, 1, 2, rate=2, rng_key=k),
        normal((1, 4, 4, 4, 4)),
    ),
    Entry(
        "SeparableDepthwiseConv2D",
        lambda k: SeparableDepthwiseConv2D(2, 2, 3, rng_key=k),
        normal((2, 6, 6, 2)),
    ),
    Entry(
        "SeparableDepthwiseConv2D-NCHW-stride2",
        lambda k: SeparableDepthwiseConv2D(
            2, 2, 3, stride=2, data_format="NCHW", rng_key=k
        ),
        normal((2, 2, 6, 6)),
    ),
]

"""Registry entries: nets.ResNet (tiny configurations, batch norm in training
mode, so every call goes through ``pax.purecall``)."""

import jax

from pax.initializers import TruncatedNormal
from pax.nets._resnet import ResNet
from tests.nn.registry import Entry


def images(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


# Tiny and cheap: every block sees the same shapes (8 channels, 4x4 pixels:
# enough values per channel for well-conditioned batch statistics), so eager
# op-by-op execution compiles few kernels. The default logits weight is zero,
# which would make every gradient of the registry's sum-of-squares loss zero;
# these entries start it random.
_TINY = dict(
    blocks_per_group=(1, 1, 1, 1),
    channels_per_group=(8, 8, 8, 8),
    use_projection=(True, False, False, False),
    initial_conv_config={"out_features": 8, "kernel_shape": 3},
    logits_config={"w_init": TruncatedNormal(1.0)},
    strides=(1, 1, 1, 1),
)

ENTRIES = [
    Entry(
        "ResNet-v1-bottleneck",
        lambda k: ResNet(3, num_classes=5, rng_key=k, **_TINY),
        images((2, 16, 16, 3)),
        stateful=True,
    ),
    Entry(
        "ResNet-v2-basic",
        lambda k: ResNet(
            3,
            num_classes=5,
            resnet_v2=True,
            bottleneck=False,
            rng_key=k,
            **_TINY,
        ),
        images((2, 16, 16, 3)),
        stateful=True,
    ),
]

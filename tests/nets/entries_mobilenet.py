"""Registry entries: nets.MobileNetV1 (tiny configurations)."""

import jax

from pax.nets._mobilenet import MobileNetV1
from tests.nn.registry import Entry


def images(shape):
    return lambda key, dtype: (jax.random.normal(key, shape, dtype),)


# Every block keeps 32 channels and the 4x4 size the initial convolution leaves
# (9x9 in, stride 2, 'VALID'): few distinct shapes, so eager execution compiles
# few kernels.
ENTRIES = [
    Entry(
        "MobileNetV1",
        lambda k: MobileNetV1(
            3, strides=(1, 1), channels=(32, 32), num_classes=5, rng_key=k
        ),
        images((2, 9, 9, 3)),
        stateful=True,
    ),
    # without batch norm the network is stateless: a plain call in training mode
    Entry(
        "MobileNetV1-no-bn",
        lambda k: MobileNetV1(
            3, strides=(1,), channels=(32,), num_classes=5, use_bn=False, rng_key=k
        ),
        images((2, 9, 9, 3)),
    ),
]

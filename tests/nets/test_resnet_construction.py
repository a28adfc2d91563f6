"""nets.ResNet construction: the key each layer gets is a fixed function of
the network's key (``jax.random.split`` at every level), so the same key
gives the same network whatever the construction code does internally."""

import jax
import numpy as np

import pax


def test_layer_keys_follow_the_documented_splits(key):
    net = pax.nets.ResNet(
        3,
        (1, 2, 1, 1),
        10,
        channels_per_group=(8, 8, 16, 16),
        use_projection=(True, True, True, True),
        initial_conv_config={"out_features": 8},
        rng_key=key,
    )

    def truncated(k, shape):  # Conv2D's default weight, by hand
        fan_in = int(np.prod(shape[:-1]))
        w_key = jax.random.split(k)[0]
        scale = np.float32(1 / np.sqrt(fan_in))
        return scale * jax.random.truncated_normal(w_key, -2.0, 2.0, shape) + 0.0

    net_keys = jax.random.split(key, 8)
    np.testing.assert_array_equal(
        net.initial_conv.weight, truncated(net_keys[0], (7, 7, 3, 8))
    )
    # group 1, block 1: split(split(net_key[3], 2)[1], 8)[2 + 2k] for conv_k
    block_key = jax.random.split(net_keys[3], 2)[1]
    layer_keys = jax.random.split(block_key, 8)
    block = net.block_groups[1].blocks[1]
    np.testing.assert_array_equal(
        block.conv_1.weight, truncated(layer_keys[4], (3, 3, 2, 2))
    )
    first = net.block_groups[1].blocks[0]
    first_keys = jax.random.split(jax.random.split(net_keys[3], 2)[0], 8)
    np.testing.assert_array_equal(
        first.proj_conv.weight, truncated(first_keys[0], (1, 1, 8, 8))
    )

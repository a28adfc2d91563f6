"""Small modules written for the core tests (layers come in pax.nn)."""

import jax
import jax.numpy as jnp

import pax


class Affine(pax.Module):
    """y = x @ weight + bias, with a non-trainable call counter."""

    parameters = pax.parameters_method("weight", "bias")

    def __init__(self, in_dim, out_dim, with_bias=True, *, rng_key=None, name=None):
        super().__init__(name=name)
        rng_key = pax.next_rng_key() if rng_key is None else rng_key
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.weight = jax.random.normal(rng_key, (in_dim, out_dim)) / in_dim**0.5
        self.bias = jnp.zeros((out_dim,)) if with_bias else None

    def __call__(self, x):
        y = x @ self.weight
        return y if self.bias is None else y + jnp.broadcast_to(self.bias, y.shape)


class Counter(pax.Module):
    """A stateful module: every call increments `count`."""

    def __init__(self, start=0):
        super().__init__()
        self.count = jnp.array(start)

    def __call__(self, x):
        self.count = self.count + 1
        return x * self.count


class Chain(pax.Module):
    """Applies layers (modules or plain functions) in order."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Stats(pax.Module):
    """Keeps a running mean of its inputs (state) and scales by `scale`."""

    parameters = pax.parameters_method("scale")

    def __init__(self, dim, decay=0.9):
        super().__init__()
        self.decay = decay
        self.scale = jnp.ones((dim,))
        self.mean = jnp.zeros((dim,))

    def __call__(self, x):
        if self.training:
            self.mean = self.decay * self.mean + (1 - self.decay) * x.mean(0)
        mean = jnp.broadcast_to(self.mean, x.shape)
        return (x - mean) * jnp.broadcast_to(self.scale, x.shape)

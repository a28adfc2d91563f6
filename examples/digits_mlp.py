"""Train a small MLP on scikit-learn's handwritten digits with the PAX core.

The data ships with scikit-learn (1,797 8x8 images, no download). The model is
written directly on `pax.Module`; optax updates its trainable parameters;
a non-trainable step counter shows state carried through `pax.purecall`.

    python examples/digits_mlp.py            # full run (a few seconds on CPU)
    python examples/digits_mlp.py --smoke    # a handful of steps, for tests
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from tqdm import tqdm

import pax


class Dense(pax.Module):
    """y = x @ weight + bias; weight [in_dim, out_dim], bias [out_dim]."""

    parameters = pax.parameters_method("weight", "bias")

    def __init__(self, in_dim: int, out_dim: int, *, rng_key: jax.Array):
        super().__init__()
        scale = 1.0 / np.sqrt(in_dim)
        self.weight = scale * jax.random.truncated_normal(
            rng_key, -2.0, 2.0, (in_dim, out_dim)
        )
        self.bias = jnp.zeros((out_dim,))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = x @ self.weight
        return y + jnp.broadcast_to(self.bias, y.shape)


class Classifier(pax.Module):
    """64 pixels -> hidden -> 10 logits, counting its training steps."""

    def __init__(self, hidden: int, *, rng_key: jax.Array):
        super().__init__()
        k1, k2 = jax.random.split(rng_key)
        self.layers = [Dense(64, hidden, rng_key=k1), Dense(hidden, 10, rng_key=k2)]
        self.steps = jnp.array(0)  # state: not trainable

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.training:
            self.steps = self.steps + 1  # a state update: needs pax.purecall
        h = jax.nn.relu(self.layers[0](x))
        return self.layers[1](h)


def loss_fn(params, model, x, y):
    model = model.update_parameters(params)
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, model


def make_step(optimizer):
    @jax.jit
    def step(model, opt_state, x, y):
        params = model.parameters()
        (loss, model), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, model, x, y
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = model.update_parameters(optax.apply_updates(params, updates))
        return model, opt_state, loss

    return step


@jax.jit
def accuracy(model, x, y):
    return jnp.mean(jnp.argmax(model.eval()(x), axis=-1) == y)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="run 20 steps only")
    args = parser.parse_args(argv)
    steps = 20 if args.smoke else args.steps

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(args.seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    x_train, y_train, x_test, y_test = x[:split], y[:split], x[split:], y[split:]

    model = Classifier(args.hidden, rng_key=jax.random.PRNGKey(args.seed))
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(model.parameters())
    step = make_step(optimizer)
    rng = np.random.default_rng(args.seed + 1)

    bar = tqdm(range(steps), desc="training", disable=args.smoke, mininterval=0.5)
    for i in bar:
        idx = rng.integers(0, len(x_train), args.batch_size)
        model, opt_state, loss = step(model, opt_state, x_train[idx], y_train[idx])
        if i % 50 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)

    acc = float(accuracy(model, x_test, y_test))
    print(f"steps taken: {int(model.steps)}; test accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()

"""A Haiku training script run by PAX, then moved to native PAX modules.

Part 1 is written exactly as a dm-haiku user writes it (a ConvNet module with
BatchNorm on scikit-learn's 8x8 digits, `hk.transform_with_state`, optax,
`jax.jit`), except for one line: `import pax.hk as hk` instead of
`import haiku as hk`. Nothing else changes, and the parameter names are
Haiku's (`conv_net/~/conv2_d`, `conv_net/~/batch_norm/~/mean_ema`, ...).

Part 2 moves the trained weights and BatchNorm statistics into a native
`pax.Module` with `hk.from_haiku_params`, checks that it predicts the same
logits, and keeps training it natively (`pax.utils.build_update_fn`,
`pax.optim`). Finally `hk.to_haiku_params` turns the native weights back
into Haiku's dicts, which the Haiku program runs unchanged.

    python examples/haiku_port.py           # ~20 s on 2 CPU cores
    python examples/haiku_port.py --smoke   # seconds, for tests

The last line printed is the final test accuracy.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import pax
import pax.hk as hk  # <- the only change to the Haiku script

# -- Part 1: the Haiku program ------------------------------------------------


class ConvNet(hk.Module):
    """[N, 8, 8, 1] images -> [N, 10] logits."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.conv1 = hk.Conv2D(16, 3)
        self.bn1 = hk.BatchNorm(True, True, 0.9)
        self.conv2 = hk.Conv2D(32, 3, stride=2)
        self.bn2 = hk.BatchNorm(True, True, 0.9)
        self.head = hk.nets.MLP([64, 10])

    def __call__(self, x, is_training):
        x = jax.nn.relu(self.bn1(self.conv1(x), is_training))
        x = jax.nn.relu(self.bn2(self.conv2(x), is_training))
        return self.head(hk.Flatten()(x))


def forward(x, is_training):
    return ConvNet()(x, is_training)


model = hk.without_apply_rng(hk.transform_with_state(forward))


def haiku_loss(params, state, x, y):
    logits, state = model.apply(params, state, x, is_training=True)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, state


def make_haiku_step(optimizer):
    @jax.jit
    def step(params, state, opt_state, x, y):
        (loss, state), grads = jax.value_and_grad(haiku_loss, has_aux=True)(
            params, state, x, y
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), state, opt_state, loss

    return step


@jax.jit
def haiku_logits(params, state, x):
    return model.apply(params, state, x, is_training=False)[0]


# -- Part 2: the same network as a native pax.Module ---------------------------


class NativeConvNet(pax.Module):
    """The native twin of ``ConvNet``: the same layers, built in the same
    order, so ``hk.from_haiku_params`` finds each one under Haiku's name."""

    def __init__(self, *, rng_key):
        super().__init__()
        k1, k2, k3 = jax.random.split(rng_key, 3)
        self.conv1 = pax.Conv2D(1, 16, 3, rng_key=k1)
        self.bn1 = pax.BatchNorm2D(16, decay_rate=0.9)
        self.conv2 = pax.Conv2D(16, 32, 3, stride=2, rng_key=k2)
        self.bn2 = pax.BatchNorm2D(32, decay_rate=0.9)
        self.head = pax.nets.MLP(4 * 4 * 32, [64, 10], rng_key=k3)

    def __call__(self, x):
        x = jax.nn.relu(self.bn1(self.conv1(x)))
        x = jax.nn.relu(self.bn2(self.conv2(x)))
        return self.head(x.reshape(x.shape[0], -1))


def native_loss(net, x, y):
    net, logits = pax.purecall(net, x)  # training mode: BatchNorm updates
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (loss, net)


@jax.jit
def native_logits(net, x):
    return net.eval()(x)


# -- the run --------------------------------------------------------------------


def load_data(seed: int):
    """80/20 split, images scaled to [0, 1], shape [N, 8, 8, 1]."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(0.8 * len(x))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def batches(x, y, batch_size, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    for i in range(0, len(x) - batch_size + 1, batch_size):
        idx = order[i : i + batch_size]
        yield x[idx], y[idx]


def accuracy(logits, y) -> float:
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == y))


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8, help="per part")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="1 epoch per part")
    args = parser.parse_args(argv)
    epochs = 1 if args.smoke else args.epochs
    x_train, y_train, x_test, y_test = load_data(args.seed)

    # Part 1: train under pax.hk, as one trains under Haiku.
    key = jax.random.PRNGKey(args.seed)
    params, state = model.init(key, x_train[:1], is_training=True)
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(params)
    step = make_haiku_step(optimizer)
    for epoch in range(epochs):
        for xb, yb in batches(x_train, y_train, args.batch_size, (args.seed, epoch)):
            params, state, opt_state, loss = step(params, state, opt_state, xb, yb)
    acc = accuracy(haiku_logits(params, state, x_test), y_test)
    print(f"pax.hk (Haiku script), {epochs} epochs: test accuracy {acc:.4f}")

    # Part 2: the trained weights and statistics in a native module.
    template = jax.eval_shape(lambda: NativeConvNet(rng_key=key))
    # A user's module is named like a Haiku module (snake-case class name);
    # ours is called NativeConvNet, so give it Haiku's name.
    net = hk.from_haiku_params(template, params, state, name="conv_net")
    ours = native_logits(net, x_test)
    theirs = haiku_logits(params, state, x_test)
    diff = float(jnp.max(jnp.abs(ours - theirs)))
    same = bool(np.all(np.argmax(ours, -1) == np.argmax(theirs, -1)))
    print(f"native copy: max |logit difference| {diff:.2e}, same predictions: {same}")

    native_opt = pax.optim.from_optax(optax.adam(args.lr), net.parameters())
    update = jax.jit(pax.utils.build_update_fn(native_loss))
    for epoch in range(epochs, 2 * epochs):
        for xb, yb in batches(x_train, y_train, args.batch_size, (args.seed, epoch)):
            net, native_opt, loss = update(net, native_opt, xb, yb)
    acc = accuracy(native_logits(net, x_test), y_test)
    print(f"native training, {epochs} more epochs: test accuracy {acc:.4f}")

    # And back: the native weights run in the Haiku program again.
    params, state = hk.to_haiku_params(net, name="conv_net")
    back = haiku_logits(params, state, x_test)
    diff = float(jnp.max(jnp.abs(back - native_logits(net, x_test))))
    print(f"back in the Haiku program: max |logit difference| {diff:.2e}")
    print(f"final test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()

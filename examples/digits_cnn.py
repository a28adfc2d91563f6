"""Train a small CNN on scikit-learn's handwritten digits, with checkpoints.

Real data that ships with scikit-learn (1,797 8x8 grey images of the digits
0-9; nothing is downloaded). The network uses Conv2D, BatchNorm2D, Dropout and
Linear; optax's Adam trains it through `pax.utils.build_update_fn` under
`jax.jit`; every epoch ends with an eval pass in eval mode. With `--ckpt-dir`
the model, the optimizer state and the epoch are saved after every epoch
(`pax.save`, an atomic `.npz`), and re-running the same command resumes from
the last saved epoch.

    python examples/digits_cnn.py                      # ~1 min on 2 CPU cores
    python examples/digits_cnn.py --ckpt-dir /tmp/ckpt # resumable
    python examples/digits_cnn.py --smoke              # seconds, for tests
    python examples/digits_cnn.py --plot loss.png      # + training-curve PNG

The last line printed is the final test accuracy.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import runpy

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits
from tqdm import tqdm

import pax


def make_model(seed: int, dropout: float) -> pax.Sequential:
    """[N, 8, 8, 1] images -> [N, 10] logits."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    return pax.Sequential(
        pax.Conv2D(1, 32, 3, rng_key=k1),
        pax.BatchNorm2D(32),
        jax.nn.relu,
        pax.Conv2D(32, 64, 3, rng_key=k2),
        pax.BatchNorm2D(64),
        jax.nn.relu,
        pax.MaxPool((2, 2, 1), (2, 2, 1), "VALID"),  # -> [N, 4, 4, 64]
        pax.Flatten(),
        pax.Dropout(dropout, rng_key=k3),
        pax.Linear(4 * 4 * 64, 10, rng_key=k4),
    )


def loss_fn(model, x, y):
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (loss, model)


@jax.jit
def predict(model, x):
    return jnp.argmax(model.eval()(x), axis=-1)


def load_data(seed: int):
    """80/20 split, stratified per digit, images scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int32)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(y == digit))
        cut = int(round(0.8 * len(idx)))
        train.extend(idx[:cut])
        test.extend(idx[cut:])
    train, test = np.sort(train), np.sort(test)
    return x[train], y[train], x[test], y[test]


def shift_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by up to one pixel in each direction (zero fill)."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    dy, dx = rng.integers(0, 3, size=(2, len(x)))
    return np.stack([p[a : a + 8, b : b + 8] for p, a, b in zip(padded, dy, dx)])


def accuracy(model, x, y, batch_size: int = 512) -> float:
    hits = sum(
        int(jnp.sum(predict(model, x[i : i + batch_size]) == y[i : i + batch_size]))
        for i in range(0, len(x), batch_size)
    )
    return hits / len(x)


def save_plot(path, losses, steps_per_epoch, start_epoch, accuracies) -> None:
    """Training loss per step and test accuracy per epoch, as a PNG."""
    plot = runpy.run_path(str(pathlib.Path(__file__).with_name("_plot.py")))
    epochs = start_epoch + (np.arange(len(losses)) + 1) / steps_per_epoch
    plot["plot_training"](
        path,
        epochs,
        [float(x) for x in losses],
        xlabel="epoch",
        ylabel="training loss (cross-entropy)",
        title="digits_cnn.py",
        right=(
            start_epoch + np.arange(1, len(accuracies) + 1),
            accuracies,
            "test accuracy",
        ),
    )


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ckpt-dir", default=None, help="save every epoch here and resume from it"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 short epochs on 512 images (tests)"
    )
    parser.add_argument(
        "--plot", default=None, help="write the training curves here (a PNG)"
    )
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load_data(args.seed)
    epochs = args.epochs
    if args.smoke:
        x_train, y_train, epochs = x_train[:512], y_train[:512], 2

    model = make_model(args.seed, args.dropout)
    steps_per_epoch = len(x_train) // args.batch_size
    schedule = optax.cosine_decay_schedule(args.lr, epochs * steps_per_epoch)
    optimizer = pax.optim.from_optax(optax.adam(schedule), model.parameters())
    update_fn = jax.jit(pax.utils.build_update_fn(loss_fn))

    start_epoch = 0
    ckpt = None
    if args.ckpt_dir:
        os.makedirs(args.ckpt_dir, exist_ok=True)
        ckpt = os.path.join(args.ckpt_dir, "digits_cnn.npz")
        if os.path.exists(ckpt):
            like = (model, optimizer, jnp.array(0))
            model, optimizer, done = pax.load(ckpt, like)
            start_epoch = int(done)
            print(f"resumed from {ckpt} after epoch {start_epoch}")

    losses, accuracies = [], []  # for --plot
    for epoch in range(start_epoch, epochs):
        # the shuffle depends only on (seed, epoch): a resumed run sees the
        # same batches as an uninterrupted one
        rng = np.random.default_rng((args.seed, epoch))
        order = rng.permutation(len(x_train))
        images = shift_augment(x_train[order], rng)
        labels = y_train[order]
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=args.smoke,
            leave=False,
        )
        for step in bar:
            sl = slice(step * args.batch_size, (step + 1) * args.batch_size)
            model, optimizer, loss = update_fn(model, optimizer, images[sl], labels[sl])
            if args.plot:
                losses.append(loss)  # a device scalar: no sync per step
            if step % 10 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        acc = accuracy(model, x_test, y_test)
        accuracies.append(acc)
        print(f"epoch {epoch + 1}: loss {float(loss):.4f}, test accuracy {acc:.4f}")
        if ckpt:
            pax.save(ckpt, (model, optimizer, jnp.array(epoch + 1)))

    if args.plot:
        save_plot(args.plot, losses, steps_per_epoch, start_epoch, accuracies)
        print(f"saved {args.plot}")
    acc = accuracy(model, x_test, y_test)
    print(f"final test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()

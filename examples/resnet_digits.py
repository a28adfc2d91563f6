"""A small ResNet from `pax.nets` on scikit-learn's digits, data-parallel.

Real data that ships with scikit-learn (1,797 8x8 grey images; nothing is
downloaded), upsampled to 16x16. The network is `pax.nets.ResNet` with basic
(non-bottleneck) blocks, one per group, and a 3x3 stride-1 first convolution.

Training is data-parallel over every local device through `jax.sharding`: the
model and optimizer state are replicated, each batch is split along its first
axis over a one-axis device mesh ("data"), and one `jax.jit`-compiled step
runs on all devices (XLA inserts the gradient all-reduce; batch-norm
statistics are those of the whole global batch). On a CPU, try several
devices with

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/resnet_digits.py

Several processes (`jax.distributed`): the mesh spans every process' devices,
each process reads only its own rows of every global batch
(`jax.make_array_from_process_local_data`), BatchNorm statistics are still
those of the global batch, `--ckpt-dir` saves with `pax.checkpoint.Manager`
(Orbax, each process writes its own shards), and only process 0 prints:

    python -m pax.launch -n 2 --devices-per-process 4 examples/resnet_digits.py

`--mesh data=8` picks the mesh (its `data` axis splits the batch) and
`--sharding fsdp` shards the parameters and Adam state over it.

    python examples/resnet_digits.py                      # ~1-2 min on 2 CPU cores
    python examples/resnet_digits.py --ckpt-dir /tmp/ckpt # resumable
    python examples/resnet_digits.py --smoke              # seconds, for tests

Measured with the defaults on a 2-core CPU (one device): 99.44% test accuracy
(359 held-out digits) in about 70 s. With 8 forced host devices the smoke run
gives the same accuracy as on one device (the global batch statistics are the
same). The last line printed is the final test accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from sklearn.datasets import load_digits
from tqdm import tqdm

import pax


def make_model(seed: int, width: int) -> pax.nets.ResNet:
    """[N, 16, 16, 1] images -> [N, 10] logits."""
    return pax.nets.ResNet(
        1,
        blocks_per_group=(1, 1, 1, 1),
        num_classes=10,
        bottleneck=False,
        channels_per_group=(width, 2 * width, 4 * width, 8 * width),
        use_projection=(False, True, True, True),
        initial_conv_config={"out_features": width, "kernel_shape": 3, "stride": 1},
        rng_key=jax.random.PRNGKey(seed),
    )


def loss_fn(model, x, y):
    model, logits = pax.purecall(model, x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (loss, model)


@jax.jit
def predict(model, x):
    return jnp.argmax(model.eval()(x), axis=-1)


def load_data(seed: int):
    """80/20 split, stratified per digit; [N, 16, 16, 1] images in [0, 1]."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    x = x.repeat(2, axis=1).repeat(2, axis=2)[..., None]  # 8x8 -> 16x16
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
    """Shift each image by up to two pixels in each direction (zero fill)."""
    size = x.shape[1]
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    dy, dx = rng.integers(0, 5, size=(2, len(x)))
    return np.stack([p[a : a + size, b : b + size] for p, a, b in zip(padded, dy, dx)])


def accuracy(model, x, y, batch_size: int = 512) -> float:
    hits = sum(
        int(jnp.sum(predict(model, x[i : i + batch_size]) == y[i : i + batch_size]))
        for i in range(0, len(x), batch_size)
    )
    return hits / len(x)


def make_mesh(text: str | None) -> jax.sharding.Mesh:
    """``--mesh data=8`` (default: one ``data`` axis over every device of
    every process)."""
    if not text:
        return pax.sharding.make_mesh((jax.device_count(),), ("data",))
    sizes, names = [], []
    for item in text.split(","):
        name, sep, size = item.partition("=")
        if not sep or not size.strip().isdigit():
            raise ValueError(f"--mesh: expected name=size[,name=size], got {text!r}")
        names.append(name.strip())
        sizes.append(int(size))
    if "data" not in names or math.prod(sizes) != jax.device_count():
        raise ValueError(
            f"--mesh {text}: needs a 'data' axis and {jax.device_count()} devices "
            f"in all ({jax.process_count()} process(es))"
        )
    return pax.sharding.make_mesh(sizes, names)


def main(argv=None) -> float | None:
    """Train and evaluate; returns the final test accuracy (None in processes
    other than 0 of a multi-process run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=64,
        help="global batch, rounded up to a multiple of the data axis' size",
    )
    parser.add_argument("--width", type=int, default=16, help="first group's channels")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ckpt-dir", default=None, help="save every epoch here and resume from it"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 short epochs on 512 images (tests)"
    )
    parser.add_argument(
        "--train-size", type=int, default=None, help="use only this many images"
    )
    parser.add_argument(
        "--mesh", default=None, help="e.g. data=8 (default: data=<all devices>)"
    )
    parser.add_argument(
        "--sharding",
        choices=("dp", "fsdp"),
        default="dp",
        help="parameters replicated, or FSDP over the data axis",
    )
    parser.add_argument(
        "--log-losses", default=None, help="write every step's loss here (JSON)"
    )
    pax.distributed.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(epochs=2, train_size=512)
        args = parser.parse_args(argv)
    # first, before anything creates JAX's devices
    multi_process = pax.distributed.initialize_from_args(args)
    main_process = jax.process_index() == 0
    log = print if main_process else (lambda *a, **k: None)

    x_train, y_train, x_test, y_test = load_data(args.seed)
    epochs = args.epochs
    if args.train_size is not None:
        x_train, y_train = x_train[: args.train_size], y_train[: args.train_size]

    # a mesh over every device; batches split along its "data" axis
    mesh = make_mesh(args.mesh)
    rules = pax.sharding.fsdp_rules("data") if args.sharding == "fsdp" else []
    replicated = NamedSharding(mesh, P())
    batch_sharded = NamedSharding(mesh, P("data"))
    n = mesh.shape["data"]
    batch_size = -(-args.batch_size // n) * n
    log(f"{n} device(s), global batch {batch_size} ({batch_size // n} per device)")
    rows = pax.distributed.process_rows(batch_sharded, batch_size)

    def make_optimizer(model):
        return pax.optim.from_optax(optax.adam(schedule), model.parameters())

    steps_per_epoch = len(x_train) // batch_size
    schedule = optax.cosine_decay_schedule(args.lr, epochs * steps_per_epoch)
    model = pax.sharding.init(
        lambda: make_model(args.seed, args.width), mesh, rules, default=P()
    )
    model_shardings = pax.sharding.named_shardings(model, mesh, rules, default=P())
    opt_shardings = pax.sharding.named_shardings(
        jax.eval_shape(make_optimizer, model), mesh, rules, default=P()
    )
    optimizer = jax.jit(make_optimizer, out_shardings=opt_shardings)(model)
    update_fn = jax.jit(
        pax.utils.build_update_fn(loss_fn),
        out_shardings=(model_shardings, opt_shardings, replicated),
    )

    start_epoch = 0
    ckpt = manager = None
    if args.ckpt_dir and (multi_process or args.mesh or args.sharding != "dp"):
        # sharded state: Orbax, each process writes its own shards
        manager = pax.checkpoint.Manager(args.ckpt_dir, max_to_keep=2)
        done = manager.latest_step()
        if done is not None:
            model, optimizer = manager.restore(done, (model, optimizer))
            start_epoch = done
            log(f"resumed from {args.ckpt_dir} after epoch {start_epoch}")
    elif args.ckpt_dir:
        os.makedirs(args.ckpt_dir, exist_ok=True)
        ckpt = os.path.join(args.ckpt_dir, "resnet_digits.npz")
        if os.path.exists(ckpt):
            like = (model, optimizer, jnp.array(0))
            model, optimizer, done = pax.load(ckpt, like)
            start_epoch = int(done)
            log(f"resumed from {ckpt} after epoch {start_epoch}")
            model, optimizer = jax.device_put(
                (model, optimizer), (model_shardings, opt_shardings)
            )

    losses: list[float] = []
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
            disable=args.smoke or not main_process,
            leave=False,
        )
        for step in bar:
            # this process' rows of the global batch
            lo = step * batch_size
            sl = slice(lo + rows.start, lo + rows.stop)
            x, y = (
                jax.make_array_from_process_local_data(batch_sharded, a[sl], shape)
                for a, shape in (
                    (images, (batch_size, *images.shape[1:])),
                    (labels, (batch_size,)),
                )
            )
            model, optimizer, loss = update_fn(model, optimizer, x, y)
            if args.log_losses:
                losses.append(float(loss))
            if step % 10 == 0:
                bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        local = pax.distributed.local_copy(model, mesh)  # for process 0 alone
        if main_process:
            acc = accuracy(local, x_test, y_test)
            print(f"epoch {epoch + 1}: loss {float(loss):.4f}, test accuracy {acc:.4f}")
        if manager is not None:
            manager.save(epoch + 1, (model, optimizer))
        elif ckpt:
            pax.save(ckpt, (model, optimizer, jnp.array(epoch + 1)))
    if manager is not None:
        manager.close()
    if args.log_losses and main_process:
        with open(args.log_losses, "w") as f:
            json.dump({"start": start_epoch, "losses": losses}, f)

    shards = len(x.sharding.device_set) if epochs > start_epoch else 0
    log(f"last batch was split over {shards} device(s)")
    local = pax.distributed.local_copy(model, mesh)
    if not main_process:
        return None
    acc = accuracy(local, x_test, y_test)
    print(f"final test accuracy: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()

"""A character-level LSTM language model trained on Python's own source code.

The text ships with every Python install: a fixed selection of the standard
library's source files (listed in TRAIN_FILES and HELD_OUT_FILES below; files
missing from a given Python version are skipped). The model reads bytes
(vocabulary 256): Embed -> DeepRNN([LSTM]) unrolled with
`pax.nn.dynamic_unroll` (one `jax.lax.scan`) -> Linear. Training uses optax's
Adam through `pax.utils.build_update_fn` under `jax.jit`, with a tqdm
progress bar and, with `--ckpt-dir`, checkpoints every `--ckpt-every` steps
that a re-run resumes from. At the end it prints the held-out bits per
character next to the unigram-entropy baseline, and a sample of generated
text.

    python examples/char_lstm.py                 # ~5 min on 2 CPU cores
    python examples/char_lstm.py --smoke         # seconds, for tests
    python examples/char_lstm.py --plot loss.png # + training-curve PNG
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import runpy
import sysconfig

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

import pax

TRAIN_FILES = [
    "argparse.py",
    "ast.py",
    "calendar.py",
    "configparser.py",
    "csv.py",
    "dataclasses.py",
    "difflib.py",
    "enum.py",
    "fractions.py",
    "functools.py",
    "heapq.py",
    "inspect.py",
    "json/decoder.py",
    "json/encoder.py",
    "shutil.py",
    "string.py",
    "textwrap.py",
    "tokenize.py",
    "typing.py",
    "weakref.py",
    "_pydecimal.py",
    "collections/__init__.py",
    "datetime.py",
    "email/message.py",
    "ftplib.py",
    "gettext.py",
    "http/client.py",
    "http/server.py",
    "ipaddress.py",
    "logging/__init__.py",
    "mailbox.py",
    "optparse.py",
    "pdb.py",
    "pprint.py",
    "pydoc.py",
    "smtplib.py",
    "subprocess.py",
    "tarfile.py",
    "tempfile.py",
    "threading.py",
    "traceback.py",
    "unittest/case.py",
    "urllib/parse.py",
    "urllib/request.py",
]
HELD_OUT_FILES = ["random.py", "statistics.py", "bisect.py"]


def read_files(names: list[str]) -> bytes:
    root = sysconfig.get_paths()["stdlib"]
    chunks = []
    for name in names:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                chunks.append(f.read())
    if not chunks:
        raise FileNotFoundError(f"none of {names} found under {root}")
    return b"\n".join(chunks)


class CharLM(pax.Module):
    """Bytes ``[B, T]`` (int) -> next-byte logits ``[B, T, 256]``."""

    def __init__(self, embed_dim: int, hidden_dim: int, *, rng_key: jax.Array):
        super().__init__()
        k1, k2, k3 = jax.random.split(rng_key, 3)
        self.embed = pax.Embed(256, embed_dim, rng_key=k1)
        self.core = pax.nn.DeepRNN([pax.LSTM(embed_dim, hidden_dim, rng_key=k2)])
        self.output = pax.Linear(hidden_dim, 256, rng_key=k3)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = self.embed(tokens)  # [B, T, E]
        state = self.core.initial_state(tokens.shape[0])
        _, h = pax.nn.dynamic_unroll(self.core, x, state, time_major=False)
        return self.output(h)  # [B, T, 256]


def loss_fn(model, tokens):
    logits = model(tokens[:, :-1])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    return loss, (loss, model)


@jax.jit
def held_out_loss(model, tokens):
    return loss_fn(model, tokens)[0]


def bits_per_char(model, data: np.ndarray, seq_len: int, batch: int = 64) -> float:
    n = (len(data) - 1) // seq_len
    windows = np.stack([data[i * seq_len : (i + 1) * seq_len + 1] for i in range(n)])
    batch = min(batch, n)
    total = 0.0
    for i in range(0, n - n % batch, batch):
        total += float(held_out_loss(model, windows[i : i + batch])) * batch
    count = n - n % batch
    return total / count / math.log(2)


def unigram_entropy_bits(train: np.ndarray, held_out: np.ndarray) -> float:
    """Cross-entropy of the held-out bytes under the training byte frequencies."""
    counts = np.bincount(train, minlength=256) + 1.0  # add-one smoothing
    p = counts / counts.sum()
    return float(-np.mean(np.log2(p[held_out])))


def sample(model: CharLM, prompt: bytes, length: int, key: jax.Array) -> str:
    """Generate ``length`` bytes after ``prompt`` (temperature 0.8)."""

    @jax.jit
    def generate(model, prompt_tokens, key):
        core = model.core
        state = core.initial_state(1)
        x = model.embed(prompt_tokens[None])  # [1, P, E]
        state, h = pax.nn.dynamic_unroll(core, x, state, time_major=False)
        logits = model.output(h[:, -1])

        def step(carry, key):
            state, logits = carry
            token = jax.random.categorical(key, logits / 0.8)
            state, h = core(state, model.embed(token))
            return (state, model.output(h)), token[0]

        keys = jax.random.split(key, length)
        _, tokens = jax.lax.scan(step, (state, logits), keys)
        return tokens

    tokens = generate(model, jnp.frombuffer(prompt, jnp.uint8).astype(jnp.int32), key)
    return (prompt + bytes(np.asarray(tokens, np.uint8))).decode("utf-8", "replace")


def save_plot(path, losses, start, bpc, baseline, title="char_lstm.py") -> None:
    """Training bits per character per step, the final held-out score and the
    unigram baseline, as a PNG (``losses`` in nats, from step ``start``)."""
    plot = runpy.run_path(str(pathlib.Path(__file__).with_name("_plot.py")))
    end = start + len(losses)
    plot["plot_training"](
        path,
        np.arange(start + 1, end + 1),
        [float(x) / math.log(2) for x in losses],
        xlabel="step",
        ylabel="bits per character",
        title=title,
        marks=[(end, bpc, f"held-out ({bpc:.3f})")],
        lines=[(baseline, f"unigram baseline ({baseline:.3f})")],
    )


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ckpt-dir", default=None, help="checkpoint here; resume")
    parser.add_argument("--ckpt-every", type=int, default=200)
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny model for 30 steps (tests)"
    )
    parser.add_argument(
        "--plot", default=None, help="write the training curve here (a PNG)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.hidden_dim, args.embed_dim, args.seq_len = 30, 32, 16, 32
        args.ckpt_every = 10

    train = np.frombuffer(read_files(TRAIN_FILES), np.uint8).astype(np.int32)
    held_out = np.frombuffer(read_files(HELD_OUT_FILES), np.uint8).astype(np.int32)
    if args.smoke:
        held_out = held_out[: 16 * args.seq_len + 1]
    print(f"train: {len(train):,} bytes; held-out: {len(held_out):,} bytes")

    key = jax.random.PRNGKey(args.seed)
    model = CharLM(args.embed_dim, args.hidden_dim, rng_key=key)
    warmup = min(50, args.steps // 10)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, args.lr, warmup, args.steps, 0.1 * args.lr
    )
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    optimizer = pax.optim.from_optax(tx, model.parameters())
    update_fn = jax.jit(pax.utils.build_update_fn(loss_fn))

    start = 0
    ckpt = None
    if args.ckpt_dir:
        os.makedirs(args.ckpt_dir, exist_ok=True)
        ckpt = os.path.join(args.ckpt_dir, "char_lstm.npz")
        if os.path.exists(ckpt):
            model, optimizer, done = pax.load(ckpt, (model, optimizer, jnp.array(0)))
            start = int(done)
            print(f"resumed from {ckpt} at step {start}")

    losses = []  # for --plot
    bar = tqdm(range(start, args.steps), desc="training", disable=args.smoke)
    for step in bar:
        # batches depend only on (seed, step): a resumed run sees the same data
        rng = np.random.default_rng((args.seed, step))
        starts = rng.integers(0, len(train) - args.seq_len - 1, args.batch_size)
        batch = np.stack([train[s : s + args.seq_len + 1] for s in starts])
        model, optimizer, loss = update_fn(model, optimizer, batch)
        if args.plot:
            losses.append(loss)  # a device scalar: no sync per step
        if step % 20 == 0:
            bar.set_postfix(bpc=f"{float(loss) / math.log(2):.3f}", refresh=False)
        if ckpt and ((step + 1) % args.ckpt_every == 0 or step + 1 == args.steps):
            pax.save(ckpt, (model, optimizer, jnp.array(step + 1)))

    print("sample:")
    print(sample(model, b"def ", 200 if not args.smoke else 20, jax.random.PRNGKey(1)))
    baseline = unigram_entropy_bits(train, held_out)
    # evaluate on longer windows than the training ones: less of the text is
    # read without context (each window starts from a zero state)
    bpc = bits_per_char(model, held_out, 4 * args.seq_len)
    if args.plot:
        save_plot(args.plot, losses, start, bpc, baseline)
        print(f"saved {args.plot}")
    print(f"held-out bits per character: {bpc:.3f} (unigram baseline {baseline:.3f})")
    return bpc


if __name__ == "__main__":
    main()

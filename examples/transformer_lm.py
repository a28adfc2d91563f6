"""A character-level transformer language model trained on Python's own source.

The data are those of `char_lstm.py` (same standard-library files, same
train/held-out split, bytes as tokens). The model is `pax.nets.TransformerLM`:
byte embedding -> decoder-only pre-LayerNorm transformer (Haiku's transformer
example, blocks in one `pax.nn.LayerStack` scan; rotary position embeddings by
default, `--positional learned` for Haiku's learned table) -> linear logits.
Training uses optax Adam with warmup and cosine decay through
`pax.utils.build_update_fn` under `jax.jit` (dropout keys advance, so the
forward pass goes through `pax.purecall`), a tqdm progress bar and, with
`--ckpt-dir`, checkpoints every `--ckpt-every` steps that a re-run resumes
from. At the end it prints a sample generated with the KV cache
(`TransformerLM.decode`: the prompt in one chunk, then one byte per step) and
the held-out bits per character next to the unigram-entropy baseline.

    python examples/transformer_lm.py            # ~5 min on 2 CPU cores
    python examples/transformer_lm.py --smoke    # seconds, for tests
    python examples/transformer_lm.py --plot loss.png  # + training-curve PNG

Sharded and multi-process mode (`--mesh`, or several processes): the model
and Adam state are built born-sharded with `pax.sharding.init` on a mesh over
every process' devices (`--sharding dp`: replicated, `fsdp`:
`pax.sharding.fsdp_rules`, `tp`: Megatron `pax.sharding.transformer_rules`
over the `model` axis); each process reads only its own rows of every global
batch and assembles it with `jax.make_array_from_process_local_data`;
`--ckpt-dir` saves with `pax.checkpoint.Manager` (Orbax; every process writes
its own shards). Only process 0 prints, samples and writes `--log-losses`.
Two processes with four CPU devices each, and the same run in one process:

    python -m pax.launch -n 2 --devices-per-process 4 examples/transformer_lm.py \
        --mesh data=4,model=2 --sharding tp
    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu \
        python examples/transformer_lm.py --mesh data=4,model=2 --sharding tp

Measured with the defaults (model size 128, 4 heads, 2 layers, rotary, 1500
steps of 16 x 128 bytes; 2 CPU cores shared with other work): 4 min 48 s in
all, held-out 2.415 bits per character against a unigram baseline of 4.735
(`char_lstm.py` reaches 2.46 in about the same time). Learned position
embeddings did worse in shorter trials (2.579 after 1200 steps); four layers
of width 128 are too slow here for enough steps in five minutes. A sample
(after "def ", temperature 0.8):

    def takind_dir(self):
            \"\"\"Return thread, expected a comment and the result from the argument.
            \"\"\"
            return
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

import pax


def _char_lstm():
    """The data helpers of char_lstm.py (same files, same split)."""
    path = pathlib.Path(__file__).with_name("char_lstm.py")
    spec = importlib.util.spec_from_file_location("_char_lstm_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_data = _char_lstm()
TRAIN_FILES = _data.TRAIN_FILES
HELD_OUT_FILES = _data.HELD_OUT_FILES
read_files = _data.read_files
unigram_entropy_bits = _data.unigram_entropy_bits
save_plot = _data.save_plot


def loss_fn(model, tokens):
    model, logits = pax.purecall(model, tokens[:, :-1])  # dropout keys advance
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    return loss, (loss, model)


@jax.jit
def token_losses(model, windows):
    """Per-token losses (nats) ``[n, T]`` of ``windows [n, T + 1]``, eval mode."""
    logits = model(windows[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, windows[:, 1:])


def bits_per_char(model, data: np.ndarray, seq_len: int, batch: int = 64) -> float:
    """Held-out bits per byte with overlapping windows.

    Windows of ``seq_len`` predictions start every ``seq_len // 2`` bytes; the
    first window scores all its predictions, every later one only its second
    half, so each byte is scored once and (after the first window) with at
    least ``seq_len // 2`` bytes of context.
    """
    model = model.eval()
    stride = seq_len // 2
    n = (len(data) - 1 - seq_len) // stride + 1
    windows = np.stack([data[i * stride : i * stride + seq_len + 1] for i in range(n)])
    weights = np.zeros((n, seq_len))
    weights[0] = 1.0
    weights[1:, seq_len - stride :] = 1.0
    pad = -n % batch  # full batches only: one compilation
    windows = np.concatenate([windows, np.zeros((pad, seq_len + 1), np.int32)])
    weights = np.concatenate([weights, np.zeros((pad, seq_len))])
    total = 0.0
    for i in range(0, len(windows), batch):
        losses = np.asarray(token_losses(model, windows[i : i + batch]))
        total += float((losses * weights[i : i + batch]).sum())
    return total / weights.sum() / math.log(2)


def sample(
    model: pax.nets.TransformerLM,
    prompt: bytes,
    length: int,
    key: jax.Array,
    temperature: float = 0.8,
) -> str:
    """Generate up to ``length`` bytes after ``prompt`` with the KV cache."""
    length = min(length, model.max_length - len(prompt))
    prompt_tokens = jnp.frombuffer(prompt, jnp.uint8).astype(jnp.int32)
    tokens = _generate(model.eval(), prompt_tokens, key, length, temperature)
    return (prompt + bytes(np.asarray(tokens, np.uint8))).decode("utf-8", "replace")


@functools.partial(jax.jit, static_argnames=("length", "temperature"))
def _generate(model, prompt_tokens, key, length, temperature):
    """Prefill the cache with the prompt in one chunk, then sample one token per
    scan step, feeding each back through ``decode``."""
    cache = model.init_cache(1, prompt_tokens.shape[0] + length)
    cache, logits = model.decode(cache, prompt_tokens[None])  # [1, P, 256]

    def step(carry, key):
        cache, logits = carry  # logits [1, 256] for the next position
        token = jax.random.categorical(key, logits / temperature)  # [1]
        cache, logits = model.decode(cache, token[:, None])
        return (cache, logits[:, 0]), token[0]

    keys = jax.random.split(key, length)
    _, tokens = jax.lax.scan(step, (cache, logits[:, -1]), keys)
    return tokens


def parse_mesh(text: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """``"data=4,model=2"`` -> ``((4, 2), ("data", "model"))``."""
    sizes, names = [], []
    for item in text.split(","):
        name, sep, size = item.partition("=")
        if not sep or not name.strip() or not size.strip().isdigit():
            raise ValueError(f"--mesh: expected name=size[,name=size], got {text!r}")
        names.append(name.strip())
        sizes.append(int(size))
    return tuple(sizes), tuple(names)


def make_mesh(text: str | None) -> jax.sharding.Mesh:
    """The mesh of ``--mesh`` (default: one ``data`` axis over every device)."""
    sizes, names = parse_mesh(text) if text else ((jax.device_count(),), ("data",))
    if "data" not in names:
        raise ValueError(f"--mesh: needs a 'data' axis, got {text!r}")
    if math.prod(sizes) != jax.device_count():
        raise ValueError(
            f"--mesh {text}: {math.prod(sizes)} devices, but the run has "
            f"{jax.device_count()} ({jax.process_count()} process(es))"
        )
    return pax.sharding.make_mesh(sizes, names)


def sharding_rules(kind: str, mesh: jax.sharding.Mesh) -> list:
    """The parameter rules of ``--sharding`` (unmatched leaves: replicated)."""
    if kind == "dp":
        return []
    if kind == "fsdp":
        return pax.sharding.fsdp_rules("data")
    if "model" not in mesh.axis_names:
        raise ValueError("--sharding tp: the mesh needs a 'model' axis")
    return pax.sharding.transformer_rules("model")


def write_losses(path: str | None, start: int, losses: list[float]) -> None:
    """``{"start": first step, "losses": [...]}`` as JSON (process 0 only)."""
    if path and jax.process_index() == 0:
        with open(path, "w") as f:
            json.dump({"start": start, "losses": losses}, f)


def main(argv=None) -> float | None:
    """Train, sample, evaluate; returns the held-out bits per character (None
    in processes other than 0 of a multi-process run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--model-size", type=int, default=128)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--positional", choices=("learned", "rotary"), default="rotary")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ckpt-dir", default=None, help="checkpoint here; resume")
    parser.add_argument("--ckpt-every", type=int, default=200)
    parser.add_argument(
        "--stop-after",
        type=int,
        default=None,
        help="stop (and checkpoint) after this step, as if interrupted",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a tiny model for 30 steps (tests)"
    )
    parser.add_argument(
        "--mesh",
        default=None,
        help="sharded mode on this mesh, e.g. data=4,model=2 (all processes' "
        "devices; default with several processes: data=<all devices>)",
    )
    parser.add_argument(
        "--sharding",
        choices=("dp", "fsdp", "tp"),
        default="dp",
        help="parameter layout in sharded mode: replicated, FSDP, or Megatron "
        "tensor parallel over the 'model' axis",
    )
    parser.add_argument(
        "--log-losses", default=None, help="write every step's loss here (JSON)"
    )
    parser.add_argument(
        "--plot",
        default=None,
        help="write the training curve here (a PNG; not with --no-eval)",
    )
    parser.add_argument(
        "--no-eval", action="store_true", help="skip the sample and held-out score"
    )
    pax.distributed.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:  # smaller defaults; flags given explicitly still win
        parser.set_defaults(
            steps=30,
            model_size=32,
            num_layers=2,
            seq_len=32,
            num_heads=2,
            ckpt_every=10,
        )
        args = parser.parse_args(argv)
    # first, before anything creates JAX's devices
    multi_process = pax.distributed.initialize_from_args(args)
    sharded = multi_process or args.mesh is not None
    main_process = jax.process_index() == 0
    log = print if main_process else (lambda *a, **k: None)

    train = np.frombuffer(read_files(TRAIN_FILES), np.uint8).astype(np.int32)
    held_out = np.frombuffer(read_files(HELD_OUT_FILES), np.uint8).astype(np.int32)
    if args.smoke:
        held_out = held_out[: 16 * args.seq_len + 1]
    log(f"train: {len(train):,} bytes; held-out: {len(held_out):,} bytes")

    def make_model():
        return pax.nets.TransformerLM(
            256,
            args.model_size,
            args.num_heads,
            args.num_layers,
            max_length=args.seq_len,
            dropout_rate=args.dropout,
            positional=args.positional,
            rng_key=jax.random.PRNGKey(args.seed),
        )

    warmup = min(100, args.steps // 10)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, args.lr, warmup, args.steps, 0.05 * args.lr
    )
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule, b2=0.99))

    def make_optimizer(model):
        return pax.optim.from_optax(tx, model.parameters())

    if sharded:
        mesh = make_mesh(args.mesh)
        rules = sharding_rules(args.sharding, mesh)
        replicated = NamedSharding(mesh, P())
        batch_sharding = NamedSharding(mesh, P("data"))
        model = pax.sharding.init(make_model, mesh, rules, default=P())
        model_shardings = pax.sharding.named_shardings(model, mesh, rules, default=P())
        opt_shardings = pax.sharding.named_shardings(
            jax.eval_shape(make_optimizer, model), mesh, rules, default=P()
        )
        optimizer = jax.jit(make_optimizer, out_shardings=opt_shardings)(model)
        update_fn = jax.jit(
            pax.utils.build_update_fn(loss_fn),
            out_shardings=(model_shardings, opt_shardings, replicated),
        )
        if args.batch_size % mesh.shape["data"]:
            raise ValueError(
                f"--batch-size {args.batch_size} is not divisible by the mesh's "
                f"data axis ({mesh.shape['data']})"
            )
        rows = pax.distributed.process_rows(batch_sharding, args.batch_size)
        log(
            f"{jax.process_count()} process(es), mesh {dict(mesh.shape)}, "
            f"sharding {args.sharding}; process 0 reads rows {rows.start}:"
            f"{rows.stop} of each batch of {args.batch_size}"
        )
    else:
        model = make_model()
        optimizer = make_optimizer(model)
        update_fn = jax.jit(pax.utils.build_update_fn(loss_fn))
        rows = slice(0, args.batch_size)

    start = 0
    ckpt = manager = None
    if args.ckpt_dir and sharded:
        manager = pax.checkpoint.Manager(args.ckpt_dir, max_to_keep=2)
        done = manager.latest_step()
        if done is not None:
            # restore into the layout of the freshly built (sharded) state
            model, optimizer = manager.restore(done, (model, optimizer))
            start = done
            log(f"resumed from {args.ckpt_dir} at step {start}")
    elif args.ckpt_dir:
        os.makedirs(args.ckpt_dir, exist_ok=True)
        ckpt = os.path.join(args.ckpt_dir, "transformer_lm.npz")
        if os.path.exists(ckpt):
            model, optimizer, done = pax.load(ckpt, (model, optimizer, jnp.array(0)))
            start = int(done)
            log(f"resumed from {ckpt} at step {start}")

    end = args.steps if args.stop_after is None else min(args.steps, args.stop_after)
    losses: list[float] = []
    quiet = args.smoke or not main_process
    bar = tqdm(range(start, end), desc="training", disable=quiet)
    for step in bar:
        # batches depend only on (seed, step): a resumed run sees the same
        # data; each process reads only its own rows of the global batch
        rng = np.random.default_rng((args.seed, step))
        starts = rng.integers(0, len(train) - args.seq_len - 1, args.batch_size)
        batch = np.stack([train[s : s + args.seq_len + 1] for s in starts[rows]])
        if sharded:
            batch = jax.make_array_from_process_local_data(
                batch_sharding, batch, (args.batch_size, args.seq_len + 1)
            )
        model, optimizer, loss = update_fn(model, optimizer, batch)
        if args.log_losses or args.plot:
            losses.append(float(loss))
        if step % 20 == 0:
            bar.set_postfix(bpc=f"{float(loss) / math.log(2):.3f}", refresh=False)
        last = step + 1 == end
        if (step + 1) % args.ckpt_every == 0 or last:
            if manager is not None:
                manager.save(step + 1, (model, optimizer))
            elif ckpt:
                pax.save(ckpt, (model, optimizer, jnp.array(step + 1)))
    write_losses(args.log_losses, start, losses)
    if manager is not None:
        manager.close()  # waits for the last asynchronous save

    if sharded:  # every process takes part; then process 0 works alone
        model = pax.distributed.local_copy(model, mesh)
    if args.no_eval or not main_process:
        return None
    print("sample:")
    print(sample(model, b"def ", 200 if not args.smoke else 20, jax.random.PRNGKey(1)))
    baseline = unigram_entropy_bits(train, held_out)
    bpc = bits_per_char(model, held_out, args.seq_len)
    if args.plot:
        save_plot(args.plot, losses, start, bpc, baseline, title="transformer_lm.py")
        print(f"saved {args.plot}")
    print(f"held-out bits per character: {bpc:.3f} (unigram baseline {baseline:.3f})")
    return bpc


if __name__ == "__main__":
    main()

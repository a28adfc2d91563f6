"""Multi-process checks of the examples, Orbax and ``pax.save``.

Not a pytest module: ``test_two_processes.py`` runs it twice,

    python -m pax.launch -n 2 --devices-per-process 4 driver.py OUT two
    python driver.py OUT one        # with 8 host devices, one process

``two`` trains the tiny transformer LM (interrupted after step 3, then
resumed), the tiny ResNet, re-reads the LM's Orbax checkpoint in its own
layout and dumps every process' addressable shards, and tries ``pax.save`` on
an array spread over both processes. ``one`` runs the same trainings
uninterrupted (and the LM interrupted + resumed) and restores the two-process
checkpoint into other layouts. Everything lands in OUT for the test to check.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys

import jax
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import pax

ROOT = pathlib.Path(__file__).parents[2]

LM = [
    "--smoke", "--steps", "6", "--batch-size", "8", "--seq-len", "16",
    "--model-size", "16", "--num-heads", "2", "--num-layers", "1",
    "--ckpt-every", "3", "--mesh", "data=4,model=2", "--sharding", "tp",
]  # fmt: skip
RESNET = [
    "--smoke", "--epochs", "1", "--train-size", "64", "--batch-size", "16",
    "--width", "4", "--mesh", "data=8", "--sharding", "fsdp",
]  # fmt: skip


def load(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lm_like(mesh, rules):
    """The LM example's (model, optimizer) as shape structs on ``mesh``."""

    def build():
        model = pax.nets.TransformerLM(
            256,
            16,
            2,
            1,
            max_length=16,
            positional="rotary",
            rng_key=jax.random.PRNGKey(0),
        )
        tx = optax.chain(
            optax.clip_by_global_norm(1.0),
            optax.adam(optax.constant_schedule(1e-3), b2=0.99),
        )
        return model, pax.optim.from_optax(tx, model.parameters())

    shapes = jax.eval_shape(build)
    if mesh is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        return jax.tree_util.tree_map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes
        )
    shardings = pax.sharding.named_shardings(shapes, mesh, rules, default=P())
    return jax.tree_util.tree_map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
        shapes,
        shardings,
    )


def as_numpy(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def save_whole(path, tree):
    """Every leaf, whole, by key path (fully addressable trees only)."""
    pairs = jax.tree_util.tree_flatten_with_path(tree)[0]
    np.savez(path, **{jax.tree_util.keystr(k): as_numpy(v) for k, v in pairs})


def dump_shards(path, tree):
    """This process' addressable shards: data + where they sit."""
    arrays, index = [], []
    for k, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        for shard in leaf.addressable_shards:
            where = [list(s.indices(n))[:2] for s, n in zip(shard.index, leaf.shape)]
            index.append([jax.tree_util.keystr(k), list(leaf.shape), where])
            arrays.append(as_numpy(shard.data))
    np.savez(path, *arrays)
    pathlib.Path(str(path) + ".json").write_text(json.dumps(index))


def two(out, dist):
    lm = load("transformer_lm")
    ckpt = str(out / "lm_ckpt_two")
    common = [*LM, "--ckpt-dir", ckpt, *dist]
    lm.main([*common, "--stop-after", "3", "--no-eval", "--log-losses",
             str(out / "lm_two_a.json")])  # fmt: skip
    lm.main([*common, "--log-losses", str(out / "lm_two_b.json")])
    load("resnet_digits").main([*RESNET, *dist, "--log-losses",
                                str(out / "resnet_two.json")])  # fmt: skip

    mesh = pax.sharding.make_mesh((4, 2), ("data", "model"))
    with pax.checkpoint.Manager(ckpt) as manager:
        state = manager.restore(6, lm_like(mesh, pax.sharding.transformer_rules()))
    dump_shards(out / f"shards_{jax.process_index()}.npz", state)

    spread = jax.make_array_from_process_local_data(
        NamedSharding(mesh, P("data")), np.full((2, 3), jax.process_index(), "f4")
    )
    target = out / f"not_written_{jax.process_index()}.npz"
    try:
        pax.save(target, {"x": spread})
    except ValueError as err:
        print(f"SAVE_ERROR {err}".replace("\n", " "))
    else:
        print("SAVE_WROTE")


def one(out):
    assert jax.process_count() == 1 and jax.device_count() == 8, jax.devices()
    lm = load("transformer_lm")
    lm.main([*LM, "--ckpt-dir", str(out / "lm_ckpt_one"), "--log-losses",
             str(out / "lm_one.json")])  # fmt: skip
    resumed = [*LM, "--ckpt-dir", str(out / "lm_ckpt_one_resumed"), "--no-eval"]
    lm.main([*resumed, "--stop-after", "3", "--log-losses",
             str(out / "lm_one_a.json")])  # fmt: skip
    lm.main([*resumed, "--log-losses", str(out / "lm_one_b.json")])
    load("resnet_digits").main([*RESNET, "--log-losses",
                                str(out / "resnet_one.json")])  # fmt: skip

    # the two-process checkpoint into (8, 1) FSDP, and onto one device
    mesh = pax.sharding.make_mesh((8, 1), ("data", "model"))
    with pax.checkpoint.Manager(out / "lm_ckpt_two") as manager:
        fsdp = manager.restore(6, lm_like(mesh, pax.sharding.fsdp_rules(min_size=1)))
        single = manager.restore(6, lm_like(None, None))
    leaf = jax.tree_util.tree_leaves(fsdp[0])[0]
    print("FSDP_SHARDS", len(leaf.addressable_shards), leaf.sharding.spec)
    save_whole(out / "restored_8.npz", fsdp)
    save_whole(out / "restored_1.npz", single)
    with pax.checkpoint.Manager(out / "lm_ckpt_one") as manager:
        own = manager.restore(6, lm_like(None, None))
    save_whole(out / "own_run.npz", own)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("mode", choices=("one", "two"))
    pax.distributed.add_arguments(parser)
    args = parser.parse_args()
    if args.mode == "two":
        pax.distributed.initialize_from_args(args)
        dist = ["--num-processes", str(args.num_processes), "--process-id",
                str(args.process_id), "--coordinator", args.coordinator]  # fmt: skip
        two(args.out, dist)
    else:
        one(args.out)
    print("DRIVER_DONE")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

"""pax.checkpoint.Manager (Orbax): round trips, steps, async saves, crashes,
other meshes (8 host devices, in a subprocess), errors; and pax.save's refusal
of arrays that span several processes."""

import functools
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax

ROOT = pathlib.Path(__file__).parents[1]
ADAM = optax.adam(1e-2)  # one transformation: optimizers built from it compare equal


def _tree(seed=0):
    """A model + optax state + keys + bfloat16 + counters + numpy/Python leaves."""
    model = pax.nets.MLP(3, [4, 2], rng_key=jax.random.key(seed))
    opt = pax.optim.from_optax(ADAM, model)
    return {
        "model": model,
        "opt": opt,
        "typed_key": jax.random.split(jax.random.key(seed + 1), 3),
        "raw_key": jax.random.PRNGKey(seed + 2),
        "half": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3) / 7 + seed,
        "count": jnp.asarray(41 + seed, jnp.int32),
        "weak": jnp.asarray(2.5 + seed),  # weakly typed float32 scalar
        "table": np.arange(4, dtype=np.float64) / 3 + seed,
        "epoch": 7 + seed,
    }


def _leaves(tree):
    """Every leaf as (keystr, numpy bits, dtype, kind) for exact comparison."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = getattr(leaf, "dtype", type(leaf))
        if isinstance(leaf, jax.Array) and jnp.issubdtype(
            leaf.dtype, jax.dtypes.prng_key
        ):
            leaf = jax.random.key_data(leaf)
        weak = bool(getattr(leaf, "weak_type", False))
        out.append((jax.tree_util.keystr(path), np.asarray(leaf), dtype, weak))
    return out


def _assert_same(restored, expected):
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(
        expected
    )
    for (k1, a, d1, w1), (k2, b, d2, w2) in zip(_leaves(restored), _leaves(expected)):
        assert k1 == k2
        assert d1 == d2, (k1, d1, d2)
        assert w1 == w2, (k1, "weak_type")
        assert a.shape == b.shape, k1
        assert a.tobytes() == b.tobytes(), k1  # bit for bit


def test_round_trip_module_optax_keys_bfloat16_counters(tmp_path):
    tree = _tree()
    # a few optimizer steps, so the Adam moments and count are not zeros
    grads = jax.tree_util.tree_map(jnp.ones_like, tree["model"])
    for _ in range(2):
        tree["opt"], updates = pax.purecall(tree["opt"], grads, tree["model"])
        tree["model"] = pax.apply_updates(tree["model"], updates)
    with pax.checkpoint.Manager(tmp_path / "ckpt") as manager:
        manager.save(10, tree)
        # an abstract template (nothing computed) and a concrete one
        abstract = jax.eval_shape(lambda: _tree(seed=5))
        abstract["table"], abstract["epoch"] = np.zeros(4), 0
        from_abstract = manager.restore(10, abstract)
        from_concrete = manager.restore(10, _tree(seed=5))
    _assert_same(from_abstract, tree)
    _assert_same(from_concrete, tree)
    assert str(from_abstract["typed_key"].dtype) == "key<fry>"
    assert isinstance(from_abstract["table"], np.ndarray)
    assert from_abstract["table"].dtype == np.float64
    assert type(from_abstract["epoch"]) is int
    # the restored pair still trains: an optimizer step runs on it
    _, updates = pax.purecall(from_abstract["opt"], grads, from_abstract["model"])
    assert jax.tree_util.tree_structure(updates) == jax.tree_util.tree_structure(grads)


def test_keys_are_pax_save_keys(tmp_path):
    tree = _tree()
    with pax.checkpoint.Manager(tmp_path, async_save=False) as manager:
        manager.save(0, tree)
    import json

    meta = json.loads((tmp_path / "0" / "pax" / "metadata").read_text())
    expected = [
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree)
    ]
    assert list(meta["leaves"]) == expected
    assert ".layers[0].weight" in tree["model"].state_dict()
    assert "['model'].layers[0].weight" in meta["leaves"]
    assert meta["leaves"]["['typed_key']"]["impl"] == "threefry2x32"
    assert meta["leaves"]["['weak']"]["weak_type"] is True


def test_max_to_keep_latest_and_all_steps(tmp_path):
    with pax.checkpoint.Manager(tmp_path, max_to_keep=2) as manager:
        assert manager.latest_step() is None and manager.all_steps() == []
        for step in (0, 5, 6, 9):
            manager.save(step, {"w": jnp.full((2,), float(step))})
        manager.wait_until_finished()
        assert manager.all_steps() == [6, 9]
        assert manager.latest_step() == 9
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["6", "9"]
    # a new manager on the same directory sees the same steps and values
    with pax.checkpoint.Manager(tmp_path, max_to_keep=2) as manager:
        assert manager.all_steps() == [6, 9]
        restored = manager.restore(6, {"w": jnp.zeros(2)})
    np.testing.assert_array_equal(restored["w"], [6.0, 6.0])


def test_async_save_overlaps_training(tmp_path):
    w = jnp.arange(8 * 1024 * 1024, dtype=jnp.float32)
    model = {"w": w, "step": jnp.asarray(0, jnp.int32)}
    expected = np.asarray(w).copy()

    # the step donates its input: the saved buffers are reused at once
    @functools.partial(jax.jit, donate_argnums=0)
    def train_step(m):
        return {"w": m["w"] * 0.5 + 1.0, "step": m["step"] + 1}

    with pax.checkpoint.Manager(tmp_path, async_save=True) as manager:
        manager.save(1, model)
        # save returned while Orbax still writes (32 MB): the step's directory
        # is not committed yet ...
        assert not (tmp_path / "1").exists()
        for _ in range(3):  # ... and training goes on meanwhile
            model = train_step(model)
        manager.wait_until_finished()
        assert (tmp_path / "1").is_dir()
        restored = manager.restore(1, model)
    np.testing.assert_array_equal(restored["w"], expected)
    assert int(restored["step"]) == 0 and int(model["step"]) == 3


def test_sync_save_is_on_disk_when_it_returns(tmp_path):
    with pax.checkpoint.Manager(tmp_path, async_save=False) as manager:
        manager.save(3, {"w": jnp.ones((1024, 1024))})
        assert (tmp_path / "3" / "leaves").is_dir()


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    import jax.numpy as jnp
    import pax
    manager = pax.checkpoint.Manager(sys.argv[1])
    manager.save(1, {"w": jnp.full((8 * 1024 * 1024,), 1.0)})
    manager.wait_until_finished()
    manager.save(2, {"w": jnp.full((8 * 1024 * 1024,), 2.0)})
    # die while step 2 is being written: as soon as its temporary directory
    # appears (32 MB take Orbax tens of milliseconds to write and commit)
    while not any(name.startswith("2.") for name in os.listdir(sys.argv[1])):
        pass
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_crash_during_save_leaves_previous_step_restorable(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    # the killed save left only its temporary directory behind
    assert not (tmp_path / "2").exists()
    assert any(p.name.startswith("2.") for p in tmp_path.iterdir())
    like = {"w": jax.ShapeDtypeStruct((8 * 1024 * 1024,), jnp.float32)}
    with pax.checkpoint.Manager(tmp_path) as manager:
        assert manager.all_steps() == [1] and manager.latest_step() == 1
        restored = manager.restore(1, like)
        np.testing.assert_array_equal(restored["w"][:5], 1.0)
        assert bool((restored["w"] == 1.0).all())
        # step 2 can be saved again over the debris
        manager.save(2, {"w": jnp.full((8 * 1024 * 1024,), 3.0)})
        assert manager.all_steps() == [1, 2]
        assert bool((manager.restore(2, like)["w"] == 3.0).all())


MESHES = textwrap.dedent(
    """
    import sys
    import jax, jax.numpy as jnp, numpy as np, optax, pax
    from jax.sharding import NamedSharding, PartitionSpec as P
    assert jax.device_count() == 8, jax.devices()
    mesh = jax.make_mesh((4, 2), ("data", "model"))

    def build(key):
        model = pax.Linear(8, 16, rng_key=key)
        return {
            "model": model,
            "opt": pax.optim.from_optax(optax.adam(1e-2), model),
            "keys": jax.random.split(key, 8),
            "half": jnp.arange(64, dtype=jnp.bfloat16).reshape(8, 8),
            "count": jnp.asarray(3, jnp.int32),
            "weak": jnp.asarray(1.5),
        }

    def specs(tree, axis0, axis1):
        def spec(x):
            if x.ndim == 2:
                return P(axis0, axis1)
            if x.ndim == 1 and x.shape[0] % 8 == 0:
                return P(axis0)
            return P()
        return jax.tree_util.tree_map(spec, tree)

    tree = build(jax.random.key(0))
    grads = jax.tree_util.tree_map(jnp.ones_like, tree["model"])
    tree["opt"], _ = pax.purecall(tree["opt"], grads, tree["model"])  # moments
    shardings = jax.tree_util.tree_map(
        lambda s: NamedSharding(mesh, s), specs(tree, "data", "model")
    )
    tree = jax.device_put(tree, shardings)
    assert len(tree["model"].weight.sharding.device_set) == 8
    expected = jax.tree_util.tree_map(
        lambda x: np.asarray(jax.random.key_data(x))
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else np.asarray(x),
        tree,
    )
    with pax.checkpoint.Manager(sys.argv[1]) as manager:
        manager.save(0, tree)
        abstract = jax.eval_shape(lambda: build(jax.random.key(1)))
        devices = np.array(jax.devices())
        targets = {
            "(8, 1)": (jax.make_mesh((8, 1), ("data", "model")), "data", "model"),
            "4 devices": (jax.sharding.Mesh(devices[:4], ("d",)), "d", None),
            "1 device": (jax.sharding.Mesh(devices[5:6], ("d",)), "d", None),
        }
        for name, (target, a0, a1) in targets.items():
            like = jax.tree_util.tree_map(
                lambda x, s: jax.ShapeDtypeStruct(
                    x.shape, x.dtype, sharding=NamedSharding(target, s)
                ),
                abstract,
                specs(abstract, a0, a1),
            )
            restored = manager.restore(0, like)
            flat_r = jax.tree_util.tree_leaves_with_path(restored)
            flat_l = jax.tree_util.tree_leaves(like)
            flat_e = jax.tree_util.tree_leaves(expected)
            for (path, r), l, e in zip(flat_r, flat_l, flat_e):
                key = name + jax.tree_util.keystr(path)
                assert r.dtype == l.dtype, key
                assert getattr(r, "weak_type", False) == key.endswith("['weak']"), key
                assert r.sharding == l.sharding, (key, r.sharding, l.sharding)
                data = jax.random.key_data(r) if jnp.issubdtype(
                    r.dtype, jax.dtypes.prng_key) else r
                assert np.asarray(data).tobytes() == e.tobytes(), key
                index_map = l.sharding.devices_indices_map(l.shape)
                assert {s.device for s in r.addressable_shards} == set(index_map)
                for shard in r.addressable_shards:
                    want = e[index_map[shard.device]]
                    got = shard.data
                    if jnp.issubdtype(got.dtype, jax.dtypes.prng_key):
                        got = jax.random.key_data(got)
                    assert got.shape == want.shape, (key, got.shape, want.shape)
                    assert np.asarray(got).tobytes() == want.tobytes(), key
            w = restored["model"].weight
            print("RESTORED", name, len(w.sharding.device_set),
                  w.addressable_shards[0].data.shape)
    """
)


def test_restore_onto_other_meshes_with_8_devices(tmp_path):
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
        JAX_PLATFORMS="cpu",
    )
    proc = subprocess.run(
        [sys.executable, "-c", MESHES, str(tmp_path / "ckpt")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESTORED")]
    # weight (8, 16): 8 x 1 mesh -> rows split 8 ways; 4 devices -> 4 ways; 1
    assert lines == [
        "RESTORED (8, 1) 8 (1, 16)",
        "RESTORED 4 devices 4 (2, 16)",
        "RESTORED 1 device 1 (8, 16)",
    ]


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    manager = pax.checkpoint.Manager(tmp_path, async_save=False)
    tree = {"a": jnp.ones((2, 3)), "b": {"c": jnp.zeros(4, jnp.int32)}}
    manager.save(1, tree)
    yield manager, tree
    manager.close()


def test_mismatch_missing_extra_shape_dtype(saved):
    manager, tree = saved
    with pytest.raises(ValueError, match=r"step 1: `like` has the leaf `\['x'\]`"):
        manager.restore(1, {**tree, "x": jnp.ones(1)})
    with pytest.raises(ValueError, match=r"holds the entry `\['b'\]\['c'\]`, which"):
        manager.restore(1, {"a": tree["a"], "b": {}})
    with pytest.raises(
        ValueError,
        match=r"entry `\['a'\]` has shape \(2, 3\) in the checkpoint, but `like` "
        r"has shape \(3, 2\)",
    ):
        manager.restore(1, {**tree, "a": jnp.ones((3, 2))})
    with pytest.raises(
        ValueError,
        match=r"entry `\['b'\]\['c'\]` has dtype int32 in the checkpoint, but "
        r"`like` has dtype float32",
    ):
        manager.restore(1, {**tree, "b": {"c": jnp.zeros(4)}})
    with pytest.raises(ValueError, match="has dtype float32 in the checkpoint.*key"):
        manager.restore(
            1, {**tree, "a": jax.random.split(jax.random.key(0), 6).reshape(2, 3)}
        )


def test_missing_step_and_bad_steps(saved):
    manager, tree = saved
    with pytest.raises(FileNotFoundError, match=r"no checkpoint for step 2; saved "):
        manager.restore(2, tree)
    with pytest.raises(ValueError, match="step 1 is not after the latest saved step 1"):
        manager.save(1, tree)
    with pytest.raises(ValueError, match="step 0 is not after"):
        manager.save(0, tree)
    with pytest.raises(ValueError, match=r"`step` must be an int >= 0, got -1"):
        manager.save(-1, tree)
    with pytest.raises(TypeError, match=r"`step` must be an int >= 0, got 1.5"):
        manager.save(1.5, tree)
    assert manager.all_steps() == [1]


def test_bad_leaves_and_templates(saved, tmp_path):
    manager, tree = saved
    with pytest.raises(TypeError, match=r"leaf `\['s'\]` is a str"):
        manager.save(2, {"s": "text"})
    with pytest.raises(TypeError, match=r"leaf `\['u'\]` has dtype <U3"):
        manager.save(2, {"u": np.array(["abc"])})
    with pytest.raises(TypeError, match=r"leaf `\['a'\]` of `like` is a str"):
        manager.restore(1, {**tree, "a": "x"})
    assert manager.all_steps() == [1]  # nothing was written
    # a sharding on an abstract mesh (eval_shape of a sharded computation)
    mesh = jax.make_mesh((1,), ("d",))
    sharded = jax.device_put(
        jnp.ones((2, 3)), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    )
    abstract = jax.eval_shape(lambda x: x * 2, sharded)
    with pytest.raises(
        ValueError, match=r"leaf `\['a'\]` of `like` has the sharding .*abstract mesh"
    ):
        manager.restore(1, {**tree, "a": abstract})


def test_not_written_by_pax_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="`max_to_keep` must be an int >= 1 or None"):
        pax.checkpoint.Manager(tmp_path, max_to_keep=0)
    with pytest.raises(TypeError, match="`async_save` must be a bool"):
        pax.checkpoint.Manager(tmp_path, async_save="yes")
    with pytest.raises(TypeError, match="`directory` must be a str or os.PathLike"):
        pax.checkpoint.Manager(3)
    manager = pax.checkpoint.Manager(tmp_path / "m", max_to_keep=None)
    assert repr(manager) == (
        f"Manager(directory={str(tmp_path / 'm')!r}, max_to_keep=None, async_save=True)"
    )
    manager.close()
    manager.close()  # idempotent
    with pytest.raises(ValueError, match="the manager is closed"):
        manager.save(0, {"a": jnp.ones(1)})


def test_orbax_checkpoint_not_written_by_pax(tmp_path):
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(tmp_path) as manager:
        manager.save(0, args=ocp.args.StandardSave({"a": jnp.ones(2)}))
    with pax.checkpoint.Manager(tmp_path) as manager:
        assert manager.all_steps() == [0]
        with pytest.raises(pax.CheckpointError, match="step 0 has no readable PAX"):
            manager.restore(0, {"a": jnp.ones(2)})


def test_empty_tree_round_trips(tmp_path):
    with pax.checkpoint.Manager(tmp_path) as manager:
        manager.save(0, {"nothing": (), "none": None})
        assert manager.restore(0, {"nothing": (), "none": None}) == {
            "nothing": (),
            "none": None,
        }


# ---------------------------------------------------------------------------
# pax.save on arrays spread over several processes
# ---------------------------------------------------------------------------


def test_pax_save_refuses_arrays_not_fully_addressable(tmp_path, monkeypatch):
    # A truly non-addressable array needs two processes (the multi-process
    # tests); here every jax array claims to be spread over other processes.
    tree = {"a": np.ones(2), "w": jnp.ones(3)}
    array_type = type(tree["w"])
    monkeypatch.setattr(array_type, "is_fully_addressable", property(lambda s: False))
    with pytest.raises(
        ValueError,
        match=r"pax.save: leaf `\['w'\]` is an array spread over the devices of "
        r"several processes.*pax.checkpoint.Manager",
    ):
        pax.save(tmp_path / "model.ckpt", tree)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file

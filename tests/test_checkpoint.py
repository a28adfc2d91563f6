"""pax.save / pax.load: bit-exact round trips, the on-disk format, atomic
writes, refusal of pickled data, mismatch and corruption errors, hostile files
(``pax.CheckpointError``), temporary files of killed saves, permissions,
resuming. Random damage: tests/test_checkpoint_fuzz.py."""

import errno
import io
import json
import os
import pickle
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pax

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _bits(x):
    """The raw bytes of a leaf, as unsigned integers (typed keys: key data)."""
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    a = np.asarray(x)
    return a.view(np.dtype(f"u{a.dtype.itemsize}")) if a.dtype != bool else a


def _kind(x):
    if isinstance(x, jax.Array):
        return "jax"
    if isinstance(x, np.ndarray):
        return "numpy"
    return type(x).__name__


def _assert_bit_identical(a, b):
    """Same key paths, leaf kinds, shapes, dtypes and bytes (treedefs may
    differ in static fields such as optax's closures)."""
    pa = jax.tree_util.tree_flatten_with_path(a)[0]
    pb = jax.tree_util.tree_flatten_with_path(b)[0]
    assert [p for p, _ in pa] == [p for p, _ in pb]
    for (path, x), (_, y) in zip(pa, pb):
        where = jax.tree_util.keystr(path)
        assert _kind(x) == _kind(y), where
        assert np.shape(x) == np.shape(y), where
        assert getattr(x, "dtype", type(x)) == getattr(y, "dtype", type(y)), where
        assert np.array_equal(_bits(x), _bits(y)), where


def _perturb(x):
    """A leaf of the same kind, shape and dtype whose every element differs."""
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = jax.random.key_data(x) ^ 1
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        a = np.asarray(x)
        new = ~a if a.dtype == bool else (_bits(a) ^ 1).view(a.dtype)
        if isinstance(x, jax.Array):
            return jnp.asarray(new)
        return new if isinstance(x, np.ndarray) else new[()]
    return not x if isinstance(x, bool) else x + 1


def _from_bits(bits, dtype):
    return np.asarray(bits, dtype=f"u{np.dtype(dtype).itemsize}").view(dtype)


# Special values, as bit patterns: quiet NaN with a payload, -0.0, signalling
# NaN with a payload, inf.
_F32 = _from_bits([0x7FC00123, 0x80000000, 0x7F800001, 0x7F800000, 0x3F800000], "f4")
_F64 = _from_bits([0x7FF8000000000ABC, 0x8000000000000000, 0x7FF0000000000001], "f8")
_BF16 = _from_bits([0x7FC1, 0x8000, 0xFF81, 0x3F80], jnp.bfloat16)
_F16 = _from_bits([0x7E01, 0x8000, 0x3C00], jnp.float16)
_F8 = _from_bits([0x7F, 0x80, 0x38, 0x01], jnp.float8_e4m3fn)  # NaN, -0, 1, tiny


def _make_tree(seed):
    """Every kind of leaf a training state holds, deterministically from seed."""
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    model = pax.Sequential(
        pax.Linear(2, 3, rng_key=k[0]), pax.BatchNorm1D(3, rng_key=k[1])
    )
    model, _ = pax.purecall(model, jax.random.normal(k[2], (5, 2)))  # BN stats
    opt_state = optax.adam(1e-3).init(model.parameters())
    leaves = {
        "raw_key": jax.random.PRNGKey(seed + 1),
        "typed_key": jax.random.key(seed + 2),
        "typed_keys": jax.random.split(jax.random.key(seed + 3), 3),
        "f32": jnp.asarray(_F32),
        "bf16": jnp.asarray(_BF16),
        "f16": jnp.asarray(_F16),
        "f8": jnp.asarray(_F8),
        "int8": jnp.asarray([-128, -1, 0, 127], jnp.int8) + seed,
        "uint32": jnp.asarray([0, 1, 2**32 - 1], jnp.uint32) + seed,
        "bool": jnp.asarray([True, False, seed % 2 == 0]),
        "c64": jnp.asarray(_F32[:4].view(np.complex64)),
        "np_f64": _F64.copy(),
        "np_fortran": np.asfortranarray((np.arange(6.0) + seed).reshape(2, 3)),
        "np_scalar": np.float64(seed + 0.5),
        "py_int": seed,
        "py_float": seed + 0.25,
        "py_bool": seed % 2 == 1,
    }
    return (model, opt_state, pax.RngSeq(seed=seed), leaves)


# --------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------


def test_round_trip_is_bit_exact_for_every_leaf_kind(tmp_path):
    saved = _make_tree(0)
    path = tmp_path / "state.ckpt"
    pax.save(path, saved)
    like = jax.tree_util.tree_map(_perturb, saved)  # other values everywhere
    for a, b in zip(jax.tree_util.tree_leaves(saved), jax.tree_util.tree_leaves(like)):
        assert (np.asarray(_bits(a)) != np.asarray(_bits(b))).all()

    loaded = pax.load(path, like)

    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(like)
    _assert_bit_identical(loaded, saved)
    leaves = loaded[3]
    assert leaves["bf16"].dtype == jnp.bfloat16
    assert leaves["f8"].dtype == jnp.float8_e4m3fn
    assert jnp.issubdtype(leaves["typed_key"].dtype, jax.dtypes.prng_key)
    assert jax.random.key_impl(leaves["typed_key"]) == jax.random.key_impl(
        saved[3]["typed_key"]
    )
    # numpy leaves stay numpy (float64 kept without x64); Python stays Python
    assert type(leaves["np_f64"]) is np.ndarray and leaves["np_f64"].dtype == "f8"
    assert type(leaves["np_scalar"]) is np.float64
    assert type(leaves["py_int"]) is int and leaves["py_int"] == 0
    assert type(leaves["py_float"]) is float and leaves["py_float"] == 0.25
    assert leaves["py_bool"] is False
    # the loaded keys draw the same numbers
    np.testing.assert_array_equal(
        jax.random.normal(leaves["typed_key"], (3,)),
        jax.random.normal(saved[3]["typed_key"], (3,)),
    )


def test_loaded_tree_takes_static_fields_from_like(tmp_path):
    model = pax.Sequential(pax.Linear(2, 3), pax.BatchNorm1D(3))
    pax.save(tmp_path / "m", model)
    like = pax.Sequential(pax.Linear(2, 3), pax.BatchNorm1D(3)).eval()
    loaded = pax.load(tmp_path / "m", like)
    assert type(loaded) is pax.Sequential and not loaded.training
    assert not loaded.layers[1].training
    _assert_bit_identical(loaded.train(), model)


def test_bare_array_and_empty_tree(tmp_path):
    x = jnp.arange(3.0)
    pax.save(tmp_path / "x", x)
    with np.load(tmp_path / "x", allow_pickle=False) as npz:
        assert npz.files == ["__pax__", ""]  # the empty key path is ""
    _assert_bit_identical(pax.load(tmp_path / "x", jnp.zeros(3)), x)
    pax.save(tmp_path / "e", ())
    assert pax.load(tmp_path / "e", ()) == ()
    with pytest.raises(ValueError, match="the entry ``"):
        pax.load(tmp_path / "x", ())


def test_shape_dtype_struct_template(tmp_path):
    def make():
        return pax.Sequential(pax.Linear(2, 3), pax.Dropout(0.5))

    model = make()
    pax.save(tmp_path / "m", model)
    abstract = jax.eval_shape(make)
    assert isinstance(abstract.layers[0].weight, jax.ShapeDtypeStruct)
    loaded = pax.load(tmp_path / "m", abstract)
    _assert_bit_identical(loaded, model)


def test_weak_types_round_trip(tmp_path):
    tree = {"weak": jnp.asarray(_F32) * 0 + jnp.full((5,), 1.0), "strong": jnp.ones(5)}
    tree["weak_nan"] = jnp.full((5,), 0.0).at[...].set(jnp.asarray(_F32))
    tree["weak_int"] = jnp.array(3)
    assert tree["weak_nan"].weak_type and tree["weak_int"].weak_type
    pax.save(tmp_path / "w", tree)
    like = {k: jnp.zeros(v.shape, v.dtype) for k, v in tree.items()}  # strong
    out = pax.load(tmp_path / "w", like)
    _assert_bit_identical(out, tree)
    assert {k: v.weak_type for k, v in out.items()} == {
        k: v.weak_type for k, v in tree.items()
    }
    # what the weak type changes: promotion with bfloat16
    bf = jnp.ones((5,), jnp.bfloat16)
    assert (out["weak_nan"] * bf).dtype == jnp.bfloat16
    assert (out["strong"] * bf).dtype == jnp.float32


# --------------------------------------------------------------------------
# the file: name, format, atomic replacement
# --------------------------------------------------------------------------


def test_writes_exactly_the_given_path_and_replaces(tmp_path):
    for name in ["ckpt", "model.weights", "x.npz"]:
        pax.save(tmp_path / name, {"a": jnp.ones(2)})
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "model.weights", "x.npz"]
    pax.save(str(tmp_path / "ckpt"), {"a": jnp.full((2,), 7.0)})
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "model.weights", "x.npz"]
    out = pax.load(tmp_path / "ckpt", {"a": jnp.zeros(2)})
    np.testing.assert_array_equal(out["a"], [7.0, 7.0])


def test_replacing_keeps_permission_bits(tmp_path):
    path = tmp_path / "ckpt"
    pax.save(path, jnp.ones(2))
    os.chmod(path, 0o640)
    pax.save(path, jnp.zeros(2))
    assert os.stat(path).st_mode & 0o777 == 0o640
    np.testing.assert_array_equal(pax.load(path, jnp.ones(2)), [0.0, 0.0])


def test_failure_while_writing_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    old = {"a": jnp.ones(3), "b": jnp.ones(3), "c": jnp.ones(3)}
    pax.save(path, old)
    before = path.read_bytes()

    real = np.lib.format.write_array
    calls = []

    def failing_write_array(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # metadata and one entry written, then a crash
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write_array)
    with pytest.raises(OSError, match="disk full"):
        pax.save(path, {"a": jnp.zeros(3), "b": jnp.zeros(3), "c": jnp.zeros(3)})
    assert len(calls) == 3  # the writer really was interrupted midway
    assert os.listdir(tmp_path) == ["ckpt"]
    assert path.read_bytes() == before
    monkeypatch.undo()
    _assert_bit_identical(pax.load(path, {k: jnp.zeros(3) for k in "abc"}), old)


def test_failure_at_rename_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    pax.save(path, jnp.ones(2))
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise PermissionError("no")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(PermissionError):
        pax.save(path, jnp.zeros(2))
    assert os.listdir(tmp_path) == ["ckpt"] and path.read_bytes() == before


def test_bad_tree_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match=r"leaf `\['name'\]` is a str"):
        pax.save(tmp_path / "c", {"name": "x", "w": jnp.ones(2)})
    with pytest.raises(TypeError, match=r"`\['o'\]` has dtype object"):
        pax.save(tmp_path / "c", {"o": np.array([None], dtype=object)})
    with pytest.raises(TypeError, match=r"`\['big'\]` has dtype object"):
        pax.save(tmp_path / "c", {"big": 2**80})
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="creates no directories"):
        pax.save(tmp_path / "missing" / "c", jnp.ones(2))
    assert os.listdir(tmp_path) == []


def test_plain_numpy_reads_every_entry_without_pickle(tmp_path):
    saved = _make_tree(3)
    pax.save(tmp_path / "c", saved)
    pairs = jax.tree_util.tree_flatten_with_path(saved)[0]
    keys = [jax.tree_util.keystr(p) for p, _ in pairs]
    assert ".layers[0].weight" in saved[0].state_dict()
    assert "[0].layers[0].weight" in keys and "[1][0].mu.layers[0].weight" in keys

    with np.load(tmp_path / "c", allow_pickle=False) as npz:
        assert npz.files == ["__pax__", *keys]
        entries = {k: npz[k] for k in npz.files}  # every entry, no pickle
    meta = json.loads(str(entries.pop("__pax__")))
    assert meta["format"] == "pax.checkpoint" and meta["version"] == 1
    records = meta["leaves"]
    assert records["[3]['bf16']"] == {"dtype": "bfloat16", "encoding": "bits"}
    assert records["[3]['typed_key']"] == {
        "dtype": "key<fry>",
        "encoding": "key_data",
        "impl": "threefry2x32",
    }
    assert "[3]['f32']" not in records  # plain dtypes need no record
    for (_, leaf), key in zip(pairs, keys):
        assert entries[key].dtype.kind in "biufc"
        np.testing.assert_array_equal(entries[key].view(_bits(leaf).dtype), _bits(leaf))
    assert entries["[3]['bf16']"].dtype == np.uint16
    assert entries["[3]['np_f64']"].dtype == np.float64


# --------------------------------------------------------------------------
# pickled data is refused, never unpickled
# --------------------------------------------------------------------------

_SIDE_EFFECTS = []


def _record_side_effect():
    _SIDE_EFFECTS.append("code ran")
    return "payload"


class _Malicious:
    def __reduce__(self):
        return (_record_side_effect, ())


def test_object_array_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil"
    model = pax.Linear(2, 3)
    pax.save(path, model)
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    entries[".weight"] = np.array([_Malicious()], dtype=object)
    with open(path, "wb") as f, zipfile.ZipFile(f, "w") as archive:
        for name, array in entries.items():
            with archive.open(name + ".npy", "w") as member:
                np.lib.format.write_array(member, array, allow_pickle=True)
    _SIDE_EFFECTS.clear()

    with pytest.raises(
        ValueError, match=r"not a PAX checkpoint.*entry `\.weight`: .*object array"
    ):
        pax.load(path, model)
    assert _SIDE_EFFECTS == []

    # the file really is malicious: unpickling it runs the payload
    with np.load(path, allow_pickle=True) as npz:
        npz[".weight"]
    assert _SIDE_EFFECTS == ["code ran"]


# --------------------------------------------------------------------------
# mismatches between the file and `like`
# --------------------------------------------------------------------------


def test_missing_entry(tmp_path):
    pax.save(tmp_path / "c", pax.Sequential(pax.Linear(2, 3)))
    like = pax.Sequential(pax.Linear(2, 3), pax.Linear(3, 4))
    with pytest.raises(ValueError, match=r"leaf `\.layers\[1\]\.weight`, which the"):
        pax.load(tmp_path / "c", like)


def test_extra_entry(tmp_path):
    pax.save(tmp_path / "c", pax.Sequential(pax.Linear(2, 3), pax.Linear(3, 4)))
    like = pax.Sequential(pax.Linear(2, 3))
    with pytest.raises(ValueError, match=r"entry `\.layers\[1\]\.weight`, which is"):
        pax.load(tmp_path / "c", like)
    pax.save(tmp_path / "b", pax.Linear(2, 3))
    with pytest.raises(ValueError, match=r"entry `\.bias`, which is not a leaf"):
        pax.load(tmp_path / "b", pax.Linear(2, 3, with_bias=False))


def test_shape_mismatch_shows_both_shapes(tmp_path):
    pax.save(tmp_path / "c", pax.Linear(2, 3))
    with pytest.raises(
        ValueError,
        match=r"entry `\.weight` has shape \(2, 3\) in the file, but `like` has "
        r"shape \(2, 4\)",
    ):
        pax.load(tmp_path / "c", pax.Linear(2, 4))


def test_dtype_mismatch_shows_both_dtypes(tmp_path):
    pax.save(tmp_path / "c", {"w": jnp.ones(3), "k": jax.random.key(0)})
    like = {"w": jnp.ones(3, jnp.bfloat16), "k": jax.random.key(0)}
    with pytest.raises(
        ValueError,
        match=r"entry `\['w'\]` has dtype float32 in the file, but `like` has "
        r"dtype bfloat16",
    ):
        pax.load(tmp_path / "c", like)
    like = {"w": jnp.ones(3), "k": jnp.zeros((), jnp.uint32)}
    with pytest.raises(ValueError, match=r"`\['k'\]` has dtype key<fry> in the file"):
        pax.load(tmp_path / "c", like)
    like = {"w": jnp.ones(3), "k": jax.random.PRNGKey(0)}  # raw key: shape (2,)
    with pytest.raises(ValueError, match=r"`\['k'\]` has shape \(\) in the file"):
        pax.load(tmp_path / "c", like)


def test_checks_run_in_order_missing_extra_shape_dtype(tmp_path):
    pax.save(tmp_path / "c", {"a": jnp.ones(2), "b": jnp.ones(2), "x": jnp.ones(2)})
    # like has a shape mismatch (a), a dtype mismatch (b), an extra entry in
    # the file (x) and a missing one (z): the missing one is reported.
    like = {"a": jnp.ones(3), "b": jnp.ones(2, jnp.int32), "z": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"leaf `\['z'\]`"):
        pax.load(tmp_path / "c", like)
    del like["z"]
    with pytest.raises(ValueError, match=r"entry `\['x'\]`"):
        pax.load(tmp_path / "c", like)
    like["x"] = jnp.ones(2)
    like["b"], like["a"] = like["a"], like["b"]  # b: shape, a: dtype; a first
    with pytest.raises(ValueError, match=r"`\['a'\]` has dtype float32"):
        pax.load(tmp_path / "c", like)


def test_unsupported_template_leaf(tmp_path):
    pax.save(tmp_path / "c", {"w": jnp.ones(3)})
    with pytest.raises(TypeError, match=r"leaf `\['w'\]` of `like` is a str"):
        pax.load(tmp_path / "c", {"w": "template"})


# --------------------------------------------------------------------------
# files that are not PAX checkpoints
# --------------------------------------------------------------------------

_CORRUPT = r"is not a PAX checkpoint or is truncated or corrupt"


def _check_refused(path, reason=""):
    with pytest.raises(ValueError, match=_CORRUPT + ".*" + reason) as info:
        pax.load(path, pax.Linear(2, 3))
    assert str(path) in str(info.value)


def test_truncated_empty_random_and_corrupt_files(tmp_path):
    pax.save(tmp_path / "good", pax.Linear(2, 3))
    data = (tmp_path / "good").read_bytes()

    (tmp_path / "half").write_bytes(data[: len(data) // 2])
    _check_refused(tmp_path / "half", "zip")
    (tmp_path / "empty").write_bytes(b"")
    _check_refused(tmp_path / "empty", "empty")
    rng = np.random.default_rng(0)
    (tmp_path / "random").write_bytes(rng.bytes(len(data)))
    _check_refused(tmp_path / "random", "not an .npz")
    (tmp_path / "zip_random").write_bytes(b"PK\x03\x04" + rng.bytes(len(data)))
    _check_refused(tmp_path / "zip_random")
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside an entry's data: bad CRC
    (tmp_path / "flipped").write_bytes(bytes(flipped))
    _check_refused(tmp_path / "flipped")


def test_plain_npz_and_npy_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", **{".weight": np.ones((2, 3), np.float32)})
    _check_refused(tmp_path / "plain.npz", "no `__pax__` metadata")
    np.save(tmp_path / "one.npy", np.ones(3))
    _check_refused(tmp_path / "one.npy", "single .npy array")


def _rewrite_metadata(path, meta_text):
    with np.load(path, allow_pickle=False) as npz:
        entries = {k: npz[k] for k in npz.files}
    entries["__pax__"] = np.array(meta_text)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def test_bad_metadata_is_refused(tmp_path):
    path = tmp_path / "c"
    pax.save(path, pax.Linear(2, 3))
    meta = {"format": "pax.checkpoint", "version": 2, "leaves": {}}
    _rewrite_metadata(path, json.dumps(meta))
    _check_refused(path, "format version 2, newer")
    _rewrite_metadata(path, "{not json")
    _check_refused(path, "not valid JSON")
    meta = {"format": "pax.checkpoint", "version": 1, "leaves": {".x": {"dtype": "f"}}}
    _rewrite_metadata(path, json.dumps(meta))
    _check_refused(path, r"missing entry `\.x`")
    meta["leaves"] = {".weight": {"dtype": "object", "encoding": "bits"}}
    _rewrite_metadata(path, json.dumps(meta))
    _check_refused(path, "unknown dtype 'object'")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        pax.load(tmp_path / "nope.ckpt", pax.Linear(2, 3))


# --------------------------------------------------------------------------
# resuming training
# --------------------------------------------------------------------------


def _training_setup(seed):
    k = jax.random.split(jax.random.PRNGKey(seed), 3)
    model = pax.Sequential(
        pax.Linear(4, 8, rng_key=k[0]),
        pax.BatchNorm1D(8),
        jax.nn.relu,
        pax.Dropout(0.3, rng_key=jax.random.key(seed)),
        pax.Linear(8, 1, rng_key=k[1]),
    )
    opt = pax.optim.from_optax(optax.adam(1e-2), model.parameters())
    return model, opt


def _loss_fn(model, x, y):
    model, out = pax.purecall(model, x)
    loss = jnp.mean((out - y) ** 2)
    return loss, (loss, model)


_update = jax.jit(pax.utils.build_update_fn(_loss_fn))


def _train(model, opt, start, steps):
    for i in range(start, start + steps):
        key = jax.random.PRNGKey(1000 + i)
        x = jax.random.normal(key, (16, 4))
        y = jnp.sum(x, axis=1, keepdims=True)
        model, opt, _ = _update(model, opt, x, y)
    return model, opt


def test_training_state_round_trips_exactly(tmp_path):
    state = _train(*_training_setup(0), 0, 3)
    assert int(state[0].layers[1].mean_ema.counter) == 3
    pax.save(tmp_path / "state", state)
    like = _training_setup(1)
    loaded = pax.load(tmp_path / "state", like)
    _assert_bit_identical(loaded, state)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(like)
    assert loaded[1].transformation is like[1].transformation  # static, from like


def test_resume_matches_uninterrupted_training(tmp_path):
    straight = _train(*_training_setup(0), 0, 6)
    half = _train(*_training_setup(0), 0, 3)
    pax.save(tmp_path / "half", half)
    resumed = _train(*pax.load(tmp_path / "half", _training_setup(5)), 3, 3)
    _assert_bit_identical(resumed, straight)


# --------------------------------------------------------------------------
# sharded templates (two virtual CPU devices, in a subprocess)
# --------------------------------------------------------------------------


def test_multi_device_template_gives_same_sharding(tmp_path):
    script = textwrap.dedent(
        f"""
        import jax, jax.numpy as jnp, numpy as np, pax
        from jax.sharding import NamedSharding, PartitionSpec as P
        mesh = jax.make_mesh((2,), ("d",))
        sharding = NamedSharding(mesh, P("d"))
        x = jax.device_put(jnp.arange(8.0), sharding)
        pax.save({str(tmp_path / "c")!r}, {{"x": x, "k": jax.random.key(0)}})
        like = {{"x": jax.device_put(jnp.zeros(8), sharding),
                 "k": jax.random.key(1)}}
        out = pax.load({str(tmp_path / "c")!r}, like)
        assert out["x"].sharding == sharding, out["x"].sharding
        np.testing.assert_array_equal(out["x"], np.arange(8.0))
        assert len(out["k"].sharding.device_set) == 1
        print("ok")
        """
    )
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# --------------------------------------------------------------------------
# hostile files: one documented error, nothing read before it is checked
# --------------------------------------------------------------------------


def _npy_header(descr, shape, fortran=False):
    buffer = io.BytesIO()
    d = {"descr": descr, "fortran_order": fortran, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, d)
    return buffer.getvalue()


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {i.filename: archive.read(i) for i in archive.infolist()}


def _write_members(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _load_refused(path, like, entry=None, match=""):
    with pytest.raises(pax.CheckpointError, match=_CORRUPT + ".*" + match) as info:
        pax.load(path, like)
    err = info.value
    assert err.path == str(path) and repr(str(path)) in str(err)
    assert err.entry == entry
    if entry is not None:
        assert f"entry `{entry}`" in str(err)
    return err


def test_checkpoint_error_is_an_exported_value_error(tmp_path):
    assert issubclass(pax.CheckpointError, ValueError)
    assert "CheckpointError" in pax.__all__
    (tmp_path / "empty").write_bytes(b"")
    err = _load_refused(tmp_path / "empty", pax.Linear(2, 3), None, "empty")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is pax.CheckpointError and str(again) == str(err)
    assert (again.path, again.entry) == (err.path, err.entry)


def test_hostile_npy_header_is_refused_before_reading_data(tmp_path):
    path = tmp_path / "c"
    pax.save(path, {"w": jnp.arange(6.0), "b": jnp.ones(2)})
    members = _members(path)
    data = members["['w'].npy"][-24:]  # the 6 float32 values
    # a header declaring 4 TiB over 24 bytes of data: numpy would allocate
    members["['w'].npy"] = _npy_header("<f4", (2**40,)) + data
    _write_members(path, members)
    for like_w in [jnp.zeros(6), jax.ShapeDtypeStruct((2**40,), jnp.float32)]:
        _load_refused(path, {"w": like_w, "b": jnp.ones(2)}, "['w']", "header declares")
    # negative or absurd shapes and unknown dtypes
    for header in [
        _npy_header("<f4", (-6,)),
        _npy_header("<f4", (2**70,)),
        _npy_header("<f5", (6,)),
        _npy_header("|V4", (6,)),
        _npy_header([("a", "<f4")], (6,)),
        b"\x93NUMPY\x03\x00" + (10).to_bytes(4, "little") + b"{}        ",
        b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{",
        b"not a .npy header at all",
    ]:
        members["['w'].npy"] = header + data
        _write_members(path, members)
        _load_refused(path, {"w": jnp.zeros(6), "b": jnp.ones(2)}, "['w']")
    # a consistent header that does not fit `like` is a mismatch, not damage
    members["['w'].npy"] = _npy_header("<f4", (3, 2)) + data
    _write_members(path, members)
    with pytest.raises(ValueError, match=r"`\['w'\]` has shape \(3, 2\)") as info:
        pax.load(path, {"w": jnp.zeros(6), "b": jnp.ones(2)})
    assert type(info.value) is ValueError
    out = pax.load(path, {"w": jnp.zeros((3, 2)), "b": jnp.ones(2)})
    np.testing.assert_array_equal(out["w"], np.arange(6.0).reshape(3, 2))
    # a damaged header that happens to parse is reported as damage (CRC-32)
    pax.save(path, {"w": jnp.arange(6.0), "b": jnp.ones(2)})
    raw = bytearray(path.read_bytes())
    at = raw.index(b"'<f4'", raw.index(b"['w'].npy"))
    raw[at + 2] = ord("i")  # '<f4' -> '<i4' inside the stored member
    path.write_bytes(bytes(raw))
    _load_refused(path, {"w": jnp.zeros(6), "b": jnp.ones(2)}, "['w']", "CRC")


def test_zip_bomb_and_compressed_members_are_refused(tmp_path):
    path = tmp_path / "c"
    pax.save(path, {"w": jnp.zeros(1000), "b": jnp.ones(2)})
    members = _members(path)
    # numpy.savez_compressed's layout: honest sizes, but deflated
    _write_members(path, members, zipfile.ZIP_DEFLATED)
    _load_refused(
        path, {"w": jnp.zeros(1000), "b": jnp.ones(2)}, "__pax__", "compressed"
    )
    # a bomb: a tiny deflated member declaring 4 GiB (local and central sizes)
    members["['w'].npy"] = _npy_header("<f4", (2**30 - 32,)) + bytes(4000)
    _write_members(path, members, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    name = b"['w'].npy"
    for signature, size_at in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)]:
        at = raw.index(
            signature + b"\x14\x00" if signature == b"PK\x03\x04" else signature
        )
        while raw[at : at + 4] == signature:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if raw[name_at : name_at + len(name)] == name:
                struct.pack_into("<I", raw, at + size_at, 2**32 - 1)
                break
            at = raw.index(signature, at + 4)
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:  # the bomb is what the zip declares
        assert archive.getinfo("['w'].npy").file_size == 2**32 - 1
    _load_refused(
        path, {"w": jnp.zeros(1000), "b": jnp.ones(2)}, "__pax__", "compressed"
    )
    # stored, but declaring more bytes than the file has
    pax.save(path, {"w": jnp.zeros(1000), "b": jnp.ones(2)})
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")
    while raw[at + 46 : at + 46 + len(name)] != name:
        at = raw.index(b"PK\x01\x02", at + 4)
    struct.pack_into("<II", raw, at + 20, 2**31, 2**31)  # compressed, file sizes
    path.write_bytes(bytes(raw))
    _load_refused(
        path, {"w": jnp.zeros(1000), "b": jnp.ones(2)}, "['w']", "past the end"
    )


def test_not_a_checkpoint_directory_and_other_members(tmp_path):
    like = pax.Linear(2, 3)
    with pytest.raises(IsADirectoryError, match="pax.load.*directory") as info:
        pax.load(tmp_path, like)
    assert info.value.filename == str(tmp_path)
    with pytest.raises(FileNotFoundError):
        pax.load(tmp_path / "missing", like)
    (tmp_path / "text").write_text("PK but not really a zip archive")
    _load_refused(tmp_path / "text", like, None, "BadZipFile")
    pax.save(tmp_path / "c", like)
    members = _members(tmp_path / "c")
    _write_members(tmp_path / "c", {**members, "notes.txt": b"hello"})
    _load_refused(tmp_path / "c", like, None, "'notes.txt', not a .npy entry")
    _write_members(tmp_path / "c", members)
    with zipfile.ZipFile(tmp_path / "c", "a") as archive, pytest.warns(UserWarning):
        archive.writestr(".weight.npy", members[".weight.npy"])  # a second one
    _load_refused(tmp_path / "c", like, ".weight", "two zip members")
    members["__pax__.npy"] = _npy_header("<f4", ()) + bytes(4)
    _write_members(tmp_path / "c", members)
    _load_refused(tmp_path / "c", like, "__pax__", "not a JSON string")


def _small_tree():
    return {
        "w": jnp.arange(3.0),
        "bf16": jnp.asarray(_BF16),
        "key": jax.random.key(3),
        "n": np.int64(7),
    }


def _same_or_refused(path, saved, like):
    """Load ``path``: the saved values exactly, or CheckpointError."""
    try:
        out = pax.load(path, like)
    except pax.CheckpointError as err:
        assert err.path == str(path)
        return False
    _assert_bit_identical(out, saved)
    return True


def test_every_truncation_and_single_byte_flip(tmp_path):
    saved = _small_tree()
    good = tmp_path / "good"
    pax.save(good, saved)
    data = good.read_bytes()
    like = jax.tree_util.tree_map(_perturb, saved)
    path = tmp_path / "bad"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDWR)
    try:
        loaded = 0
        for i in range(len(data)):  # zip headers, .npy headers, data, directory
            os.pwrite(fd, bytes([data[i] ^ 0xFF]), i)
            loaded += _same_or_refused(path, saved, like)
            os.pwrite(fd, data[i : i + 1], i)
        for n in reversed(range(len(data))):
            os.ftruncate(fd, n)
            assert not _same_or_refused(path, saved, like), n
    finally:
        os.close(fd)
    # flips of fields zipfile ignores (times, attributes) load unchanged; the
    # rest are refused
    assert 0 < loaded < len(data) // 4


# --------------------------------------------------------------------------
# killed saves, read-only files and directories
# --------------------------------------------------------------------------

_SLOW_SAVE = """
import sys, time
import numpy as np
import jax.numpy as jnp
import pax

real = np.lib.format.write_array
calls = []

def slow_write_array(*args, **kwargs):
    calls.append(1)
    real(*args, **kwargs)
    if len(calls) == 2:  # metadata and one entry written: stall mid-file
        print("writing", flush=True)
        time.sleep(60)

np.lib.format.write_array = slow_write_array
pax.save(sys.argv[1], {"a": jnp.ones(100_000), "b": jnp.ones(100_000)})
"""


def _temp_names(directory, target):
    return sorted(
        n
        for n in os.listdir(directory)
        if re.fullmatch(rf"\.{target}\.[0-9a-f]{{12}}\.tmp", n)
    )


def _age(path, seconds=60):
    old = os.stat(path).st_mtime - seconds
    os.utime(path, (old, old))


def test_save_removes_temp_files_of_killed_saves_only(tmp_path):
    path = tmp_path / "ckpt"
    pax.save(path, {"a": jnp.zeros(1000), "b": jnp.zeros(1000)})
    writer = subprocess.Popen(
        [sys.executable, "-c", _SLOW_SAVE, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        (temp,) = _temp_names(tmp_path, "ckpt")
        assert os.path.getsize(tmp_path / temp) > 100_000  # really mid-write
        # near misses that must survive, all old enough to look stale
        others = [
            ".ckpt.0123456789ab.tmp.bak",
            ".ckpt.0123456789AB.tmp",
            ".ckpt.0123456789a.tmp",
            "ckpt.0123456789ab.tmp",
            ".other.0123456789ab.tmp",
            ".ckpt.0123456789ab.0123456789ab.tmp",
        ]
        for name in others:
            (tmp_path / name).write_bytes(b"not ours")
            _age(tmp_path / name)
        os.mkdir(tmp_path / ".ckpt.aaaaaaaaaaaa.tmp")  # right name, not a file
        os.symlink(tmp_path / others[0], tmp_path / ".ckpt.bbbbbbbbbbbb.tmp")
        _age(tmp_path / temp)  # old, but its writer is alive and holds it
        pax.save(path, {"a": jnp.full(1000, 1.0), "b": jnp.zeros(1000)})
        assert _temp_names(tmp_path, "ckpt") == sorted(
            [temp, ".ckpt.aaaaaaaaaaaa.tmp", ".ckpt.bbbbbbbbbbbb.tmp"]
        )
        writer.kill()  # SIGKILL: no cleanup runs
        writer.wait(timeout=30)
        assert writer.returncode == -signal.SIGKILL
        assert temp in os.listdir(tmp_path)  # left behind...
        _age(tmp_path / temp)
        pax.save(path, {"a": jnp.full(1000, 2.0), "b": jnp.zeros(1000)})
        assert temp not in os.listdir(tmp_path)  # ...until the next save
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["ckpt", *others, ".ckpt.aaaaaaaaaaaa.tmp", ".ckpt.bbbbbbbbbbbb.tmp"]
    )
    assert (tmp_path / others[0]).read_bytes() == b"not ours"
    out = pax.load(path, {"a": jnp.zeros(1000), "b": jnp.zeros(1000)})
    np.testing.assert_array_equal(out["a"], np.full(1000, 2.0))


def test_fresh_unlocked_temp_file_is_kept(tmp_path):
    # a temp file created a moment ago may belong to a save that has not yet
    # taken its lock; a stale one (old and unlocked) is removed
    young, old = (
        tmp_path / ".ckpt.00000000000a.tmp",
        tmp_path / ".ckpt.00000000000b.tmp",
    )
    young.write_bytes(b"x" * 100)
    old.write_bytes(b"x" * 100)
    _age(old)
    pax.save(tmp_path / "ckpt", jnp.ones(2))
    assert sorted(os.listdir(tmp_path)) == [young.name, "ckpt"]


def test_read_only_file_is_not_replaced(tmp_path):
    path = tmp_path / "ckpt"
    pax.save(path, jnp.ones(2))
    before = path.read_bytes()
    os.chmod(path, 0o444)  # refused even for root, who could open it
    with pytest.raises(PermissionError, match="read-only") as info:
        pax.save(path, jnp.zeros(2))
    assert info.value.filename == str(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt"]
    os.chmod(path, 0o644)
    pax.save(path, jnp.zeros(2))
    np.testing.assert_array_equal(pax.load(path, jnp.ones(2)), [0.0, 0.0])


def test_unwritable_directory_error_names_the_target(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    real_open = os.open

    def denied(name, flags, *args, **kwargs):
        if flags & os.O_CREAT and os.path.dirname(name) == str(tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)  # what a non-root user gets
    with pytest.raises(
        PermissionError, match="cannot write into the directory"
    ) as info:
        pax.save(path, jnp.ones(2))
    assert info.value.filename == str(path)
    assert ".tmp" not in str(info.value)


_AS_NOBODY = """
import os, sys
import jax.numpy as jnp, numpy as np, pax
zeros = np.asarray(jnp.zeros(2))  # import and compute before dropping root
os.setgid(65534)
os.setuid(65534)
base = sys.argv[1]
for target in ["locked_dir/ckpt", "open_dir/root_file"]:
    try:
        pax.save(os.path.join(base, target), zeros)
        print(target, "saved")
    except PermissionError as err:
        print(target, err.filename == os.path.join(base, target), ".tmp" in str(err))
"""


def test_permissions_as_an_unprivileged_user(tmp_path_factory):
    # real permission checks need a non-root user; as root, run as `nobody`
    base = tempfile.mkdtemp(prefix="pax-perm-")
    try:
        os.chmod(base, 0o755)
        os.mkdir(os.path.join(base, "locked_dir"), 0o755)  # root's: no writing
        os.mkdir(os.path.join(base, "open_dir"), 0o777)
        pax.save(os.path.join(base, "open_dir", "root_file"), jnp.ones(2))
        os.chmod(os.path.join(base, "open_dir", "root_file"), 0o644)  # not nobody's
        before = open(os.path.join(base, "open_dir", "root_file"), "rb").read()
        if os.geteuid() == 0:
            command = [sys.executable, "-c", _AS_NOBODY, base]
        else:  # already unprivileged: drop the setuid lines
            script = _AS_NOBODY.replace("os.setgid", "id").replace("os.setuid", "id")
            command = [sys.executable, "-c", script, base]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONDONTWRITEBYTECODE": "1"},
            cwd=base,
        )
        assert result.returncode == 0, result.stderr
        # an unwritable directory names the target; a file `open` could not
        # write is not replaced, although the directory would allow a rename
        assert result.stdout.split("\n")[:2] == [
            "locked_dir/ckpt True False",
            "open_dir/root_file True False",
        ]
        assert open(os.path.join(base, "open_dir", "root_file"), "rb").read() == before
        assert os.listdir(os.path.join(base, "open_dir")) == ["root_file"]
    finally:
        shutil.rmtree(base)

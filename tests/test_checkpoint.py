"""pax.save / pax.load: bit-exact round trips, the on-disk format, atomic
writes, refusal of pickled data, mismatch and corruption errors, resuming."""

import json
import os
import subprocess
import sys
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

    with pytest.raises(ValueError, match="not a PAX checkpoint.*Object arrays"):
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

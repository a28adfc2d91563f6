"""pax.save_safetensors / pax.load_safetensors: exact round trips (dtypes,
bfloat16, typed rng keys, weak types, modules with state), files checked
independently with the ``safetensors`` library, the errors of ``pax.load``,
files that are not safetensors, atomic writes."""

import errno
import functools
import json
import os
import re

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.flax
import safetensors.numpy

import pax


def _bits(x):
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    a = np.asarray(x)
    return a.view(np.dtype(f"u{a.dtype.itemsize}")) if a.dtype != bool else a


def _assert_exact(a, b):
    """Same key paths, leaf kinds, shapes, dtypes, weak types and bytes."""
    pa = jax.tree_util.tree_flatten_with_path(a)[0]
    pb = jax.tree_util.tree_flatten_with_path(b)[0]
    assert [p for p, _ in pa] == [p for p, _ in pb]
    for (path, x), (_, y) in zip(pa, pb):
        where = jax.tree_util.keystr(path)
        assert type(x) is type(y) or (
            isinstance(x, jax.Array) and isinstance(y, jax.Array)
        ), where
        assert np.shape(x) == np.shape(y), where
        assert getattr(x, "dtype", None) == getattr(y, "dtype", None), where
        assert getattr(x, "weak_type", None) == getattr(y, "weak_type", None), where
        assert np.array_equal(_bits(x), _bits(y)), where


def _from_bits(bits, dtype):
    return np.asarray(bits, dtype=f"u{np.dtype(dtype).itemsize}").view(dtype)


# NaN with a payload, -0.0, signalling NaN, inf, 1.
_F32 = _from_bits([0x7FC00123, 0x80000000, 0x7F800001, 0x7F800000, 0x3F800000], "f4")
_BF16 = _from_bits([0x7FC1, 0x8000, 0xFF81, 0x3F80], jnp.bfloat16)


def _tree():
    return {
        "f32": jnp.asarray(_F32),
        "bf16": jnp.asarray(_BF16),
        "f16": jnp.asarray([1.5, -0.0], jnp.float16),
        "f8": jnp.asarray(_from_bits([0x7F, 0x80, 0x38], jnp.float8_e4m3fn)),
        "int4": jnp.asarray([-8, 7, 0], jnp.int4),  # no safetensors code: bits
        "int8": jnp.asarray([-128, 127], jnp.int8),
        "uint32": jnp.asarray([[0, 2**32 - 1]], jnp.uint32),
        "bool": jnp.asarray([True, False]),
        "c64": jnp.asarray(_F32[:4].view(np.complex64)),
        "typed_key": jax.random.key(1),
        "typed_keys": jax.random.split(jax.random.key(2), 3),
        "rbg_key": jax.random.key(3, impl="rbg"),
        "raw_key": jax.random.PRNGKey(4),
        "weak_f": jnp.asarray(0.5),  # weakly typed (a Python scalar)
        "weak_i": jnp.asarray(3),
        "strong_f": jnp.asarray(0.5, jnp.float32),
        "np": np.arange(6, dtype=np.int16).reshape(2, 3),
        "np_bf16": np.asarray(_BF16),
        "py": [1.5, 2, True],
        "empty": jnp.zeros((0, 3)),
    }


@functools.cache  # modules are immutable: build it once
def _model_with_state():
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    model = pax.Sequential(
        pax.nets.MLP(4, [8, 3], rng_key=k[0]), pax.BatchNorm1D(3, rng_key=k[1])
    )
    x = jnp.sin(jnp.arange(20.0)).reshape(5, 4)
    model, _ = pax.purecall(model, x)  # BatchNorm statistics
    return model


def _fresh_model():
    k = jax.random.split(jax.random.PRNGKey(9), 2)
    return pax.Sequential(
        pax.nets.MLP(4, [8, 3], rng_key=k[0]), pax.BatchNorm1D(3, rng_key=k[1])
    )


# --------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------


def test_round_trip_every_kind_of_leaf(tmp_path):
    tree = _tree()
    assert tree["weak_f"].weak_type and not tree["strong_f"].weak_type
    path = tmp_path / "tree.safetensors"
    pax.save_safetensors(path, tree)
    like = jax.tree_util.tree_map(jnp.zeros_like, tree)
    like["np"], like["np_bf16"], like["py"] = (
        np.zeros_like(tree["np"]),
        _BF16,
        [0.0, 0, False],
    )
    _assert_exact(pax.load_safetensors(path, like), tree)
    # a template of jax.ShapeDtypeStruct gives jax arrays, weak types too
    shapes = jax.eval_shape(lambda: {k: tree[k] for k in ("bf16", "typed_keys")})
    back = pax.load_safetensors(
        path, {**like, **shapes, "weak_f": jax.ShapeDtypeStruct((), jnp.float32)}
    )
    assert back["weak_f"].weak_type
    _assert_exact({k: back[k] for k in shapes}, {k: tree[k] for k in shapes})


def test_round_trip_module_with_state(tmp_path):
    model = _model_with_state()
    path = tmp_path / "model.safetensors"
    pax.save_safetensors(path, model)
    restored = pax.load_safetensors(path, _fresh_model())
    _assert_exact(restored, model)
    x = jnp.cos(jnp.arange(28.0)).reshape(7, 4)
    np.testing.assert_array_equal(restored.eval()(x), model.eval()(x))
    # the BatchNorm statistics came back (not the fresh model's)
    assert restored.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(_bits(restored.state_dict()[key]), _bits(value))


def test_single_array_and_eval_shape_template(tmp_path):
    path = tmp_path / "a.safetensors"
    x = jnp.arange(6.0).reshape(2, 3)
    pax.save_safetensors(path, x)  # tensor name "" (the empty key path)
    _assert_exact(pax.load_safetensors(path, jax.ShapeDtypeStruct((2, 3), x.dtype)), x)
    mlp = pax.nets.MLP(3, [5, 2], rng_key=jax.random.PRNGKey(0))
    pax.save_safetensors(path, mlp)
    like = jax.eval_shape(
        lambda: pax.nets.MLP(3, [5, 2], rng_key=jax.random.PRNGKey(1))
    )
    _assert_exact(pax.load_safetensors(path, like), mlp)


# --------------------------------------------------------------------------
# the file, read by the reference library
# --------------------------------------------------------------------------


def test_file_is_read_by_the_safetensors_library(tmp_path):
    model = _model_with_state()
    tree = {"model": model, "key": jax.random.key(7), "weak": jnp.asarray(2.0)}
    tree["bf16"] = jnp.asarray(_BF16)
    path = str(tmp_path / "model.safetensors")
    pax.save_safetensors(path, tree)

    with safetensors.safe_open(path, framework="flax") as f:
        names = list(f.keys())
        metadata = f.metadata()
    flat = {
        jax.tree_util.keystr(p): x
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    }
    assert sorted(names) == sorted(flat)
    assert "['model'].layers[0].layers[0].weight" in names
    assert {"['model']" + k for k in model.state_dict()} <= set(names)

    tensors = safetensors.flax.load_file(path)
    assert tensors["['bf16']"].dtype == jnp.bfloat16  # stored natively (BF16)
    np.testing.assert_array_equal(_bits(tensors["['bf16']"]), _bits(_BF16))
    assert tensors["['key']"].dtype == jnp.uint32  # key data
    np.testing.assert_array_equal(tensors["['key']"], jax.random.key_data(tree["key"]))
    for key, value in flat.items():
        if key not in ("['key']",):
            assert tensors[key].dtype == value.dtype, key
            np.testing.assert_array_equal(_bits(tensors[key]), _bits(value))

    assert list(metadata) == ["__pax__"]
    meta = json.loads(metadata["__pax__"])
    assert meta["format"] == "pax.safetensors" and meta["version"] == 1
    assert meta["leaves"]["['key']"] == {
        "dtype": "key<fry>",
        "encoding": "key_data",
        "impl": "threefry2x32",
    }
    assert meta["leaves"]["['weak']"] == {"dtype": "float32", "weak_type": True}
    assert "['bf16']" not in meta["leaves"]  # nothing to add to BF16

    # the raw layout: 8-byte header size, JSON header, tensors 8-byte aligned
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    assert n % 8 == 0 and json.loads(raw[8 : 8 + n])["['bf16']"]["dtype"] == "BF16"


def test_loads_a_file_written_by_the_safetensors_library(tmp_path):
    mlp = pax.nets.MLP(3, [4, 2], rng_key=jax.random.PRNGKey(0))
    path = str(tmp_path / "other.safetensors")
    arrays = {k: np.asarray(v) for k, v in mlp.state_dict().items()}
    safetensors.numpy.save_file(arrays, path, metadata={"format": "np"})
    like = pax.nets.MLP(3, [4, 2], rng_key=jax.random.PRNGKey(1))
    _assert_exact(pax.load_safetensors(path, like), mlp)


# --------------------------------------------------------------------------
# errors: a valid file that does not fit `like`
# --------------------------------------------------------------------------


def _mismatch_cases():
    base = {"a": jnp.zeros((2, 3)), "b": jnp.zeros(4, jnp.int32)}
    return [
        (
            "missing",
            {**base, "c": jnp.zeros(1)},
            "`like` has the leaf `['c']`, which the file does not hold",
        ),
        (
            "extra",
            {"a": base["a"]},
            "the file holds the entry `['b']`, which is not a leaf of `like`",
        ),
        (
            "shape",
            {**base, "a": jnp.zeros((2, 4))},
            "entry `['a']` has shape (2, 3) in the file, but `like` has shape (2, 4)",
        ),
        (
            "dtype",
            {**base, "b": jnp.zeros(4, jnp.int8)},
            "entry `['b']` has dtype int32 in the file, but `like` has dtype int8",
        ),
        (
            "key dtype",
            {**base, "b": jnp.zeros(4, jnp.bfloat16)},
            "entry `['b']` has dtype int32 in the file, but `like` has dtype bfloat16",
        ),
    ]


@pytest.mark.parametrize(
    "like, message",
    [c[1:] for c in _mismatch_cases()],
    ids=[c[0] for c in _mismatch_cases()],
)
def test_mismatch_errors_match_pax_load(tmp_path, like, message):
    tree = {"a": jnp.zeros((2, 3)), "b": jnp.zeros(4, jnp.int32)}
    st, npz = str(tmp_path / "t.safetensors"), str(tmp_path / "t.ckpt")
    pax.save_safetensors(st, tree)
    pax.save(npz, tree)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        pax.load_safetensors(st, like)
    assert type(err.value) is ValueError  # not a CheckpointError: the file is fine
    assert str(err.value).startswith(f"pax.load_safetensors: {st!r}: ")
    with pytest.raises(ValueError) as same:
        pax.load(npz, like)
    assert str(same.value).split(": ", 2)[2] == str(err.value).split(": ", 2)[2]


def test_typed_key_template_mismatch(tmp_path):
    path = tmp_path / "k.safetensors"
    pax.save_safetensors(path, {"k": jax.random.key(0)})  # key data: uint32[2]
    with pytest.raises(
        ValueError,
        match=r"entry `\['k'\]` has dtype key<fry> in "
        r"the file, but `like` has dtype uint32",
    ):
        pax.load_safetensors(path, {"k": jnp.zeros((), jnp.uint32)})
    with pytest.raises(
        ValueError,
        match=r"has shape \(\) in the file, but `like` "
        r"has shape \(2,\)",
    ):
        pax.load_safetensors(path, {"k": jax.random.PRNGKey(0)})


def test_save_refuses_what_safetensors_cannot_store(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match=r"leaf `\['c'\]` has dtype complex128"):
        pax.save_safetensors(path, {"c": np.zeros(2, np.complex128)})
    with pytest.raises(
        TypeError, match=r"pax.save_safetensors: leaf `\['s'\]` is a str"
    ):
        pax.save_safetensors(path, {"s": "text"})
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------
# errors: files that are not (valid) safetensors
# --------------------------------------------------------------------------


def _header_file(header, data=b""):
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def _bad_files(tmp_path):
    good = tmp_path / "good.safetensors"
    pax.save_safetensors(good, {"a": jnp.arange(4.0)})
    good = good.read_bytes()
    npz = tmp_path / "x.ckpt"
    pax.save(npz, {"a": jnp.arange(4.0)})
    t = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    return {
        "empty": (b"", "the file is empty"),
        "short": (b"\x01\x02", "fewer than the 8-byte header size"),
        "npz": (npz.read_bytes(), "header size field says"),
        "text": (b"hello world, not a tensor file", "header size field says"),
        "truncated": (good[:-3], "bytes follow the header"),
        "not json": (b"\x04" + b"\0" * 7 + b"{abc", "not valid JSON"),
        "not an object": (b"\x02" + b"\0" * 7 + b"[]", "not a JSON object"),
        "unknown dtype": (
            _header_file({"['a']": {**t, "dtype": "OBJ"}}, bytes(16)),
            "unknown safetensors dtype 'OBJ'",
        ),
        "bad offsets": (
            _header_file({"['a']": {**t, "data_offsets": [0, 12]}}, bytes(16)),
            "do not hold 16 bytes",
        ),
        "overlap": (
            _header_file({"['a']": t, "['b']": t}, bytes(16)),
            "overlaps another tensor",
        ),
        "bad metadata": (
            _header_file({"__metadata__": {"__pax__": "{"}, "['a']": t}, bytes(16)),
            "entry `__pax__`: not valid JSON",
        ),
        "newer version": (
            _header_file(
                {
                    "__metadata__": {
                        "__pax__": json.dumps(
                            {"format": "pax.safetensors", "version": 99, "leaves": {}}
                        )
                    },
                    "['a']": t,
                },
                bytes(16),
            ),
            "format version 99, newer",
        ),
    }


def test_files_that_are_not_safetensors(tmp_path):
    like = {"a": jnp.zeros(4)}
    for name, (raw, reason) in _bad_files(tmp_path).items():
        path = tmp_path / "bad.safetensors"
        path.write_bytes(raw)
        with pytest.raises(pax.CheckpointError) as err:
            pax.load_safetensors(path, like)
        message = str(err.value)
        assert message.startswith(
            f"pax.load_safetensors: {str(path)!r} is not a safetensors file"
        ), name
        assert reason in message, (name, message)
        assert err.value.path == str(path)
    with pytest.raises(FileNotFoundError):
        pax.load_safetensors(tmp_path / "missing.safetensors", like)
    with pytest.raises(IsADirectoryError):
        pax.load_safetensors(tmp_path, like)


def test_duplicate_tensor_name_is_refused(tmp_path):
    t = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    raw = ('{"a":' + t + ',"a":' + t + "}").encode()
    path = tmp_path / "dup.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(4))
    with pytest.raises(
        pax.CheckpointError, match="entry `a`: the header names it twice"
    ):
        pax.load_safetensors(path, {"a": jnp.zeros(1)})


# --------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------


def test_failing_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    old = {"a": jnp.arange(4.0)}
    pax.save_safetensors(path, old)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:  # fails after every byte was written
        m.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="No space left"):
            pax.save_safetensors(path, {"a": jnp.arange(4.0) + 1})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]  # no temporary file
    _assert_exact(pax.load_safetensors(path, old), old)
    # an unstorable leaf fails before anything is written
    with pytest.raises(TypeError):
        pax.save_safetensors(path, {"a": object()})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_ml_dtypes_bits_round_trip_is_recorded(tmp_path):
    path = tmp_path / "int4.safetensors"
    x = jnp.asarray([-8, 7, 1], jnp.int4)
    pax.save_safetensors(path, {"x": x})
    with safetensors.safe_open(str(path), framework="numpy") as f:
        stored = f.get_tensor("['x']")
        meta = json.loads(f.metadata()["__pax__"])
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, np.asarray(x).view(np.uint8))
    assert meta["leaves"]["['x']"] == {"dtype": "int4", "encoding": "bits"}
    back = pax.load_safetensors(path, {"x": jnp.zeros(3, ml_dtypes.int4)})
    _assert_exact(back, {"x": x})

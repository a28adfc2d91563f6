"""safetensors files: ``pax.save_safetensors`` / ``pax.load_safetensors``.

The `safetensors <https://github.com/huggingface/safetensors>`_ format is an
8-byte little-endian header length ``N``, a JSON header of ``N`` bytes, and
the tensors' raw little-endian bytes. The header maps each tensor name to
``{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}`` (offsets
into the byte buffer that follows the header) and may hold a
``"__metadata__"`` object of string to string.

What PAX writes (version 1)
===========================

* one tensor per leaf, named by ``jax.tree_util.keystr`` of its key path: the
  keys of :meth:`pax.Module.state_dict` and of :func:`pax.save`
  (``.layers[0].weight``); a tree that is a single array has the tensor
  ``""``. Tensors are written in the tree's leaf order.
* every dtype that safetensors has a code for is stored natively: ``BOOL``,
  ``U8``...``U64``, ``I8``...``I64``, ``F16``, ``BF16``, ``F32``, ``F64``,
  ``C64`` and the float8 types ``F8_E4M3`` (``float8_e4m3fn``), ``F8_E5M2``,
  ``F8_E4M3FNUZ``, ``F8_E5M2FNUZ``, ``F8_E8M0`` (``float8_e8m0fnu``). Other
  ``ml_dtypes`` dtypes (``int4``, ``float4_e2m1fn``, ...) are stored as their
  raw bits (``U8``) and ``complex128`` is refused.
* ``__metadata__`` holds one entry, ``"__pax__"``: a JSON string
  ``{"format": "pax.safetensors", "version": 1, "leaves": {...}}`` whose
  records are those of :func:`pax.save` (see :mod:`pax._checkpoint`), for the
  leaves the safetensors dtype alone does not describe: typed PRNG keys
  (stored as ``jax.random.key_data``, e.g. ``U32[..., 2]``, with
  ``{"dtype": "key<fry>", "encoding": "key_data", "impl": "threefry2x32"}``),
  weakly typed jax arrays (``"weak_type": true``) and raw-bits dtypes.

The file is readable by the ``safetensors`` library itself (``safe_open``,
``safetensors.flax.load_file``, ``safetensors.torch.load_file``); PAX reads
and writes the format with its own short parser, so neither function needs
the library installed (the ``safetensors`` extra installs it for use with
other tools).

Reading
=======

:func:`load_safetensors` never runs code (the header is JSON; data is raw
bytes, nothing is unpickled) and treats the file as untrusted: the whole
header is checked first (known dtypes, integer shapes, offsets that tile the
byte buffer exactly, no duplicate names, well-formed PAX metadata), then the
entries are matched against ``like`` with the same checks and errors as
:func:`pax.load` (missing entry, extra entry, then shape and dtype, each
naming the key), and only then is data read, in the amounts the header
declared. A file without PAX metadata (written by another tool) loads if
its tensor names are the key paths of ``like``. Defects of the file raise
:class:`pax.CheckpointError`; a valid file that does not fit ``like`` a plain
``ValueError``.

Writing is atomic, exactly as :func:`pax.save`: a temporary file in the
same folder, flushed, ``fsync``-ed and renamed onto ``path``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sys
from typing import Any, TypeVar

import jax
import numpy as np

from . import _checkpoint as ckpt

__all__ = ["save_safetensors", "load_safetensors"]

T = TypeVar("T")

FORMAT = "pax.safetensors"
VERSION = 1
HEADER_METADATA = "__metadata__"
# The reference implementation's cap on the JSON header (100 MB).
_MAX_HEADER = 100_000_000
_SAVE = "pax.save_safetensors"
_LOAD = "pax.load_safetensors"
_WHAT = "a safetensors file"


def _st_dtypes() -> dict[str, np.dtype]:
    names = {
        "BOOL": "bool",
        "U8": "uint8",
        "I8": "int8",
        "U16": "uint16",
        "I16": "int16",
        "U32": "uint32",
        "I32": "int32",
        "U64": "uint64",
        "I64": "int64",
        "F16": "float16",
        "BF16": "bfloat16",
        "F32": "float32",
        "F64": "float64",
        "C64": "complex64",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
        "F8_E4M3FNUZ": "float8_e4m3fnuz",
        "F8_E5M2FNUZ": "float8_e5m2fnuz",
        "F8_E8M0": "float8_e8m0fnu",
    }
    table = {}
    for code, name in names.items():
        try:
            dtype = np.dtype(name)  # ml_dtypes names are registered by jax
        except TypeError:
            continue  # an older ml_dtypes without this float8 type
        if dtype.name == name:
            table[code] = dtype
    return table


_DTYPES = _st_dtypes()
_CODES = {dtype: code for code, dtype in _DTYPES.items()}


# ---------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------


def _encode(key: str, leaf: Any) -> tuple[np.ndarray, str, dict | None]:
    """``(array to store, safetensors dtype code, metadata record or None)``."""
    array, record = ckpt._encode_leaf(key, leaf, _SAVE)
    if record is not None and record.get("encoding") == ckpt._BITS:
        true_dtype = np.dtype(record["dtype"])
        if true_dtype in _CODES:  # safetensors stores it natively
            array = array.view(true_dtype)
            record = {k: v for k, v in record.items() if k != "encoding"}
            if set(record) == {"dtype"}:
                record = None
    code = _CODES.get(array.dtype)
    if code is None:
        raise TypeError(
            f"{_SAVE}: leaf `{key}` has dtype {array.dtype}, which safetensors "
            f"has no code for (supported: {', '.join(sorted(_CODES.values()))}, "
            "ml_dtypes types such as int4 as raw bits, and PRNG keys)."
        )
    return array, code, record


def _little_endian_bytes(array: np.ndarray) -> np.ndarray:
    """``array``'s bytes in C order and little-endian, as a flat uint8 array."""
    array = np.ascontiguousarray(array)
    if sys.byteorder == "big" and array.dtype.itemsize > 1:
        array = array.byteswap()
    return array.reshape(-1).view(np.uint8)


def _encode_tree(tree: Any) -> tuple[bytes, list[np.ndarray]]:
    """The header (length prefix included) and the tensors' bytes in order."""
    header: dict[str, Any] = {}
    records: dict[str, dict] = {}
    buffers: list[np.ndarray] = []
    offset = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = jax.tree_util.keystr(path)
        if key == HEADER_METADATA or key in header:
            raise ValueError(
                f"{_SAVE}: two leaves, or a leaf and the `{HEADER_METADATA}` "
                f"header entry, share the key `{key}`; rename the dict key or "
                "attribute."
            )
        array, code, record = _encode(key, leaf)
        data = _little_endian_bytes(array)
        header[key] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + data.size],
        }
        offset += data.size
        buffers.append(data)
        if record is not None:
            records[key] = record
    pax_meta = {"format": FORMAT, "version": VERSION, "leaves": records}
    meta = {ckpt.METADATA_KEY: json.dumps(pax_meta, sort_keys=True)}
    text = json.dumps({HEADER_METADATA: meta, **header}, separators=(",", ":"))
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as err:  # a str key with a lone surrogate
        raise ValueError(f"{_SAVE}: a leaf key is not valid UTF-8 ({err}).") from err
    raw += b" " * (-len(raw) % 8)  # the tensors start 8-byte aligned
    return len(raw).to_bytes(8, "little") + raw, buffers


def save_safetensors(path: str | os.PathLike, tree: Any) -> None:
    """Write ``tree`` to a safetensors file at exactly ``path``.

    Args:
      path: the file to write (conventionally ``*.safetensors``). The folder
        must exist; an existing file is replaced atomically.
      tree: any pytree whose leaves are jax arrays (typed PRNG keys
        included), numpy arrays or scalars, or Python numbers: a
        :class:`pax.Module`, a dict or list of arrays, a ``(model,
        opt_state)`` tuple.

    One tensor per leaf, named by the leaf's key path exactly as
    :meth:`pax.Module.state_dict` and :func:`pax.save` name it
    (``.layers[0].weight``). ``bfloat16`` and the float8 types are stored
    natively (``BF16``, ``F8_E4M3``, ...); typed PRNG keys as their key data,
    with the implementation's name, and JAX's weak types, in the header's
    ``__metadata__`` (under ``"__pax__"``), so that :func:`load_safetensors`
    restores values, dtypes, weak types and keys exactly. See
    :mod:`pax._safetensors` for the layout.

    The file is written to a temporary file in the same folder, flushed,
    ``fsync``-ed and renamed onto ``path`` (as :func:`pax.save` does): a
    failed write leaves an existing file untouched and no temporary file.

    Raises:
      TypeError: for a leaf that is not an array or number, or whose dtype
        safetensors cannot store (``complex128``, strings, objects).
      ValueError: if two leaves have the same key (checked before writing).
      FileNotFoundError, IsADirectoryError, PermissionError, OSError: as
        :func:`pax.save`.

    >>> import os, tempfile
    >>> import jax, jax.numpy as jnp, pax
    >>> model = pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.safetensors")
    ...     pax.save_safetensors(path, model)
    ...     like = pax.Linear(2, 3, rng_key=jax.random.PRNGKey(1))
    ...     restored = pax.load_safetensors(path, like)
    >>> bool((restored.weight == model.weight).all()), restored.bias.shape
    (True, (3,))
    """
    path = os.fsdecode(os.fspath(path))
    head, buffers = _encode_tree(tree)  # every error about the tree before I/O

    def write(file: Any) -> None:
        file.write(head)
        for data in buffers:
            file.write(memoryview(data))

    ckpt._write_atomically(path, write, _SAVE)


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------


class _Entry(ckpt._Entry):
    """One tensor of the header (no data read): ``pax.load``'s entry (key,
    stored and wanted shape/dtype, metadata record, ``weak``) plus the
    tensor's byte range in the data section."""

    __slots__ = ("begin", "end")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ckpt._Corrupt("the header names it twice", key)
        out[key] = value
    return out


def _is_count(x: Any) -> bool:
    return type(x) is int and x >= 0


def _parse_header(file: Any) -> tuple[int, dict[str, _Entry]]:
    """``(offset of the byte buffer, entries by name)``; raises ``_Corrupt``."""
    size = os.fstat(file.fileno()).st_size
    if size == 0:
        raise ckpt._Corrupt("the file is empty")
    if size < 8:
        raise ckpt._Corrupt(f"it has {size} bytes, fewer than the 8-byte header size")
    length = int.from_bytes(file.read(8), "little")
    if length > min(size - 8, _MAX_HEADER):
        raise ckpt._Corrupt(
            f"its header size field says {length} bytes, but the file has "
            f"{size} bytes (and a header has at most {_MAX_HEADER})"
        )
    raw = file.read(length)
    if len(raw) != length:
        raise ckpt._Corrupt("the header ends early")
    if not raw.startswith(b"{"):
        raise ckpt._Corrupt("its header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as err:  # incl. UnicodeDecodeError
        raise ckpt._Corrupt(f"its header is not valid JSON ({err})") from err
    meta = header.pop(HEADER_METADATA, {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ckpt._Corrupt("it is not a string-to-string map", HEADER_METADATA)
    records: dict[str, dict] = {}
    if ckpt.METADATA_KEY in meta:
        records = ckpt._parse_metadata(meta[ckpt.METADATA_KEY], FORMAT, VERSION)
    entries: dict[str, _Entry] = {}
    for key, info in header.items():
        if not (
            isinstance(info, dict)
            and set(info) == {"dtype", "shape", "data_offsets"}
            and isinstance(info["shape"], list)
            and all(_is_count(n) for n in info["shape"])
            and isinstance(info["data_offsets"], list)
            and len(info["data_offsets"]) == 2
            and all(_is_count(n) for n in info["data_offsets"])
        ):
            raise ckpt._Corrupt(
                "its header record is not {dtype, shape, data_offsets}", key
            )
        stored_dtype = (
            _DTYPES.get(info["dtype"]) if isinstance(info["dtype"], str) else None
        )
        if stored_dtype is None:
            raise ckpt._Corrupt(f"unknown safetensors dtype {info['dtype']!r}", key)
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        nbytes = math.prod(shape) * stored_dtype.itemsize
        if end < begin or end - begin != nbytes:
            raise ckpt._Corrupt(
                f"its offsets [{begin}, {end}] do not hold {nbytes} bytes of "
                f"{stored_dtype}{list(shape)}",
                key,
            )
        record = records.get(key)
        if record is not None and "encoding" in record:
            logical = ckpt._logical(key, shape, stored_dtype, record)
        elif record is not None and record["dtype"] != stored_dtype.name:
            raise ckpt._Corrupt(f"it holds {stored_dtype}, not its recorded dtype", key)
        else:
            logical = (shape, stored_dtype)
        entries[key] = _Entry(
            key=key,
            stored_shape=shape,
            stored_dtype=stored_dtype,
            begin=begin,
            end=end,
            shape=logical[0],
            dtype=logical[1],
            record=record,
        )
    unknown = [k for k in records if k not in entries]
    if unknown:
        raise ckpt._Corrupt(f"its metadata names a missing tensor `{unknown[0]}`")
    # The tensors tile the byte buffer exactly: no gaps, no overlaps.
    data_size = size - 8 - length
    at = 0
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != at:
            raise ckpt._Corrupt(
                "its data overlaps another tensor or leaves a gap before it",
                entry.key,
            )
        at = entry.end
    if at != data_size:
        raise ckpt._Corrupt(
            f"its tensors hold {at} bytes of data, but {data_size} bytes follow "
            "the header"
        )
    return 8 + length, entries


def _read(file: Any, start: int, entry: _Entry) -> Any:
    """The value of ``entry``: a numpy array, or a jax key array."""
    nbytes = entry.end - entry.begin  # checked against the file size
    raw = np.empty(nbytes, np.uint8)
    file.seek(start + entry.begin)
    view = memoryview(raw)
    pos = 0
    while pos < nbytes:
        n = file.readinto(view[pos:])
        if not n:
            raise ckpt._Corrupt("the file ends early", entry.key)
        pos += n
    array = raw.view(entry.stored_dtype).reshape(entry.stored_shape)
    if sys.byteorder == "big" and array.dtype.itemsize > 1:
        array = array.byteswap()
    return ckpt._decode(array, entry.key, entry.dtype, entry.record)


def _error(path: str, reason: str, entry: str | None) -> ckpt.CheckpointError:
    return ckpt._checkpoint_error(path, reason, entry, who=_LOAD, what=_WHAT)


def load_safetensors(path: str | os.PathLike, like: T) -> T:
    """Read the safetensors file at ``path`` into the structure of ``like``.

    Args:
      path: a safetensors file, e.g. written by :func:`save_safetensors`.
        Files from other tools load too when their tensor names are
        ``like``'s key paths (``.layers[0].weight``).
      like: a template with the saved tree's structure, key paths, shapes and
        dtypes (e.g. a freshly built model, or ``jax.eval_shape`` of its
        constructor); its values are not used.

    Returns:
      A pytree with ``like``'s treedef and the file's values, bit-exact, each
      leaf of the kind of ``like``'s leaf (as :func:`pax.load`): typed PRNG
      keys rebuilt from their key data, weak types restored.

    Loading never runs code: the header is JSON and the data raw bytes. The
    whole header is validated, and checked against ``like``, before any
    tensor data is read.

    Raises:
      FileNotFoundError: if ``path`` does not exist (``IsADirectoryError``
        for a directory, ``PermissionError`` for an unreadable file).
      pax.CheckpointError: (a ``ValueError``) if the file is not a valid
        safetensors file: too short, a header that is not JSON or names an
        unknown dtype, offsets that do not tile the data exactly, duplicate
        names, malformed PAX metadata or a newer PAX format version. The
        message names the path and the tensor (``err.path``, ``err.entry``).
      ValueError: if a valid file does not fit ``like``, exactly as
        :func:`pax.load`: a leaf of ``like`` missing from the file, then a
        tensor ``like`` lacks, then a shape or dtype mismatch, naming the
        key.
      TypeError: for a template leaf that is not an array,
        ``jax.ShapeDtypeStruct`` or Python number.

    >>> import os, tempfile
    >>> import jax, jax.numpy as jnp, pax
    >>> tree = {"w": jnp.ones((2, 3), jnp.bfloat16), "key": jax.random.key(0)}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "w.safetensors")
    ...     pax.save_safetensors(path, tree)
    ...     back = pax.load_safetensors(path, tree)
    ...     pax.load_safetensors(path, {"w": jnp.ones((2, 4), jnp.bfloat16),
    ...                                 "key": tree["key"]})
    Traceback (most recent call last):
    ...
    ValueError: pax.load_safetensors: '...w.safetensors': entry `['w']` has
    shape (2, 3) in the file, but `like` has shape (2, 4).
    >>> back["w"].dtype, back["key"].dtype
    (dtype(bfloat16), key<fry>)
    """
    path = os.fsdecode(os.fspath(path))
    pairs, treedef, keys, templates = ckpt._flatten_like(like, _LOAD)
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR,
            f"{_LOAD}: the path is a directory, not a safetensors file",
            path,
        )
    with open(path, "rb") as file:
        try:
            start, entries = _parse_header(file)
        except ckpt._Corrupt as err:
            raise _error(path, err.reason, err.entry) from err
        except (*ckpt._READ_ERRORS, MemoryError) as err:
            raise _error(path, f"{type(err).__name__}: {err}", None) from err
        ckpt._check_fits(f"{_LOAD}: {path!r}", keys, templates, entries)
        values = []
        for key in keys:
            try:
                values.append(_read(file, start, entries[key]))
            except ckpt._Corrupt as err:
                raise _error(path, err.reason, key) from err
            except OSError as err:
                raise _error(path, f"{type(err).__name__}: {err}", key) from err
    leaves = [
        ckpt._restore(value, entries[key].weak, leaf)
        for value, key, (_, leaf) in zip(values, keys, pairs)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)

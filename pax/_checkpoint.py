"""Checkpoints: ``pax.save`` writes a pytree to a plain ``.npz``; ``pax.load``
reads it back into a template of the same structure.

The format (version 1)
======================

A checkpoint is an ordinary, uncompressed ``.npz`` archive (a zip of ``.npy``
files, exactly what ``numpy.savez`` writes), readable with
``numpy.load(path, allow_pickle=False)`` and no PAX at all:

* one entry per leaf, keyed by ``jax.tree_util.keystr`` of the leaf's key path,
  e.g. ``.layers[0].weight`` for a module or ``[1][0].mu.layers[0].weight``
  for the optax state in a ``(model, opt_state)`` tuple: the keys of
  :meth:`pax.Module.state_dict`. A tree that is a single leaf (a bare array)
  has the empty key path, whose ``keystr`` is ``""``: its entry is named
  ``""`` (the zip member ``.npy``);
* one reserved entry ``__pax__``, a 0-d unicode array holding a JSON object
  ``{"format": "pax.checkpoint", "version": 1, "leaves": {...}}``. ``leaves``
  has a record only for the entries that ``.npy`` cannot describe alone:

  - dtypes numpy has no ``.npy`` code for (``bfloat16``, ``float8_*``,
    ``int4``, ... from ``ml_dtypes``, which JAX uses) are stored as their raw
    bytes viewed as unsigned integers of the same item size:
    ``{"dtype": "bfloat16", "encoding": "bits"}``;
  - typed PRNG key arrays (``jax.random.key``) are stored as
    ``jax.random.key_data`` with the implementation's name:
    ``{"dtype": "key<fry>", "encoding": "key_data", "impl": "threefry2x32"}``.
    Raw keys (``jax.random.PRNGKey``) are plain ``uint32`` arrays;
  - jax arrays with JAX's *weak type* (made from Python scalars, e.g.
    ``jnp.array(0)``) add ``"weak_type": true`` (``{"dtype": "int32",
    "weak_type": true}``), so that a loaded model promotes dtypes and hits
    the ``jit`` cache exactly as the saved one did.

Every other leaf is stored in its own dtype. Values round-trip bit for bit
(NaN payloads and ``-0.0`` included). No entry ever needs pickle: ``save``
writes with ``allow_pickle=False`` and ``load`` reads with
``allow_pickle=False``, so **loading a file never executes code**; a file that
holds an object array is refused.

Writing is atomic: the archive is written to a temporary file next to
``path`` (``.<name>.<random>.tmp``), flushed and ``fsync``-ed, then renamed
onto ``path`` with ``os.replace``. A failure leaves an existing checkpoint
untouched and no temporary file behind. ``save`` creates no directories.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import stat
import struct
import zipfile
import zlib
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["save", "load"]

T = TypeVar("T")
PathLike = str | os.PathLike

FORMAT = "pax.checkpoint"
VERSION = 1
METADATA_KEY = "__pax__"

_NUMBERS = (bool, int, float, complex)
_NATIVE_KINDS = frozenset("biufc")
_BITS = "bits"
_KEY_DATA = "key_data"

# What a file that cannot be parsed raises while numpy reads it.
_READ_ERRORS = (
    ValueError,
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    RuntimeError,  # includes RecursionError (deep JSON), encrypted zip members
    NotImplementedError,  # unsupported zip compression method
    UnicodeError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
)


class _Corrupt(Exception):
    """Internal: the file is not a readable PAX checkpoint (reason in args)."""


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _is_native(dtype: np.dtype) -> bool:
    """True if ``.npy`` stores and restores ``dtype`` exactly, without pickle."""
    if dtype.kind not in _NATIVE_KINDS:
        return False
    descr = np.lib.format.dtype_to_descr(dtype)
    return np.lib.format.descr_to_dtype(descr) == dtype


@functools.lru_cache(maxsize=256)
def _bits_dtype(name: str) -> np.dtype | None:
    """The extended (``ml_dtypes``) dtype called ``name``, or None.

    Only scalar types registered with numpy under their own name qualify
    (``bfloat16``, ``float8_e4m3fn``, ``int4``, ...); ``np.dtype`` only parses
    the string, so an untrusted name cannot run code.
    """
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        return None
    if (
        dtype.kind != "V"
        or dtype.type is np.void
        or dtype.names is not None
        or dtype.subdtype is not None
        or dtype.name != name
        or dtype.itemsize not in (1, 2, 4, 8)
    ):
        return None
    return dtype


def _uint(itemsize: int) -> np.dtype:
    return np.dtype(f"=u{itemsize}")


@functools.cache
def _check_key_impl(name: str, dtype: Any) -> bool:
    """True if ``impl=name`` rebuilds keys of ``dtype`` (checked once per pair)."""
    try:
        return jax.random.key(0, impl=name).dtype == dtype
    except Exception:  # noqa: BLE001 - any failure means "not restorable"
        return False


def _key_impl_name(key: jax.Array) -> str:
    impl = jax.random.key_impl(key)
    # a str on recent JAX, a PRNGSpec (whose str is the name) on older ones
    return impl if isinstance(impl, str) else str(impl)


# ---------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------


def _encode_leaf(key: str, leaf: Any) -> tuple[np.ndarray, dict | None]:
    """The array stored for ``leaf`` and its metadata record (None if plain)."""
    weak = False
    if isinstance(leaf, jax.Array):
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            impl = _key_impl_name(leaf)
            if not _check_key_impl(impl, leaf.dtype):
                raise TypeError(
                    f"pax.save: leaf `{key}` is a PRNG key array of dtype "
                    f"{leaf.dtype} whose implementation ({impl!r}) cannot be "
                    "restored by name with `jax.random.wrap_key_data`."
                )
            data = np.asarray(jax.random.key_data(leaf))
            record = {"dtype": str(leaf.dtype), "encoding": _KEY_DATA, "impl": impl}
            return data, record
        array = np.asarray(leaf)
        weak = bool(getattr(leaf, "weak_type", False))
    elif isinstance(leaf, (np.ndarray, np.generic, *_NUMBERS)):
        array = np.asarray(leaf)
    else:
        raise TypeError(
            f"pax.save: leaf `{key}` is a {type(leaf).__name__}; a checkpoint "
            "stores jax arrays, numpy arrays and Python numbers (bool, int, "
            "float, complex) only."
        )
    dtype = array.dtype
    if _is_native(dtype):
        record = None
    elif _bits_dtype(dtype.name) == dtype:
        array = array.view(_uint(dtype.itemsize))
        record = {"encoding": _BITS}
    else:
        raise TypeError(
            f"pax.save: leaf `{key}` has dtype {dtype}, which a checkpoint cannot "
            "store without pickle (supported: bool, integers, floats and complex "
            "numbers, including bfloat16/float8/int4, and PRNG keys)."
        )
    if weak:
        record = {**(record or {}), "weak_type": True}
    if record is not None:
        record["dtype"] = dtype.name
    return array, record


def _as_weak(x: jax.Array) -> jax.Array:
    """``x`` weakly typed (as if made from a Python scalar), where JAX has a
    weak type of ``x``'s dtype (the default int, float and complex dtypes);
    otherwise ``x`` unchanged. Values are copied bit for bit."""
    zero = {"i": 0, "f": 0.0, "c": 0j}.get(np.dtype(x.dtype).kind)
    if zero is None:
        return x
    template = jnp.full(x.shape, zero)  # weak, in JAX's default dtype
    if template.dtype != x.dtype or not template.weak_type:
        return x
    return template.at[...].set(x)  # keeps the weak type of `template`


def _encode_tree(tree: Any) -> list[tuple[str, np.ndarray]]:
    """``[(entry name, array), ...]``, the metadata entry first."""
    entries: list[tuple[str, np.ndarray]] = []
    records: dict[str, dict] = {}
    seen: set[str] = set()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = jax.tree_util.keystr(path)
        if key == METADATA_KEY or key in seen:
            raise ValueError(
                f"pax.save: two leaves, or a leaf and the metadata entry, share "
                f"the key `{key}`; rename the dict key or attribute."
            )
        member = key + ".npy"
        if zipfile.ZipInfo(member).filename != member:
            raise ValueError(
                f"pax.save: leaf key `{key}` cannot be a zip member name "
                "(it contains a NUL byte or a path separator zip rewrites)."
            )
        seen.add(key)
        array, record = _encode_leaf(key, leaf)
        if record is not None:
            records[key] = record
        entries.append((key, array))
    meta = {"format": FORMAT, "version": VERSION, "leaves": records}
    return [(METADATA_KEY, np.array(json.dumps(meta, sort_keys=True))), *entries]


def _write_npz(file: Any, entries: list[tuple[str, np.ndarray]]) -> None:
    """Write ``entries`` as an uncompressed ``.npz`` (numpy's layout) to ``file``.

    Written member by member rather than with ``np.savez`` so that entry names
    never collide with its keyword arguments and pickle is never allowed.
    """
    with zipfile.ZipFile(
        file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True
    ) as archive:
        for name, array in entries:
            with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _create_temp(directory: str, base: str) -> tuple[str, Any]:
    """A new file next to the target, created with mode 0o666 minus the umask
    (the permissions a plain ``open(path, "wb")`` would give)."""
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_BINARY", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    for _ in range(100):
        name = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        return name, os.fdopen(fd, "wb")
    raise FileExistsError(
        f"pax.save: could not create a temporary file in {directory!r}"
    )


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be
    opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(path: PathLike, tree: Any) -> None:
    """Write ``tree`` to a checkpoint file at exactly ``path``.

    Args:
      path: the file to write. Nothing is appended to the name (``"ckpt"``
        stays ``"ckpt"``, unlike ``numpy.savez``). The directory must exist
        (``save`` creates none). An existing file is replaced atomically.
      tree: any pytree: a :class:`pax.Module`, a tuple or dict of modules and
        optax states, plain dicts of arrays. Its leaves must be jax arrays
        (typed PRNG keys included), numpy arrays or scalars, or Python
        ``bool``/``int``/``float``/``complex``.

    The file is an uncompressed ``.npz`` with one entry per leaf, keyed by
    ``jax.tree_util.keystr`` of the leaf's key path, plus a ``__pax__`` JSON
    metadata entry (format version, and the true dtype of entries stored as
    raw bits or key data). See the module docstring for the full format. It
    is written to a temporary file in the same directory, flushed, fsync-ed
    and renamed onto ``path``: readers see the old file or the new one, never
    a partial one, and after an error the old file is untouched and the
    temporary file removed. Replacing a file keeps its permission bits; a
    symbolic link at ``path`` is replaced by the file, not followed.

    Every leaf is copied to host memory, so a tree sharded over several
    devices is saved whole (single process).

    Raises:
      TypeError: for a leaf that is not an array or number, or whose dtype
        cannot be stored without pickle (object arrays, strings).
      ValueError: if two leaves have the same key.
      FileNotFoundError: if the directory of ``path`` does not exist.

    >>> import os, tempfile
    >>> import jax, numpy as np, pax
    >>> model = pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "model.ckpt")
    ...     pax.save(path, model)
    ...     print(os.listdir(tmp))
    ...     with np.load(path, allow_pickle=False) as npz:
    ...         print(npz.files, npz[".weight"].shape)
    ['model.ckpt']
    ['__pax__', '.weight', '.bias'] (2, 3)
    """
    path = os.fsdecode(os.fspath(path))
    entries = _encode_tree(tree)  # every error about the tree before any I/O
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"pax.save: the directory {directory!r} of {path!r} does not exist; "
            "pax.save creates no directories (use os.makedirs first)."
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"pax.save: {path!r} is a directory.")
    temp, file = _create_temp(directory, os.path.basename(path))
    try:
        with file:
            _write_npz(file, entries)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    _fsync_directory(directory)


# ---------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------


def _parse_metadata(entry: Any) -> dict[str, dict]:
    """The ``leaves`` records of a ``__pax__`` entry (raises ``_Corrupt``)."""
    if not (
        isinstance(entry, np.ndarray) and entry.shape == () and entry.dtype.kind == "U"
    ):
        raise _Corrupt("its `__pax__` entry is not a JSON string")
    try:
        meta = json.loads(str(entry[()]))
    except (ValueError, RecursionError) as err:
        raise _Corrupt(f"its `__pax__` entry is not valid JSON ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Corrupt("its `__pax__` entry does not describe a PAX checkpoint")
    version = meta.get("version")
    if type(version) is not int or version < 1:
        raise _Corrupt(f"invalid format version {version!r}")
    if version > VERSION:
        raise _Corrupt(
            f"it was written in checkpoint format version {version}, newer than "
            f"the version this PAX reads ({VERSION}); upgrade PAX"
        )
    records = meta.get("leaves")
    if not isinstance(records, dict) or not all(
        isinstance(r, dict)
        and isinstance(r.get("dtype"), str)
        and r.get("weak_type", False) in (True, False)
        for r in records.values()
    ):
        raise _Corrupt("its `__pax__` entry has malformed leaf records")
    return records


def _decode_entry(name: str, array: Any, record: dict | None) -> Any:
    """The stored value of entry ``name``: a numpy array, or a jax key array."""
    if not isinstance(array, np.ndarray):
        raise _Corrupt(f"entry `{name}` is not a .npy array")
    encoding = None if record is None else record.get("encoding")
    if encoding is None:
        if not _is_native(array.dtype):
            raise _Corrupt(f"entry `{name}` has dtype {array.dtype} and no record")
        if record is not None and record["dtype"] != array.dtype.name:
            raise _Corrupt(f"entry `{name}` does not have its recorded dtype")
        return array
    if encoding == _BITS:
        dtype = _bits_dtype(record["dtype"])
        if dtype is None:
            raise _Corrupt(f"entry `{name}` has unknown dtype {record['dtype']!r}")
        if array.dtype.kind != "u" or array.dtype.itemsize != dtype.itemsize:
            raise _Corrupt(
                f"entry `{name}` holds {array.dtype}, not the raw bits of {dtype}"
            )
        return array.astype(_uint(dtype.itemsize), copy=False).view(dtype)
    if encoding == _KEY_DATA:
        impl = record.get("impl")
        if not isinstance(impl, str) or not _is_native(array.dtype):
            raise _Corrupt(f"entry `{name}` has a malformed key record")
        try:
            keys = jax.random.wrap_key_data(array, impl=impl)
        except Exception as err:  # noqa: BLE001 - bad data or unknown impl
            raise _Corrupt(f"entry `{name}` is not valid {impl!r} key data") from err
        if str(keys.dtype) != record["dtype"]:
            raise _Corrupt(f"entry `{name}` is not valid {impl!r} key data")
        return keys
    raise _Corrupt(f"entry `{name}` has unknown encoding {encoding!r}")


def _read(path: str) -> dict[str, tuple[Any, bool]]:
    """Every entry of the checkpoint at ``path``, decoded, in file order, with
    its weak-type flag."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except EOFError as err:
        raise _corrupt_error(path, "the file is empty or ends early") from err
    except ValueError as err:  # numpy's "contains pickled data": not npz/npy
        raise _corrupt_error(path, "it is not an .npz archive") from err
    except _READ_ERRORS as err:
        raise _corrupt_error(path, f"{type(err).__name__}: {err}") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise _corrupt_error(path, "it is a single .npy array, not an .npz archive")
    with npz:
        try:
            names = list(npz.files)
            if METADATA_KEY not in names:
                raise _Corrupt(
                    "it has no `__pax__` metadata entry (a plain .npz, not "
                    "written by pax.save)"
                )
            if len(set(names)) != len(names):
                raise _Corrupt("it has duplicate entries")
            records = _parse_metadata(npz[METADATA_KEY])
            names.remove(METADATA_KEY)
            unknown = [k for k in records if k not in names]
            if unknown:
                raise _Corrupt(f"its metadata names a missing entry `{unknown[0]}`")
            return {
                k: (
                    _decode_entry(k, npz[k], records.get(k)),
                    records.get(k, {}).get("weak_type", False),
                )
                for k in names
            }
        except _Corrupt as err:
            raise _corrupt_error(path, str(err)) from err
        except _READ_ERRORS as err:
            raise _corrupt_error(path, f"{type(err).__name__}: {err}") from err


def _corrupt_error(path: str, reason: str) -> ValueError:
    return ValueError(
        f"pax.load: {path!r} is not a PAX checkpoint or is truncated or "
        f"corrupt: {reason}."
    )


def _template(key: str, leaf: Any) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype ``like``'s leaf ``key`` expects."""
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        return tuple(leaf.shape), leaf.dtype
    if isinstance(leaf, _NUMBERS):
        return (), np.asarray(leaf).dtype
    raise TypeError(
        f"pax.load: leaf `{key}` of `like` is a {type(leaf).__name__}; template "
        "leaves must be jax arrays, jax.ShapeDtypeStruct, numpy arrays or "
        "Python numbers."
    )


def _multi_device_sharding(leaf: Any) -> Any:
    """``leaf``'s sharding if it spans several devices, else None.

    Single-device results stay uncommitted (default device), as ``jnp.asarray``
    makes them, so they move freely into ``jit``/``pmap`` calls.
    """
    try:
        sharding = leaf.sharding
        return sharding if len(sharding.device_set) > 1 else None
    except Exception:  # noqa: BLE001 - tracers, or a ShapeDtypeStruct without one
        return None


def _restore(value: Any, weak: bool, leaf: Any) -> Any:
    """``value`` in the kind of container ``leaf`` is (jax, numpy, Python)."""
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
        out = value if isinstance(value, jax.Array) else jnp.asarray(value)
        if weak:
            out = _as_weak(out)
        sharding = _multi_device_sharding(leaf)
        return out if sharding is None else jax.device_put(out, sharding)
    if isinstance(leaf, np.ndarray):
        return value
    if isinstance(leaf, np.generic):
        return value[()]
    return type(leaf)(value.item())


def load(path: PathLike, like: T) -> T:
    """Read the checkpoint at ``path`` into the structure of ``like``.

    Args:
      path: a file written by :func:`save`.
      like: a template with the structure of the saved tree: the same
        treedef (module types, static fields), key paths, shapes and dtypes,
        e.g. a freshly built model, or ``jax.eval_shape`` of its constructor.
        Its values are not used.

    Returns:
      A pytree with ``like``'s treedef (so modules keep ``like``'s static
      fields, such as training mode) and the file's values, bit-exact. Each
      leaf has the kind of the template leaf it replaces: a jax array (typed
      PRNG keys are rebuilt with ``jax.random.wrap_key_data``; a template
      array sharded over several devices gives an array with that sharding,
      otherwise the default device) for a jax array or
      ``jax.ShapeDtypeStruct``; a numpy array or scalar for a numpy one (so
      ``float64`` stays ``float64`` whether or not ``jax_enable_x64`` is on);
      a Python ``bool``/``int``/``float``/``complex`` for a Python number.

    The file is read with ``numpy.load(path, allow_pickle=False)``: loading
    never executes code, and a file holding an object array is refused.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if the file is not a PAX checkpoint (empty, truncated,
        corrupt, not an ``.npz``, a plain ``.npz`` without ``__pax__``
        metadata, pickled entries) or does not fit ``like``. Checked in this
        order, the message names the first offending key path: a leaf of
        ``like`` missing from the file, then an entry of the file that
        ``like`` lacks, then leaf by leaf in ``like``'s order a shape
        mismatch or a dtype mismatch (both shapes or dtypes are shown).
      TypeError: for a template leaf that is not an array, a
        ``jax.ShapeDtypeStruct`` or a Python number.

    >>> import os, tempfile
    >>> import jax, pax
    >>> model = pax.Linear(2, 3, rng_key=jax.random.PRNGKey(0))
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "model.ckpt")
    >>> pax.save(path, model)
    >>> restored = pax.load(path, pax.Linear(2, 3, rng_key=jax.random.PRNGKey(1)))
    >>> bool((restored.weight == model.weight).all())
    True
    >>> pax.load(path, pax.Linear(2, 4))
    Traceback (most recent call last):
    ...
    ValueError: pax.load: '...model.ckpt': entry `.weight` has shape (2, 3) in
    the file, but `like` has shape (2, 4).
    >>> tmp.cleanup()
    """
    path = os.fsdecode(os.fspath(path))
    stored = _read(path)
    pairs, treedef = jax.tree_util.tree_flatten_with_path(like)
    keys = [jax.tree_util.keystr(p) for p, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"pax.load: two leaves of `like` share the key `{dup}`.")
    where = f"pax.load: {path!r}"
    for key in keys:
        if key not in stored:
            raise ValueError(
                f"{where}: `like` has the leaf `{key}`, which the file does not "
                "hold (the file was saved from a different structure)."
            )
    known = set(keys)
    for key in stored:
        if key not in known:
            raise ValueError(
                f"{where}: the file holds the entry `{key}`, which is not a leaf "
                "of `like` (the file was saved from a different structure)."
            )
    leaves = []
    for key, (_, leaf) in zip(keys, pairs):
        value, weak = stored[key]
        shape, dtype = _template(key, leaf)
        if tuple(value.shape) != shape:
            raise ValueError(
                f"{where}: entry `{key}` has shape {tuple(value.shape)} in the "
                f"file, but `like` has shape {shape}."
            )
        if value.dtype != dtype:
            raise ValueError(
                f"{where}: entry `{key}` has dtype {value.dtype} in the file, "
                f"but `like` has dtype {dtype}."
            )
        leaves.append(_restore(value, weak, leaf))
    return jax.tree_util.tree_unflatten(treedef, leaves)

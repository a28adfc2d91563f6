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
writes with ``allow_pickle=False`` and ``load`` parses ``.npy`` headers
itself and never unpickles, so **loading a file never executes code**; a file
that holds an object array is refused.

Reading untrusted files
=======================

``load`` treats the file as hostile until proven otherwise. It opens the zip
with :mod:`zipfile` (members must be stored uncompressed, lie inside the file
and have consistent sizes, so no member can expand: no zip bombs), reads the
``__pax__`` metadata and then only the ``.npy`` *header* of every entry
(``numpy.lib.format.read_array_header_*``, at most 10,000 bytes each). Every
entry's shape and dtype, and the byte count they imply, are checked against
the zip directory and against ``like`` before any array data is read or
memory for it allocated. The data is then read with zip's CRC-32 check, so a
flipped byte anywhere in a member (header, data or metadata) is detected
rather than loaded as a wrong value.

Errors: anything wrong with the file itself (empty, truncated, not a zip, a
plain ``.npz`` without ``__pax__``, corrupt zip structures, bad CRC, a bad
or inconsistent ``.npy`` header, pickled data, bad metadata) raises
:class:`pax.CheckpointError`, a ``ValueError`` subclass whose message names
the path and, where there is one, the entry. A *valid* checkpoint that does
not fit ``like`` (missing or extra entries, other shapes or dtypes) raises a
plain ``ValueError`` naming the first offending key path: the file is fine,
the template is not. A shape or dtype mismatch is only reported after the
entry's CRC-32 was verified, so a corrupted header is never mistaken for a
mismatch. A missing file raises ``FileNotFoundError``, a directory
``IsADirectoryError``, an unreadable file ``PermissionError`` (what ``open``
raises).

Writing
=======

Writing is atomic: the archive is written to a temporary file next to
``path`` (``.<name>.<12 hex digits>.tmp``), flushed and ``fsync``-ed, then
renamed onto ``path`` with ``os.replace``. A failure leaves an existing
checkpoint untouched and no temporary file behind. ``save`` creates no
directories.

A process killed while writing (``kill -9``, power loss) cannot remove its
temporary file. The next ``save`` to the same ``path`` removes such stale
temporary files of that target before writing: only regular files named
exactly ``.<name>.<12 lowercase hex digits>.tmp`` that no live process is
writing. The writer holds an exclusive ``flock`` on its temporary file while
it writes (the kernel drops it when the process dies, however it dies); a
file whose lock can be taken, and that has not been modified for
2 seconds, is stale. Where ``flock`` is unavailable
(Windows) the age rule applies alone, and the operating system refuses to
remove a file another process has open.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import math
import os
import re
import secrets
import stat
import struct
import time
import zipfile
import zlib
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckpointError", "save", "load"]

T = TypeVar("T")
PathLike = str | os.PathLike

FORMAT = "pax.checkpoint"
VERSION = 1
METADATA_KEY = "__pax__"

_NUMBERS = (bool, int, float, complex)
_NATIVE_KINDS = frozenset("biufc")
_BITS = "bits"
_KEY_DATA = "key_data"

# Temporary files of a save to `<dir>/<name>`: `<dir>/.<name>.<12 hex>.tmp`.
_TEMP_HEX = 12
# A temporary file untouched for this long, whose lock is free, is stale.
_STALE_AFTER_S = 2.0
# Bytes read at a time from a zip member.
_CHUNK = 1 << 24
# numpy's own limit on a .npy header (its default for untrusted files).
_MAX_HEADER = 10_000

# What parsing a malformed file raises (from zipfile, numpy's header parser,
# json, struct, zlib, and the OS when a corrupt offset makes it seek before
# the start of the file).
_READ_ERRORS = (
    ValueError,  # includes json.JSONDecodeError and UnicodeDecodeError
    EOFError,
    KeyError,
    IndexError,
    TypeError,
    OverflowError,
    RuntimeError,  # includes RecursionError (deep JSON), encrypted zip members
    NotImplementedError,  # unsupported zip features
    OSError,  # e.g. [Errno 22] Invalid argument: seek to a negative offset
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
)


class CheckpointError(ValueError):
    """The file given to :func:`pax.load` is not a valid PAX checkpoint.

    Raised for every defect of the file itself: empty, truncated, not a zip
    archive, a plain ``.npz`` without PAX metadata, a corrupt zip structure or
    CRC-32, a malformed or inconsistent ``.npy`` header, compressed or pickled
    entries, unreadable metadata, or a format version newer than this PAX.
    A valid checkpoint that does not fit the template ``like`` raises a plain
    ``ValueError`` instead.

    Attributes:
      path: the file, as given to :func:`pax.load` (a ``str``).
      entry: the key path of the offending entry (e.g. ``".weight"``), or
        ``None`` when the defect is not in one entry (e.g. not a zip).

    >>> import os, tempfile, pax
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "empty.ckpt")
    ...     open(path, "wb").close()
    ...     try:
    ...         pax.load(path, pax.Linear(2, 3))
    ...     except pax.CheckpointError as err:
    ...         print(err.entry, "|", str(err).split(": ", 2)[-1])
    None | the file is empty.
    """

    def __init__(
        self, message: str, *, path: str | None = None, entry: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.entry = entry


class _Corrupt(Exception):
    """Internal: the file is malformed (reason, and the entry if any)."""

    def __init__(self, reason: str, entry: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


def _checkpoint_error(
    path: str,
    reason: str,
    entry: str | None,
    *,
    who: str = "pax.load",
    what: str = "a PAX checkpoint",
) -> CheckpointError:
    where = "" if entry is None else f"entry `{entry}`: "
    return CheckpointError(
        f"{who}: {path!r} is not {what} or is truncated or corrupt: {where}{reason}.",
        path=path,
        entry=entry,
    )


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


def _encode_leaf(
    key: str, leaf: Any, who: str = "pax.save"
) -> tuple[np.ndarray, dict | None]:
    """The array stored for ``leaf`` and its metadata record (None if plain).

    Dtypes ``.npy`` has no code for are stored as raw bits (``"encoding":
    "bits"``); ``who`` names the public function in error messages."""
    weak = False
    if isinstance(leaf, jax.Array):
        if not leaf.is_fully_addressable:
            raise ValueError(
                f"{who}: leaf `{key}` is an array spread over the devices of "
                f"several processes (not fully addressable from process "
                f"{jax.process_index()}); pax.save writes one file from one "
                "process. Save it with pax.checkpoint.Manager (Orbax), where "
                "each process writes its own shards."
            )
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            impl = _key_impl_name(leaf)
            if not _check_key_impl(impl, leaf.dtype):
                raise TypeError(
                    f"{who}: leaf `{key}` is a PRNG key array of dtype "
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
            f"{who}: leaf `{key}` is a {type(leaf).__name__}; a checkpoint "
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
            f"{who}: leaf `{key}` has dtype {dtype}, which a checkpoint cannot "
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


def _temp_pattern(base: str) -> re.Pattern:
    """The exact names of ``save``'s temporary files for target ``base``."""
    return re.compile(re.escape(f".{base}.") + f"[0-9a-f]{{{_TEMP_HEX}}}" + r"\.tmp")


def _lock(fd: int) -> bool:
    """Take an exclusive, non-blocking ``flock`` on ``fd``; False if another
    open file holds one (or locks are unsupported: then nothing is known)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _remove_if_stale(name: str, now: float) -> None:
    """Remove the temporary file ``name`` if no live process is writing it."""
    try:
        before = os.lstat(name)
    except OSError:
        return
    if not stat.S_ISREG(before.st_mode) or now - before.st_mtime < _STALE_AFTER_S:
        return  # a symlink, directory or FIFO is not ours; a young file may be
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(name, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        now_st = os.fstat(fd)
        same = (now_st.st_dev, now_st.st_ino) == (before.st_dev, before.st_ino)
        if same and _lock(fd):  # the lock is free: its writer is gone
            with contextlib.suppress(OSError):
                os.remove(name)  # fails on Windows if another process has it open
    finally:
        os.close(fd)


def _remove_stale_temps(directory: str, base: str) -> None:
    """Remove temporary files that earlier saves to ``base`` left behind when
    they were killed; never anything else. Errors are ignored (best effort)."""
    pattern = _temp_pattern(base)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    now = time.time()
    for name in names:
        if pattern.fullmatch(name):
            _remove_if_stale(os.path.join(directory, name), now)


def _create_temp(directory: str, base: str, who: str = "pax.save") -> tuple[str, Any]:
    """A new, locked file next to the target, created with mode 0o666 minus
    the umask (the permissions a plain ``open(path, "wb")`` would give)."""
    flags = (
        os.O_WRONLY
        | os.O_CREAT
        | os.O_EXCL
        | getattr(os, "O_BINARY", 0)
        | getattr(os, "O_CLOEXEC", 0)
    )
    for _ in range(100):
        name = os.path.join(
            directory, f".{base}.{secrets.token_hex(_TEMP_HEX // 2)}.tmp"
        )
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        _lock(fd)  # held until the file is closed, or the process dies
        return name, os.fdopen(fd, "wb")
    raise FileExistsError(f"{who}: could not create a temporary file in {directory!r}")


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


def _check_replaceable(path: str, who: str = "pax.save") -> None:
    """Refuse to replace an existing file that ``open(path, "w")`` could not
    write; a file with no write permission bit at all is refused even where
    the caller could write it anyway (root)."""
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR, f"{who}: the target is a directory, not a file", path
        )
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        return  # a symbolic link is replaced by the file, not followed
    if os.access in os.supports_effective_ids:
        writable = os.access(path, os.W_OK, effective_ids=True)
    else:
        writable = os.access(path, os.W_OK)
    if not writable or not st.st_mode & 0o222:
        raise PermissionError(
            errno.EACCES,
            f"{who}: the existing file is read-only (no write permission), so "
            "it is not replaced; make it writable (chmod u+w) or remove it first",
            path,
        )


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
    is written to a temporary file ``.<name>.<12 hex digits>.tmp`` in the same
    directory, flushed, fsync-ed and renamed onto ``path``: readers see the
    old file or the new one, never a partial one, and after an error the old
    file is untouched and the temporary file removed. Replacing a file keeps
    its permission bits; a symbolic link at ``path`` is replaced by the file,
    not followed.

    Before writing, stale temporary files that earlier saves to the same
    ``path`` left behind when their process was killed are removed: files
    with exactly that name pattern, unmodified for 2 seconds, that no live
    process is writing (a writer holds an ``flock`` on its file; see the
    module docstring). Nothing else is touched.

    A file that ``open(path, "w")`` could not write is not replaced: an
    existing regular file without write permission raises
    ``PermissionError``. Stricter than ``open``, a file with no write bit at
    all (e.g. ``chmod 444``) is refused even for root, who could write it.

    Every leaf is copied to host memory, so a tree sharded over several
    devices is saved whole (single process). Arrays spread over several
    processes are refused: save those with :class:`pax.checkpoint.Manager`.

    Raises:
      TypeError: for a leaf that is not an array or number, or whose dtype
        cannot be stored without pickle (object arrays, strings).
      ValueError: if two leaves have the same key, or a leaf is not fully
        addressable from this process (checked before writing).
      FileNotFoundError: if the directory of ``path`` does not exist.
      IsADirectoryError: if ``path`` is a directory.
      PermissionError: if ``path`` is a read-only file, or the directory is
        not writable (``filename`` is ``path``, not the temporary file).
      OSError: other failures to write (disk full, read-only file system),
        the existing file untouched.

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
    _write_atomically(path, lambda file: _write_npz(file, entries))


def _write_atomically(path: str, write: Any, who: str = "pax.save") -> None:
    """Call ``write(file)`` on a new temporary file next to ``path``, then
    flush, ``fsync`` and rename it onto ``path`` (see the module docstring);
    on any error the temporary file is removed and ``path`` left untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"{who}: the directory {directory!r} of {path!r} does not exist; "
            f"{who} creates no directories (use os.makedirs first)."
        )
    _check_replaceable(path, who)
    base = os.path.basename(path)
    _remove_stale_temps(directory, base)
    try:
        temp, file = _create_temp(directory, base, who)
    except OSError as err:
        if err.errno is None:
            raise
        raise type(err)(
            err.errno,
            f"{who}: cannot write into the directory {directory!r} (the "
            f"file is written to a temporary file there, then renamed "
            f"onto the target): {err.strerror}",
            path,
        ) from err
    try:
        with file:
            write(file)
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


@functools.lru_cache(maxsize=64)
def _key_layout(impl: str) -> tuple[Any, tuple[int, ...], np.dtype] | None:
    """``(key dtype, trailing key-data shape, key-data dtype)`` of the keys of
    the PRNG implementation called ``impl``, or None for an unknown name.
    Computed abstractly (nothing is drawn); ``impl`` is only looked up."""
    try:
        keys = jax.eval_shape(lambda: jax.random.key(0, impl=impl))
        data = jax.eval_shape(jax.random.key_data, keys)
    except Exception:  # noqa: BLE001 - any failure means "not restorable"
        return None
    return keys.dtype, tuple(data.shape), np.dtype(data.dtype)


class _Entry:
    """One ``.npy`` member, as its header describes it (no data read)."""

    __slots__ = (
        "key",
        "info",
        "header_len",
        "stored_shape",
        "stored_dtype",
        "fortran",
        "shape",
        "dtype",
        "record",
    )

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self, name, value)

    @property
    def weak(self) -> bool:
        return bool(self.record and self.record.get("weak_type", False))


def _parse_metadata(
    text: str, fmt: str = FORMAT, version_now: int = VERSION
) -> dict[str, dict]:
    """The ``leaves`` records of the ``__pax__`` JSON text (raises ``_Corrupt``)
    of a file in format ``fmt`` (at most version ``version_now``)."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _Corrupt(f"not valid JSON ({err})", METADATA_KEY) from err
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise _Corrupt(f"it does not describe a {fmt} file", METADATA_KEY)
    version = meta.get("version")
    if type(version) is not int or version < 1:
        raise _Corrupt(f"invalid format version {version!r}", METADATA_KEY)
    if version > version_now:
        raise _Corrupt(
            f"the file was written in {fmt} format version {version}, newer "
            f"than the version this PAX reads ({version_now}); upgrade PAX",
            METADATA_KEY,
        )
    records = meta.get("leaves")
    if not isinstance(records, dict) or not all(
        isinstance(r, dict)
        and isinstance(r.get("dtype"), str)
        and r.get("weak_type", False) in (True, False)
        for r in records.values()
    ):
        raise _Corrupt("malformed leaf records", METADATA_KEY)
    return records


def _read_exactly(member: Any, n: int, key: str) -> bytes:
    data = member.read(n)
    if len(data) != n:
        raise _Corrupt("the entry ends early", key)
    return data


def _read_header(member: Any, key: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header length)`` of a ``.npy`` member,
    reading only its header (at most ``_MAX_HEADER`` bytes of it)."""
    prefix = _read_exactly(member, 8, key)
    if prefix[:6] != np.lib.format.MAGIC_PREFIX:
        raise _Corrupt("it is not a .npy array", key)
    width = {(1, 0): 2, (2, 0): 4}.get((prefix[6], prefix[7]))
    if width is None:
        raise _Corrupt(f"unsupported .npy format version {prefix[6]}.{prefix[7]}", key)
    raw_len = _read_exactly(member, width, key)
    length = int.from_bytes(raw_len, "little")
    if length > _MAX_HEADER:
        raise _Corrupt(
            f"its .npy header claims {length} bytes (at most {_MAX_HEADER})", key
        )
    header = _read_exactly(member, length, key)
    buffer = io.BytesIO(prefix + raw_len + header)
    version = np.lib.format.read_magic(buffer)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran, dtype = read(buffer, max_header_size=_MAX_HEADER)
    if not all(type(n) is int and n >= 0 for n in shape):
        raise _Corrupt(f"its .npy header has an invalid shape {shape}", key)
    return tuple(shape), bool(fortran), dtype, 8 + width + length


def _logical(key: str, shape: tuple, dtype: np.dtype, record: dict | None) -> tuple:
    """The shape and dtype of the leaf stored as a ``shape``/``dtype`` array."""
    if dtype.hasobject:
        raise _Corrupt(
            "it is an object array (pickled Python objects), which pax.load "
            "never unpickles",
            key,
        )
    encoding = None if record is None else record.get("encoding")
    if encoding is None:
        if not _is_native(dtype):
            raise _Corrupt(f"it has dtype {dtype} and no metadata record", key)
        if record is not None and record["dtype"] != dtype.name:
            raise _Corrupt(f"it holds {dtype}, not its recorded dtype", key)
        return shape, dtype
    if encoding == _BITS:
        true_dtype = _bits_dtype(record["dtype"])
        if true_dtype is None:
            raise _Corrupt(f"unknown dtype {record['dtype']!r}", key)
        if dtype.kind != "u" or dtype.itemsize != true_dtype.itemsize:
            raise _Corrupt(f"it holds {dtype}, not the raw bits of {true_dtype}", key)
        return shape, true_dtype
    if encoding == _KEY_DATA:
        impl = record.get("impl")
        layout = _key_layout(impl) if isinstance(impl, str) else None
        if layout is None:
            raise _Corrupt(f"unknown PRNG implementation {impl!r}", key)
        key_dtype, data_shape, data_dtype = layout
        n = len(data_shape)
        if (
            str(key_dtype) != record["dtype"]
            or (dtype.kind, dtype.itemsize) != (data_dtype.kind, data_dtype.itemsize)
            or len(shape) < n
            or shape[len(shape) - n :] != data_shape
        ):
            raise _Corrupt(f"it holds {dtype}{list(shape)}, not {impl!r} key data", key)
        return shape[: len(shape) - n], key_dtype
    raise _Corrupt(f"unknown encoding {encoding!r}", key)


_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L2Q2Q")


def _declared_entry_count(file: Any, size: int) -> int:
    """The member count the zip's end record declares (PKWARE APPNOTE 4.3.16
    and, for zip64, 4.3.14-15): checked against the members ``zipfile``
    parsed, so that a damaged directory cannot silently drop members."""
    tail_len = min(size, _EOCD.size + 0xFFFF)
    file.seek(size - tail_len)
    tail = file.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    while at >= 0:  # the record whose comment runs exactly to the end
        if at + _EOCD.size <= len(tail):
            record = _EOCD.unpack_from(tail, at)
            if at + _EOCD.size + record[-1] == len(tail):
                break
        at = tail.rfind(b"PK\x05\x06", 0, at)
    else:
        raise _Corrupt("it has no zip end-of-directory record")
    count = record[4]  # total number of entries
    locator_at = size - tail_len + at - _ZIP64_LOCATOR.size
    if count == 0xFFFF and locator_at >= 0:
        file.seek(locator_at)
        locator = _ZIP64_LOCATOR.unpack(file.read(_ZIP64_LOCATOR.size))
        if locator[0] == b"PK\x06\x07":
            file.seek(locator[2])
            raw = file.read(_ZIP64_EOCD.size)
            if len(raw) != _ZIP64_EOCD.size or raw[:4] != b"PK\x06\x06":
                raise _Corrupt("its zip64 end-of-directory record is damaged")
            count = _ZIP64_EOCD.unpack(raw)[7]
    file.seek(0)
    return count


class _Reader:
    """A checkpoint opened for reading: zip directory, metadata and ``.npy``
    headers checked, no array data read yet. ``entry`` is the entry being
    read, for error messages."""

    def __init__(self, file: Any) -> None:
        self.file = file
        self.entry: str | None = None

    def parse(self) -> _Reader:
        file = self.file
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise _Corrupt("the file is empty")
        head = file.read(8)
        file.seek(0)
        if head.startswith(np.lib.format.MAGIC_PREFIX):
            raise _Corrupt("it is a single .npy array, not an .npz archive")
        if not head.startswith(b"PK"):
            raise _Corrupt("it is not an .npz (zip) archive")
        self.archive = zipfile.ZipFile(file)
        declared = _declared_entry_count(file, size)
        infos = self._directory(size)
        if declared != len(self.archive.infolist()):
            raise _Corrupt(
                f"its zip directory lists {len(self.archive.infolist())} members, "
                f"but its end record declares {declared}"
            )
        if METADATA_KEY not in infos:
            raise _Corrupt(
                "it has no `__pax__` metadata entry (a plain .npz, not written "
                "by pax.save)"
            )
        records = self._metadata(infos.pop(METADATA_KEY))
        unknown = [k for k in records if k not in infos]
        if unknown:
            raise _Corrupt(f"its metadata names a missing entry `{unknown[0]}`")
        self.entries: dict[str, _Entry] = {}
        for key, info in infos.items():
            self.entry = key
            with self.archive.open(info) as member:
                shape, fortran, dtype, header_len = _read_header(member, key)
            logical_shape, logical_dtype = _logical(key, shape, dtype, records.get(key))
            nbytes = math.prod(shape) * dtype.itemsize
            if header_len + nbytes != info.file_size:
                raise _Corrupt(
                    f"its .npy header declares {dtype}{list(shape)} ({nbytes} "
                    f"bytes of data), but the entry holds "
                    f"{info.file_size - header_len} bytes",
                    key,
                )
            self.entries[key] = _Entry(
                key=key,
                info=info,
                header_len=header_len,
                stored_shape=shape,
                stored_dtype=dtype,
                fortran=fortran,
                shape=logical_shape,
                dtype=logical_dtype,
                record=records.get(key),
            )
        self.entry = None
        return self

    def _directory(self, size: int) -> dict[str, zipfile.ZipInfo]:
        """The zip members by entry name, each checked to be a stored
        (uncompressed) member that lies inside the file."""
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in self.archive.infolist():
            name = info.orig_filename
            if not name.endswith(".npy"):
                raise _Corrupt(f"it holds the member {name!r}, not a .npy entry")
            key = self.entry = name[: -len(".npy")]
            if key in infos:
                raise _Corrupt("two zip members have its name", key)
            if info.flag_bits & 0x1:
                raise _Corrupt("it is encrypted", key)
            if info.compress_type != zipfile.ZIP_STORED:
                raise _Corrupt(
                    f"it is compressed (zip method {info.compress_type}); "
                    "pax.save writes uncompressed members, and pax.load reads "
                    "no others (none can expand beyond the file)",
                    key,
                )
            end = (
                info.header_offset
                + 30  # the fixed part of the local file header
                + len(name.encode("utf-8", "surrogateescape"))
                + info.compress_size
            )
            if info.compress_size != info.file_size or info.header_offset < 0:
                raise _Corrupt(
                    f"its zip sizes disagree ({info.compress_size} bytes stored, "
                    f"{info.file_size} declared)",
                    key,
                )
            if end > size:
                raise _Corrupt(
                    f"it declares {info.file_size} bytes, past the end of the "
                    f"file ({size} bytes)",
                    key,
                )
            infos[key] = info
        self.entry = None
        return infos

    def _metadata(self, info: zipfile.ZipInfo) -> dict[str, dict]:
        self.entry = METADATA_KEY
        with self.archive.open(info) as member:
            shape, _, dtype, header_len = _read_header(member, METADATA_KEY)
            if not (
                shape == ()
                and dtype.kind == "U"
                and dtype.names is None
                and dtype.subdtype is None
                and header_len + dtype.itemsize == info.file_size
            ):
                raise _Corrupt("it is not a JSON string", METADATA_KEY)
            raw = _read_exactly(member, dtype.itemsize, METADATA_KEY)
            if member.read(1):  # also makes zipfile check the CRC-32
                raise _Corrupt("it is longer than its header says", METADATA_KEY)
        text = str(np.frombuffer(raw, dtype)[0])
        return _parse_metadata(text)

    def verify(self, entry: _Entry) -> None:
        """Read ``entry`` to its end, checking its CRC-32 (``BadZipFile``)."""
        with self.archive.open(entry.info) as member:
            while member.read(_CHUNK):
                pass

    def read(self, entry: _Entry) -> Any:
        """The value of ``entry``: a numpy array, or a jax key array."""
        nbytes = entry.info.file_size - entry.header_len
        raw = np.empty(nbytes, np.uint8)  # size checked against the file
        view = memoryview(raw)
        with self.archive.open(entry.info) as member:
            _read_exactly(member, entry.header_len, entry.key)
            pos = 0
            while pos < nbytes:
                chunk = member.read(min(_CHUNK, nbytes - pos))
                if not chunk:
                    raise _Corrupt("the entry ends early", entry.key)
                view[pos : pos + len(chunk)] = chunk
                pos += len(chunk)
            if member.read(1):  # the CRC-32 was checked at the end
                raise _Corrupt("it is longer than its header says", entry.key)
        shape = entry.stored_shape
        array = raw.view(entry.stored_dtype)
        array = array.reshape(shape[::-1]).T if entry.fortran else array.reshape(shape)
        return _decode(array, entry.key, entry.dtype, entry.record)


def _decode(array: np.ndarray, key: str, dtype: Any, record: dict | None) -> Any:
    """The leaf value stored as ``array`` (checked by :func:`_logical` to hold
    a ``dtype`` leaf): ``array`` itself, or its bits viewed as ``dtype``, or
    the jax key array its key data describes."""
    record = record or {}
    if record.get("encoding") == _BITS:
        return array.astype(_uint(dtype.itemsize), copy=False).view(dtype)
    if record.get("encoding") == _KEY_DATA:
        data_dtype = _key_layout(record["impl"])[2]
        try:
            return jax.random.wrap_key_data(
                array.astype(data_dtype, copy=False), impl=record["impl"]
            )
        except Exception as err:  # noqa: BLE001 - data the impl refuses
            raise _Corrupt(f"not valid {record['impl']!r} key data", key) from err
    return array


def _template(
    key: str, leaf: Any, who: str = "pax.load"
) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype ``like``'s leaf ``key`` expects."""
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct, np.ndarray, np.generic)):
        return tuple(leaf.shape), leaf.dtype
    if isinstance(leaf, _NUMBERS):
        return (), np.asarray(leaf).dtype
    raise TypeError(
        f"{who}: leaf `{key}` of `like` is a {type(leaf).__name__}; template "
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


# What reading a member's data can raise for a damaged file.
_DATA_ERRORS = (
    _Corrupt,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
)


def _open_checked(path: str, file: Any) -> _Reader:
    """``_Reader(file)``, every defect of the file raised as CheckpointError."""
    reader = _Reader(file)
    try:
        return reader.parse()
    except _Corrupt as err:
        raise _checkpoint_error(path, err.reason, err.entry) from err
    except (*_READ_ERRORS, MemoryError) as err:
        reason = f"{type(err).__name__}: {err}"
        raise _checkpoint_error(path, reason, reader.entry) from err


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

    The file is treated as untrusted: loading never executes code (nothing
    is unpickled; an object array is refused), the shape and dtype of every
    entry are read from its ``.npy`` header and checked against the zip
    directory and ``like`` before any data is read (a hostile header cannot
    make ``load`` allocate more than ``like`` asks for), and every entry's
    CRC-32 is checked while it is read, so a damaged file raises rather than
    loading wrong values.

    Raises:
      FileNotFoundError: if ``path`` does not exist (``IsADirectoryError``
        for a directory, ``PermissionError`` for an unreadable file).
      pax.CheckpointError: (a ``ValueError``) if the file is not a valid PAX
        checkpoint: empty, truncated, corrupt (zip structure, CRC-32, ``.npy``
        header), not an ``.npz``, a plain ``.npz`` without ``__pax__``
        metadata, compressed or pickled entries, or a newer format version.
        The message names the path and the entry (``err.path``,
        ``err.entry``).
      ValueError: if a valid checkpoint does not fit ``like``. Checked in
        this order, the message names the first offending key path: a leaf
        of ``like`` missing from the file, then an entry of the file that
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
    pairs, treedef, keys, templates = _flatten_like(like)
    if os.path.isdir(path):
        raise IsADirectoryError(
            errno.EISDIR,
            "pax.load: the path is a directory; a PAX checkpoint is one file "
            "written by pax.save",
            path,
        )
    with open(path, "rb") as file:
        reader = _open_checked(path, file)
        entries = reader.entries

        def verify(key: str) -> None:
            try:  # a damaged header is corruption, not a mismatch
                reader.verify(entries[key])
            except _DATA_ERRORS as err:
                raise _checkpoint_error(
                    path, f"{type(err).__name__}: {err}", key
                ) from err

        _check_fits(f"pax.load: {path!r}", keys, templates, entries, verify)
        values = []
        for key in keys:
            entry = entries[key]
            try:
                values.append(reader.read(entry))
            except _Corrupt as err:
                raise _checkpoint_error(path, err.reason, key) from err
            except _DATA_ERRORS as err:
                raise _checkpoint_error(
                    path, f"{type(err).__name__}: {err}", key
                ) from err
    leaves = [
        _restore(value, entries[key].weak, leaf)
        for value, key, (_, leaf) in zip(values, keys, pairs)
    ]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _flatten_like(like: Any, who: str = "pax.load") -> tuple[list, Any, list, list]:
    """``(path-leaf pairs, treedef, keys, (shape, dtype) templates)`` of the
    template ``like``; its keys must be distinct."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(like)
    keys = [jax.tree_util.keystr(p) for p, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise ValueError(f"{who}: two leaves of `like` share the key `{dup}`.")
    templates = [_template(key, leaf, who) for key, (_, leaf) in zip(keys, pairs)]
    return pairs, treedef, keys, templates


def _check_fits(
    where: str,
    keys: list[str],
    templates: list[tuple[tuple[int, ...], Any]],
    entries: Any,
    verify: Any = None,
) -> None:
    """Raise ``ValueError`` (prefixed ``where``) for the first way the file's
    ``entries`` (key -> object with ``shape`` and logical ``dtype``) do not fit
    the template: a leaf of ``like`` missing from the file, then an entry
    ``like`` lacks, then leaf by leaf a shape or dtype mismatch. Before a
    mismatch is reported, ``verify(key)`` (if given) may raise for a damaged
    entry instead."""
    for key in keys:
        if key not in entries:
            raise ValueError(
                f"{where}: `like` has the leaf `{key}`, which the file does "
                "not hold (the file was saved from a different structure)."
            )
    known = set(keys)
    for key in entries:
        if key not in known:
            raise ValueError(
                f"{where}: the file holds the entry `{key}`, which is not a "
                "leaf of `like` (the file was saved from a different "
                "structure)."
            )
    for key, (shape, dtype) in zip(keys, templates):
        entry = entries[key]
        if entry.shape == shape and entry.dtype == dtype:
            continue
        if verify is not None:
            verify(key)
        if entry.shape != shape:
            raise ValueError(
                f"{where}: entry `{key}` has shape {entry.shape} in the "
                f"file, but `like` has shape {shape}."
            )
        raise ValueError(
            f"{where}: entry `{key}` has dtype {entry.dtype} in the file, "
            f"but `like` has dtype {dtype}."
        )

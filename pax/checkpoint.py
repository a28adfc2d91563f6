"""Sharded, asynchronous checkpoints on Orbax: :class:`pax.checkpoint.Manager`.

:func:`pax.save` / :func:`pax.load` write one ``.npz`` file from one process,
pulling every leaf to the host. For models sharded over many devices or
processes, :class:`Manager` stores a directory of numbered steps with
`Orbax <https://orbax.readthedocs.io>`_ (``orbax.checkpoint.CheckpointManager``,
installed by ``pip install pax-jax[orbax]``): each process writes the shards
it holds, an asynchronous save overlaps the next training steps, and a
restore reads into any layout, each device reading only its own shards.

The layout of a step
====================

``<directory>/<step>/`` is an Orbax checkpoint with two items:

* ``leaves``: the tree's leaves as a flat dict, keyed by
  ``jax.tree_util.keystr`` of each leaf's key path: the keys of
  :func:`pax.save` and :meth:`pax.Module.state_dict` (``.layers[0].weight``;
  ``[1][0].mu.layers[0].weight`` for the optax state in a ``(model,
  opt_state)`` tuple). Orbax never sees module classes: the structure comes
  back from the template given to :meth:`Manager.restore`. Typed PRNG keys
  (``jax.random.key``) are stored as ``jax.random.key_data``; every other
  leaf in its own dtype (``bfloat16`` included);
* ``pax``: JSON ``{"format": "pax.orbax", "version": 1, "leaves": {key:
  {"shape": [...], "dtype": "float32"}, ...}}``, with ``"impl"`` (the PRNG
  implementation's name) for key arrays and ``"weak_type": true`` for jax
  arrays with JAX's weak type (made from Python scalars), restored weak as
  :func:`pax.load` does. A restore checks the template against this record
  before it reads any array.

Orbax writes a step into a temporary directory and renames it when every
process has finished, so a crash during a save leaves the earlier steps
restorable and no half-written step visible; the temporary directory is left
in place (a later save of the same step replaces it).

Several processes (``jax.distributed``): every process builds the
``Manager`` on the same directory (a file system they share) and calls
``save`` and ``restore`` with the same steps and trees, as for any
collective. Numpy and Python leaves are written by process 0.
"""

from __future__ import annotations

import operator
import os
from typing import Any, TypeVar

import jax
import numpy as np

from ._checkpoint import (
    _NUMBERS,
    CheckpointError,
    _as_weak,
    _check_key_impl,
    _key_impl_name,
    _key_layout,
)

__all__ = ["Manager"]

T = TypeVar("T")

FORMAT = "pax.orbax"
VERSION = 1
_LEAVES = "leaves"
_META = "pax"
_ITEMS = (_LEAVES, _META)
# numpy kinds a checkpoint stores (bool, ints, floats, complex) plus the
# ml_dtypes scalar types (bfloat16, float8_*, int4: kind "V").
_KINDS = frozenset("biufcV")


def _orbax() -> Any:
    """``orbax.checkpoint``, imported on first use (an optional dependency)."""
    try:
        import orbax.checkpoint as ocp
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "pax.checkpoint.Manager needs Orbax: pip install 'pax-jax[orbax]' "
            "(or pip install orbax-checkpoint)."
        ) from err
    return ocp


def _is_key(dtype: Any) -> bool:
    return jax.numpy.issubdtype(dtype, jax.dtypes.prng_key)


def _step(step: Any, owner: str) -> int:
    if isinstance(step, (bool, np.bool_)):
        raise TypeError(f"{owner}: `step` must be an int >= 0, got {step!r} (bool)")
    try:
        value = operator.index(step)
    except TypeError:
        raise TypeError(
            f"{owner}: `step` must be an int >= 0, got {step!r} ({type(step).__name__})"
        ) from None
    if value < 0:
        raise ValueError(f"{owner}: `step` must be an int >= 0, got {value}")
    return value


def _keys(tree: Any, owner: str, what: str) -> tuple[list[str], list[Any], Any]:
    """``(keys, leaves, treedef)`` of ``tree``; keys are unique keystr paths."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    keys = [jax.tree_util.keystr(path) for path, _ in pairs]
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(
                f"{owner}: two leaves of `{what}` share the key `{key}`; rename "
                "the dict key or attribute."
            )
        seen.add(key)
    return keys, [leaf for _, leaf in pairs], treedef


def _encode(key: str, leaf: Any, owner: str) -> tuple[Any, dict]:
    """The value Orbax stores for ``leaf`` and its record in the metadata."""
    if isinstance(leaf, jax.Array):
        if _is_key(leaf.dtype):
            impl = _key_impl_name(leaf)
            if not _check_key_impl(impl, leaf.dtype):
                raise TypeError(
                    f"{owner}: leaf `{key}` is a PRNG key array of dtype "
                    f"{leaf.dtype} whose implementation ({impl!r}) cannot be "
                    "restored by name with `jax.random.wrap_key_data`."
                )
            record = {"shape": list(leaf.shape), "dtype": str(leaf.dtype)}
            record["impl"] = impl
            return jax.random.key_data(leaf), record
        value, weak = leaf, bool(getattr(leaf, "weak_type", False))
    elif isinstance(leaf, (np.ndarray, np.generic, *_NUMBERS)):
        # a private copy: an asynchronous save reads it after `save` returns
        value, weak = np.array(leaf), False
    else:
        raise TypeError(
            f"{owner}: leaf `{key}` is a {type(leaf).__name__}; a checkpoint "
            "stores jax arrays (PRNG keys included), numpy arrays and Python "
            "numbers (bool, int, float, complex) only."
        )
    dtype = np.dtype(value.dtype)
    if dtype.kind not in _KINDS or dtype.type is np.void:
        raise TypeError(
            f"{owner}: leaf `{key}` has dtype {dtype}, which a checkpoint cannot "
            "store (supported: bool, integers, floats and complex numbers, "
            "including bfloat16, and PRNG keys)."
        )
    record = {"shape": list(value.shape), "dtype": dtype.name}
    if weak:
        record["weak_type"] = True
    return value, record


def _template(key: str, leaf: Any, owner: str) -> tuple[tuple, Any, Any]:
    """``(shape, dtype, sharding or None)`` that ``like``'s leaf asks for."""
    if isinstance(leaf, jax.Array):
        return tuple(leaf.shape), leaf.dtype, leaf.sharding
    if isinstance(leaf, jax.ShapeDtypeStruct):
        sharding = leaf.sharding
        if sharding is not None:
            try:
                sharding.device_set  # noqa: B018 - raises for an abstract mesh
            except ValueError:
                raise ValueError(
                    f"{owner}: leaf `{key}` of `like` has the sharding "
                    f"{sharding}, on an abstract mesh (as `jax.eval_shape` "
                    "returns); give a concrete one, e.g. jax.ShapeDtypeStruct("
                    "shape, dtype, sharding=NamedSharding(mesh, spec)), or None "
                    "for the default device."
                ) from None
        return tuple(leaf.shape), leaf.dtype, sharding
    if isinstance(leaf, (np.ndarray, np.generic)):
        return tuple(leaf.shape), leaf.dtype, None
    if isinstance(leaf, _NUMBERS):
        return (), np.asarray(leaf).dtype, None
    raise TypeError(
        f"{owner}: leaf `{key}` of `like` is a {type(leaf).__name__}; template "
        "leaves must be jax arrays, jax.ShapeDtypeStruct, numpy arrays or "
        "Python numbers."
    )


def _same_dtype(stored: str, dtype: Any) -> bool:
    if _is_key(dtype):
        return stored == str(dtype)
    try:
        return np.dtype(stored) == np.dtype(dtype)
    except TypeError:  # a key dtype in the file, a plain one in `like`
        return False


def _as_kind(value: Any, leaf: Any) -> Any:
    """``value`` (numpy) in the kind of container ``leaf`` is."""
    if isinstance(leaf, np.ndarray):
        return np.asarray(value)
    if isinstance(leaf, np.generic):
        return np.asarray(value)[()]
    return type(leaf)(np.asarray(value).item())


class Manager:
    """Numbered, sharded checkpoints of PAX trees in a directory, on Orbax.

    A thin layer over ``orbax.checkpoint.CheckpointManager`` that stores any
    pytree of arrays (modules, optimizer states, PRNG keys, counters) by the
    key paths of :func:`pax.save`, and restores it into the structure,
    dtypes and shardings of a template. Needs ``pip install pax-jax[orbax]``.

    Args:
      directory: where the steps live (``<directory>/<step>/``); created if
        missing. Every process of a multi-process run passes the same one.
      max_to_keep: how many of the most recent steps to keep (older ones
        are deleted after each save), or ``None`` to keep all.
      async_save: if True (the default), :meth:`save` returns once the
        arrays are copied to host memory and writes in the background,
        overlapping the next training steps; :meth:`wait_until_finished`
        (also called by :meth:`restore`, :meth:`close` and the next
        :meth:`save`) waits for it. If False, :meth:`save` returns when the
        step is on disk.

    Use it as a context manager, or call :meth:`close` when done (it waits
    for a pending save).

    >>> import tempfile, jax, optax, pax
    >>> model = pax.Linear(2, 3, rng_key=jax.random.key(0))
    >>> opt = pax.optim.from_optax(optax.adam(1e-3), model)
    >>> def build():  # how the training script builds its state
    ...     return pax.Linear(2, 3, rng_key=jax.random.key(1)), opt
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with pax.checkpoint.Manager(tmp, max_to_keep=2) as manager:
    ...         for step in range(3):
    ...             manager.save(step, (model, opt))
    ...         manager.wait_until_finished()
    ...         print(manager.all_steps(), manager.latest_step())
    ...         like = jax.eval_shape(build)  # shapes and dtypes only
    ...         model2, opt2 = manager.restore(2, like)
    [1, 2] 2
    >>> bool((model2.weight == model.weight).all()), type(opt2).__name__
    (True, 'OptaxOptimizer')
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        max_to_keep: int | None = 3,
        async_save: bool = True,
    ) -> None:
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(
                "pax.checkpoint.Manager: `directory` must be a str or "
                f"os.PathLike, got {type(directory).__name__}"
            )
        if max_to_keep is not None and (
            isinstance(max_to_keep, bool)
            or not isinstance(max_to_keep, (int, np.integer))
            or max_to_keep < 1
        ):
            raise ValueError(
                "pax.checkpoint.Manager: `max_to_keep` must be an int >= 1 or "
                f"None (keep every step), got {max_to_keep!r}"
            )
        if not isinstance(async_save, bool):
            raise TypeError(
                "pax.checkpoint.Manager: `async_save` must be a bool, got "
                f"{async_save!r}"
            )
        ocp = _orbax()
        self._directory = os.path.abspath(os.fsdecode(os.fspath(directory)))
        self._max_to_keep = None if max_to_keep is None else int(max_to_keep)
        self._async = async_save
        options = ocp.CheckpointManagerOptions(
            max_to_keep=self._max_to_keep,
            enable_async_checkpointing=async_save,
        )
        self._manager = ocp.CheckpointManager(
            self._directory, options=options, item_names=_ITEMS
        )
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"Manager(directory={self._directory!r}, max_to_keep="
            f"{self._max_to_keep}, async_save={self._async})"
        )

    @property
    def directory(self) -> str:
        """The checkpoint directory, as an absolute path."""
        return self._directory

    def _owner(self, method: str) -> str:
        return f"pax.checkpoint.Manager.{method} ({self._directory!r})"

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise ValueError(f"{self._owner(method)}: the manager is closed.")

    # -- steps -----------------------------------------------------------

    def all_steps(self) -> list[int]:
        """The saved steps, in increasing order (a pending asynchronous save
        included)."""
        self._check_open("all_steps")
        return sorted(int(s) for s in self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The most recent saved step, or None if there is none yet."""
        self._check_open("latest_step")
        step = self._manager.latest_step()
        return None if step is None else int(step)

    def wait_until_finished(self) -> None:
        """Block until a pending asynchronous save is on disk."""
        self._check_open("wait_until_finished")
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Wait for a pending save and release Orbax's resources. Idempotent."""
        if not self._closed:
            self._manager.wait_until_finished()
            self._manager.close()
            self._closed = True

    def __enter__(self) -> Manager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- save ------------------------------------------------------------

    def save(self, step: int, tree: Any) -> None:
        """Save ``tree`` as ``step``.

        Args:
          step: an int greater than every saved step.
          tree: any pytree whose leaves are jax arrays (sharded or not,
            typed PRNG keys included), numpy arrays or Python numbers: a
            module, a ``(model, optimizer)`` tuple, a dict with a step
            counter, ...

        With ``async_save=True`` this returns once the arrays are copied to
        host memory (so the caller may donate or overwrite them); the files
        are written in the background. In a multi-process run every process
        calls ``save`` with its part of the same global arrays.

        Raises:
          TypeError: for a leaf that is not an array or number, or whose
            dtype a checkpoint cannot store (strings, objects), or a
            ``step`` that is not an int.
          ValueError: if ``step`` is not after the latest saved step, or two
            leaves have the same key. Both checked before anything is
            written.
        """
        owner = self._owner("save")
        self._check_open("save")
        step = _step(step, owner)
        keys, leaves, _ = _keys(tree, owner, "tree")
        flat: dict[str, Any] = {}
        records: dict[str, dict] = {}
        for key, leaf in zip(keys, leaves):
            flat[key], records[key] = _encode(key, leaf, owner)
        latest = self._manager.latest_step()
        if latest is not None and step <= latest:
            raise ValueError(
                f"{owner}: step {step} is not after the latest saved step "
                f"{latest}; steps must increase."
            )
        ocp = _orbax()
        meta = {"format": FORMAT, "version": VERSION, "leaves": records}
        items = {_META: ocp.args.JsonSave(meta)}
        if flat:  # Orbax refuses an empty item; a tree without leaves has none
            items[_LEAVES] = ocp.args.StandardSave(flat)
        saved = self._manager.save(step, args=ocp.args.Composite(**items))
        if not saved:  # pragma: no cover - Orbax's own policies are not used
            raise ValueError(f"{owner}: Orbax declined to save step {step}.")

    # -- restore ---------------------------------------------------------

    def _records(self, step: int, owner: str) -> dict[str, dict]:
        ocp = _orbax()
        try:
            meta = self._manager.restore(
                step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
            )[_META]
        except (FileNotFoundError, KeyError, ValueError) as err:
            raise CheckpointError(
                f"{owner}: step {step} has no readable PAX metadata item "
                f"`{_META}` (not written by pax.checkpoint.Manager, or "
                f"damaged): {type(err).__name__}: {err}",
                path=os.path.join(self._directory, str(step)),
            ) from err
        if (
            not isinstance(meta, dict)
            or meta.get("format") != FORMAT
            or not isinstance(meta.get("leaves"), dict)
        ):
            raise CheckpointError(
                f"{owner}: step {step} was not written by "
                "pax.checkpoint.Manager (its metadata is not PAX's).",
                path=os.path.join(self._directory, str(step)),
            )
        if meta.get("version") != VERSION:
            raise CheckpointError(
                f"{owner}: step {step} has format version "
                f"{meta.get('version')!r}; this PAX reads version {VERSION}.",
                path=os.path.join(self._directory, str(step)),
            )
        return meta["leaves"]

    def restore(self, step: int, like: T) -> T:
        """Read ``step`` into the structure, dtypes and shardings of ``like``.

        Args:
          step: a saved step (see :meth:`all_steps`).
          like: a template with the saved tree's structure, key paths,
            shapes and dtypes; its values are not read. Either a concrete
            tree (a freshly built model) or an abstract one
            (``jax.eval_shape``, or ``jax.ShapeDtypeStruct`` leaves). A jax
            array leaf gives an array with that array's sharding; a
            ``jax.ShapeDtypeStruct`` leaf one with its ``sharding=`` (the
            first local device if None; a sharding on an abstract mesh, as
            ``jax.eval_shape`` of a sharded function gives, is refused):
            each device reads only its own shards, so no whole sharded
            array is ever built on one host, and the layout may differ from
            the one saved (another mesh, fewer devices, fewer processes).
            Numpy and Python leaves give numpy arrays and Python numbers.

        Returns:
          A pytree with ``like``'s treedef and the checkpoint's values,
          bit-exact. Typed PRNG keys are rebuilt with
          ``jax.random.wrap_key_data``; arrays saved with JAX's weak type
          get it back (those, usually scalars, are read whole by each
          process).

        Raises:
          FileNotFoundError: if ``step`` was not saved.
          ValueError: if the checkpoint does not fit ``like``, naming the
            first offending key path: a leaf of ``like`` missing from the
            checkpoint, then an entry ``like`` lacks, then, leaf by leaf, a
            shape or a dtype mismatch (both shown). Checked before any
            array is read.
          pax.CheckpointError: if the step was not written by this class.
          TypeError: for a template leaf that is not an array, a
            ``jax.ShapeDtypeStruct`` or a Python number.
        """
        owner = self._owner("restore")
        self._check_open("restore")
        step = _step(step, owner)
        keys, leaves, treedef = _keys(like, owner, "like")
        templates = [_template(k, leaf, owner) for k, leaf in zip(keys, leaves)]
        self._manager.wait_until_finished()
        if step not in self.all_steps():
            raise FileNotFoundError(
                f"{owner}: no checkpoint for step {step}; saved steps: "
                f"{self.all_steps()}."
            )
        records = self._records(step, owner)
        where = f"{owner}: step {step}"
        for key in keys:
            if key not in records:
                raise ValueError(
                    f"{where}: `like` has the leaf `{key}`, which the "
                    "checkpoint does not hold (it was saved from a different "
                    "structure)."
                )
        known = set(keys)
        for key in records:
            if key not in known:
                raise ValueError(
                    f"{where}: the checkpoint holds the entry `{key}`, which is "
                    "not a leaf of `like` (it was saved from a different "
                    "structure)."
                )
        for key, (shape, dtype, _) in zip(keys, templates):
            record = records[key]
            stored = tuple(record["shape"])
            if stored != shape:
                raise ValueError(
                    f"{where}: entry `{key}` has shape {stored} in the "
                    f"checkpoint, but `like` has shape {shape}."
                )
            if not _same_dtype(record["dtype"], dtype):
                raise ValueError(
                    f"{where}: entry `{key}` has dtype {record['dtype']} in the "
                    f"checkpoint, but `like` has dtype {dtype}."
                )
        return jax.tree_util.tree_unflatten(
            treedef, self._read(step, keys, leaves, templates, records)
        )

    def _read(
        self,
        step: int,
        keys: list[str],
        leaves: list[Any],
        templates: list[tuple],
        records: dict[str, dict],
    ) -> list[Any]:
        ocp = _orbax()
        local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract: dict[str, Any] = {}
        for key, leaf, (shape, dtype, sharding) in zip(keys, leaves, templates):
            record = records[key]
            if not isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
                abstract[key] = np.empty(shape, dtype)  # restored as numpy
                continue
            if record.get("weak_type"):
                sharding = local  # read whole, made weak, then placed
            if sharding is None:
                sharding = local
            if "impl" in record:  # key data: the key's shape + the impl's tail
                layout = _key_layout(record["impl"])
                if layout is None:
                    raise CheckpointError(
                        f"{self._owner('restore')}: step {step}: entry `{key}` "
                        f"holds keys of an unknown PRNG implementation "
                        f"{record['impl']!r}.",
                        path=os.path.join(self._directory, str(step)),
                        entry=key,
                    )
                shape, dtype = shape + layout[1], layout[2]
            abstract[key] = jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)
        if abstract:
            args = ocp.args.Composite(**{_LEAVES: ocp.args.StandardRestore(abstract)})
            values = self._manager.restore(step, args=args)[_LEAVES]
        else:
            values = {}
        out = []
        for key, leaf, (_, _, sharding) in zip(keys, leaves, templates):
            value, record = values[key], records[key]
            if not isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
                out.append(_as_kind(value, leaf))
                continue
            if "impl" in record:
                value = jax.random.wrap_key_data(value, impl=record["impl"])
            elif record.get("weak_type"):
                value = _as_weak(value)
                if sharding is not None:
                    value = jax.device_put(value, sharding)
            out.append(value)
        return out

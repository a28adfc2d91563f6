"""Several processes on ``jax.distributed``: command-line flags and batches.

A multi-process run is N copies of one script, each started with the same
``--coordinator host:port`` and ``--num-processes N`` and its own
``--process-id``; :mod:`pax.launch` starts them on one machine. Each copy:

1. calls :func:`initialize` (or :func:`initialize_from_args`) before any
   other JAX call: on CPU it selects the gloo collectives, then it calls
   ``jax.distributed.initialize``. From then on ``jax.devices()`` lists every
   process' devices and a mesh built from them spans all processes;
2. reads only its own rows of each global batch (:func:`process_rows` says
   which) and assembles the global array with
   ``jax.make_array_from_process_local_data``;
3. runs the same jitted steps as every other process, and prints, plots and
   writes files only when ``jax.process_index() == 0`` (except sharded
   checkpoints: every process calls :class:`pax.checkpoint.Manager`'s
   ``save`` and writes its own shards).

Nothing here is a protocol of PAX's own: the coordinator, the collectives and
the arrays are JAX's.

>>> import argparse, pax
>>> parser = pax.distributed.add_arguments(argparse.ArgumentParser())
>>> args = parser.parse_args([])
>>> args.num_processes, args.process_id, args.coordinator
(1, 0, None)
>>> pax.distributed.initialize_from_args(args)  # one process: nothing to do
False
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Any

import jax

__all__ = [
    "add_arguments",
    "initialize",
    "initialize_from_args",
    "local_copy",
    "process_rows",
]

_WHERE = "pax.distributed"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--num-processes``, ``--process-id`` and ``--coordinator`` to an
    ``argparse`` parser (the flags :mod:`pax.launch` appends).

    Defaults: one process, id 0, no coordinator (a single-process run).
    Returns the parser.

    >>> import argparse, pax
    >>> parser = pax.distributed.add_arguments(argparse.ArgumentParser())
    >>> args = parser.parse_args(["--num-processes", "2", "--process-id", "1",
    ...                           "--coordinator", "127.0.0.1:1234"])
    >>> args.num_processes, args.process_id, args.coordinator
    (2, 1, '127.0.0.1:1234')
    """
    group = parser.add_argument_group("several processes (jax.distributed)")
    group.add_argument(
        "--num-processes", type=int, default=1, help="processes in the run"
    )
    group.add_argument(
        "--process-id", type=int, default=0, help="this process, 0 .. N - 1"
    )
    group.add_argument(
        "--coordinator", default=None, help="host:port of process 0's coordinator"
    )
    return parser


def initialize(
    coordinator: str, num_processes: int, process_id: int, *, fail_fast: bool = True
) -> None:
    """Join a multi-process run: ``jax.distributed.initialize`` with CPU
    collectives.

    Call it first, before anything creates JAX's devices (``jax.devices()``,
    any array). It sets ``jax_cpu_collectives_implementation`` to ``"gloo"``
    (without it, CPU devices of different processes cannot exchange data;
    other platforms ignore the setting), then calls
    ``jax.distributed.initialize(coordinator, num_processes, process_id)``,
    which blocks until every process has joined.

    Args:
      coordinator: ``"host:port"`` of the coordination service, which process
        0 starts; the same string in every process.
      num_processes: how many processes take part (>= 1).
      process_id: this process' index, ``0 <= process_id < num_processes``.
      fail_fast: if True (the default), an uncaught exception ends this
        process at once with status 1 (after printing it), instead of
        leaving it waiting at JAX's shutdown barrier for processes that may
        themselves wait for it; :mod:`pax.launch` then stops the others.

    Raises:
      ValueError: a bad count, id or address, or JAX already initialized in
        this process.
    """
    if isinstance(num_processes, bool) or not isinstance(num_processes, int):
        raise TypeError(
            f"{_WHERE}.initialize: `num_processes` must be an int, got "
            f"{num_processes!r}"
        )
    if num_processes < 1:
        raise ValueError(
            f"{_WHERE}.initialize: `num_processes` must be >= 1, got {num_processes}"
        )
    if (
        isinstance(process_id, bool)
        or not isinstance(process_id, int)
        or not 0 <= process_id < num_processes
    ):
        raise ValueError(
            f"{_WHERE}.initialize: `process_id` must be an int in "
            f"[0, {num_processes}), got {process_id!r}"
        )
    if not isinstance(coordinator, str) or coordinator.rpartition(":")[0] == "":
        raise ValueError(
            f"{_WHERE}.initialize: `coordinator` must be 'host:port' (e.g. "
            f"'127.0.0.1:1234'), got {coordinator!r}"
        )
    if jax.distributed.is_initialized():
        raise ValueError(
            f"{_WHERE}.initialize: jax.distributed is already initialized in "
            f"this process"
        )
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)
    if fail_fast:
        sys.excepthook = functools.partial(_exit_at_once, sys.excepthook)


def _exit_at_once(hook, kind, value, traceback) -> None:
    """Print an uncaught exception, then end the process without waiting at
    JAX's shutdown barrier for the other processes (which may wait for this
    one in a collective: both would hang until a timeout)."""
    hook(kind, value, traceback)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def initialize_from_args(args: argparse.Namespace) -> bool:
    """:func:`initialize` from the flags of :func:`add_arguments`.

    Does nothing for a single process (``--num-processes 1``, the default) or
    if this process has already joined the run (a script whose ``main`` runs
    twice). Returns True if this process is part of a multi-process run.

    Raises:
      ValueError: several processes but no ``--coordinator``, or a bad id.
    """
    num = getattr(args, "num_processes", 1)
    if num == 1 and getattr(args, "coordinator", None) is None:
        return False
    if args.coordinator is None:
        raise ValueError(
            f"{_WHERE}: --num-processes {num} needs --coordinator host:port "
            f"(pax.launch passes it)"
        )
    if jax.distributed.is_initialized():
        if jax.process_count() != num or jax.process_index() != args.process_id:
            raise ValueError(
                f"{_WHERE}: this process already joined a run as process "
                f"{jax.process_index()} of {jax.process_count()}, not "
                f"{args.process_id} of {num}"
            )
        return True
    initialize(args.coordinator, num, args.process_id)
    return True


def process_rows(sharding: jax.sharding.Sharding, global_rows: int) -> slice:
    """The rows of a global batch that this process holds under ``sharding``.

    With ``sharding`` the batch's sharding (rows split over the mesh's data
    axis), each process reads ``data[process_rows(sharding, n)]`` of the
    global batch of ``n`` rows and passes it to
    ``jax.make_array_from_process_local_data(sharding, local, global_shape)``.
    If the batch is replicated across processes (every process holds all
    rows) the slice is the whole batch.

    Args:
      sharding: the global batch's sharding (e.g. ``NamedSharding(mesh,
        P("data"))``).
      global_rows: the global batch's first dimension.

    Returns:
      A ``slice(start, stop)``.

    Raises:
      ValueError: if this process' rows are not one contiguous block (a mesh
        whose data axis interleaves processes).

    >>> import jax, pax
    >>> from jax.sharding import NamedSharding, PartitionSpec as P
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> pax.distributed.process_rows(NamedSharding(mesh, P("data")), 8)
    slice(0, 8, None)
    """
    if isinstance(global_rows, bool) or not isinstance(global_rows, int):
        raise TypeError(
            f"{_WHERE}.process_rows: `global_rows` must be an int, got {global_rows!r}"
        )
    indices = sharding.addressable_devices_indices_map((global_rows,))
    rows: set[int] = set()
    for index in indices.values():
        rows.update(range(*index[0].indices(global_rows)))
    if not rows:
        return slice(0, 0)
    start, stop = min(rows), max(rows) + 1
    if len(rows) != stop - start:
        raise ValueError(
            f"{_WHERE}.process_rows: under {sharding} process "
            f"{jax.process_index()} holds rows {sorted(rows)} of {global_rows}, "
            f"not one contiguous block; order the mesh's devices so that each "
            f"process' devices are adjacent along the data axis"
        )
    return slice(start, stop)


def local_copy(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """``tree`` gathered whole onto this process' first device.

    A collective: every process calls it with the same tree. The result's
    arrays live on ``jax.local_devices()[0]`` only, so what is computed from
    them involves no other process (evaluation, sampling on process 0).

    >>> import jax, jax.numpy as jnp, pax
    >>> mesh = pax.sharding.make_mesh((1,), ("data",))
    >>> x = pax.distributed.local_copy({"w": jnp.ones(4)}, mesh)["w"]
    >>> x.devices() == {jax.local_devices()[0]}
    True
    """
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    whole = jax.jit(lambda t: t, out_shardings=replicated)(tree)
    device = jax.local_devices()[0]

    def first(x):
        if not isinstance(x, jax.Array):
            return x
        for shard in x.addressable_shards:
            if shard.device == device:
                return shard.data
        return jax.device_put(x.addressable_data(0), device)

    return jax.tree_util.tree_map(first, whole)

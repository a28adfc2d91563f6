"""Start several local processes of one script for ``jax.distributed``.

::

    python -m pax.launch -n 2 [--devices-per-process 4] [--port P] \\
        script.py [script arguments ...]

starts ``-n`` copies of ``python script.py [script arguments ...]`` on this
machine, appending to the arguments of copy ``i``::

    --num-processes N --process-id i --coordinator 127.0.0.1:PORT

(the flags of :func:`pax.distributed.add_arguments`; the script passes them
to :func:`pax.distributed.initialize_from_args`). ``PORT`` is a free
loopback port unless ``--port`` is given; process 0 runs JAX's coordinator
there. Nothing leaves the machine: this is for trying a multi-process program
on one host; on a cluster, start one copy per host with your scheduler and
the same flags.

``--devices-per-process D`` asks for ``D`` CPU devices in each process:
it sets ``JAX_PLATFORMS=cpu`` and adds
``--xla_force_host_platform_device_count=D`` to ``XLA_FLAGS``. Without it the
environment is passed unchanged (a GPU machine uses its GPUs).

Each output line of process ``i`` (stdout and stderr) is printed with a
``[i] `` prefix. The launcher waits for every process; when one fails (a
non-zero exit status), on Ctrl-C or on ``SIGTERM``, it terminates all the others (their
whole process groups; ``SIGKILL`` after ``--grace`` seconds) and exits with
the first non-zero status (130 after Ctrl-C); 0 if all succeed.

The same is available from Python as :func:`launch`.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

__all__ = ["free_port", "launch", "main"]

_WHERE = "pax.launch"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it).

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment(devices_per_process: int | None, env: Mapping[str, str] | None):
    env = dict(os.environ if env is None else env)
    if devices_per_process is not None:
        flag = f"--xla_force_host_platform_device_count={devices_per_process}"
        flags = [
            f
            for f in env.get("XLA_FLAGS", "").split()
            if not f.startswith("--xla_force_host_platform_device_count")
        ]
        env["XLA_FLAGS"] = " ".join([*flags, flag])
        env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONUNBUFFERED"] = "1"  # lines as they come, not at exit
    return env


def _forward(index: int, stream, out, lock: threading.Lock) -> None:
    prefix = f"[{index}] "
    for line in iter(stream.readline, ""):
        with lock:
            out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
            out.flush()
    stream.close()


def _terminate(procs: Sequence[subprocess.Popen], grace: float) -> None:
    """SIGTERM every live process group, then SIGKILL what is left."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:  # also reap grandchildren left in a group
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def launch(
    script: str | os.PathLike,
    args: Sequence[str] = (),
    *,
    num_processes: int = 2,
    devices_per_process: int | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    grace: float = 5.0,
    out=None,
) -> int:
    """Run ``num_processes`` local copies of ``python script args...``.

    Args:
      script: the Python script each process runs.
      args: its arguments; each copy also gets ``--num-processes N
        --process-id i --coordinator 127.0.0.1:PORT``.
      num_processes: how many processes (>= 1).
      devices_per_process: if given, ``JAX_PLATFORMS=cpu`` and that many
        host devices per process (``XLA_FLAGS``).
      port: the coordinator's port (default: :func:`free_port`).
      env: the environment (default ``os.environ``).
      grace: seconds between SIGTERM and SIGKILL when stopping processes.
      out: where the prefixed lines go (default ``sys.stdout``).

    Returns:
      0 if every process exited with 0, else the first non-zero status
      (``-signal`` for a process killed by a signal), 130 after Ctrl-C.
    """
    if isinstance(num_processes, bool) or not isinstance(num_processes, int):
        raise TypeError(
            f"{_WHERE}: `num_processes` must be an int, got {num_processes!r}"
        )
    if num_processes < 1:
        raise ValueError(f"{_WHERE}: `num_processes` must be >= 1, got {num_processes}")
    if devices_per_process is not None and (
        isinstance(devices_per_process, bool)
        or not isinstance(devices_per_process, int)
        or devices_per_process < 1
    ):
        raise ValueError(
            f"{_WHERE}: `devices_per_process` must be an int >= 1 or None, "
            f"got {devices_per_process!r}"
        )
    port = free_port() if port is None else port
    if not 0 < port < 65536:
        raise ValueError(f"{_WHERE}: `port` must be in 1..65535, got {port}")
    out = sys.stdout if out is None else out
    environment = _environment(devices_per_process, env)
    coordinator = f"127.0.0.1:{port}"
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a test's timeout, a scheduler) stops the children too
        previous = signal.signal(signal.SIGTERM, _interrupt)
    threads: list[threading.Thread] = []
    status = 0
    try:
        for i in range(num_processes):
            command = [
                sys.executable,
                os.fspath(script),
                *args,
                "--num-processes",
                str(num_processes),
                "--process-id",
                str(i),
                "--coordinator",
                coordinator,
            ]
            proc = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
                env=environment,
                start_new_session=True,  # its own process group, killed whole
            )
            procs.append(proc)
            thread = threading.Thread(
                target=_forward, args=(i, proc.stdout, out, lock), daemon=True
            )
            thread.start()
            threads.append(thread)
        running = list(procs)
        while running and not status:
            for proc in list(running):
                code = proc.poll()
                if code is None:
                    continue
                running.remove(proc)
                if code != 0:
                    status = code
                    with lock:
                        out.write(
                            f"[launch] process {procs.index(proc)} exited with "
                            f"status {code}; stopping the others\n"
                        )
                        out.flush()
                    break
            time.sleep(0.05)
    except KeyboardInterrupt:
        status = 130
    finally:
        _terminate(procs, grace)
        for thread in threads:
            thread.join(timeout=grace)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``python -m pax.launch -n N [options] script args``."""
    parser = argparse.ArgumentParser(
        prog="python -m pax.launch",
        description="Start N local processes of a script for jax.distributed; "
        "each gets --num-processes N --process-id i --coordinator "
        "127.0.0.1:PORT appended to its arguments.",
    )
    parser.add_argument(
        "-n", "--num-processes", type=int, required=True, help="how many processes"
    )
    parser.add_argument(
        "--devices-per-process",
        type=int,
        default=None,
        help="CPU devices per process (sets JAX_PLATFORMS=cpu and XLA_FLAGS); "
        "default: leave the environment alone",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="coordinator port (default: a free one)"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when stopping",
    )
    parser.add_argument("script", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    ns = parser.parse_args(argv)
    try:
        return launch(
            ns.script,
            ns.args,
            num_processes=ns.num_processes,
            devices_per_process=ns.devices_per_process,
            port=ns.port,
            grace=ns.grace,
        )
    except (TypeError, ValueError) as err:
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())

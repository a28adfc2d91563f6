"""Run an expensive session fixture once per test run, even under xdist.

pytest-xdist starts one session per worker, so a session-scoped fixture that
launches a subprocess (8 host devices, 2 processes) would run once per worker.
:func:`run_once` makes the first worker compute the value and the others read
it from a JSON file in the run's shared temporary directory (the pattern of
pytest-xdist's documentation, with ``fcntl`` instead of a third-party lock).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from typing import Any


def run_once(tmp_path_factory: Any, name: str, produce: Callable[[], Any]) -> Any:
    """``produce()`` (JSON-serialisable) computed once per test run."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return produce()
    root = tmp_path_factory.getbasetemp().parent  # shared by this run's workers
    path = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return json.loads(path.read_text())
        value = produce()
        path.write_text(json.dumps(value))
        return value

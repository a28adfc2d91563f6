"""pytest plugin for the subprocess that runs dm-haiku's tests.

Loaded with ``-p tests.haiku_suite.plugin`` by `runner`; it acts only when
`runner` sets ``PAX_HK_SUITE_IMPL`` (``pax`` installs the `alias`, ``dm``
leaves the real dm-haiku) and writes every test's outcome to the JSON file
named by ``PAX_HK_SUITE_OUT``. Importing this module has no side effects.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

IMPL_ENV = "PAX_HK_SUITE_IMPL"
OUT_ENV = "PAX_HK_SUITE_OUT"
MAP_ENV = "PAX_HK_SUITE_MAP"
ROOT_ENV = "PAX_HK_SUITE_ROOT"

_results: dict[str, dict[str, object]] = {}


def pytest_configure(config: pytest.Config) -> None:
    impl = os.environ.get(IMPL_ENV)
    if impl is None:
        return
    if impl == "pax":
        from tests.haiku_suite import alias

        table = json.loads(pathlib.Path(os.environ[MAP_ENV]).read_text())
        alias.install(pathlib.Path(os.environ[ROOT_ENV]), table)
    elif impl != "dm":
        raise pytest.UsageError(f"{IMPL_ENV} must be 'pax' or 'dm', got {impl!r}")
    # absltest reads flags (test_tmpdir, ...) that only absltest.main parses.
    from absl import flags

    flags.FLAGS.mark_as_parsed()


def _summary(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.strip().splitlines()[0][:300] if crash.message else ""
    if isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
        return str(report.longrepr[2])[:300]
    text = str(report.longrepr).strip() if report.longrepr else ""
    return text.splitlines()[-1].removeprefix("E").strip()[:300] if text else ""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get(IMPL_ENV) is None:
        return
    if report.when == "call" or report.outcome != "passed":
        old = _results.get(report.nodeid)
        if old is not None and old["outcome"] != "passed":
            return  # keep the first failure (a teardown error after a failure)
        _results[report.nodeid] = {
            "outcome": report.outcome,
            "why": _summary(report),
            "seconds": round(report.duration, 3),
        }


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if os.environ.get(IMPL_ENV) is None or not report.failed:
        return
    _results[report.nodeid] = {"outcome": "collect-error", "why": _summary(report)}


def pytest_sessionfinish(session: pytest.Session) -> None:
    out = os.environ.get(OUT_ENV)
    if os.environ.get(IMPL_ENV) is None or out is None:
        return
    haiku = sys.modules.get("haiku")
    payload = {"haiku": getattr(haiku, "__name__", None), "results": _results}
    pathlib.Path(out).write_text(json.dumps(payload, indent=1, sort_keys=True))

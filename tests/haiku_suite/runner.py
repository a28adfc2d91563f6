"""Run dm-haiku's own tests in a subprocess, against dm-haiku or `pax.hk`.

The aliasing (`alias`) happens only inside that subprocess, so the calling
process (the main test suite, which also imports the real dm-haiku) never
sees ``sys.modules["haiku"]`` replaced. Node ids are relative to dm-haiku's
``_src`` directory: ``basic_test.py::LinearTest::test_call``.

A test is *comparable* when it passes under dm-haiku itself (on the installed
JAX) and is not excluded in `expectations.NEEDS_INTERNAL`; a missing optional
package or a dm-haiku failure makes it not comparable. dm-haiku's results are
cached per file under ``.pytest_cache/haiku_suite``.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.haiku_suite import expectations, plugin

REPO = pathlib.Path(__file__).resolve().parents[2]
CACHE = REPO / ".pytest_cache" / "haiku_suite"
GLOBS = ("*_test.py", "integration/*_test.py", "nets/*_test.py", "flax/*_test.py")

Results = dict[str, dict[str, Any]]  # node id -> {"outcome", "why", "seconds"}


def haiku_src() -> pathlib.Path:
    """The installed dm-haiku's ``_src`` directory (dm-haiku is not imported)."""
    spec = importlib.util.find_spec("haiku")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("dm-haiku is not installed (pip install dm-haiku)")
    return pathlib.Path(spec.submodule_search_locations[0]) / "_src"


def test_files(names: Iterable[str] = ()) -> list[str]:
    """dm-haiku's test files relative to ``_src``; `names` may be stems or globs."""
    src = haiku_src()
    every = sorted(str(p.relative_to(src)) for g in GLOBS for p in src.glob(g))
    names = list(names)
    if not names:
        return every
    chosen = []
    for name in names:
        pattern = name if name.endswith(".py") else f"{name}.py"
        hits = [f for f in every if fnmatch.fnmatch(f, pattern) or f == pattern]
        hits = hits or [f for f in every if fnmatch.fnmatch(f, f"*/{pattern}")]
        if not hits:
            raise ValueError(f"no dm-haiku test file matches {name!r}")
        chosen += [f for f in hits if f not in chosen]
    return chosen


def _versions() -> str:
    return "-".join(
        f"{p}{importlib.metadata.version(p)}" for p in ("dm-haiku", "jax", "jaxlib")
    )


def public_map() -> pathlib.Path:
    """The `public_map` table as a JSON file, built by a dm-haiku process once."""
    path = CACHE / f"public_map-{_versions()}.json"
    if not path.exists():
        out = subprocess.run(
            [sys.executable, "-m", "tests.haiku_suite.public_map"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(out)
    return path


def run(
    impl: str, files: Sequence[str], node_ids: Sequence[str] = (), workers: int = 0
) -> Results:
    """Run `files` (or only `node_ids`) in a fresh pytest process.

    Args:
      impl: ``"pax"`` (``haiku`` is `pax.hk`) or ``"dm"`` (the real dm-haiku).
      files: test files relative to dm-haiku's ``_src``.
      node_ids: if given, run just these tests (ids as returned here).
      workers: pytest-xdist worker processes (0: none).

    Returns:
      Outcome (``passed``, ``failed``, ``skipped`` or ``collect-error``) and a
      one-line reason per node id; a file that fails to import appears as a
      single ``collect-error`` entry under the file's name.
    """
    src = haiku_src()
    targets = [str(src / n) for n in node_ids] or [str(src / f) for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "results.json"
        env = dict(os.environ)
        env.update(
            {
                plugin.IMPL_ENV: impl,
                plugin.OUT_ENV: str(out),
                plugin.ROOT_ENV: str(src.parent),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        if impl == "pax":
            env[plugin.MAP_ENV] = str(public_map())
        cmd = [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("-c", os.devnull, "--rootdir", str(src), "-o", "addopts="),
            *("-p", "tests.haiku_suite.plugin", "--continue-on-collection-errors"),
            *(("-n", str(workers)) if workers else ()),
            *targets,
        ]
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if not out.exists():
            raise RuntimeError(
                f"pytest ({impl}) wrote no results:\n{proc.stdout[-3000:]}"
            )
        payload = json.loads(out.read_text())
    expected = "pax.hk" if impl == "pax" else "haiku"
    if payload["haiku"] not in (None, expected):
        raise RuntimeError(f"{impl} run imported {payload['haiku']} as haiku")
    return payload["results"]


def file_of(node_id: str) -> str:
    return node_id.split("::", 1)[0]


def dm_results(files: Sequence[str], workers: int = 0) -> Results:
    """dm-haiku's own results for `files`, run once per file and cached."""
    folder = CACHE / f"dm-{_versions()}"
    src = haiku_src()
    cached: Results = {}
    missing = []
    for f in files:
        digest = hashlib.sha1((src / f).read_bytes()).hexdigest()[:12]
        path = folder / f"{f.replace('/', '.')}-{digest}.json"
        if path.exists():
            cached.update(json.loads(path.read_text()))
        else:
            missing.append((f, path))
    if missing:
        fresh = run("dm", [f for f, _ in missing], workers=workers)
        folder.mkdir(parents=True, exist_ok=True)
        for f, path in missing:
            mine = {k: v for k, v in fresh.items() if file_of(k) == f}
            path.write_text(json.dumps(mine, indent=1, sort_keys=True))
            cached.update(mine)
    return cached


def listed(node_id: str, table: Mapping[str, str]) -> str | None:
    """The reason `table` gives for `node_id` (keys are fnmatch patterns)."""
    for pattern, reason in table.items():
        if fnmatch.fnmatchcase(node_id, pattern):
            return reason
    return None


@dataclasses.dataclass
class Verdict:
    """One dm-haiku test's standing under `pax.hk`."""

    node_id: str
    status: str  # pass | known | unlisted | excluded | not-comparable
    why: str = ""  # the failure (or dm-haiku's) one-line reason
    listed_as: str = ""  # the expectations entry, if any


def judge(dm: Results, pax: Results) -> list[Verdict]:
    """Compare a file set's dm-haiku and `pax.hk` results test by test."""
    verdicts = []
    for node_id, ref in sorted(dm.items()):
        if ref["outcome"] != "passed":
            verdicts.append(Verdict(node_id, "not-comparable", ref["why"]))
            continue
        internal = listed(node_id, expectations.NEEDS_INTERNAL)
        if internal is not None:
            verdicts.append(Verdict(node_id, "excluded", "", internal))
            continue
        got = pax.get(node_id) or pax.get(file_of(node_id))
        got = got or {"outcome": "missing", "why": "not run under pax.hk"}
        known = listed(node_id, expectations.KNOWN_FAILURES) or ""
        if got["outcome"] == "passed":
            verdicts.append(Verdict(node_id, "pass", "", known))
        else:
            status = "known" if known else "unlisted"
            why = f"{got['outcome']}: {got['why']}"
            verdicts.append(Verdict(node_id, status, why, known))
    return verdicts


def table(verdicts: Sequence[Verdict]) -> str:
    """Per-file counts: comparable, passed and failed under pax.hk, excluded."""
    rows: dict[str, collections.Counter[str]] = {}
    for v in verdicts:
        rows.setdefault(file_of(v.node_id), collections.Counter())[v.status] += 1
    rows["TOTAL"] = sum(rows.values(), collections.Counter())
    width = max(map(len, rows))
    head = ("comparable", "passed", "failed", "unlisted", "excluded", "not-cmp")
    lines = [f"{'file':<{width}} " + " ".join(f"{h:>10}" for h in head) + "   rate"]
    for name, r in rows.items():
        failed = r["known"] + r["unlisted"]
        comparable = r["pass"] + failed
        rate = f"{100 * r['pass'] / comparable:6.1f}%" if comparable else "     -"
        counts = (comparable, r["pass"], failed, r["unlisted"], r["excluded"])
        counts += (r["not-comparable"],)
        if name == "TOTAL":
            lines.append("-" * len(lines[0]))
        cells = " ".join(f"{c:>10}" for c in counts)
        lines.append(f"{name:<{width}} {cells} {rate}")
    return "\n".join(lines)


def notes(verdicts: Sequence[Verdict]) -> str:
    """Unlisted failures (regressions) and listed tests that now pass."""
    lines = []
    for v in verdicts:
        if v.status == "unlisted":
            lines.append(f"UNLISTED FAILURE {v.node_id}\n    {v.why}")
        elif v.status == "pass" and v.listed_as:
            lines.append(f"now passing, remove from KNOWN_FAILURES: {v.node_id}")
    return "\n".join(lines)


def compare(files: Sequence[str], workers: int = 0) -> list[Verdict]:
    """Run `files` under pax.hk, and under dm-haiku (cached), and judge them."""
    return judge(dm_results(files, workers), run("pax", files, workers=workers))

"""dm-haiku's own tests must pass under `pax.hk`, except those listed.

The default suite runs a few small upstream files (`FAST_FILES`); the slow
test runs every file under both implementations. Both run in subprocesses:
this process never has ``haiku`` aliased.
"""

import sys

import pytest

from tests.haiku_suite import alias, runner

FAST_FILES = ("bias_test", "embed_test", "eval_shape_test", "deferred_test")


def _check(verdicts: list[runner.Verdict]) -> None:
    print(runner.table(verdicts))
    print(runner.notes(verdicts))
    unlisted = [v for v in verdicts if v.status == "unlisted"]
    assert not unlisted, "\n".join(f"{v.node_id}: {v.why}" for v in unlisted)


def test_fast_subset():
    """Every comparable, unlisted test in `FAST_FILES` passes under pax.hk.

    dm-haiku itself is run only for tests that fail here (to tell a
    regression from a test dm-haiku fails too), so a green run costs one
    subprocess.
    """
    files = runner.test_files(FAST_FILES)
    pax = runner.run("pax", files)
    failing = {runner.file_of(k) for k, v in pax.items() if v["outcome"] != "passed"}
    dm = {k: {"outcome": "passed", "why": ""} for k in pax if "::" in k}
    dm.update(runner.dm_results(sorted(failing)))
    _check(runner.judge(dm, pax))
    assert sys.modules.get("haiku") is None or sys.modules["haiku"].__name__ == "haiku"


@pytest.mark.slow
def test_whole_suite():
    """Every comparable dm-haiku test passes under pax.hk or is listed."""
    verdicts = runner.compare(runner.test_files())
    _check(verdicts)
    assert sys.modules.get("haiku") is None or sys.modules["haiku"].__name__ == "haiku"


def test_placeholder_fails_only_when_used():
    """A shim name with no public path survives import-time use, not a call."""
    missing = alias._Missing("`haiku._src.x.y` has no public path")
    decorated = missing(flag=True)(lambda: None)  # a decorator factory
    jitted = missing(len)  # wrapping a function
    for used in (decorated, jitted, lambda: missing(3)):
        with pytest.raises(alias.NoPublicPath, match="no public path"):
            used()
    with pytest.raises(alias.NoPublicPath):
        getattr(missing, "attribute")  # noqa: B009

"""``python -m tests.haiku_suite``: dm-haiku's own tests against `pax.hk`.

Prints a per-file table (comparable tests, passed and failed under pax.hk,
excluded, not comparable, pass rate), then unlisted failures and listed
failures that now pass. ``--impl dm`` only (re)runs dm-haiku itself.
"""

from __future__ import annotations

import argparse
import time

from tests.haiku_suite import runner


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns 1 when a comparable test fails unlisted."""
    parser = argparse.ArgumentParser(prog="python -m tests.haiku_suite")
    parser.add_argument("--impl", choices=("pax", "dm"), default="pax")
    parser.add_argument(
        "--files", nargs="*", default=(), help="test files: stems or globs"
    )
    parser.add_argument("--workers", type=int, default=0, help="pytest-xdist -n")
    parser.add_argument(
        "--failures", action="store_true", help="list every failure and its reason"
    )
    args = parser.parse_args(argv)
    files = runner.test_files(args.files)
    start = time.perf_counter()
    if args.impl == "dm":
        results = runner.run("dm", files, workers=args.workers)
        counts: dict[str, int] = {}
        for r in results.values():
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        print(f"dm-haiku on {len(files)} files: {counts}")
        return 0
    verdicts = runner.compare(files, workers=args.workers)
    print(runner.table(verdicts))
    if args.failures:
        for v in verdicts:
            if v.status in ("known", "unlisted"):
                print(f"{v.node_id}\n    [{v.listed_as or 'UNLISTED'}] {v.why}")
    print(runner.notes(verdicts))
    print(f"({time.perf_counter() - start:.0f} s)")
    return int(any(v.status == "unlisted" for v in verdicts))


if __name__ == "__main__":
    raise SystemExit(main())

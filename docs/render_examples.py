"""Regenerate the printed outputs and pictures of the example pages.

    python docs/render_examples.py                  # every example, in turn
    python docs/render_examples.py digits_cnn vqvae_digits   # some of them

Run from anywhere (it works from the repository root). Each example runs as
its page describes it (the arguments in ``EXAMPLES``), one at a time, in a
subprocess; its standard output goes to ``docs/examples/outputs/<name>.txt``
and its figures to ``docs/examples/images/<name>*.png``. Progress bars
(stderr) are dropped; an example that fails leaves its old output in place and
makes this script exit non-zero.

The site build trains nothing: the pages include these committed files. After
changing an example, re-run this for it and commit what it writes. The first
two lines of every output file record the command, the commit it ran at (with
``+ local changes`` when ``pax/`` or ``examples/`` differed from it), the JAX
version and backend, and the wall time.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
OUTPUTS = "docs/examples/outputs"
IMAGES = "docs/examples/images"

# name -> arguments, fastest first (minutes measured on 2 shared CPU cores)
EXAMPLES = {
    "digits_mlp": [],  # seconds
    "haiku_port": [],  # ~20 s
    "vqvae_digits": ["--plot", f"{IMAGES}/vqvae_digits.png"],  # ~40 s
    "digits_cnn": ["--plot", f"{IMAGES}/digits_cnn_loss.png"],  # ~1 min
    "resnet_digits": [],  # ~1-2 min
    "char_lstm": ["--plot", f"{IMAGES}/char_lstm_loss.png"],  # ~5 min
    "transformer_lm": ["--plot", f"{IMAGES}/transformer_lm_loss.png"],  # ~5 min
}


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def describe_platform() -> str:
    code = "import jax; print(jax.__version__, jax.default_backend())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return f"jax {out[0]}, {out[1]} ({os.cpu_count()} cores)"


def render(name: str, platform: str) -> bool:
    command = [f"examples/{name}.py", *EXAMPLES[name]]
    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--", "pax", "examples"):
        commit += " + local changes"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    print(f"$ python {' '.join(command)}", flush=True)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        print(run.stdout + run.stderr, file=sys.stderr)
        print(f"{name} failed (exit {run.returncode})", file=sys.stderr)
        return False
    header = (
        f"$ python {' '.join(command)}\n"
        f"# commit {commit}; {platform}; {seconds:.0f} s wall time\n"
    )
    (ROOT / OUTPUTS / f"{name}.txt").write_text(header + run.stdout)
    print(f"  {seconds:.0f} s -> {OUTPUTS}/{name}.txt", flush=True)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(EXAMPLES)}")
    names = parser.parse_args(argv).names or list(EXAMPLES)
    unknown = sorted(set(names) - set(EXAMPLES))
    if unknown:
        parser.error(f"unknown example(s): {', '.join(unknown)}")
    (ROOT / OUTPUTS).mkdir(parents=True, exist_ok=True)
    (ROOT / IMAGES).mkdir(parents=True, exist_ok=True)
    platform = describe_platform()
    failed = [name for name in names if not render(name, platform)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

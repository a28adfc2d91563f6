"""Two processes on ``jax.distributed`` (``pax.launch``, 2 x 4 CPU devices)
against one process with 8 devices: the examples' losses, Orbax checkpoints
written by both processes and read back in other layouts, resume, and
``pax.save`` on an array no process holds whole.

``driver.py`` does the work in two launches (one of two processes, one of a
single process); this module checks what they leave behind.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from tests.run_once import run_once

ROOT = pathlib.Path(__file__).parents[2]
DRIVER = pathlib.Path(__file__).with_name("driver.py")
TIMEOUT = 300


def run(command, env, timeout=TIMEOUT):
    """Run ``command`` in its own process group; kill the group on timeout."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # the launcher stops its children
        try:
            out, _ = proc.communicate(timeout=15)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"{command} timed out after {timeout} s:\n{out[-3000:]}")
    return proc.returncode, out


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Both launches, once per test run (also under xdist, see
    ``tests/run_once.py``): ``(output dir, 2-process output, 1-process
    output)``."""

    def launch():
        out, two, one = _launch(tmp_path_factory)
        return [str(out), two, one]

    out, two, one = run_once(tmp_path_factory, "pax_two_processes", launch)
    return pathlib.Path(out), two, one


def _launch(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    env = dict(os.environ)  # keeps the suite's XLA_FLAGS (-O0) for both runs
    env.pop("JAX_PLATFORMS", None)
    command = [sys.executable, "-m", "pax.launch", "-n", "2"]
    command += ["--devices-per-process", "4", str(DRIVER), str(out), "two"]
    code, two = run(command, env)
    assert code == 0, two[-5000:]
    flags = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env_one = dict(env, XLA_FLAGS=flags.strip(), JAX_PLATFORMS="cpu")
    code, one = run([sys.executable, str(DRIVER), str(out), "one"], env_one)
    assert code == 0, one[-5000:]
    return out, two, one


def losses(path):
    with open(path) as f:
        record = json.load(f)
    return record["start"], record["losses"]


def test_lm_two_processes_interrupted_and_resumed_equal_one_process(runs):
    out, two, _ = runs
    start_a, a = losses(out / "lm_two_a.json")
    start_b, b = losses(out / "lm_two_b.json")
    assert (start_a, len(a), start_b, len(b)) == (0, 3, 3, 3)
    assert "[0] resumed from" in two and "at step 3" in two
    _, one = losses(out / "lm_one.json")
    assert len(one) == 6
    np.testing.assert_allclose(a + b, one, rtol=1e-5)
    # the second half really trained: the losses move
    assert len(set(np.round(one, 4))) == 6


def test_lm_single_process_resume_is_exact(runs):
    out, _, _ = runs
    _, a = losses(out / "lm_one_a.json")
    start, b = losses(out / "lm_one_b.json")
    _, full = losses(out / "lm_one.json")
    assert start == 3
    assert a + b == full  # same process layout, same programs: bit for bit


def test_resnet_two_processes_equal_one_process(runs):
    out, two, one = runs
    _, two_losses = losses(out / "resnet_two.json")
    _, one_losses = losses(out / "resnet_one.json")
    assert len(two_losses) == 4  # 64 images, global batch 16
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
    assert "[0] last batch was split over 8 device(s)" in two
    accuracy = [line for line in two.splitlines() if "final test accuracy" in line]
    assert accuracy == [next(x for x in one.splitlines() if "final test" in x)
                        .join(["[0] ", ""])]  # fmt: skip


def test_only_process_0_prints(runs):
    _, two, _ = runs
    lines = two.splitlines()
    for text in ("train:", "sample:", "held-out bits", "epoch 1:", "final test"):
        assert any(line.startswith(f"[0] {text}") for line in lines), text
        assert not any(line.startswith(f"[1] {text}") for line in lines), text
    assert any(line.startswith("[1] DRIVER_DONE") for line in lines)


def _assemble(out):
    """The two processes' dumped shards, put together into whole arrays."""
    whole, filled = {}, {}
    for i in range(2):
        data = np.load(out / f"shards_{i}.npz")
        index = json.loads((out / f"shards_{i}.npz.json").read_text())
        for n, (key, shape, where) in enumerate(index):
            chunk = data[f"arr_{n}"]
            if key not in whole:
                whole[key] = np.zeros(shape, chunk.dtype)
                filled[key] = np.zeros(shape, bool)
            region = tuple(slice(a, b) for a, b in where)
            whole[key][region] = chunk
            filled[key][region] = True
    assert all(f.all() for f in filled.values())  # every element came from a shard
    return whole


def test_orbax_two_process_checkpoint_restores_in_other_layouts(runs):
    out, two, one = runs
    leaves = out / "lm_ckpt_two" / "6" / "leaves"
    # each process wrote its own shards
    assert (leaves / "ocdbt.process_0").is_dir()
    assert (leaves / "ocdbt.process_1").is_dir()
    assert sorted(os.listdir(out / "lm_ckpt_two")) >= ["3", "6"]
    whole = _assemble(out)
    on_8 = np.load(out / "restored_8.npz")
    on_1 = np.load(out / "restored_1.npz")
    own = np.load(out / "own_run.npz")
    assert sorted(whole) == sorted(on_8.files) == sorted(on_1.files)
    assert "FSDP_SHARDS 8 P('data',)" in one  # really another layout
    for key in whole:
        np.testing.assert_array_equal(on_8[key], whole[key], err_msg=key)
        np.testing.assert_array_equal(on_1[key], whole[key], err_msg=key)
        # and the checkpoint holds the trained model: that of the 1-process run
        np.testing.assert_allclose(own[key], whole[key], rtol=1e-5, atol=1e-6)


def test_pax_save_refuses_arrays_spread_over_processes(runs):
    out, two, _ = runs
    for i in range(2):
        line = next(x for x in two.splitlines() if x.startswith(f"[{i}] SAVE_"))
        assert line.startswith(f"[{i}] SAVE_ERROR pax.save")
        assert f"not fully addressable from process {i}" in line
        assert "pax.checkpoint.Manager" in line
        assert not (out / f"not_written_{i}.npz").exists()


FAILING = textwrap.dedent(
    """
    import os, sys, time
    args = sys.argv[1:]
    pid = args[args.index("--process-id") + 1]
    with open(os.path.join(args[0], "pid_" + pid), "w") as f:
        f.write(str(os.getpid()))
    print("args", " ".join(args[1:]))
    if pid == "1":
        time.sleep(0.5)
        sys.exit(3)
    time.sleep(120)
    """
)


def test_launcher_prefixes_appends_flags_and_stops_all_on_failure(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    started = time.monotonic()
    code, out = run(
        [sys.executable, "-m", "pax.launch", "-n", "2", "--port", "12345",
         "--grace", "1", str(script), str(tmp_path), "--x", "1"],
        dict(os.environ),
        timeout=60,
    )  # fmt: skip
    assert code == 3, out
    assert time.monotonic() - started < 30  # not the 120 s of process 0
    for i in range(2):
        expected = f"[{i}] args --x 1 --num-processes 2 --process-id {i} "
        assert expected + "--coordinator 127.0.0.1:12345" in out
    assert "[launch] process 1 exited with status 3" in out
    sleeper = int((tmp_path / "pid_0").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(sleeper, 0)  # process 0 was stopped (and reaped)

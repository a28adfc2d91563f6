"""The ported Haiku script: runs under pax.hk, moves to native modules with
the same predictions, keeps learning, and goes back to Haiku's dicts."""

import importlib.util
import pathlib
import re

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "haiku_port.py"


def load_example():
    spec = importlib.util.spec_from_file_location("haiku_port", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _number(line: str) -> float:
    return float(re.findall(r"[-+0-9.e]+$|[-+0-9.]+e[-+][0-9]+", line)[-1])


def test_smoke_run_ports_the_trained_weights(capsys):
    final = load_example().main(["--smoke"])
    lines = capsys.readouterr().out.strip().splitlines()
    haiku_acc = _number(lines[0])
    assert haiku_acc > 0.5  # chance is 0.1
    copy = lines[1]
    assert copy.endswith("same predictions: True")
    assert float(re.search(r"difference\| ([0-9.e+-]+),", copy).group(1)) < 1e-5
    assert _number(lines[3]) < 1e-5  # native weights back in the Haiku program
    assert lines[-1] == f"final test accuracy: {final:.4f}"
    assert final > 0.5


@pytest.mark.slow
def test_full_run_reaches_97_percent():
    assert load_example().main([]) >= 0.97

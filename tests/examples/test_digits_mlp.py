"""The README's example trains for real (smoke mode here; full run is slow)."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "digits_mlp.py"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_learns_something(capsys):
    accuracy = load_example().main(["--smoke"])
    out = capsys.readouterr().out
    assert "steps taken: 20;" in out  # the state counter advanced once per step
    assert accuracy > 0.3  # chance is 0.1


@pytest.mark.slow
def test_full_run_reaches_high_accuracy():
    assert load_example().main([]) > 0.9

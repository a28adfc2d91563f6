"""The VQ-VAE example: smoke run with figure and resume, (slow) full run."""

import importlib.util
import math
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "vqvae_digits.py"


def load_example():
    spec = importlib.util.spec_from_file_location("vqvae_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_saves_the_figure_and_resumes(tmp_path, capsys):
    example = load_example()
    png, ckpt = tmp_path / "grid.png", tmp_path / "ckpt"
    argv = ["--smoke", "--png", str(png), "--ckpt-dir", str(ckpt)]
    first = example.main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith(f"held-out mse {first.mse:.4f}")  # last line
    assert math.isfinite(first.mse) and first.mse > 0
    assert math.isfinite(first.baseline_mse) and first.baseline_mse > 0
    assert 1.0 <= first.perplexity <= 64.0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert (ckpt / "vqvae_digits.npz").is_file()
    # re-running continues after the last saved epoch: nothing left to train,
    # and the restored model (codebook state included) scores the same
    png.unlink()
    again = example.main(argv)
    out = capsys.readouterr().out
    assert "resumed from" in out and "after epoch 2" in out
    assert "epoch 1:" not in out and "epoch 2:" not in out
    assert again == first
    assert png.is_file()


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        load_example().main(["--help"])
    text = capsys.readouterr().out
    for option in ("--epochs", "--ckpt-dir", "--smoke", "--png", "--no-ema"):
        assert option in text
    assert "--plot" in text  # the other examples' name for the figure's path


@pytest.mark.slow
def test_full_run_reconstructs_far_better_than_the_mean_image(tmp_path):
    result = load_example().main(["--png", str(tmp_path / "grid.png")])
    assert result.mse < 0.2 * result.baseline_mse
    assert result.perplexity > 16  # many codes in use

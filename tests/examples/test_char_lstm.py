"""The character LSTM example: smoke run with resume, (slow) full run."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "char_lstm.py"


def load_example():
    spec = importlib.util.spec_from_file_location("char_lstm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_trains_samples_and_resumes(tmp_path, capsys):
    example = load_example()
    png = tmp_path / "loss.png"
    bpc = example.main(["--smoke", "--ckpt-dir", str(tmp_path), "--plot", str(png)])
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[-2] == f"saved {png}"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert lines[-1].startswith("held-out bits per character:")
    assert "unigram baseline" in lines[-1] and "sample:" in out
    assert 0 < bpc < 8.0  # bytes: uniform guessing is 8 bits
    assert (tmp_path / "char_lstm.npz").is_file()
    again = example.main(["--smoke", "--ckpt-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 30" in out
    assert again == pytest.approx(bpc, abs=1e-6)  # nothing left to train


def test_unigram_baseline_is_the_cross_entropy_of_byte_frequencies():
    import numpy as np

    example = load_example()
    train = np.array([0, 0, 1, 1], np.int32)
    held = np.array([0, 1], np.int32)
    # add-one smoothing over 256 symbols: p(0) = p(1) = 3 / 260
    expected = -np.log2(3 / 260)
    assert example.unigram_entropy_bits(train, held) == pytest.approx(expected)


@pytest.mark.slow
def test_full_run_reaches_2_5_bits_per_character():
    assert load_example().main([]) <= 2.5

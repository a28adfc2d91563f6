"""The README's example: smoke run, resume from checkpoints, (slow) full run."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "digits_cnn.py"


def load_example():
    spec = importlib.util.spec_from_file_location("digits_cnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_run_learns_and_resumes_from_its_checkpoint(tmp_path, capsys):
    example = load_example()
    ckpt, png = tmp_path / "ckpt", tmp_path / "loss.png"
    first = example.main(["--smoke", "--ckpt-dir", str(ckpt), "--plot", str(png)])
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"final test accuracy: {first:.4f}"  # last line: accuracy
    assert out[-2] == f"saved {png}"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert first > 0.5  # chance is 0.1; two short epochs on 512 images
    assert (ckpt / "digits_cnn.npz").is_file()
    # re-running continues after the last saved epoch: nothing left to train,
    # and the restored model scores exactly the same
    again = example.main(["--smoke", "--ckpt-dir", str(ckpt)])
    out = capsys.readouterr().out
    assert "resumed from" in out and "after epoch 2" in out
    assert "epoch 1:" not in out and "epoch 2:" not in out
    assert again == first


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        load_example().main(["--help"])
    text = capsys.readouterr().out
    for option in ("--epochs", "--ckpt-dir", "--smoke", "--lr", "--plot"):
        assert option in text


@pytest.mark.slow
def test_full_run_reaches_98_percent():
    assert load_example().main([]) >= 0.98

"""The transformer language-model example: smoke run with resume, (slow) full
run."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "transformer_lm.py"


def load_example():
    spec = importlib.util.spec_from_file_location("transformer_lm", EXAMPLE)
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
    assert (tmp_path / "transformer_lm.npz").is_file()
    again = example.main(["--smoke", "--ckpt-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 30" in out
    assert again == pytest.approx(bpc, abs=1e-6)  # nothing left to train


def test_held_out_windows_score_every_byte_once():
    import jax.numpy as jnp
    import numpy as np

    example = load_example()
    seen = []

    class Recorder:  # stands in for the model: records what gets scored
        def eval(self):
            return self

    def token_losses(model, windows):
        seen.append(np.asarray(windows[:, 1:]))
        return jnp.ones(windows[:, 1:].shape)  # 1 nat per scored byte

    example.token_losses = token_losses
    data = np.arange(1, 42, dtype=np.int32)  # 41 bytes: 40 predictions
    bpc = example.bits_per_char(Recorder(), data, seq_len=8, batch=4)
    assert bpc == pytest.approx(1 / np.log(2))
    targets = np.concatenate(seen)
    scored = np.concatenate([targets[0], targets[1:9, 4:].ravel()])
    np.testing.assert_array_equal(scored, np.arange(2, 42))  # each once, in order
    assert not targets[9:].any()  # the padding windows


@pytest.mark.slow
def test_full_run_beats_the_unigram_baseline_by_far():
    assert load_example().main([]) <= 2.6

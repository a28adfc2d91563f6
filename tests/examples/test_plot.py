"""examples/_plot.py, the training-curve PNG behind the examples' --plot."""

import pathlib
import runpy

import numpy as np

HELPER = pathlib.Path(__file__).parents[2] / "examples" / "_plot.py"
PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which follows the signature."""
    assert data.startswith(PNG) and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_writes_a_png_with_every_element(tmp_path):
    plot = runpy.run_path(str(HELPER))["plot_training"]
    path = tmp_path / "curve.png"
    losses = 3.0 * np.exp(-np.linspace(0, 3, 200))
    plot(
        str(path),
        np.arange(1, 201),
        losses,
        xlabel="step",
        ylabel="loss",
        title="test",
        marks=[(200, 0.2, "held-out")],
        lines=[(1.0, "baseline")],
        right=([100, 200], [0.5, 0.9], "accuracy"),
    )
    assert png_size(path.read_bytes()) == (640, 360)


def test_no_losses_still_writes_a_figure(tmp_path):
    # a resumed run with nothing left to train has no losses to draw
    plot = runpy.run_path(str(HELPER))["plot_training"]
    path = tmp_path / "empty.png"
    plot(str(path), [], [], xlabel="step", ylabel="loss", title="empty")
    assert path.read_bytes().startswith(PNG)

"""The training-curve PNG that the examples write with ``--plot PATH``.

Not an example: the examples load it by path (``runpy.run_path``), so it
works however they are run or imported. matplotlib is imported only here,
with the Agg backend (no display needed).
"""

from __future__ import annotations

import numpy as np


def plot_training(
    path: str,
    steps,
    losses,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    marks=(),
    lines=(),
    right=None,
) -> None:
    """Write a PNG of the training loss against ``steps`` to ``path``.

    The raw per-step losses are drawn faintly under their running mean.
    ``marks`` are ``(x, y, label)`` points and ``lines`` ``(y, label)``
    horizontal lines on the loss axis (a held-out score, a baseline);
    ``right`` is ``(xs, ys, label)``, a second metric on its own y axis.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses = np.asarray(steps, float), np.asarray(losses, float)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8)
    window = max(1, len(losses) // 40)
    if len(losses):  # none when a resumed run had nothing left to train
        mean = np.convolve(losses, np.ones(window) / window, mode="valid")
        label = "training" if window == 1 else f"training ({window}-step mean)"
        ax.plot(steps[window - 1 :], mean, color="tab:blue", label=label)
    for (y, text), style in zip(lines, ("--", ":", "-.")):
        ax.axhline(y, color="gray", ls=style, lw=1, label=text)
    for x, y, text in marks:
        ax.plot([x], [y], "o", color="tab:red", label=text)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        xs, ys, text = right
        ax2 = ax.twinx()
        ax2.plot(xs, ys, "o-", color="tab:orange", ms=3, label=text)
        ax2.set_ylabel(text)
        more = ax2.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    # loss curves fall from the top left; an accuracy rises to the top right
    ax.legend(handles, labels, fontsize=8, loc="center right" if right else "best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""results.png: one panel per results.csv column (losses and metrics) against epoch."""

from __future__ import annotations

import math
from pathlib import Path

from faceyolo.files import atomic_write


def _pyplot():
    """Return matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_results(rows: list[dict[str, float]], path: Path) -> Path | None:
    """Return `path` after drawing one panel per column of results.csv against epoch; None without rows."""
    if not rows:
        return None
    plt = _pyplot()
    columns = [k for k in rows[0] if k != "epoch" and not k.startswith("lr/")]
    epochs = [int(r["epoch"]) + 1 for r in rows]
    ncols = min(5, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax, column in zip(axes.flat, columns, strict=False):
        ax.plot(epochs, [r.get(column, float("nan")) for r in rows], marker=".", linewidth=1.5)
        ax.set_title(column, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path

"""Curve plots saved as PNG: WIDER PR curves, and the PR / F1 curves of the detection metrics.

Uses matplotlib's object API (`Figure` + Agg canvas), so no pyplot state or display is touched.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from faceyolo.files import atomic_write


def save_curves_png(
    path: str | os.PathLike,
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """Return `path` after drawing each labelled (x, y) series as a line on [0, 1] × [0, 1] axes.

    NaN points (e.g. WIDER precision where no prediction passes a threshold) are left out of the line.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5), dpi=120, tight_layout=True)
    ax = fig.add_subplot()
    for label, (x, y) in series.items():
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y)
        ax.plot(x[ok], y[ok], linewidth=1.5, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(loc="lower left")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def save_widerface_pr(path: str | os.PathLike, result, title: str = "WIDER FACE val") -> Path:
    """Return `path` after plotting the Easy/Medium/Hard precision-recall curves of a WiderResult."""
    series = {f"{s} AP {result.ap[s]:.4f}": (result.recall[s], result.precision[s]) for s in result.ap}
    return save_curves_png(path, series, "recall", "precision", f"{title} ({result.images} images)")

"""What a training run shows and records: the per-batch progress line, results.csv and TensorBoard."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from faceyolo.files import atomic_write_text

LOSS_NAMES = ("box", "obj", "cls", "landmark", "total")


def progress_header() -> str:
    """Return the column titles printed above each epoch's progress bar."""
    columns = ("epoch", "gpu_mem", *LOSS_NAMES, "targets", "img_size")
    return ("{:>10}" * len(columns)).format(*columns)


def progress_line(epoch: int, epochs: int, mean_losses: torch.Tensor, targets: int, img_size: int) -> str:
    """Return one progress-bar description: epoch, GPU memory, running mean losses, targets, image size."""
    memory = torch.cuda.memory_reserved() / 2**30 if torch.cuda.is_available() else 0.0
    losses = "".join(f"{float(v):>10.4g}" for v in mean_losses)
    return f"{f'{epoch + 1}/{epochs}':>10}{f'{memory:.3g}G':>10}{losses}{targets:>10}{img_size:>10}"


class ResultsLog:
    """results.csv (one row per epoch, rewritten atomically) plus TensorBoard scalars when installed."""

    def __init__(self, run_dir: Path, tensorboard: bool = True):
        self.path = run_dir / "results.csv"
        self.rows: list[dict[str, float]] = self._read() if self.path.is_file() else []
        self.writer = _tensorboard_writer(run_dir) if tensorboard else None

    def keep_until(self, epoch: int) -> None:
        """Drop rows after `epoch` (0-based): what a resumed run is about to redo."""
        self.rows = [row for row in self.rows if int(row["epoch"]) <= epoch]

    def add(self, row: dict[str, float]) -> None:
        """Append one epoch's row (must hold 'epoch') and rewrite results.csv."""
        self.rows.append(row)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(row), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, int(row["epoch"]))
            self.writer.flush()

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self.writer is not None:
            self.writer.close()

    def _read(self) -> list[dict[str, float]]:
        with self.path.open(newline="") as f:
            return [{k: int(float(v)) if k == "epoch" else float(v) for k, v in row.items()}
                    for row in csv.DictReader(f)]


def _tensorboard_writer(run_dir: Path):
    """Return a TensorBoard SummaryWriter on the run folder, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir))

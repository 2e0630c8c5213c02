"""What the model is trained on: a grid of augmented samples with faces drawn, and a plot of the labels.

`show_dataset` writes into one folder:
* `train_samples.jpg`: augmented training samples (mosaic, affine, HSV, flips as configured), each face's box
  and its visible landmarks (left eye blue, right eye red, nose green, left mouth corner magenta, right
  mouth corner cyan; colours as in `inference.draw`);
* `labels.png`: face size histogram (sqrt(w·h) in original pixels), faces per image, box centres, and how many
  faces carry landmarks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from faceyolo.data.dataset import FaceDataset
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write, atomic_write_bytes
from faceyolo.inference.draw import BOX_COLOR, LANDMARK_COLORS

CELL = 320  # pixels per grid cell in train_samples.jpg


def show_dataset(
    dataset: FaceDataset,
    out_dir: str | os.PathLike,
    count: int = 16,
    epoch: int = 0,
) -> dict[str, Path]:
    """Return {"samples": path, "labels": path} after writing the sample grid and the labels plot.

    The samples are the first `count` items of a seeded permutation of the dataset at `epoch`.
    """
    out = Path(out_dir)
    order = np.random.default_rng((dataset.seed, epoch)).permutation(len(dataset))[:count]
    cells = [draw_sample(*dataset[(int(k), epoch)][:2]) for k in order]
    grid = _grid(cells)
    ok, encoded = cv2.imencode(".jpg", grid, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise FaceyoloError(f"{out}: cannot encode the sample grid as JPEG")
    samples = atomic_write_bytes(out / "train_samples.jpg", encoded.tobytes())
    labels = plot_labels(dataset.labels, dataset.sizes, out / "labels.png")
    return {"samples": samples, "labels": labels}


def draw_sample(image_chw_rgb, labels) -> np.ndarray:
    """Return a (CELL, CELL, 3) BGR uint8 picture of one dataset item with boxes and visible landmarks.

    image_chw_rgb: (3, H, W) uint8 tensor or array; labels: (n, 16) normalised as FaceDataset returns them.
    """
    image = np.ascontiguousarray(np.asarray(image_chw_rgb).transpose(1, 2, 0)[:, :, ::-1])
    h, w = image.shape[:2]
    gain = CELL / max(h, w)
    canvas = np.full((CELL, CELL, 3), 114, np.uint8)
    canvas[: round(h * gain), : round(w * gain)] = cv2.resize(image, (round(w * gain), round(h * gain)))
    rows = np.asarray(labels, dtype=np.float64).reshape(-1, 16)
    for row in rows:
        cx, cy, bw, bh = row[2:6] * [w, h, w, h] * gain
        cv2.rectangle(
            canvas,
            (int(cx - bw / 2), int(cy - bh / 2)),
            (int(cx + bw / 2), int(cy + bh / 2)),
            BOX_COLOR,
            1,
            cv2.LINE_AA,
        )
        for (x, y), color in zip(row[6:].reshape(5, 2), LANDMARK_COLORS, strict=True):
            if x > 0 and y > 0:
                cv2.circle(canvas, (int(x * w * gain), int(y * h * gain)), 2, color, -1, cv2.LINE_AA)
    return canvas


def plot_labels(labels: list[np.ndarray], sizes_wh: np.ndarray, path: str | os.PathLike) -> Path:
    """Return `path` after saving a 2x2 summary plot of per-image labels (n_i, 15) and image sizes (N, 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array([len(x) for x in labels])
    rows = np.concatenate([np.zeros((0, 15), np.float32), *labels])
    image_wh = np.repeat(np.asarray(sizes_wh, np.float64).reshape(-1, 2), counts, axis=0)
    face_px = np.sqrt(rows[:, 3] * image_wh[:, 0] * rows[:, 4] * image_wh[:, 1])
    with_marks = (rows[:, 5:] > 0).all(axis=1) if len(rows) else np.zeros(0, bool)

    fig, axes = plt.subplots(2, 2, figsize=(10, 8))
    bins = np.geomspace(1, max(2.0, float(face_px.max(initial=2.0))), 40)
    axes[0, 0].hist(face_px, bins=bins, color="tab:blue")
    axes[0, 0].set(
        xscale="log",
        xlabel="face size sqrt(w·h), original pixels",
        ylabel="faces",
        title=f"{len(rows):,} faces",
    )
    axes[0, 1].hist(counts, bins=min(50, max(1, int(counts.max(initial=1)) + 1)), color="tab:orange")
    axes[0, 1].set(xlabel="faces per image", ylabel="images", title=f"{len(counts):,} images")
    axes[1, 0].scatter(rows[:, 1], rows[:, 2], s=1, alpha=0.3, color="tab:green")
    axes[1, 0].set(
        xlim=(0, 1), ylim=(1, 0), xlabel="centre x (normalised)", ylabel="centre y", title="box centres"
    )
    axes[1, 1].bar(
        ["with landmarks", "without"],
        [int(with_marks.sum()), int((~with_marks).sum())],
        color=["tab:purple", "tab:gray"],
    )
    axes[1, 1].set(ylabel="faces", title="landmark labels")
    fig.tight_layout()
    out = atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)
    return out


def _grid(cells: list[np.ndarray]) -> np.ndarray:
    """Return the cells (CELL, CELL, 3) tiled row by row into a near-square grid."""
    columns = math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / columns)
    grid = np.full((rows * CELL, columns * CELL, 3), 255, np.uint8)
    for k, cell in enumerate(cells):
        r, c = divmod(k, columns)
        grid[r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL] = cell
    return grid

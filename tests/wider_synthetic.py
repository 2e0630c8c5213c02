"""A tiny synthetic WIDER FACE val set for tests: the four ground-truth .mat files, images and predictions.

Faces are random boxes; Easy keeps the large ones, Medium the large and middling ones, Hard all of them,
the way the official settings nest. Prediction files hold every face jittered plus random false positives,
written in descending score order as the WIDER toolkit writes them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy.io import savemat

EVENTS = ("0--Parade", "1--Handshaking")
IMAGE_HW = (96, 128)
Rows = dict[tuple[str, str], np.ndarray]  # (event, image name) → (N, 4) faces or (N, 5) predictions


def _cells(items: list) -> np.ndarray:
    """Return items as an (n, 1) MATLAB cell array."""
    out = np.empty((len(items), 1), dtype=object)
    for k, item in enumerate(items):
        out[k, 0] = item
    return out


def make_faces(seed: int = 0, images_per_event: int = 3) -> Rows:
    """Return {(event, image name): faces (G, 4) float64 x y w h pixels}, 1–6 faces an image."""
    rng = np.random.default_rng(seed)
    faces = {}
    for e, event in enumerate(EVENTS):
        for i in range(images_per_event):
            count = int(rng.integers(1, 7))
            wh = rng.uniform(4, 40, size=(count, 2))
            xy = rng.uniform(0, 1, size=(count, 2)) * (np.array(IMAGE_HW[::-1]) - wh)
            faces[(event, f"{e}_{event.split('--')[1]}_{i}")] = np.round(np.concatenate([xy, wh], 1))
    return faces


def write_ground_truth(folder: Path, faces: Rows) -> Path:
    """Return folder after writing wider_face_val.mat and wider_{easy,medium,hard}_val.mat for `faces`."""
    folder.mkdir(parents=True, exist_ok=True)
    events = sorted({event for event, _ in faces})
    names = {event: [name for e, name in faces if e == event] for event in events}
    savemat(folder / "wider_face_val.mat", {
        "event_list": _cells(events),
        "file_list": _cells([_cells(names[event]) for event in events]),
        "face_bbx_list": _cells([_cells([faces[(event, n)] for n in names[event]]) for event in events]),
    })
    least_side = {"easy": 20, "medium": 10, "hard": 0}
    for setting, side in least_side.items():
        kept = [_cells([(np.flatnonzero(faces[(event, n)][:, 2:].min(1) >= side) + 1).reshape(-1, 1)
                        for n in names[event]]) for event in events]
        savemat(folder / f"wider_{setting}_val.mat", {"gt_list": _cells(kept)})
    return folder


def write_images(folder: Path, faces: Rows) -> Path:
    """Return folder after writing a grey <event>/<name>.jpg with a bright blob per face."""
    for (event, name), boxes in faces.items():
        image = np.full((*IMAGE_HW, 3), 90, dtype=np.uint8)
        for x, y, w, h in boxes.astype(int):
            cv2.ellipse(image, (x + w // 2, y + h // 2), (max(w // 2, 1), max(h // 2, 1)), 0, 0, 360,
                        (200, 180, 160), -1)
        (folder / event).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / event / f"{name}.jpg"), image)
    return folder


def make_predictions(faces: Rows, seed: int = 1) -> Rows:
    """Return {(event, name): rows (P, 5) x y w h score}, by descending score: jittered faces, false ones."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, boxes in faces.items():
        hits = boxes + rng.normal(0, 1.5, size=boxes.shape) * np.array([1, 1, 0.5, 0.5])
        false = np.concatenate([rng.uniform(0, 80, size=(3, 2)), rng.uniform(4, 30, size=(3, 2))], 1)
        rows = np.concatenate([hits, false])
        scores = np.round(rng.uniform(0.02, 1.0, size=len(rows)), 3)
        rows = np.concatenate([np.round(rows), scores[:, None]], 1)
        out[key] = rows[np.argsort(-rows[:, 4], kind="stable")]
    return out


def write_predictions(folder: Path, rows: Rows, order=None) -> Path:
    """Return folder after writing <event>/<name>.txt per image; `order(rows)` may permute a file's rows."""
    for (event, name), boxes in rows.items():
        boxes = boxes if order is None else order(boxes)
        lines = [name, str(len(boxes))]
        lines += [f"{x:.0f} {y:.0f} {w:.0f} {h:.0f} {s:.3f}" for x, y, w, h, s in boxes]
        (folder / event).mkdir(parents=True, exist_ok=True)
        (folder / event / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder

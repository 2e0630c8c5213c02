"""How good teacher labels are: landmark agreement (NME) and how pseudo-boxes cover hand-marked faces.

NME here is the mean distance of corresponding points over the inter-ocular distance (eye centre to eye
centre). Hand-marked faces with four points (left eye, right eye, nose, mouth centre; the Caltech Web Faces
form) are compared with five-point landmarks by taking the mean of the two mouth corners as the mouth centre.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from faceyolo.errors import FaceyoloError

_POINT_FIELDS = 8  # x y for left eye, right eye, nose, mouth centre
_APART = 1e12  # the assignment cost of a box that does not hold a face's points


def read_point_marks(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Return the hand-marked faces per image name: (n, 4, 2) float64 pixels, points in the image's own order.

    The file holds one face a line: `name  x y  x y  x y  x y` (left eye, right eye, nose, mouth centre).
    The first two points are put in image-left, image-right order, as faceyolo's L0, L1 are.
    """
    path = Path(path)
    marks: dict[str, list[np.ndarray]] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise FaceyoloError(f"{path}: cannot read point marks ({err.strerror})") from None
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            points = np.array([float(v) for v in fields[1:]], np.float64)
        except ValueError:
            raise FaceyoloError(f"{path}:{number}: point marks must be numbers") from None
        if len(points) != _POINT_FIELDS:
            raise FaceyoloError(f"{path}:{number}: expected a name and 8 numbers, got {len(fields)} fields")
        points = points.reshape(4, 2)
        if points[0, 0] > points[1, 0]:
            points[[0, 1]] = points[[1, 0]]
        marks.setdefault(fields[0], []).append(points)
    return {name: np.stack(faces) for name, faces in marks.items()}


def four_points(landmarks: np.ndarray) -> np.ndarray:
    """Return five-point landmarks (..., 5, 2) as the four marked points: eyes, nose, mouth-corner mean."""
    mouth = landmarks[..., 3:5, :].mean(axis=-2, keepdims=True)
    return np.concatenate([landmarks[..., :3, :], mouth], axis=-2)


def nme(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return per face the mean point distance over the truth's inter-ocular distance: (n,).

    predicted and truth (n, k, 2) pixels with points 0 and 1 the two eyes.
    """
    distance = np.linalg.norm(predicted - truth, axis=-1).mean(axis=-1)
    inter_ocular = np.linalg.norm(truth[:, 0] - truth[:, 1], axis=-1)
    return distance / np.maximum(inter_ocular, 1e-6)


def marks_inside(boxes_xyxy: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """Return (boxes, faces) bool: whether every point of a marked face (n, 4, 2) lies inside a box (m, 4)."""
    x, y = marks[None, :, :, 0], marks[None, :, :, 1]
    b = boxes_xyxy[:, None, None, :]
    return ((x >= b[..., 0]) & (x <= b[..., 2]) & (y >= b[..., 1]) & (y <= b[..., 3])).all(axis=-1)


@dataclass
class CoverageCounts:
    """Pseudo-labels against hand-marked faces: how many marks are covered, what the boxes add, and NME."""

    marked: int = 0
    covered: int = 0
    boxes: int = 0
    unmarked_boxes: int = 0
    errors: list[float] = field(default_factory=list)

    def add_image(self, boxes_xyxy: np.ndarray, landmarks: np.ndarray, marks: np.ndarray) -> None:
        """Count one image: boxes (m, 4) and landmarks (m, 5, 2) of a teacher against its marks (n, 4, 2).

        Boxes and marked faces pair one-to-one (Hungarian assignment on the distance of the box centre to
        the points' centre), a pair only when the box holds all four points. A box left unpaired counts as
        unmarked: a face the marks missed, or a false face.
        """
        self.marked += len(marks)
        self.boxes += len(boxes_xyxy)
        if not len(marks) or not len(boxes_xyxy):
            self.unmarked_boxes += len(boxes_xyxy)
            return
        inside = marks_inside(boxes_xyxy, marks)
        centres = (boxes_xyxy[:, :2] + boxes_xyxy[:, 2:]) / 2
        distance = np.linalg.norm(centres[:, None] - marks.mean(axis=1)[None], axis=-1)
        rows, cols = linear_sum_assignment(np.where(inside, distance, _APART))
        paired = inside[rows, cols]
        rows, cols = rows[paired], cols[paired]
        self.covered += len(rows)
        self.unmarked_boxes += len(boxes_xyxy) - len(rows)
        self.errors.extend(nme(four_points(landmarks[rows]), marks[cols]).tolist())

    def row(self) -> dict[str, float]:
        """Return the summary figures: marked faces, share covered, boxes, unmarked boxes, mean/median NME."""
        errors = np.array(self.errors)
        return {
            "marked faces": self.marked,
            "covered": round(self.covered / max(self.marked, 1), 4),
            "boxes": self.boxes,
            "unmarked boxes": self.unmarked_boxes,
            "NME mean": round(float(errors.mean()), 4) if len(errors) else float("nan"),
            "NME median": round(float(np.median(errors)), 4) if len(errors) else float("nan"),
        }

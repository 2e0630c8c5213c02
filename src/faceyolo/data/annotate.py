"""Labels from a teacher detector (data/teachers.py): landmarks for boxes that have none, boxes for images.

Landmarks: the teacher's detections are matched one-to-one to the ground-truth boxes of a label file
(Hungarian assignment on the IoU matrix, IoU >= 0.5 by default); a matched face whose landmarks are missing
gets the teacher's five points, an unmatched one stays missing (-1). The boxes are never changed.

Boxes (`boxes=True`): an image with no face labelled (no label file, or an empty one) gets the teacher's
faces above its confidence as boxes with landmarks, for unlabelled photo collections. The report counts the
faces per height band and how many of each band have landmarks.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from tqdm import tqdm

from faceyolo.data.config import image_files, load_data_config
from faceyolo.data.convert import format_label_lines
from faceyolo.data.imageinfo import image_size
from faceyolo.data.labels import label_path, read_label_file
from faceyolo.data.teachers import Teacher, TeacherDetections
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_json, atomic_write_text
from faceyolo.geometry import box_iou, xywh_to_xyxy
from faceyolo.images import read_image

REPORT_NAME = "annotate_report.json"
# Face height bands (pixels of the original image) of the per-size landmark shares in the report.
SIZE_BANDS = (0, 16, 32, 64, 128)


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


def size_band(heights: np.ndarray) -> np.ndarray:
    """Return the index into SIZE_BANDS of each face height (pixels): (n,) int64."""
    return np.searchsorted(SIZE_BANDS, np.asarray(heights, np.float64), side="right") - 1


def band_names() -> list[str]:
    """Return the SIZE_BANDS as labels: '<16 px', '16-32 px', ..., '>=128 px'."""
    edges = SIZE_BANDS
    names = [f"{lo}-{hi} px" for lo, hi in zip(edges[1:-1], edges[2:], strict=True)]
    return [f"<{edges[1]} px", *names, f">={edges[-1]} px"]


@dataclass
class FillCounts:
    """Face counts of one label file or a whole dataset; per SIZE_BANDS band: faces, those with landmarks."""

    faces: int = 0
    had_landmarks: int = 0
    filled: int = 0
    unmatched: int = 0
    points_outside_image: int = 0
    boxes_added: int = 0
    band_faces: list[int] = field(default_factory=lambda: [0] * len(SIZE_BANDS))
    band_with_landmarks: list[int] = field(default_factory=lambda: [0] * len(SIZE_BANDS))

    def add(self, other: FillCounts) -> None:
        """Add `other`'s counts to these."""
        for name, value in asdict(other).items():
            mine = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, [a + b for a, b in zip(mine, value, strict=True)])
            else:
                setattr(self, name, mine + value)

    def count_bands(self, labels: np.ndarray, image_height: int) -> None:
        """Count the faces of final label rows (n, 15) per height band, and those that have landmarks."""
        bands = size_band(labels[:, 4] * image_height)
        with_points = _has_landmarks(labels)
        for k in range(len(SIZE_BANDS)):
            self.band_faces[k] += int((bands == k).sum())
            self.band_with_landmarks[k] += int(((bands == k) & with_points).sum())

    def band_shares(self) -> dict[str, float | None]:
        """Return, per height band, the share of faces that have landmarks (None for an empty band)."""
        return {
            name: (round(with_points / faces, 4) if faces else None)
            for name, faces, with_points in zip(band_names(), self.band_faces, self.band_with_landmarks,
                                                strict=True)
        }


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


def teacher_labels(image_wh: tuple[int, int], detections: TeacherDetections) -> tuple[np.ndarray, FillCounts]:
    """Return label rows (n, 15) normalised made from a teacher's faces (boxes clipped), and their counts."""
    width, height = image_wh
    boxes = detections.boxes_xyxy.astype(np.float64).clip(0, [width, height, width, height])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, points = boxes[keep], detections.landmarks[keep].astype(np.float64)
    scale = np.array([width, height], np.float64)
    inside = ((points > 0) & (points <= scale)).all(axis=2)
    centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2 / scale, (boxes[:, 2:] - boxes[:, :2]) / scale
    landmarks = np.where(inside[..., None], points / scale, -1.0).reshape(-1, 10)
    labels = np.concatenate([np.zeros((len(boxes), 1)), centre, size, landmarks], axis=1).astype(np.float32)
    counts = FillCounts(faces=len(labels), boxes_added=len(labels), filled=int(inside.any(axis=1).sum()))
    counts.points_outside_image = int((~inside).sum())
    return labels, counts


def dataset_images(data: str | Path, unlabelled: bool = False) -> tuple[list[Path], Path]:
    """Return the images of a dataset that have a label file (all, with `unlabelled`), and the report folder.

    `data` is a data yaml (its train and val images; report beside the yaml) or a labels folder (the images
    of its `images` twin whose label files lie, or would lie, inside it; report beside the folder). The
    labels folder need not exist yet when its `images` twin does: `--boxes` on photos without labels.
    """
    data = Path(data).absolute()
    if data.is_file():
        config = load_data_config(data)
        images, report_dir = image_files([*config.train, *config.val]), data.parent
    elif data.is_dir() or "labels" in data.parts:
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
    return [p for p in images if unlabelled or label_path(p).is_file()], report_dir


def _write_labels(labels_file: Path, labels: np.ndarray, width: int, height: int) -> None:
    """Write normalised label rows (n, 15) as a label file, atomically."""
    scale = np.array([width, height], np.float64)
    boxes_xyxy = xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * np.tile(scale, 2)
    points = labels[:, 5:15].reshape(-1, 5, 2).astype(np.float64)
    text = format_label_lines(boxes_xyxy, points * scale, (points > 0).all(axis=2), width, height)
    labels_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(labels_file, text)


def annotate_image(
    image_path: Path, teacher: Teacher, iou_min: float = 0.5, overwrite: bool = False, boxes: bool = False
) -> FillCounts:
    """Return the counts after labelling one image's label file in place (atomically; untouched if no change).

    The label file is read and checked as the training loader does; one it would reject raises
    FaceyoloError. The teacher runs only when some face needs landmarks, or, with `boxes`, when the image
    has no face labelled (then the teacher's faces become its labels).
    """
    labels_file = label_path(image_path)
    labels = np.zeros((0, 15), np.float32)
    if labels_file.is_file():
        check = read_label_file(labels_file)
        if check.problem:
            raise FaceyoloError(f"{check.problem}: {check.detail}")
        labels = check.labels
    label_boxes = boxes and len(labels) == 0
    if not label_boxes and not overwrite and _has_landmarks(labels).all():
        counts = FillCounts(faces=len(labels), had_landmarks=len(labels))
        counts.count_bands(labels, _image_height(image_path, labels))
        return counts
    image = read_image(image_path)
    width, height = image.shape[1], image.shape[0]
    if label_boxes:
        filled, counts = teacher_labels((width, height), teacher(image))
    else:
        filled, counts = fill_landmarks(labels, (width, height), teacher(image), iou_min, overwrite)
    if label_boxes or not np.array_equal(filled, labels):
        _write_labels(labels_file, filled, width, height)
    counts.count_bands(filled, height)
    return counts


def _image_height(image_path: Path, labels: np.ndarray) -> int:
    """Return the image's height in pixels, read from its header only when there are faces to count."""
    return image_size(image_path)[1] if len(labels) else 0


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
        added = f"{c.boxes_added} faces added by the teacher, " if c.boxes_added else ""
        return (
            f"{self.images} images, {c.faces} faces: {added}{c.had_landmarks} already had landmarks, "
            f"{c.filled} filled, {c.unmatched} unmatched (kept missing); "
            f"{len(self.failures)} images failed; {self.seconds:.1f}s"
        )

    def band_table(self) -> str:
        """Return one line per face-height band: faces and the share that has landmarks."""
        shares = self.counts.band_shares()
        return "\n".join(
            f"  {name:>10}: {faces:>7,} faces, " + ("-" if share is None else f"{share:.1%} with landmarks")
            for (name, share), faces in zip(shares.items(), self.counts.band_faces, strict=True)
        )


def annotate_dataset(
    data: str | Path,
    teacher: Teacher,
    iou_match: float = 0.5,
    overwrite: bool = False,
    progress: bool = True,
    settings: dict | None = None,
    boxes: bool = False,
) -> AnnotateSummary:
    """Return the summary after labelling every image of a dataset from a teacher (see the module docstring).

    `data` is a data yaml or a labels folder (see `dataset_images`). An image or label file that cannot be
    used is reported by name in `failures` and skipped. The JSON report (`settings` added as given, e.g.
    the teacher and its threshold) is written beside the dataset.
    """
    start = time.perf_counter()
    images, report_dir = dataset_images(data, unlabelled=boxes)
    summary = AnnotateSummary(images=len(images))
    bar = tqdm(images, desc="annotate", unit="img", disable=not progress)
    for image_path in bar:
        try:
            summary.counts.add(annotate_image(image_path, teacher, iou_match, overwrite, boxes))
        except (FaceyoloError, OSError) as err:
            summary.failures[str(image_path)] = str(err)
        bar.set_postfix(filled=summary.counts.filled, unmatched=summary.counts.unmatched, refresh=False)
    summary.seconds = time.perf_counter() - start
    report = {
        "data": str(data),
        **(settings or {}),
        "iou_match": iou_match,
        "overwrite": overwrite,
        "boxes": boxes,
        "images": summary.images,
        **asdict(summary.counts),
        "landmark_share_by_height": summary.counts.band_shares(),
        "seconds": round(summary.seconds, 2),
        "failures": summary.failures,
    }
    summary.report_path = atomic_write_json(report_dir / REPORT_NAME, report)
    return summary

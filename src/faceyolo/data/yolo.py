"""YOLO box datasets (ultralytics / Roboflow layout) → faceyolo's YOLO-face folder, landmarks missing.

A YOLO dataset keeps one label file per image, found by swapping the last `images` folder of the image's
path for `labels` and its suffix for `.txt` (`train/images/a.jpg` → `train/labels/a.txt`). Each line is
`cls cx cy w h`, normalised to the image; faceyolo also reads YOLO-face lines (`cls cx cy w h` + 5 × `x y`)
and ultralytics pose lines (`cls cx cy w h` + 5 × `x y visibility`), keeping their landmarks.

Image rules, besides those of `convert_records`: an image without a label file is skipped ("no label file";
ultralytics would train it as background, which turns every unlabelled face into a negative) unless
`keep_unlabelled`; a label file without an image is skipped as a missing image; an empty label file is a
background image.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceyolo.data.convert import ConvertOptions, ConvertReport, convert_records
from faceyolo.data.widerface import ImageAnnotation, numeric_rows
from faceyolo.errors import FaceyoloError
from faceyolo.images import is_image_file

IMAGE_NO_LABEL_FILE = "no label file"
_BOX_FIELDS = 5
_FACE_FIELDS = 15  # + 5 × (x, y)
_POSE_FIELDS = 20  # + 5 × (x, y, visibility)


def labels_folder(images_dir: Path) -> Path:
    """Return the labels folder beside an images folder: the last `images` part of the path → `labels`."""
    parts = images_dir.absolute().parts
    if "images" not in parts:
        raise FaceyoloError(
            f"{images_dir}: no 'images' folder in the path to find labels beside; pass the labels folder"
        )
    last = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:last], "labels", *parts[last + 1 :])


def read_yolo_dataset(
    images_dir: str | os.PathLike, labels_dir: str | os.PathLike | None = None, keep_unlabelled: bool = False
) -> list[ImageAnnotation]:
    """Return one normalised ImageAnnotation per image, and per label file without an image, sorted by path.

    labels_dir: the folder mirroring `images_dir` (default: `labels_folder(images_dir)`).
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FaceyoloError(f"{images_dir}: images folder not found")
    labels_dir = Path(labels_dir) if labels_dir is not None else labels_folder(images_dir)
    if not labels_dir.is_dir():
        raise FaceyoloError(f"{labels_dir}: labels folder not found")
    images = {
        p.relative_to(images_dir).with_suffix("").as_posix(): p.relative_to(images_dir).as_posix()
        for p in images_dir.rglob("*")
        if is_image_file(p)
    }
    labels = {p.relative_to(labels_dir).with_suffix("").as_posix(): p for p in labels_dir.rglob("*.txt")}
    records = []
    for stem in sorted(images.keys() | labels.keys()):
        label_file = labels.get(stem)
        image = images.get(stem, f"{stem}.jpg")
        if label_file is None:
            problem = "" if keep_unlabelled else IMAGE_NO_LABEL_FILE
            records.append(_record(image, [], [], [], problem))
            continue
        try:
            text = label_file.read_text(encoding="utf-8", errors="replace")
        except OSError as err:
            records.append(_record(image, [], [], [], f"cannot read label file ({err.strerror})"))
            continue
        face_lines = [(k, line) for k, line in enumerate(text.splitlines(), start=1) if line.strip()]
        rows, good, malformed = numeric_rows(face_lines, {_BOX_FIELDS, _FACE_FIELDS, _POSE_FIELDS})
        records.append(_record(image, rows, good, malformed, ""))
    return records


def _record(image: str, rows: list, good: list[int], malformed: list, problem: str) -> ImageAnnotation:
    """Return the normalised record of one label file's numeric rows (class, box, optional landmarks)."""
    n = len(rows)
    landmarks = np.full((n, 5, 2), -1.0)
    visible = np.zeros((n, 5), bool)
    boxes = np.zeros((n, 4))
    for j, row in enumerate(rows):
        cx, cy, w, h = row[1:5]
        boxes[j] = (cx - w / 2, cy - h / 2, w, h)
        if len(row) == _FACE_FIELDS:
            points = row[5:].reshape(5, 2)
            seen = (points >= 0).all(axis=1)
        elif len(row) == _POSE_FIELDS:
            points = row[5:].reshape(5, 3)[:, :2]
            seen = row[5:].reshape(5, 3)[:, 2] > 0
        else:
            continue
        landmarks[j], visible[j] = np.where(seen[:, None], points, -1.0), seen
    return ImageAnnotation(
        path=image,
        line=0,
        boxes_xywh=boxes,
        landmarks=landmarks,
        visible=visible,
        invalid=np.zeros(n, bool),
        lines=np.array(good, dtype=np.int64),
        malformed=malformed,
        classes=np.array([row[0] for row in rows], dtype=np.int64).reshape(n),
        normalised=True,
        problem=problem,
    )


def convert_yolo(
    images_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ConvertOptions | None = None,
    labels_dir: str | os.PathLike | None = None,
    keep_unlabelled: bool = False,
    progress: bool = True,
) -> ConvertReport:
    """Return the report of converting a YOLO box dataset into split `options.split` (default train)."""
    options = options or ConvertOptions()
    records = read_yolo_dataset(images_dir, labels_dir, keep_unlabelled)
    return convert_records(
        records, Path(images_dir), out_dir, "yolo", options.split or "train", options, progress
    )

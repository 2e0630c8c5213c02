"""WIDER FACE annotation files → per-image records (SPEC §1.1, §1.2).

Three forms are read, told apart from the file's first lines:
* `bbx_gt`: the official `wider_face_split/wider_face_{train,val}_bbx_gt.txt` (path line, face count line,
  then `x1 y1 w h blur expression illumination invalid occlusion pose` per face; a count of 0 is followed
  by one dummy line);
* `retinaface`: the RetinaFace `label.txt` (`# path` header, then per face `x y w h` and, in the train file,
  5 × `(x, y, flag)` and a score, with -1 in every landmark field for a face without landmarks);
* `filelist`: one image path a line (`wider_face_test_filelist.txt`, `wider_val.txt`): images without faces.
A face line that cannot be read is kept as a malformed entry (with its line number); the run goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.images import is_image_file

FORMATS = ("bbx_gt", "retinaface", "filelist")

_BBX_FIELDS = 10
_BBX_INVALID_COLUMN = 7
_RETINA_BOX_FIELDS = 4
_RETINA_LANDMARK_FIELDS = 19  # box + 5 x (x, y, flag); the trailing score is optional


@dataclass
class ImageAnnotation:
    """The faces annotated for one image.

    path: the image path relative to the images folder, '/'-separated (`0--Parade/0_Parade_x.jpg`).
    line: the 1-based line of the image's header in the annotation file.
    boxes_xywh: (N, 4) float64 pixels, top-left corner and size, as annotated.
    landmarks: (N, 5, 2) float64 pixels, -1 where missing (order: left eye, right eye, nose, left and right
        mouth corner).
    visible: (N, 5) bool, False where the landmark is missing (the annotation's -1).
    invalid: (N,) bool, the bbx_gt `invalid` attribute (all False for the other forms).
    lines: (N,) int, the 1-based line of each face.
    malformed: (line, text) of face lines that could not be read.
    classes: (N,) int class ids, or None for a face-only format (every face class 0).
    normalised: boxes and landmarks are fractions of the image size (YOLO labels), not pixels.
    problem: a reason the reader already knows to skip the whole image ("" when none).
    """

    path: str
    line: int
    boxes_xywh: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    invalid: np.ndarray
    lines: np.ndarray
    malformed: list[tuple[int, str]] = field(default_factory=list)
    classes: np.ndarray | None = None
    normalised: bool = False
    problem: str = ""

    @property
    def num_faces(self) -> int:
        """Return the number of readable faces (malformed lines excluded)."""
        return len(self.boxes_xywh)


def read_annotations(path: str | os.PathLike) -> tuple[str, list[ImageAnnotation]]:
    """Return (form, one ImageAnnotation per image in file order) for any of the three forms.

    Raises FaceyoloError naming the file (and line) when the file cannot be read or its structure is broken.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise FaceyoloError(f"{path}: cannot read annotations ({err.strerror})") from None
    form = detect_format(lines, path)
    parse = {"bbx_gt": _parse_bbx_gt, "retinaface": _parse_retinaface, "filelist": _parse_filelist}[form]
    return form, parse(lines, path)


def detect_format(lines: list[str], path: Path) -> str:
    """Return "bbx_gt", "retinaface" or "filelist" from the first non-empty lines of an annotation file."""
    first = [(k, s.strip()) for k, s in enumerate(lines) if s.strip()][:2]
    if not first:
        raise FaceyoloError(f"{path}: empty annotation file")
    head = first[0][1]
    if head.startswith("#"):
        return "retinaface"
    if is_image_file(head):
        if len(first) == 1 or is_image_file(first[1][1]):
            return "filelist"
        if first[1][1].isdigit():
            return "bbx_gt"
    raise FaceyoloError(
        f"{path}:{first[0][0] + 1}: unrecognised annotation format (expected a WIDER bbx_gt file, "
        f"a RetinaFace label.txt or an image list)"
    )


def normalise_relative_path(text: str) -> str:
    """Return an annotation's image path as a clean relative '/'-separated path (no './' or leading '/')."""
    text = text.strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.lstrip("/")


def _parse_bbx_gt(lines: list[str], path: Path) -> list[ImageAnnotation]:
    records = []
    k, n_lines = 0, len(lines)
    while k < n_lines:
        name = lines[k].strip()
        if not name:
            k += 1
            continue
        header = k + 1
        count_text = lines[k + 1].strip() if k + 1 < n_lines else ""
        if not count_text.isdigit():
            raise FaceyoloError(f"{path}:{k + 2}: expected the face count of {name}, got {count_text!r}")
        count = int(count_text)
        k += 2
        if count == 0 and k < n_lines and not is_image_file(lines[k].strip()):
            k += 1  # the dummy line of zeros that follows an image without faces
        face_lines = [(k + j + 1, lines[k + j]) for j in range(count) if k + j < n_lines]
        if len(face_lines) < count:
            raise FaceyoloError(f"{path}:{n_lines}: file ends inside the faces of {name}")
        k += count
        good_rows, good, malformed = numeric_rows(face_lines, {_BBX_FIELDS})
        rows = np.array(good_rows, dtype=np.float64).reshape(-1, _BBX_FIELDS)
        n = len(rows)
        records.append(
            ImageAnnotation(
                path=normalise_relative_path(name),
                line=header,
                boxes_xywh=rows[:, :4].copy(),
                landmarks=np.full((n, 5, 2), -1.0),
                visible=np.zeros((n, 5), bool),
                invalid=rows[:, _BBX_INVALID_COLUMN] != 0,
                lines=np.array(good, dtype=np.int64),
                malformed=malformed,
            )
        )
    return records


def _parse_retinaface(lines: list[str], path: Path) -> list[ImageAnnotation]:
    records: list[ImageAnnotation] = []
    header, name, face_lines = 0, None, []
    for k, text in enumerate(lines, start=1):
        stripped = text.strip()
        if stripped.startswith("#"):
            if name is not None:
                records.append(_retinaface_record(name, header, face_lines))
            header, name, face_lines = k, stripped[1:].strip(), []
        elif stripped:
            if name is None:
                raise FaceyoloError(f"{path}:{k}: face line before the first '# image' header")
            face_lines.append((k, stripped))
    if name is not None:
        records.append(_retinaface_record(name, header, face_lines))
    return records


def _retinaface_record(name: str, header: int, face_lines: list[tuple[int, str]]) -> ImageAnnotation:
    """Return the record of one `# name` block: boxes, and landmarks when the lines carry them."""
    lengths = {len(text.split()) for _, text in face_lines}
    accepted = {n for n in lengths if n == _RETINA_BOX_FIELDS or n >= _RETINA_LANDMARK_FIELDS}
    rows, good, malformed = numeric_rows(face_lines, accepted)
    boxes = np.array([row[:4] for row in rows], dtype=np.float64).reshape(-1, 4)
    landmarks = np.full((len(rows), 5, 2), -1.0)
    for j, row in enumerate(rows):
        if len(row) >= _RETINA_LANDMARK_FIELDS:
            landmarks[j] = np.asarray(row[4:19], dtype=np.float64).reshape(5, 3)[:, :2]
    visible = (landmarks >= 0).all(axis=2)
    landmarks[~visible] = -1.0
    return ImageAnnotation(
        path=normalise_relative_path(name),
        line=header,
        boxes_xywh=boxes,
        landmarks=landmarks,
        visible=visible,
        invalid=np.zeros(len(rows), bool),
        lines=np.array(good, dtype=np.int64),
        malformed=malformed,
    )


def _parse_filelist(lines: list[str], path: Path) -> list[ImageAnnotation]:
    return [
        ImageAnnotation(
            path=normalise_relative_path(text),
            line=k,
            boxes_xywh=np.zeros((0, 4)),
            landmarks=np.zeros((0, 5, 2)),
            visible=np.zeros((0, 5), bool),
            invalid=np.zeros(0, bool),
            lines=np.zeros(0, np.int64),
        )
        for k, text in enumerate(lines, start=1)
        if text.strip()
    ]


def numeric_rows(face_lines: list[tuple[int, str]], accepted_lengths: set[int]):
    """Return (rows as float64 arrays, their line numbers, malformed (line, text)) of the given face lines.

    A line is malformed when its field count is not accepted or a field is not a finite number.
    """
    good_rows, good_lines, malformed = [], [], []
    for k, text in face_lines:
        fields = text.split()
        values = None
        if len(fields) in accepted_lengths:
            try:
                values = np.array(fields, dtype=np.float64)
            except ValueError:
                values = None
        if values is None or not np.isfinite(values).all():
            malformed.append((k, text.strip()))
            continue
        good_rows.append(values)
        good_lines.append(k)
    return good_rows, good_lines, malformed

"""Annotations → a YOLO-face dataset folder (SPEC §1.3): filtering with reasons, linking, labels.

`convert_widerface` reads WIDER FACE files, `convert_yolo` (data/yolo.py) YOLO box labels; both write through
`convert_records`. Output layout:
    out/images/<split>/<event>/<name>.jpg   the original files, hard-linked (else symlinked, else copied)
    out/labels/<split>/<event>/<name>.txt   15 numbers per face: 0 cx cy w h x0 y0 ... x4 y4, normalised
    out/<split>.txt                         the converted images, one `./images/<split>/...` path a line
    out/data.yaml                           train / val image folders, test image list, nc 1, names [face]
    out/convert_<split>_report.{txt,json}   every skipped image and dropped face, with its reason

Faces are checked in this order and dropped for the first rule they break: malformed annotation line,
class not a face class (labels with classes), zero/negative size (as annotated), invalid flag (bbx_gt only,
`drop_invalid`), box outside the image (nothing left after clipping to the image), too small (clipped width
or height < `min_size` px).

Original behaviours deliberately fixed (SPEC §1.4-1.5, §8.17):
* train2yolo clamps w and h as if they were x2 and y2; here boxes are clipped to the image as corners.
* train2yolo and val2yolo re-encode or rename images; here the original bytes keep their original names.
* val2yolo shifts centres by -1 px; here the centre is x + w/2 exactly.
* train2yolo writes missing landmarks as -1/W; here they are -1, and landmarks outside the image become -1
  (the loader would otherwise reject the whole image for a value above 1).
* train2yolo leaves images without faces out but writes their labels; here an image whose annotation has no
  faces is kept as a background image, and one whose faces were all filtered out is skipped.
The original filters are options: `min_size=0` is val2yolo's rule (train2yolo has none; its commented-out
rule was 8 px), and the original never reads the `invalid` flag (`drop_invalid=False`).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from faceyolo.data.imageinfo import check_image
from faceyolo.data.widerface import ImageAnnotation, read_annotations
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_json, atomic_write_text
from faceyolo.geometry import xyxy_to_xywh
from faceyolo.images import is_image_file

FACE_MALFORMED = "malformed annotation line"
FACE_ZERO_SIZE = "zero/negative size"
FACE_INVALID = "invalid flag"
FACE_OTHER_CLASS = "class is not a face class"
FACE_OUTSIDE = "box outside the image"
FACE_TOO_SMALL = "too small"
FACE_OF_SKIPPED_IMAGE = "image skipped"
IMAGE_DUPLICATE = "listed twice"
IMAGE_NO_FACES_LEFT = "no faces left after filtering"
CHANGE_CLIPPED = "box clipped to the image"
CHANGE_LANDMARK_OUTSIDE = "landmark outside the image (set missing)"

LINK_MODES = ("auto", "hardlink", "symlink", "copy")
SPLITS = ("train", "val", "test")


@dataclass
class ConvertOptions:
    """How faces are filtered and images placed.

    min_size: drop a face whose clipped width or height is below this many pixels (0 keeps all).
    drop_invalid: drop faces flagged invalid in a bbx_gt file.
    keep_empty: keep images whose faces were all filtered out, as background images.
    link: "auto" (hardlink, else symlink, else copy), "hardlink", "symlink" or "copy".
    split: "train", "val" or "test"; None guesses it from the annotation file's name and folder.
    face_classes: the class ids that are faces, in labels that carry classes (YOLO); others are dropped.
    """

    min_size: float = 0.0
    drop_invalid: bool = True
    keep_empty: bool = False
    link: str = "auto"
    split: str | None = None
    face_classes: tuple[int, ...] = (0,)


@dataclass
class ConvertReport:
    """Counts and lists of one conversion; `table()` is what the CLI prints.

    skipped: one {image, line, reason, detail, faces} per skipped image (faces: how many it had).
    dropped: one {image, line, reason} per face dropped by a face rule (faces of skipped images are counted
    under "image skipped" but not listed one by one).
    """

    split: str
    form: str
    out_dir: str
    options: dict
    images_total: int = 0
    images_written: int = 0
    faces_total: int = 0
    faces_kept: int = 0
    link_mode: str = ""
    seconds: float = 0.0
    stale_images: int = 0
    skipped_images: Counter = field(default_factory=Counter)
    dropped_faces: Counter = field(default_factory=Counter)
    changed_faces: Counter = field(default_factory=Counter)
    skipped: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)

    def table(self) -> str:
        """Return a plain-text table of the totals and of every reason with its count."""
        rows = [
            ("images in annotations", self.images_total),
            ("images written", self.images_written),
            *((f"  skipped: {r}", n) for r, n in sorted(self.skipped_images.items()) if n),
            ("faces in annotations", self.faces_total),
            ("faces written", self.faces_kept),
            *((f"  dropped: {r}", n) for r, n in sorted(self.dropped_faces.items()) if n),
            *((f"  changed: {r}", n) for r, n in sorted(self.changed_faces.items()) if n),
        ]
        if self.stale_images:
            rows.append(("images left from an earlier run (not removed)", self.stale_images))
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {count:>8,}" for name, count in rows]
        header = f"convert {self.form} → {self.out_dir} (split {self.split}, {self.seconds:.1f} s)"
        return "\n".join([header, *lines])


def convert_widerface(
    images_dir: str | os.PathLike,
    annotations: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    options: ConvertOptions | None = None,
    progress: bool = True,
) -> ConvertReport:
    """Return the report of converting WIDER annotations + images into a YOLO-face folder at `out_dir`.

    annotations: a bbx_gt file, a RetinaFace label.txt, an image list, or None to list every image under
    `images_dir` (the test split). The report is also written to out/convert_<split>_report.{txt,json}.
    """
    options = options or ConvertOptions()
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FaceyoloError(f"{images_dir}: images folder not found")
    if annotations is None:
        form, records = "folder", _records_from_folder(images_dir)
    else:
        form, records = read_annotations(annotations)
    split = options.split or guess_split(annotations, form)
    return convert_records(records, images_dir, out_dir, form, split, options, progress)


def convert_records(
    records: list[ImageAnnotation],
    images_dir: Path,
    out_dir: str | os.PathLike,
    form: str,
    split: str,
    options: ConvertOptions,
    progress: bool = True,
) -> ConvertReport:
    """Return the report of writing `records` (paths relative to `images_dir`) as split `split` of `out_dir`.

    Every face is checked by the rules in the module docstring and every image is placed without re-encoding;
    `form` names the annotation format in the report. Images of forms "folder" and "filelist" get no labels.
    """
    if options.link not in LINK_MODES:
        raise FaceyoloError(f"link mode must be one of {LINK_MODES}, got {options.link!r}")
    if split not in SPLITS:
        raise FaceyoloError(f"split must be one of {SPLITS}, got {split!r}")
    out = Path(out_dir)
    labelled = form not in ("folder", "filelist")
    report = ConvertReport(split=split, form=form, out_dir=str(out), options=asdict(options))
    linker = _Linker(options.link)
    written: list[str] = []
    seen: set[str] = set()
    start = time.perf_counter()
    for record in tqdm(records, desc=f"convert {split}", unit="img", disable=not progress, leave=False):
        report.images_total += 1
        report.faces_total += record.num_faces + len(record.malformed)
        label_text = _convert_image(record, images_dir, options, labelled, seen, report)
        if label_text is None:
            continue
        linker.place(images_dir / record.path, out / "images" / split / record.path)
        if labelled:
            label_path = (out / "labels" / split / record.path).with_suffix(".txt")
            linker.ensure_dir(label_path.parent)
            label_path.write_text(label_text, encoding="utf-8")
        written.append(f"./images/{split}/{record.path}")
        report.images_written += 1
    report.seconds = time.perf_counter() - start
    report.link_mode = linker.used or "none"
    report.stale_images = _count_stale_images(out / "images" / split, {line[2:] for line in written}, out)
    atomic_write_text(out / f"{split}.txt", "".join(f"{line}\n" for line in written))
    write_data_yaml(out)
    _write_report(report, out)
    return report


def guess_split(annotations: str | os.PathLike | None, form: str) -> str:
    """Return "train", "val" or "test" from the annotation file's name or folder ("train" when unclear).

    `wider_face_val_bbx_gt.txt` → val (a word of the file name); `<root>/val/label.txt` → val (the folder).
    """
    if annotations is None or form in ("folder", "filelist"):
        return "test"
    path = Path(annotations)
    words = set(re.split(r"[^a-z0-9]+", path.stem.lower())) | {path.parent.name.lower()}
    return next((split for split in SPLITS if split in words), "train")


def write_data_yaml(out_dir: str | os.PathLike) -> Path:
    """Return out/data.yaml after writing it from the splits converted so far (val falls back to train).

    train and val name image folders (`images/<split>`); test names the `test.txt` image list.
    """
    out = Path(out_dir)
    present = [s for s in SPLITS if (out / f"{s}.txt").is_file()]
    labelled = [s for s in present if s != "test" and (out / "labels" / s).is_dir()]
    config: dict = {}
    if labelled:
        config["train"] = f"images/{'train' if 'train' in labelled else labelled[0]}"
        config["val"] = f"images/{'val' if 'val' in labelled else labelled[0]}"
    if "test" in present:
        config["test"] = "test.txt"
    config.update(nc=1, names=["face"])
    note = "# written by faceyolo convert; paths are relative to this file\n"
    if len(labelled) == 1:
        note += "# one labelled split converted so far: train and val point at the same images\n"
    return atomic_write_text(out / "data.yaml", note + yaml.safe_dump(config, sort_keys=False))


_LABEL_LINE = " ".join(["%g"] * 15) + "\n"  # %g: 6 significant digits, and -1 stays "-1"


def format_label_lines(
    boxes_xyxy: np.ndarray, landmarks: np.ndarray, visible: np.ndarray, width: int, height: int
) -> str:
    """Return the label file text for faces in pixels: `0 cx cy w h x0 y0 ... x4 y4` per line, normalised.

    boxes_xyxy (N, 4) pixels inside the image; landmarks (N, 5, 2) pixels; visible (N, 5) bool, False → -1.
    """
    rows = np.zeros((len(boxes_xyxy), 15))
    rows[:, 1:5] = xyxy_to_xywh(np.asarray(boxes_xyxy, np.float64)) / [width, height, width, height]
    points = landmarks / np.array([width, height], dtype=np.float64)
    points[~visible] = -1.0
    rows[:, 5:] = points.reshape(-1, 10)
    return "".join(_LABEL_LINE % tuple(row) for row in rows.tolist())


def _convert_image(
    record: ImageAnnotation,
    images_dir: Path,
    options: ConvertOptions,
    labelled: bool,
    seen: set[str],
    report: ConvertReport,
) -> str | None:
    """Return the label text of one image (counting drops in `report`), or None when the image is skipped."""
    reasons = np.full(record.num_faces, "", dtype=object)
    if record.path in seen:
        return _skip(record, IMAGE_DUPLICATE, f"{record.path}: already listed above", reasons, report)
    seen.add(record.path)
    if record.problem:
        return _skip(record, record.problem, f"{record.path}: {record.problem}", reasons, report)
    check = check_image(images_dir / record.path)
    if check.problem:
        return _skip(record, check.problem, check.detail, reasons, report)
    width, height = check.size
    boxes_xywh, landmarks = record.boxes_xywh, record.landmarks
    if record.normalised:
        boxes_xywh = boxes_xywh * [width, height, width, height]
        landmarks = np.where(record.visible[..., None], landmarks * [width, height], -1.0)
    x, y, w, h = boxes_xywh.T
    boxes = np.column_stack(
        [np.maximum(x, 0), np.maximum(y, 0), np.minimum(x + w, width), np.minimum(y + h, height)]
    )
    clipped_w, clipped_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    classes = np.zeros(record.num_faces, np.int64) if record.classes is None else record.classes
    rules = [
        (FACE_OTHER_CLASS, ~np.isin(classes, options.face_classes)),
        (FACE_ZERO_SIZE, (w <= 0) | (h <= 0)),
        (FACE_INVALID, record.invalid if options.drop_invalid else np.zeros_like(record.invalid)),
        (FACE_OUTSIDE, (clipped_w <= 0) | (clipped_h <= 0)),
        (FACE_TOO_SMALL, (clipped_w < options.min_size) | (clipped_h < options.min_size)),
    ]
    for reason, broken in rules:
        reasons[(reasons == "") & broken] = reason
    keep = reasons == ""
    if (
        labelled
        and record.num_faces + len(record.malformed) > 0
        and not keep.any()
        and not options.keep_empty
    ):
        return _skip(
            record, IMAGE_NO_FACES_LEFT, f"{record.path}: every face was filtered out", reasons, report
        )
    for line, _ in record.malformed:
        _drop(report, record.path, line, FACE_MALFORMED)
    for line, reason in zip(record.lines[~keep], reasons[~keep], strict=True):
        _drop(report, record.path, int(line), reason)
    boxes = boxes[keep]
    clipped = (boxes != np.column_stack([x, y, x + w, y + h])[keep]).any(axis=1)
    report.changed_faces[CHANGE_CLIPPED] += int(clipped.sum())
    landmarks, visible = landmarks[keep], record.visible[keep]
    outside = visible & (
        (landmarks < 0).any(axis=2) | (landmarks[..., 0] > width) | (landmarks[..., 1] > height)
    )
    report.changed_faces[CHANGE_LANDMARK_OUTSIDE] += int(outside.sum())
    report.faces_kept += len(boxes)
    return format_label_lines(boxes, landmarks, visible & ~outside, width, height)


def _skip(
    record: ImageAnnotation, reason: str, detail: str, reasons: np.ndarray, report: ConvertReport
) -> None:
    """Count a skipped image and its faces; faces with a reason of their own are listed with it."""
    report.skipped_images[reason] += 1
    report.skipped.append(
        {"image": record.path, "line": record.line, "reason": reason, "detail": detail, "faces": len(reasons)}
    )
    for line, _ in record.malformed:
        _drop(report, record.path, line, FACE_MALFORMED)
    for line, own in zip(record.lines, reasons, strict=True):
        if own:
            _drop(report, record.path, int(line), own)
    report.dropped_faces[FACE_OF_SKIPPED_IMAGE] += int((reasons == "").sum())
    return None


def _drop(report: ConvertReport, image: str, line: int, reason: str) -> None:
    report.dropped_faces[reason] += 1
    report.dropped.append({"image": image, "line": line, "reason": reason})


def _records_from_folder(images_dir: Path) -> list[ImageAnnotation]:
    """Return a face-less record for every image file under `images_dir`, in sorted order."""
    names = sorted(p.relative_to(images_dir).as_posix() for p in images_dir.rglob("*") if is_image_file(p))
    empty = {
        "boxes_xywh": np.zeros((0, 4)),
        "landmarks": np.zeros((0, 5, 2)),
        "visible": np.zeros((0, 5), bool),
        "invalid": np.zeros(0, bool),
        "lines": np.zeros(0, np.int64),
    }
    return [ImageAnnotation(path=name, line=0, **empty) for name in names]


def _count_stale_images(folder: Path, written: set[str], out: Path) -> int:
    """Return how many image files under `folder` this run did not write (they would train as background)."""
    if not folder.is_dir():
        return 0
    return sum(
        1 for p in folder.rglob("*") if is_image_file(p) and p.relative_to(out).as_posix() not in written
    )


def _write_report(report: ConvertReport, out: Path) -> None:
    atomic_write_text(out / f"convert_{report.split}_report.txt", report.table() + "\n")
    data = {key: value for key, value in vars(report).items() if key not in ("skipped", "dropped")}
    data.update(
        {key: dict(getattr(report, key)) for key in ("skipped_images", "dropped_faces", "changed_faces")},
        skipped=report.skipped,
        dropped=report.dropped,
    )
    atomic_write_json(out / f"convert_{report.split}_report.json", data)


class _Linker:
    """Places image files at their output paths without re-encoding: hardlink, symlink or copy."""

    def __init__(self, mode: str):
        self.mode = mode
        self.used = ""
        self._dirs: set[Path] = set()

    def ensure_dir(self, folder: Path) -> None:
        if folder not in self._dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._dirs.add(folder)

    def place(self, src: Path, dst: Path) -> None:
        """Make `dst` the same bytes as `src`, with the first method that works (remembered for the next)."""
        self.ensure_dir(dst.parent)
        if dst.is_symlink() or dst.exists():
            if dst.exists() and os.path.samefile(src, dst):
                return
            dst.unlink()
        methods = ["hardlink", "symlink", "copy"] if self.mode == "auto" else [self.mode]
        if self.used in methods:
            methods.remove(self.used)
            methods.insert(0, self.used)
        errors = []
        for method in methods:
            try:
                if method == "hardlink":
                    os.link(src, dst)
                elif method == "symlink":
                    os.symlink(src.resolve(), dst)
                else:
                    shutil.copyfile(src, dst)
            except OSError as err:
                errors.append(f"{method}: {err.strerror}")
                continue
            self.used = method
            return
        raise FaceyoloError(f"{dst}: cannot place image ({'; '.join(errors)})")

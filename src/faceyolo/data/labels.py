"""YOLO-face label files (SPEC §1.3): where they lie, how they are read and checked, and the label cache.

A label line is `cls cx cy w h x0 y0 ... x4 y4`, normalised; a landmark coordinate ≤ 0 means missing and is
read as -1. An image is left out of training, with its reason, when its label file breaks a rule (the
original's "corrupted" count) or the image itself cannot be used:
* malformed label line: not exactly 15 numbers;
* class out of range: cls not an integer in [0, nc);
* label value out of range: cx, cy outside [0, 1], w, h outside (0, 1], a landmark outside [-1, 1];
* the image problems of `imageinfo.check_image` (missing, unreadable, truncated JPEG, smaller than 10 px).
Duplicate lines are removed (the original dropped the whole image for them). A missing or empty label file
means a background image. Deliberate difference: the original tolerated boxes with negative centres.

The parsed labels are cached in `<labels folder>.cache.npz` (plain arrays and JSON text, loaded without
pickle; labels from several folders add a digest of the image paths to the name), keyed on the size and
modification time of every image and label file, so any change rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceyolo.data.imageinfo import check_image
from faceyolo.files import atomic_write

LOG = logging.getLogger(__name__)

CACHE_VERSION = "faceyolo-labels-1"
LABEL_COLUMNS = 15
MALFORMED_LINE = "malformed label line"
CLASS_OUT_OF_RANGE = "class out of range"
VALUE_OUT_OF_RANGE = "label value out of range"


def label_path(image_path: str | os.PathLike) -> Path:
    """Return the label file of an image: the last `images` folder becomes `labels`, the extension `.txt`.

    Without an `images` folder in the path the label file sits beside the image (train2yolo's flat layout).
    The original replaced the first `/images/`; the last one is used so a parent folder named `images`
    (e.g. /home/images/datasets/wider/images/x.jpg) does not redirect the labels.
    """
    parts = list(Path(image_path).parts)
    folders = [k for k, part in enumerate(parts[:-1]) if part == "images"]
    if folders:
        parts[folders[-1]] = "labels"
    return Path(*parts).with_suffix(".txt")


@dataclass
class LabelCheck:
    """One label file read and checked.

    labels: (n, 15) float32 [cls, cx, cy, w, h, x0, y0, ..., x4, y4], missing landmarks -1; empty when bad.
    problem: None, or the reason the image must be left out; detail says where (file:line).
    duplicates: duplicate lines removed.
    """

    labels: np.ndarray
    problem: str | None = None
    detail: str = ""
    duplicates: int = 0


def read_label_file(path: str | os.PathLike, nc: int = 1) -> LabelCheck:
    """Return the LabelCheck of one label file; a missing file is an image without faces."""
    path = Path(path)
    empty = np.zeros((0, LABEL_COLUMNS), np.float32)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LabelCheck(empty)
    except (OSError, UnicodeDecodeError) as err:
        return LabelCheck(empty, MALFORMED_LINE, f"{path}: cannot read ({err})")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(values) != LABEL_COLUMNS or not np.isfinite(values).all():
            return LabelCheck(
                empty, MALFORMED_LINE, f"{path}:{number}: expected 15 numbers, got {line.strip()!r}"
            )
        problem = _row_problem(values, nc)
        if problem:
            return LabelCheck(empty, problem[0], f"{path}:{number}: {problem[1]}")
        rows.append(values)
    if not rows:
        return LabelCheck(empty)
    labels = np.array(rows, dtype=np.float32)
    unique, first = np.unique(labels, axis=0, return_index=True)
    labels = labels[np.sort(first)]
    marks = labels[:, 5:]
    marks[marks <= 0] = -1.0
    return LabelCheck(labels, duplicates=len(rows) - len(unique))


def _row_problem(values: list[float], nc: int) -> tuple[str, str] | None:
    """Return (reason, detail) when one parsed label row breaks a rule, else None."""
    cls, cx, cy, w, h = values[:5]
    if cls != int(cls) or not 0 <= cls < nc:
        return CLASS_OUT_OF_RANGE, f"class {cls:g} with nc = {nc}"
    if not (0 <= cx <= 1 and 0 <= cy <= 1 and 0 < w <= 1 and 0 < h <= 1):
        return VALUE_OUT_OF_RANGE, f"box {cx:g} {cy:g} {w:g} {h:g} not inside [0, 1] with a positive size"
    if any(v < -1 or v > 1 for v in values[5:]):
        return VALUE_OUT_OF_RANGE, "a landmark coordinate outside [-1, 1]"
    return None


@dataclass
class LabelIndex:
    """The usable images of a dataset with their labels, and what was left out and why.

    images: usable image paths, in the order given. labels: per image (n_i, 15) float32 (see LabelCheck).
    sizes: (N, 2) int64 (width, height) of each usable image as cv2.imread loads it.
    problems: one {"image", "reason", "detail"} per image left out.
    """

    images: list[Path]
    labels: list[np.ndarray]
    sizes: np.ndarray
    problems: list[dict] = field(default_factory=list)
    duplicates: int = 0
    cache_path: Path | None = None
    from_cache: bool = False

    def summary(self) -> str:
        """Return one line: usable images, faces, background images, left-out images by reason, cache."""
        faces = sum(len(x) for x in self.labels)
        background = sum(1 for x in self.labels if len(x) == 0)
        text = f"{len(self.images):,} images, {faces:,} faces, {background:,} background"
        if self.problems:
            reasons = Counter(p["reason"] for p in self.problems)
            text += (
                f"; {len(self.problems):,} left out ("
                + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
                + ")"
            )
        if self.duplicates:
            text += f"; {self.duplicates} duplicate label lines removed"
        if self.cache_path is not None:
            text += f"; cache {'loaded' if self.from_cache else 'written'}: {self.cache_path}"
        return text


def index_labels(
    image_files: list[Path], nc: int = 1, cache: bool = True, progress: bool = False
) -> LabelIndex:
    """Return the LabelIndex of the given images, from the cache when it is fresh, else by reading every file.

    Each image left out is logged with its name and reason (logger `faceyolo.data.labels`).
    """
    image_files = [Path(p) for p in image_files]
    cache_path = _cache_path(image_files) if cache else None
    key = _cache_key(image_files, nc)
    index = _load_cache(cache_path, key) if cache_path else None
    if index is None:
        index = _scan(image_files, nc, progress)
        if cache_path is not None:
            index.cache_path = cache_path if _save_cache(cache_path, key, index) else None
    for problem in index.problems:
        LOG.warning("skipped %s: %s (%s)", problem["image"], problem["reason"], problem["detail"])
    return index


def _scan(image_files: list[Path], nc: int, progress: bool) -> LabelIndex:
    images, labels, sizes, problems, duplicates = [], [], [], [], 0
    for image in tqdm(image_files, desc="checking labels", unit="img", disable=not progress, leave=False):
        check = check_image(image)
        label = read_label_file(label_path(image), nc) if check.problem is None else None
        if check.problem is not None:
            problems.append({"image": str(image), "reason": check.problem, "detail": check.detail})
        elif label.problem is not None:
            problems.append({"image": str(image), "reason": label.problem, "detail": label.detail})
        else:
            images.append(image)
            labels.append(label.labels)
            sizes.append(check.size)
            duplicates += label.duplicates
    return LabelIndex(images, labels, np.array(sizes, dtype=np.int64).reshape(-1, 2), problems, duplicates)


def _cache_path(image_files: list[Path]) -> Path | None:
    """Return `<common labels folder>.cache.npz`, or None when the labels share no folder below the root.

    Labels from several folders (an image list, per-event folders) add a digest of the image paths to the
    name, so that two lists under one common folder keep a cache each instead of rewriting one in turn.
    """
    if not image_files:
        return None
    folders = sorted({os.path.abspath(label_path(p).parent) for p in image_files})
    common = Path(os.path.commonpath(folders))
    if common.parent == common:
        return None
    if len(folders) == 1:
        return common.with_name(common.name + ".cache.npz")
    digest = hashlib.sha256("\n".join(sorted(map(str, image_files))).encode()).hexdigest()[:8]
    return common.with_name(f"{common.name}.{digest}.cache.npz")


def _cache_key(image_files: list[Path], nc: int) -> str:
    """Return a digest of every image's and label's path, size and mtime (missing files included)."""
    digest = hashlib.sha256(f"{CACHE_VERSION} nc={nc}".encode())
    for image in image_files:
        for path in (image, label_path(image)):
            try:
                stat = path.stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            except OSError:
                digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _save_cache(path: Path, key: str, index: LabelIndex) -> bool:
    """Return True after writing the cache atomically; False (logged) when the folder is not writable."""
    counts = np.array([len(x) for x in index.labels], dtype=np.int64)
    arrays = {
        "key": np.array(key),
        "images": np.array([str(p) for p in index.images], dtype=str),
        "sizes": index.sizes,
        "counts": counts,
        "labels": np.concatenate([np.zeros((0, LABEL_COLUMNS), np.float32), *index.labels]),
        "meta": np.array(json.dumps({"problems": index.problems, "duplicates": index.duplicates})),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    try:
        atomic_write(path, write)
    except OSError as err:
        LOG.warning("label cache not written to %s (%s)", path, err.strerror)
        return False
    return True


def _load_cache(path: Path, key: str) -> LabelIndex | None:
    """Return the cached LabelIndex when the file exists, reads and matches `key`; else None."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            counts = data["counts"]
            labels = np.split(data["labels"], np.cumsum(counts)[:-1]) if len(counts) else []
            meta = json.loads(str(data["meta"]))
            return LabelIndex(
                images=[Path(p) for p in data["images"].tolist()],
                labels=list(labels),
                sizes=data["sizes"],
                problems=meta["problems"],
                duplicates=meta["duplicates"],
                cache_path=path,
                from_cache=True,
            )
    except (OSError, KeyError, ValueError):
        return None

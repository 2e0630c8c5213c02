"""WIDER FACE prediction files from a FaceDetector (SPEC §6.5), with optional flip and multi-scale passes.

One file per image, `<out>/<event>/<stem>.txt`: the stem, the face count, then `"%d %d %d %d %.03f"` lines
of x, y, w, h, score in descending score order. The box arithmetic is the original's, so that the files come
out byte for byte: boxes are rounded, then go through normalised centre-size and back in float32 with `int`
truncation. Extra passes (a horizontally flipped image, other input sizes) are mapped back to the image,
concatenated and merged by greedy NMS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_text
from faceyolo.images import is_image_file, read_image
from faceyolo.inference.detector import FaceDetector
from faceyolo.inference.face import Face
from faceyolo.inference.nms import greedy_nms
from faceyolo.inference.preprocess import network_size, to_rgb

WIDER_IMG_SIZE = 640
WIDER_CONF = 0.02
WIDER_IOU = 0.5
FLIP_LANDMARK_ORDER = [1, 0, 2, 4, 3]  # a mirror swaps the eyes and the mouth corners; the nose stays


def wider_box_rows(boxes_xyxy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Return (K, 4) int64 `x y w h` as test_widerface.py writes boxes_xyxy (K, 4) original-image pixels.

    Rounded first (as the original rounds the mapped-back boxes), then normalised cx, cy, w, h in float32,
    then x1 = int(cx·W − 0.5·w·W) and x2 = int(cx·W + 0.5·w·W) (y likewise) in float32: the truncation
    loses a pixel on about 5% of the boxes, which a byte-exact file needs.
    """
    b = np.round(np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4))
    size = np.array([image_hw[1], image_hw[0]], dtype=np.float32)
    centre = (b[:, :2] + b[:, 2:]) / np.float32(2) / size
    extent = (b[:, 2:] - b[:, :2]) / size
    half = np.float32(0.5) * extent * size
    top_left = np.trunc(centre * size - half).astype(np.int64)
    bottom_right = np.trunc(centre * size + half).astype(np.int64)
    return np.concatenate([top_left, bottom_right - top_left], axis=1)


def wider_file_text(stem: str, faces: Sequence[Face], image_hw: tuple[int, int]) -> str:
    """Return the text of one WIDER result file for `faces` (descending score) of an image_hw image."""
    boxes = np.array([f.box for f in faces], dtype=np.float32).reshape(-1, 4)
    rows = wider_box_rows(boxes, image_hw)
    lines = [stem, str(len(faces))]
    for (x, y, w, h), face in zip(rows, faces, strict=True):
        lines.append(f"{x} {y} {w} {h} {min(face.score, 1):.3f}")  # the original's "%d %d %d %d %.03f"
    return "\n".join(lines) + "\n"


def unflip_faces(faces: Iterable[Face], width: int) -> list[Face]:
    """Return faces found on a horizontally flipped image mapped back onto the original (width pixels wide).

    x becomes width − x for boxes and landmarks, and the left/right landmarks swap places.
    """
    out = []
    for face in faces:
        x1, y1, x2, y2 = face.box
        box = np.array([width - x2, y1, width - x1, y2], dtype=np.float32)
        points = np.array(face.landmarks, dtype=np.float32)[FLIP_LANDMARK_ORDER]
        points[:, 0] = width - points[:, 0]
        out.append(Face(box=box, score=face.score, landmarks=points))
    return out


def merge_faces(faces: Sequence[Face], iou: float) -> list[Face]:
    """Return `faces` (pooled from several passes) after greedy NMS at `iou`, in descending score order."""
    if not faces:
        return []
    boxes = np.stack([f.box for f in faces]).astype(np.float32)
    scores = np.array([f.score for f in faces], dtype=np.float32)
    return [faces[k] for k in greedy_nms(boxes, scores, iou)]


def pass_size(image_hw: tuple[int, int], img_size: int, scale: float) -> int:
    """Return the network input size of one pass: scale × img_size (img_size ≤ 0: the image's long side),
    rounded up to a multiple of 64 as test_widerface.py does."""
    base = img_size if img_size > 0 else max(image_hw)
    return max(network_size(round(base * scale)), 64)


def detect_passes(detector: FaceDetector, images_rgb: Sequence[np.ndarray], img_size: int = WIDER_IMG_SIZE,
                  scales: Sequence[float] = (1.0,), flip: bool = False) -> list[list[Face]]:
    """Return the faces of each RGB image (h, w, 3) uint8, pooled over every (scale, flip) pass.

    A single pass returns the detector's faces unchanged; several passes are merged with NMS at the
    detector's IoU threshold.
    """
    pooled: list[list[Face]] = [[] for _ in images_rgb]
    flips = (False, True) if flip else (False,)
    for scale in scales:
        for flipped in flips:
            by_size: dict[int, list[int]] = {}
            for k, image in enumerate(images_rgb):
                by_size.setdefault(pass_size(image.shape[:2], img_size, scale), []).append(k)
            for size, indices in by_size.items():
                sized = FaceDetector(detector.backend, conf=detector.conf, iou=detector.iou, img_size=size,
                                     max_det=detector.max_det, batch_size=detector.batch_size)
                batch = [np.ascontiguousarray(images_rgb[k][:, ::-1]) if flipped else images_rgb[k]
                         for k in indices]
                for k, faces in zip(indices, sized.detect_rgb(batch), strict=True):
                    width = images_rgb[k].shape[1]
                    pooled[k].extend(unflip_faces(faces, width) if flipped else faces)
    if len(scales) * len(flips) == 1:
        return pooled
    return [merge_faces(faces, detector.iou) for faces in pooled]


def find_images(images_dir: str | os.PathLike) -> list[Path]:
    """Return the image files under images_dir (searched recursively), sorted."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FaceyoloError(f"{images_dir}: image folder not found")
    return sorted(p for p in images_dir.rglob("*") if is_image_file(p) and p.is_file())


@dataclass
class WriteSummary:
    """What `write_predictions` did: files written, and images skipped as "path: reason"."""

    written: int = 0
    skipped: list[str] = field(default_factory=list)


def write_predictions(
    detector: FaceDetector,
    image_paths: Sequence[Path],
    out_dir: str | os.PathLike,
    event_of: dict[str, str],
    img_size: int = WIDER_IMG_SIZE,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    chunk: int = 16,
    progress: Callable[[int], None] | None = None,
) -> WriteSummary:
    """Return a WriteSummary after writing `<out_dir>/<event>/<stem>.txt` for each image of image_paths.

    `event_of` maps an image stem to its WIDER event folder; images that are not WIDER val images or cannot
    be decoded are skipped and reported. `progress(n)` is called after each chunk of n images.
    """
    out_dir = Path(out_dir)
    summary = WriteSummary()
    for start in range(0, len(image_paths), chunk):
        paths, images = [], []
        for path in image_paths[start : start + chunk]:
            if path.stem not in event_of:
                summary.skipped.append(f"{path}: not a WIDER FACE val image")
                continue
            try:
                images.append(to_rgb(read_image(path)))
            except FaceyoloError as err:
                summary.skipped.append(str(err))
                continue
            paths.append(path)
        for path, image, faces in zip(paths, images, detect_passes(detector, images, img_size, scales, flip),
                                      strict=True):
            target = out_dir / event_of[path.stem] / f"{path.stem}.txt"
            atomic_write_text(target, wider_file_text(path.stem, faces, image.shape[:2]))
            summary.written += 1
        if progress is not None:
            progress(len(image_paths[start : start + chunk]))
    return summary

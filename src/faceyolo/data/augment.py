"""Training augmentations (SPEC §5.3-5.10), each a pure function of a `Sample` and, when random, a Generator.

A `Sample` is (image, boxes, landmarks, visible, classes) in pixels of its image. Defaults are the
hyp.scratch values (SPEC §4.2). Randomness comes only from the `np.random.Generator` passed in, so one
generator per sample seeded from (seed, epoch, index) makes a whole epoch reproducible in any worker.

Landmarks carry a per-point visibility instead of the original's -1 sentinels; the original invalidated
x and y in pairs, which is the same thing. The original's nose-validity bug (SPEC §5.4) is not reproduced.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cv2
import numpy as np

from faceyolo.geometry import PAD_VALUE, letterbox

# Flipping left-right turns the image-left eye into the image-right one: L0 <-> L1, L3 <-> L4 (SPEC §5.10).
FLIP_LR_ORDER = (1, 0, 2, 4, 3)


class Sample(NamedTuple):
    """One training image with its faces.

    image: (H, W, 3) uint8 BGR.
    boxes: (N, 4) float32 xyxy pixels.
    landmarks: (N, 5, 2) float32 pixels, L0..L4 (SPEC §0); meaningless where not visible.
    visible: (N, 5) bool.
    classes: (N,) float32 class indices (0 = face).
    """

    image: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    classes: np.ndarray

    @classmethod
    def of(cls, image: np.ndarray, boxes=None, landmarks=None, visible=None, classes=None) -> Sample:
        """Return a Sample with float32/bool arrays; missing landmarks are invisible, classes default to 0."""
        boxes = np.asarray(boxes if boxes is not None else np.zeros((0, 4)), np.float32).reshape(-1, 4)
        n = len(boxes)
        landmarks = np.zeros((n, 5, 2)) if landmarks is None else landmarks
        visible = np.zeros((n, 5), bool) if visible is None else visible
        classes = np.zeros(n) if classes is None else classes
        return cls(
            image,
            boxes,
            np.asarray(landmarks, np.float32).reshape(n, 5, 2),
            np.asarray(visible, bool).reshape(n, 5),
            np.asarray(classes, np.float32).reshape(n),
        )

    def select(self, keep: np.ndarray) -> Sample:
        """Return the sample with only the faces where `keep` (N,) is True."""
        return self._replace(
            boxes=self.boxes[keep],
            landmarks=self.landmarks[keep],
            visible=self.visible[keep],
            classes=self.classes[keep],
        )


def resize_long_side(image: np.ndarray, size: int, shrink_with_area: bool) -> np.ndarray:
    """Return the image resized so its long side is `size` (SPEC §5.2), or the image itself when it is.

    shrink_with_area: INTER_AREA when shrinking (validation), else INTER_LINEAR (training, enlarging).
    """
    h0, w0 = image.shape[:2]
    r = size / max(h0, w0)
    if r == 1:
        return image
    interpolation = cv2.INTER_AREA if r < 1 and shrink_with_area else cv2.INTER_LINEAR
    return cv2.resize(image, (int(w0 * r), int(h0 * r)), interpolation=interpolation)


def scale_sample(sample: Sample, gain: tuple[float, float], offset: tuple[float, float]) -> Sample:
    """Return the sample's faces mapped by x' = gain_x·x + offset_x, y' = gain_y·y + offset_y (image kept)."""
    gx, gy = gain
    ox, oy = offset
    boxes = sample.boxes * np.array([gx, gy, gx, gy], np.float32) + np.array([ox, oy, ox, oy], np.float32)
    landmarks = sample.landmarks * np.array([gx, gy], np.float32) + np.array([ox, oy], np.float32)
    return sample._replace(boxes=boxes.astype(np.float32), landmarks=landmarks.astype(np.float32))


def letterbox_sample(
    sample: Sample,
    new_shape: int | tuple[int, int],
    scaleup: bool = True,
    auto: bool = False,
) -> tuple[Sample, tuple[float, float], tuple[float, float]]:
    """Return (letterboxed sample, ratio (r, r), padding (pad_w, pad_h)): `geometry.letterbox`, SPEC §5.3."""
    image, ratio, pad = letterbox(sample.image, new_shape, auto=auto, scaleup=scaleup)
    left = int(round(pad[0] - 0.1))
    top = int(round(pad[1] - 0.1))
    moved = scale_sample(sample, ratio, (left, top))
    return moved._replace(image=image), ratio, (float(left), float(top))


def mosaic4(tiles: list[Sample], size: int, rng: np.random.Generator) -> Sample:
    """Return a (2·size, 2·size) mosaic of four samples around a random centre (SPEC §5.5).

    Each tile (long side `size`) is pasted with its inner corner at the centre; boxes are clipped to the
    canvas, not to their tile, and landmarks outside the canvas become invisible.
    """
    s2 = 2 * size
    yc = int(rng.uniform(size / 2, 3 * size / 2))
    xc = int(rng.uniform(size / 2, 3 * size / 2))
    canvas = np.full((s2, s2, 3), PAD_VALUE[0], dtype=np.uint8)
    parts = []
    for k, tile in enumerate(tiles):
        h, w = tile.image.shape[:2]
        if k == 0:
            x1a, y1a, x2a, y2a = max(xc - w, 0), max(yc - h, 0), xc, yc
            x1b, y1b = w - (x2a - x1a), h - (y2a - y1a)
        elif k == 1:
            x1a, y1a, x2a, y2a = xc, max(yc - h, 0), min(xc + w, s2), yc
            x1b, y1b = 0, h - (y2a - y1a)
        elif k == 2:
            x1a, y1a, x2a, y2a = max(xc - w, 0), yc, xc, min(s2, yc + h)
            x1b, y1b = w - (x2a - x1a), 0
        else:
            x1a, y1a, x2a, y2a = xc, yc, min(xc + w, s2), min(s2, yc + h)
            x1b, y1b = 0, 0
        canvas[y1a:y2a, x1a:x2a] = tile.image[y1b : y1b + (y2a - y1a), x1b : x1b + (x2a - x1a)]
        parts.append(scale_sample(tile, (1.0, 1.0), (x1a - x1b, y1a - y1b)))
    boxes = np.concatenate([p.boxes for p in parts]).clip(0, s2)
    landmarks = np.concatenate([p.landmarks for p in parts])
    visible = np.concatenate([p.visible for p in parts]) & ((landmarks >= 0) & (landmarks <= s2)).all(axis=2)
    return Sample(canvas, boxes, landmarks, visible, np.concatenate([p.classes for p in parts]))


def affine_matrix(
    rng: np.random.Generator,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.5,
    perspective: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Return (M (3, 3) float64, scale drawn) mapping input pixels to output pixels (SPEC §5.6).

    M = T·S·R·P·C; draws in the original's order: perspective (2), angle, scale, shear x, shear y, translate.
    """
    centre = np.eye(3)
    centre[0, 2], centre[1, 2] = -in_hw[1] / 2, -in_hw[0] / 2
    persp = np.eye(3)
    persp[2, 0], persp[2, 1] = rng.uniform(-perspective, perspective), rng.uniform(-perspective, perspective)
    angle = math.radians(rng.uniform(-degrees, degrees))
    sc = rng.uniform(1 - scale, 1 + scale)
    rotation = np.eye(3)
    rotation[:2, :2] = [
        [sc * math.cos(angle), sc * math.sin(angle)],
        [-sc * math.sin(angle), sc * math.cos(angle)],
    ]
    shearing = np.eye(3)
    shearing[0, 1] = math.tan(math.radians(rng.uniform(-shear, shear)))
    shearing[1, 0] = math.tan(math.radians(rng.uniform(-shear, shear)))
    moving = np.eye(3)
    moving[0, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_hw[1]
    moving[1, 2] = rng.uniform(0.5 - translate, 0.5 + translate) * out_hw[0]
    return moving @ shearing @ rotation @ persp @ centre, sc


def transform_points(points_xy: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Return points (..., 2) mapped through a 3x3 matrix, with the projective divide."""
    flat = points_xy.reshape(-1, 2).astype(np.float64)
    mapped = np.c_[flat, np.ones(len(flat))] @ matrix.T
    return (mapped[:, :2] / mapped[:, 2:3]).reshape(points_xy.shape)


def warp_sample(sample: Sample, matrix: np.ndarray, out_hw: tuple[int, int], scale: float = 1.0) -> Sample:
    """Return the sample warped by `matrix`, faces filtered by `box_candidates` (SPEC §5.6-5.7).

    Boxes are the clipped bounds of their warped corners; a landmark leaving [0, W] × [0, H] turns invisible.
    `scale` is the matrix's scale, used for the area-ratio rule.
    """
    out_h, out_w = out_hw
    if sample.image.shape[:2] != (out_h, out_w) or not np.allclose(matrix, np.eye(3)):
        if matrix[2, 0] or matrix[2, 1]:
            image = cv2.warpPerspective(sample.image, matrix, (out_w, out_h), borderValue=PAD_VALUE)
        else:
            image = cv2.warpAffine(sample.image, matrix[:2], (out_w, out_h), borderValue=PAD_VALUE)
    else:
        image = sample.image
    if not len(sample.boxes):
        return sample._replace(image=image)
    x1, y1, x2, y2 = sample.boxes.T
    corners = np.stack(
        [np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x1, y2], 1), np.stack([x2, y2], 1)], axis=1
    )
    warped = transform_points(corners, matrix)
    boxes = np.concatenate([warped.min(axis=1), warped.max(axis=1)], axis=1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, out_w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, out_h)
    landmarks = transform_points(sample.landmarks, matrix)
    inside = (landmarks >= 0).all(axis=2) & (landmarks[..., 0] <= out_w) & (landmarks[..., 1] <= out_h)
    keep = box_candidates(sample.boxes * scale, boxes)
    warped_sample = Sample(
        image, boxes.astype(np.float32), landmarks.astype(np.float32), sample.visible & inside, sample.classes
    )
    return warped_sample.select(keep)


def random_affine(
    sample: Sample,
    rng: np.random.Generator,
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.5,
    perspective: float = 0.0,
    border: tuple[int, int] = (0, 0),
) -> Sample:
    """Return the sample under a random affine (or perspective) warp; border (y, x) < 0 crops (mosaic)."""
    in_hw = sample.image.shape[:2]
    out_hw = (in_hw[0] + 2 * border[0], in_hw[1] + 2 * border[1])
    matrix, sc = affine_matrix(rng, in_hw, out_hw, degrees, translate, scale, shear, perspective)
    return warp_sample(sample, matrix, out_hw, sc)


def random_crop(sample: Sample, size: int, rng: np.random.Generator, scale: float = 0.5) -> Sample:
    """Return a size × size crop of the sample rescaled by a gain drawn from [1 - scale, 1 + scale].

    The RetinaFace/SCRFD recipe: faces keep about the size they have at test time (the sample is at long
    side img_size), while a crop smaller than img_size costs a fraction of a whole image. The crop lies
    anywhere over the rescaled image (padded where the image is smaller); faces cut by the crop follow the
    `box_candidates` rules, as after any warp.
    """
    h, w = sample.image.shape[:2]
    gain = rng.uniform(1 - scale, 1 + scale)
    x0 = rng.uniform(*sorted((0.0, w * gain - size)))
    y0 = rng.uniform(*sorted((0.0, h * gain - size)))
    matrix = np.array([[gain, 0.0, -x0], [0.0, gain, -y0], [0.0, 0.0, 1.0]])
    return warp_sample(sample, matrix, (size, size), gain)


def box_candidates(
    before_xyxy: np.ndarray,
    after_xyxy: np.ndarray,
    wh_thr: float = 2.0,
    ar_thr: float = 20.0,
    area_thr: float = 0.1,
    eps: float = 1e-16,
) -> np.ndarray:
    """Return a (N,) bool mask of boxes kept after a warp: > wh_thr px wide and high, area ratio > area_thr,
    aspect ratio < ar_thr (SPEC §5.7). before (scaled by the warp's scale) and after are (N, 4) xyxy."""
    w1, h1 = before_xyxy[:, 2] - before_xyxy[:, 0], before_xyxy[:, 3] - before_xyxy[:, 1]
    w2, h2 = after_xyxy[:, 2] - after_xyxy[:, 0], after_xyxy[:, 3] - after_xyxy[:, 1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    return (w2 > wh_thr) & (h2 > wh_thr) & (w2 * h2 / (w1 * h1 + eps) > area_thr) & (aspect < ar_thr)


def augment_hsv(
    image: np.ndarray, rng: np.random.Generator, hgain: float = 0.015, sgain: float = 0.7, vgain: float = 0.4
) -> np.ndarray:
    """Return a BGR uint8 image with random hue, saturation and value gains in 1 ± gain (SPEC §5.8)."""
    gains = rng.uniform(-1, 1, 3) * np.array([hgain, sgain, vgain]) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(0, 256, dtype=np.float64)
    lut_hue = ((x * gains[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def flip_lr(sample: Sample) -> Sample:
    """Return the sample mirrored left-right, with the eyes and the mouth corners swapped (SPEC §5.10)."""
    w = sample.image.shape[1]
    boxes = sample.boxes.copy()
    boxes[:, 0], boxes[:, 2] = w - sample.boxes[:, 2], w - sample.boxes[:, 0]
    landmarks = sample.landmarks.copy()
    landmarks[..., 0] = w - landmarks[..., 0]
    order = list(FLIP_LR_ORDER)
    return sample._replace(
        image=np.ascontiguousarray(sample.image[:, ::-1]),
        boxes=boxes,
        landmarks=landmarks[:, order],
        visible=sample.visible[:, order],
    )


def flip_ud(sample: Sample) -> Sample:
    """Return the sample mirrored up-down; no landmark swap (SPEC §5.10)."""
    h = sample.image.shape[0]
    boxes = sample.boxes.copy()
    boxes[:, 1], boxes[:, 3] = h - sample.boxes[:, 3], h - sample.boxes[:, 1]
    landmarks = sample.landmarks.copy()
    landmarks[..., 1] = h - landmarks[..., 1]
    return sample._replace(image=np.ascontiguousarray(sample.image[::-1]), boxes=boxes, landmarks=landmarks)

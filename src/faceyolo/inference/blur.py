"""Anonymising faces in an image: gaussian blur, pixelation or a solid fill over each (enlarged) face box,
or a blur inside an ellipse that follows the face (turned with the line of the eyes).

`anonymise_mask` is the one place that decides which pixels are hidden; `anonymise` hides exactly those.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.inference.face import Face

BLUR_METHODS = ("gaussian", "pixelate", "solid", "ellipse")
DEFAULT_MASK_SCALE = 1.3  # faces' boxes are tight: hair, ears and chin lie outside them
PIXEL_BLOCKS = 8  # blocks across a pixelated face: too few to recognise it


def check_method(method: str, mask_scale: float) -> None:
    """Raise FaceyoloError unless `method` is one of BLUR_METHODS and mask_scale is positive."""
    if method not in BLUR_METHODS:
        raise FaceyoloError(f"unknown blur method {method!r} (use {', '.join(BLUR_METHODS)})")
    if not mask_scale > 0:
        raise FaceyoloError(f"--mask-scale must be positive, got {mask_scale}")


def _region(face: Face, mask_scale: float, image_hw: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """Return the face box scaled about its centre and clipped, as ints (x1, y1, x2, y2); None if empty."""
    centre = (face.box[:2] + face.box[2:]) / 2
    half = (face.box[2:] - face.box[:2]) / 2 * mask_scale
    x1, y1 = np.floor(centre - half).astype(int)
    x2, y2 = np.ceil(centre + half).astype(int)
    x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, image_hw[1]), min(y2, image_hw[0])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _eye_angle(face: Face) -> float:
    """Return the angle in degrees of the line from the left to the right eye (0 when level)."""
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    return float(np.degrees(np.arctan2(ry - ly, rx - lx))) if (lx, ly) != (rx, ry) else 0.0


def _region_mask(face: Face, region: tuple[int, int, int, int], method: str, mask_scale: float) -> np.ndarray:
    """Return the hidden pixels (h, w) bool of one face inside its region (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = region
    if method != "ellipse":
        return np.ones((y2 - y1, x2 - x1), dtype=bool)
    mask = np.zeros((y2 - y1, x2 - x1), dtype=np.uint8)
    centre = (face.box[:2] + face.box[2:]) / 2 - (x1, y1)
    size = (face.box[2:] - face.box[:2]) * mask_scale
    cv2.ellipse(mask, (tuple(centre.tolist()), tuple(size.tolist()), _eye_angle(face)), 1, -1)
    return mask.astype(bool)


def anonymise_mask(image_hw: tuple[int, int], faces: Sequence[Face], method: str = "gaussian",
                   mask_scale: float = DEFAULT_MASK_SCALE) -> np.ndarray:
    """Return the pixels (H, W) bool that `anonymise` hides for these faces."""
    mask = np.zeros(image_hw, dtype=bool)
    for face in faces:
        if (region := _region(face, mask_scale, image_hw)) is not None:
            x1, y1, x2, y2 = region
            mask[y1:y2, x1:x2] |= _region_mask(face, region, method, mask_scale)
    return mask


def _hidden(roi: np.ndarray, method: str) -> np.ndarray:
    """Return the replacement pixels for a face region roi (h, w, 3) uint8."""
    h, w = roi.shape[:2]
    if method == "solid":
        return np.zeros_like(roi)
    if method == "pixelate":
        blocks = (max(1, w * PIXEL_BLOCKS // max(w, h)), max(1, h * PIXEL_BLOCKS // max(w, h)))
        small = cv2.resize(roi, blocks, interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    sigma = max(w, h) / 6  # wide enough that no feature of the face survives
    return cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE)


def anonymise(image_bgr: np.ndarray, faces: Sequence[Face], method: str = "gaussian",
              mask_scale: float = DEFAULT_MASK_SCALE) -> np.ndarray:
    """Return a copy of image_bgr (H, W, 3) uint8 with every face hidden by `method` (see BLUR_METHODS).

    Each face's box is scaled by mask_scale about its centre; "ellipse" blurs inside the ellipse that box
    bounds, turned with the eye line.
    """
    check_method(method, mask_scale)
    out = image_bgr.copy()
    image_hw = image_bgr.shape[:2]
    for face in faces:
        if (region := _region(face, mask_scale, image_hw)) is None:
            continue
        x1, y1, x2, y2 = region
        inside = _region_mask(face, region, method, mask_scale)
        roi = out[y1:y2, x1:x2]
        roi[inside] = _hidden(roi, method)[inside]
    return out

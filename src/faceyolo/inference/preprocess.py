"""Turning user images into network batches: loading, channel order, letterbox, grouping by shape.

Every image becomes RGB uint8 (H, W, 3) first. The letterbox is the test_widerface rule (SPEC §6.5): long
side = img_size, scale-up allowed, INTER_LINEAR, each padding reduced modulo 64, pad 114, RGB — not
detect_face.py's BGR bug (SPEC §6.4). Images of different sizes are grouped by their letterboxed shape,
so a batched call gives the same results as one call per image.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.geometry import LETTERBOX_STRIDE, letterbox, letterbox_shape
from faceyolo.images import read_image


def to_rgb(image, rgb: bool = False) -> np.ndarray:
    """Return `image` as RGB uint8 (H, W, 3).

    `image` is a path, a PIL image, or a uint8 array: (H, W, 3) BGR (OpenCV's order, the default) or RGB
    when `rgb` is True, (H, W) / (H, W, 1) grey, or (H, W, 4) with alpha (dropped).
    """
    if isinstance(image, (str, os.PathLike)):
        return cv2.cvtColor(read_image(image), cv2.COLOR_BGR2RGB)
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL, without importing it
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    if not isinstance(image, np.ndarray):
        kind = type(image).__name__
        raise FaceyoloError(f"unsupported image type {kind}: pass a path, a PIL image or an array")
    if image.dtype != np.uint8:
        raise FaceyoloError(f"image array must be uint8, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise FaceyoloError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise FaceyoloError(f"image array is empty, got {image.shape}")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB if rgb else cv2.COLOR_BGRA2RGB)
    return np.ascontiguousarray(image) if rgb else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def network_size(img_size: int) -> int:
    """Return img_size rounded up to a multiple of 64, as test_widerface.py does (SPEC §6.5)."""
    return -(-int(img_size) // LETTERBOX_STRIDE) * LETTERBOX_STRIDE


@dataclass
class InputBatch:
    """Letterboxed images sharing one input shape.

    indices: positions of these images in the caller's list; images (B, 3, H, W) float32 RGB in [0, 1];
    input_hw: (H, W).
    """

    indices: list[int]
    images: np.ndarray
    input_hw: tuple[int, int]


def letterbox_batches(
    images_rgb: Sequence[np.ndarray], img_size: int = 640, batch_size: int = 16
) -> Iterator[InputBatch]:
    """Yield InputBatch groups of images_rgb (each RGB uint8 (h, w, 3)) letterboxed to long side img_size.

    Images with the same letterboxed shape go together, at most `batch_size` per batch, in input order.
    """
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images_rgb):
        groups.setdefault(letterbox_shape(image.shape[:2], img_size), []).append(index)
    for input_hw, indices in groups.items():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([letterbox(images_rgb[i], img_size)[0] for i in chunk])
            chw = batch.transpose(0, 3, 1, 2)
            # One pass from uint8 HWC to float32 CHW in C order (no intermediate copies).
            images = np.divide(chw, np.float32(255), out=np.empty(chw.shape, np.float32))
            yield InputBatch(indices=chunk, images=images, input_hw=input_hw)

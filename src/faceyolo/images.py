"""Image files: the suffixes faceyolo reads, and the one reader every task uses (BGR, EXIF applied)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError

# What OpenCV decodes everywhere; detect, convert, train and eval all accept exactly these.
IMAGE_SUFFIXES = (".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp")


def is_image_file(path: str | os.PathLike) -> bool:
    """Return True when the path's suffix is one of IMAGE_SUFFIXES (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Return the image file at `path` as BGR uint8 (H, W, 3), EXIF orientation applied.

    Raises FaceyoloError naming the file when it cannot be read or decoded. Reads the bytes with NumPy
    so that paths OpenCV's own file reader mishandles (non-ASCII on Windows) still work.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise FaceyoloError(f"{path}: cannot read image ({err.strerror or err})") from None
    if data.size == 0:
        raise FaceyoloError(f"{path}: cannot decode image (0 bytes)")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise FaceyoloError(f"{path}: cannot decode image ({data.size} bytes, not a supported image format)")
    return image

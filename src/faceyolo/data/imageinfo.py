"""Image sizes from file headers (Pillow's lazy open) without decoding the pixels, and pre-training checks.

Converting 10,000+ images must not decode every JPEG just to learn its size: `PIL.Image.open` reads only
the header. The size reported is the one `cv2.imread` returns, i.e. EXIF orientations 5-8 swap width and
height.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, UnidentifiedImageError

from faceyolo.errors import FaceyoloError
from faceyolo.images import IMAGE_SUFFIXES, is_image_file

_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the picture by 90°


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Return (width, height) in pixels as `cv2.imread` would load the image (EXIF orientation applied).

    Raises FaceyoloError naming the file when it is missing, empty or cannot be read.
    """
    path = Path(path)
    try:
        return _header_size(path)
    except OSError as err:
        raise FaceyoloError(f"{path}: cannot read image ({err.strerror or err})") from None


def _header_size(path: Path) -> tuple[int, int]:
    """Return (width, height) from the file's header; FaceyoloError for a file Pillow cannot identify."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except UnidentifiedImageError:
        size = path.stat().st_size
        raise FaceyoloError(f"{path}: cannot read image ({size} bytes, not a supported format)") from None
    except Image.DecompressionBombError as err:
        raise FaceyoloError(f"{path}: image too large ({err})") from None
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return width, height


def _jpeg_ends(path: Path) -> bool:
    """Return False for a JPEG whose last KiB has no end-of-image marker (a truncated download or copy)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 1024))
        return b"\xff\xd9" in f.read()


@dataclass(frozen=True)
class ImageCheck:
    """The outcome of checking one image file before it is used for training.

    size: (width, height) in pixels when the image is usable, else None.
    problem: None, or the short reason it is not usable (one of IMAGE_PROBLEMS).
    detail: the message behind the problem, naming the file.
    """

    size: tuple[int, int] | None
    problem: str | None = None
    detail: str = ""


MIN_IMAGE_SIDE = 10  # the loader needs more than 9 px on both sides (SPEC §1.3)
IMAGE_PROBLEMS = (
    "missing image file",
    "unsupported image type",
    "unreadable image",
    "truncated JPEG",
    "image smaller than 10 px",
)


def check_image(path: str | os.PathLike) -> ImageCheck:
    """Return the image's ImageCheck: its size, or why it cannot be used (never raises for bad files).

    The header gives the size, and a JPEG's tail must hold its end-of-image marker.
    """
    path = Path(path)
    if not is_image_file(path):
        return ImageCheck(None, "unsupported image type", f"{path}: extension not in {IMAGE_SUFFIXES}")
    try:
        width, height = _header_size(path)
        if path.suffix.lower() in (".jpg", ".jpeg") and not _jpeg_ends(path):
            return ImageCheck(None, "truncated JPEG", f"{path}: no JPEG end-of-image marker")
    except FileNotFoundError:
        return ImageCheck(None, "missing image file", f"{path}: no such file")
    except FaceyoloError as err:
        return ImageCheck(None, "unreadable image", str(err))
    except OSError as err:
        return ImageCheck(None, "unreadable image", f"{path}: {err.strerror or err}")
    if min(width, height) < MIN_IMAGE_SIDE:
        return ImageCheck(None, "image smaller than 10 px", f"{path}: {width}x{height} px")
    return ImageCheck((width, height))

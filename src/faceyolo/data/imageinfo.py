"""Image sizes from file headers (JPEG, PNG, BMP) without decoding the pixels.

Converting 10,000+ images must not decode every JPEG just to learn its size, so JPEG (with its EXIF
orientation), PNG and BMP headers are parsed here; other formats fall back to a full OpenCV decode.
The size reported is the one `cv2.imread` returns, i.e. EXIF orientations 5-8 swap width and height.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from faceyolo.errors import FaceyoloError
from faceyolo.images import IMAGE_SUFFIXES, is_image_file

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8}
_EXIF_ORIENTATION_TAG = 0x0112
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Return (width, height) in pixels as `cv2.imread` would load the image (EXIF orientation applied).

    Raises FaceyoloError naming the file when it is missing, empty or cannot be read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = _header_size(f, path)
    except OSError as err:
        raise FaceyoloError(f"{path}: cannot read image ({err.strerror})") from None
    return size or _decoded_size(path)


def _header_size(f, path: Path) -> tuple[int, int] | None:
    """Return (width, height) from a JPEG, PNG or BMP header, or None for another format."""
    head = f.read(32)
    if not head:
        raise FaceyoloError(f"{path}: cannot read image (0 bytes)")
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(f, path)
    if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return _checked(path, width, height)
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return _checked(path, width, abs(height))
    return None


def _jpeg_ends(f) -> bool:
    """Return False for a JPEG whose last KiB has no end-of-image marker (a truncated download or copy)."""
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 1024))
    return b"\xff\xd9" in f.read()


def _checked(path: Path, width: int, height: int) -> tuple[int, int]:
    if width <= 0 or height <= 0:
        raise FaceyoloError(f"{path}: cannot read image (header says {width}x{height})")
    return width, height


def _jpeg_size(f, path: Path) -> tuple[int, int]:
    """Return (width, height) from the SOF segment, swapped when an EXIF segment says orientation 5-8."""
    f.seek(2)
    orientation = 1
    while True:
        prefix = f.read(1)
        if not prefix:
            break
        if prefix != b"\xff":
            raise FaceyoloError(f"{path}: cannot read image (bad JPEG header)")
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes before a marker
            marker = f.read(1)
        if not marker:
            break
        code = marker[0]
        if code in _JPEG_NO_LENGTH:
            continue
        raw_length = f.read(2)
        if len(raw_length) < 2:
            break
        length = struct.unpack(">H", raw_length)[0] - 2
        if code in _JPEG_SOF:
            segment = f.read(5)
            if len(segment) < 5:
                break
            height, width = struct.unpack(">HH", segment[1:5])
            if orientation in (5, 6, 7, 8):
                width, height = height, width
            return _checked(path, width, height)
        if code == 0xDA:  # start of scan before any frame header
            break
        if code == 0xE1 and length >= 14:
            segment = f.read(length)
            orientation = _exif_orientation(segment) or orientation
        else:
            f.seek(length, os.SEEK_CUR)
    raise FaceyoloError(f"{path}: cannot read image (no JPEG frame header)")


def _exif_orientation(segment: bytes) -> int | None:
    """Return the orientation tag of an APP1 Exif segment, or None when absent or malformed."""
    if segment[:6] != b"Exif\x00\x00":
        return None
    tiff = segment[6:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return None
    ifd = struct.unpack(order + "I", tiff[4:8])[0]
    if ifd + 2 > len(tiff):
        return None
    count = struct.unpack(order + "H", tiff[ifd : ifd + 2])[0]
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) < 12:
            return None
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == _EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
            return struct.unpack(order + "H", entry[8:10])[0]
    return None


def _decoded_size(path: Path) -> tuple[int, int]:
    """Return (width, height) by decoding with OpenCV: the fallback for formats without a parser here."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FaceyoloError(f"{path}: cannot decode image")
    return _checked(path, image.shape[1], image.shape[0])


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

    One open per file: the header gives the size, and a JPEG's tail must hold its end-of-image marker.
    """
    path = Path(path)
    if not is_image_file(path):
        return ImageCheck(None, "unsupported image type", f"{path}: extension not in {IMAGE_SUFFIXES}")
    try:
        with open(path, "rb") as f:
            size = _header_size(f, path)
            if size is not None and path.suffix.lower() in (".jpg", ".jpeg") and not _jpeg_ends(f):
                return ImageCheck(None, "truncated JPEG", f"{path}: no JPEG end-of-image marker")
        width, height = size or _decoded_size(path)
    except FileNotFoundError:
        return ImageCheck(None, "missing image file", f"{path}: no such file")
    except FaceyoloError as err:
        return ImageCheck(None, "unreadable image", str(err))
    except OSError as err:
        return ImageCheck(None, "unreadable image", f"{path}: {err.strerror}")
    if min(width, height) < MIN_IMAGE_SIDE:
        return ImageCheck(None, "image smaller than 10 px", f"{path}: {width}x{height} px")
    return ImageCheck((width, height))

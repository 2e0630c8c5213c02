"""What `faceyolo detect SOURCE` reads: an image, a folder (recursive), a glob, a video or a webcam index.

Iterating a `Source` yields `Frame`s (BGR images with an output name) and, for files that cannot be read
or are not images/videos, `SourceError`s, so the caller reports them by name and goes on.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.images import IMAGE_SUFFIXES, read_image

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".wmv", ".mpg", ".mpeg", ".webm"})


@dataclass
class Frame:
    """One image to detect on.

    name: output name relative to the run folder ("sub/x.jpg"; a video's frames share the video's name);
    source: the file it came from ("webcam0" for a webcam); image: BGR uint8 (H, W, 3);
    index: frame number in a video or stream (0 for a still image);
    fps: frames per second of a video or stream, None for a still image.
    """

    name: str
    source: str
    image: np.ndarray
    index: int = 0
    fps: float | None = None

    @property
    def is_video(self) -> bool:
        """Return True when the frame comes from a video or a webcam."""
        return self.fps is not None


@dataclass
class SourceError:
    """A file that was skipped: its name (as for Frame) and why."""

    name: str
    reason: str


def _glob_root(pattern: str) -> Path:
    """Return the folder before the first wildcard of a glob pattern."""
    parts = Path(pattern).parts
    fixed = parts[: next(i for i, part in enumerate(parts) if glob.has_magic(part))]
    return Path(*fixed) if fixed else Path(".")


def _video_frames(capture: cv2.VideoCapture, name: str, source: str) -> Iterator[Frame]:
    """Yield the frames of an opened capture until it ends; the capture is released afterwards."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield Frame(name=name, source=source, image=image, index=index, fps=fps)
            index += 1
    finally:
        capture.release()


class Source:
    """The frames behind a SOURCE string; `len()` is the number of files (0 for a webcam)."""

    def __init__(self, spec: str):
        self.spec = str(spec)
        is_index = self.spec.isdigit() and not Path(self.spec).exists()
        self.webcam: int | None = int(self.spec) if is_index else None
        self.files: list[tuple[Path, str]] = [] if self.webcam is not None else self._expand()

    def _expand(self) -> list[tuple[Path, str]]:
        """Return (path, output name) of every file the spec names, sorted; FaceyoloError if none."""
        path = Path(self.spec)
        if path.is_dir():
            relative = [(p, p.relative_to(path)) for p in sorted(path.rglob("*")) if p.is_file()]
            visible = [(p, rel) for p, rel in relative if not any(part.startswith(".") for part in rel.parts)]
            files = [(p, rel.as_posix()) for p, rel in visible]
            if not files:
                raise FaceyoloError(f"{self.spec}: the folder holds no files")
            return files
        if path.is_file():
            return [(path, path.name)]
        if glob.has_magic(self.spec):
            root = _glob_root(self.spec)
            files = [Path(p) for p in sorted(glob.glob(self.spec, recursive=True)) if Path(p).is_file()]
            if files:
                return [(p, p.relative_to(root).as_posix()) for p in files]
            raise FaceyoloError(f"{self.spec}: no files match")
        raise FaceyoloError(f"{self.spec}: no such file or folder")

    def __len__(self) -> int:
        return len(self.files)

    def frame_count(self) -> int | None:
        """Return how many frames iterating will give (videos as their header says); None for a webcam."""
        if self.webcam is not None:
            return None
        total = 0
        for path, _ in self.files:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                capture = cv2.VideoCapture(str(path))
                total += max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
                capture.release()
            else:
                total += 1
        return total

    def __iter__(self) -> Iterator[Frame | SourceError]:
        if self.webcam is not None:
            capture = cv2.VideoCapture(self.webcam)
            if not capture.isOpened():
                raise FaceyoloError(f"webcam {self.webcam}: cannot open it")
            yield from _video_frames(capture, f"webcam{self.webcam}.mp4", f"webcam{self.webcam}")
            return
        for path, name in self.files:
            yield from self._file_frames(path, name)

    @staticmethod
    def _file_frames(path: Path, name: str) -> Iterator[Frame | SourceError]:
        """Yield the frames of one file, or one SourceError when it cannot be read."""
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            try:
                yield Frame(name=name, source=str(path), image=read_image(path))
            except FaceyoloError as err:
                yield SourceError(name, str(err).removeprefix(f"{path}: "))
        elif suffix in VIDEO_SUFFIXES:
            capture = cv2.VideoCapture(str(path))
            if not capture.isOpened():
                yield SourceError(name, "cannot open video")
                return
            frames = 0
            for frame in _video_frames(capture, name, str(path)):
                frames += 1
                yield frame
            if frames == 0:
                yield SourceError(name, "cannot decode video (no frames)")
        else:
            yield SourceError(name, f"unsupported file type {suffix or '(no suffix)'!r}")

"""Video in and out through PyAV: decoded frames with their timestamps, and re-encoded video that keeps the
input's audio and subtitle streams (packets copied unchanged), rotation, frame count and timing.

`VideoInput` opens a file or a stream URL (rtsp://, http(s)://…) and yields `DecodedFrame`s turned upright by
the input's display rotation; with `copy_streams` it keeps the audio and subtitle packets it demuxes until a
`VideoOutput` takes them. `VideoOutput` encodes frames back at their input timestamps, turned back to the
stored orientation with the same rotation recorded, and muxes the kept packets beside them. A decode error
ends the input early with `VideoInput.error` set; the frames before it stay good.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.extras import VIDEO_INSTALL

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18  # x264/x265 constant quality: visually near-lossless, so only the faces change
COPIED_STREAM_TYPES = ("audio", "subtitle")
_CODEC_FOR_SUFFIX = {".webm": "libvpx-vp9"}  # containers that refuse H.264
_OPEN_TIMEOUT_S = 10.0


def is_url(spec: str) -> bool:
    """Return True when `spec` names a network stream rather than a file."""
    return spec.lower().startswith(URL_SCHEMES)


def _av():
    """Return the PyAV module, or raise FaceyoloError saying how to install it."""
    try:
        import av
    except ModuleNotFoundError:
        raise FaceyoloError(f"videos and streams need PyAV: {VIDEO_INSTALL}") from None
    return av


@dataclass
class DecodedFrame:
    """One decoded video frame: image BGR uint8 (H, W, 3), upright; index from 0; pts in the input stream's
    time_base (None when the input gives none); time in seconds from the stream start."""

    image: np.ndarray
    index: int
    pts: int | None
    time: float


class VideoInput:
    """An opened video file or stream; iterate it once for its `DecodedFrame`s.

    fps: the stream's average rate (30 when unknown); frame_count: from the header or duration (None for a
    live stream); rotation: degrees counter-clockwise the frames are turned to be upright; error: why
    decoding stopped before the end (None when it reached the end).
    """

    def __init__(self, source: str | os.PathLike, copy_streams: bool = False):
        av = _av()
        self.source = str(source)
        self.error: str | None = None
        self._av_error = av.FFmpegError
        try:
            self.container = av.open(self.source, timeout=_OPEN_TIMEOUT_S)
        except (av.FFmpegError, OSError) as err:
            raise FaceyoloError(f"{self.source}: cannot open video ({err})") from None
        if not self.container.streams.video:
            self.container.close()
            raise FaceyoloError(f"{self.source}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self.frame_count = self._header_frame_count()
        copied = [s for s in self.container.streams if s.type in COPIED_STREAM_TYPES]
        self.copied = copied if copy_streams else []
        self._packets: list = []
        self._frames = self._decode()
        self._first = next(self._frames, None)  # the rotation is known once a frame is decoded
        self.rotation = self._first_rotation

    def _header_frame_count(self) -> int | None:
        """Return the frame count the container states, or estimates from its duration; None if unknown."""
        if self.stream.frames:
            return int(self.stream.frames)
        duration = self._duration()
        return round(duration * self.fps) if duration else None

    def _duration(self) -> float | None:
        """Return the length in seconds the container states for the video (None when it states none)."""
        if self.stream.duration and self.stream.time_base:
            return float(self.stream.duration * self.stream.time_base)
        return self.container.duration / 1_000_000 if self.container.duration else None

    def _decode(self) -> Iterator[DecodedFrame]:
        """Yield the upright frames of the video stream, keeping the copied streams' packets on the way."""
        self._first_rotation = 0
        index, seconds = 0, 0.0
        time_base, start = self.stream.time_base, self.stream.start_time or 0
        try:
            for packet in self.container.demux([self.stream, *self.copied]):
                if packet.stream.index != self.stream.index:
                    if packet.dts is not None and packet.size:
                        self._packets.append(packet)
                    continue
                for frame in packet.decode():
                    if index == 0:
                        self._first_rotation = int(round(frame.rotation / 90)) * 90 % 360
                    image = np.rot90(frame.to_ndarray(format="bgr24"), self._first_rotation // 90)
                    seconds = float((frame.pts - start) * time_base) if frame.pts is not None and time_base \
                        else index / self.fps
                    yield DecodedFrame(np.ascontiguousarray(image), index, frame.pts, seconds)
                    index += 1
        except self._av_error as err:
            self.error = f"stopped after frame {index}: {err}"
        except OSError as err:  # a dropped network stream
            self.error = f"stream dropped after frame {index}: {err}"
        duration = self._duration()
        if self.error is None and duration and seconds + max(3 / self.fps, 0.5) < duration:
            self.error = f"truncated: ended after frame {index} at {seconds:.2f} s of {duration:.2f} s"

    def __iter__(self) -> Iterator[DecodedFrame]:
        try:
            if self._first is not None:
                yield self._first
                yield from self._frames
        finally:
            self.container.close()

    def take_packets(self) -> list:
        """Return the copied streams' packets demuxed since the last call (they are handed over once)."""
        packets, self._packets = self._packets, []
        return packets


def _temporary_path(path: Path) -> Path:
    """Return a hidden name beside `path` with its suffix, so the container format follows the suffix."""
    return path.with_name(f".{path.stem}.partial{path.suffix}")


class VideoOutput:
    """Encodes frames into a new video at `path` (written under a temporary name, renamed by `close`).

    With `like` (the VideoInput the frames come from) the output takes its timestamps, rotation and copies
    its audio and subtitle streams; without it frames are timed by their index at `fps`.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float,
                 like: VideoInput | None = None, codec: str | None = None, crf: int | None = DEFAULT_CRF):
        av = _av()
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.like = like
        self.rotation = like.rotation if like is not None else 0
        self._tmp = _temporary_path(self.path)
        codec = codec or _CODEC_FOR_SUFFIX.get(self.path.suffix.lower(), DEFAULT_CODEC)
        try:
            self.container = av.open(str(self._tmp), "w")
            self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(100_000))
        except (av.FFmpegError, ValueError) as err:
            raise FaceyoloError(f"{self.path}: cannot write video with codec {codec!r} ({err})") from None
        stored_w, stored_h = (height, width) if self.rotation in (90, 270) else (width, height)
        self.stream.width, self.stream.height = stored_w, stored_h
        self.stream.pix_fmt = "yuv420p" if stored_w % 2 == 0 and stored_h % 2 == 0 else "yuv444p"
        if crf is not None and codec in ("libx264", "libx265"):
            self.stream.options = {"crf": str(crf)}
        if like is not None:
            self.stream.time_base = like.stream.time_base
        self._time_base = self.stream.time_base or Fraction(1, 1000)
        if self.rotation:
            self.stream.set_display_rotation(self.rotation)
        copied = like.copied if like is not None else []
        self._copies = {s.index: self.container.add_stream_from_template(s) for s in copied}
        self._last_pts: int | None = None
        self._av = av

    def _pts(self, pts: int | None, seconds: float) -> int:
        """Return the output timestamp of a frame: its input pts, else its time; always increasing."""
        pts = pts if self.like is not None and pts is not None else round(seconds / self._time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def write(self, image: np.ndarray, pts: int | None, seconds: float) -> None:
        """Encode `image` (BGR uint8, upright) at an input frame's pts (or `seconds` from the start), after
        the packets copied so far."""
        self._mux_copied()
        stored = np.ascontiguousarray(np.rot90(image, -(self.rotation // 90)))
        video_frame = self._av.VideoFrame.from_ndarray(stored, format="bgr24")
        video_frame.pts, video_frame.time_base = self._pts(pts, seconds), self._time_base
        self.container.mux(self.stream.encode(video_frame))

    def _mux_copied(self) -> None:
        """Mux the audio and subtitle packets the input has demuxed, unchanged, into their copies."""
        if self.like is None:
            return
        for packet in self.like.take_packets():
            packet.stream = self._copies[packet.stream.index]
            self.container.mux(packet)

    def close(self) -> Path:
        """Return the finished video's path after flushing the encoder and renaming it into place."""
        try:
            self.container.mux(self.stream.encode(None))
            self._mux_copied()
        finally:
            self.container.close()
        os.replace(self._tmp, self.path)
        return self.path


class VideoFiles:
    """The output videos of a run, one open at a time (inputs arrive one after another): `write` opens a
    file's VideoOutput on its first frame and finishes the one before."""

    def __init__(self, codec: str | None = None, crf: int | None = DEFAULT_CRF):
        self.codec, self.crf = codec, crf
        self.current: VideoOutput | None = None

    def write(self, path: Path, image: np.ndarray, pts: int | None, seconds: float, fps: float,
              like: VideoInput | None) -> None:
        """Append `image` (BGR uint8, upright) to the video at `path`, opening it if it is a new one."""
        if self.current is None or self.current.path != path:
            self.close()
            h, w = image.shape[:2]
            self.current = VideoOutput(path, w, h, fps, like=like, codec=self.codec, crf=self.crf)
        self.current.write(image, pts, seconds)

    def close(self) -> None:
        """Finish the open video, if any."""
        if self.current is not None:
            current, self.current = self.current, None
            current.close()

"""Synthetic video scenes for the tracking and blur tests (and benchmarks/video.py): face sprites moving on
known paths over a fixed background, crossing, leaving and re-entering, with frames in which a face's
detection score is made to drop (to a low score, or to no detection at all).

`Scene.detections(k)` is what a detector scripted by the scene finds in frame k: the ground-truth box
jittered by a pixel, with the scripted score; `ScriptedDetector` is a FaceDetector that answers with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from faceyolo.inference.detector import FaceDetector
from faceyolo.inference.face import Face

LOW, MISSED = 0.3, 0.0  # scripted scores: below the 0.5 threshold but trackable; not detected at all


@dataclass
class FacePath:
    """One face: ground-truth id, sprite (h, w, 3) BGR, top-left corner per frame (None: off the picture),
    scripted score drops {frame: score}, and where the face lies in the sprite (x1, y1, x2, y2; None: all
    of it)."""

    face_id: int
    sprite: np.ndarray
    corners: list[tuple[float, float] | None]
    drops: dict[int, float] = field(default_factory=dict)
    face_in_sprite: tuple[float, float, float, float] | None = None

    def box(self, k: int, image_hw: tuple[int, int]) -> np.ndarray | None:
        """Return the face's box (4,) xyxy in frame k clipped to the picture, None when under half shows."""
        if self.corners[k] is None:
            return None
        h, w = self.sprite.shape[:2]
        x, y = self.corners[k]
        fx1, fy1, fx2, fy2 = self.face_in_sprite or (0, 0, w, h)
        full = np.array([x + fx1, y + fy1, x + fx2, y + fy2], dtype=np.float32)
        clipped = full.copy()
        clipped[[0, 2]] = clipped[[0, 2]].clip(0, image_hw[1])
        clipped[[1, 3]] = clipped[[1, 3]].clip(0, image_hw[0])
        area = lambda b: max(b[2] - b[0], 0) * max(b[3] - b[1], 0)  # noqa: E731
        return clipped if area(clipped) >= 0.5 * area(full) else None


@dataclass
class Scene:
    """A clip of `frames` frames of size (height, width) with its faces."""

    name: str
    height: int
    width: int
    frames: int
    faces: list[FacePath]
    fps: float = 10.0

    def ground_truth(self, k: int) -> list[tuple[int, np.ndarray]]:
        """Return (face id, box xyxy) of every face at least half in view in frame k."""
        hw = (self.height, self.width)
        return [(f.face_id, box) for f in self.faces if (box := f.box(k, hw)) is not None]

    def detections(self, k: int) -> list[Face]:
        """Return the scripted detections of frame k: boxes jittered by ≤ 1 pixel, score 0.9 or dropped."""
        rng = np.random.default_rng(1000 + k)
        found = []
        for face in self.faces:
            box = face.box(k, (self.height, self.width))
            score = face.drops.get(k, 0.9)
            if box is None or score <= 0:
                continue
            box = box + rng.uniform(-1, 1, 4).astype(np.float32)
            x1, y1, x2, y2 = box
            eyes_y, mouth_y = y1 + 0.4 * (y2 - y1), y1 + 0.75 * (y2 - y1)
            landmarks = np.array([[x1 + 0.3 * (x2 - x1), eyes_y], [x1 + 0.7 * (x2 - x1), eyes_y],
                                  [(x1 + x2) / 2, (eyes_y + mouth_y) / 2],
                                  [x1 + 0.35 * (x2 - x1), mouth_y], [x1 + 0.65 * (x2 - x1), mouth_y]])
            found.append(Face(box=box, score=score, landmarks=landmarks.astype(np.float32)))
        return found

    def render(self, k: int) -> np.ndarray:
        """Return frame k (H, W, 3) BGR uint8: the background with the faces pasted (clipped at the edges)."""
        image = background(self.height, self.width)
        for face in self.faces:
            if face.corners[k] is None:
                continue
            x, y = (int(round(v)) for v in face.corners[k])
            h, w = face.sprite.shape[:2]
            x1, y1, x2, y2 = max(x, 0), max(y, 0), min(x + w, self.width), min(y + h, self.height)
            if x2 > x1 and y2 > y1:
                image[y1:y2, x1:x2] = face.sprite[y1 - y:y2 - y, x1 - x:x2 - x]
        return image


def background(height: int, width: int) -> np.ndarray:
    """Return a fixed textured background (H, W, 3) BGR uint8: a colour gradient with soft noise."""
    rng = np.random.default_rng(7)
    gy, gx = np.mgrid[0:height, 0:width]
    base = np.stack([60 + 80 * gx / width, 90 + 60 * gy / height, 140 - 50 * gx / width], axis=-1)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (height, width, 3)), (0, 0), 3)
    return (base + noise).clip(0, 255).astype(np.uint8)


def textured_sprite(seed: int, size: tuple[int, int] = (48, 40)) -> np.ndarray:
    """Return a random textured patch (h, w, 3) BGR uint8 standing in for a face (scripted detectors)."""
    rng = np.random.default_rng(seed)
    patch = cv2.GaussianBlur(rng.integers(0, 256, (*size, 3)).astype(np.float32), (0, 0), 1.5)
    return (patch * 1.6 - 80).clip(30, 255).astype(np.uint8)


def face_crops(photo: np.ndarray, width: int, count: int = 2) -> tuple[list[np.ndarray], list[tuple]]:
    """Return the `count` most confident faces of a photo (default model) as sprites `width` px wide with a
    quarter-box margin, and where each face box lies in its sprite."""
    sprites, inside = [], []
    for face in FaceDetector.default(conf=0.3)(photo)[:count]:
        x1, y1, x2, y2 = face.box
        left, top = int(x1 - 0.25 * (x2 - x1)), int(y1 - 0.25 * (y2 - y1))
        right, bottom = int(x2 + 0.25 * (x2 - x1)), int(y2 + 0.25 * (y2 - y1))
        scale = width / (right - left)
        sprites.append(cv2.resize(photo[top:bottom, left:right], (width, round(scale * (bottom - top)))))
        inside.append(tuple(scale * np.array([x1 - left, y1 - top, x2 - left, y2 - top])))
    return sprites, inside


def line_path(start: tuple[float, float], velocity: tuple[float, float], frames: int) -> list:
    """Return the corners of a sprite moving at constant velocity (pixels per frame) from `start`."""
    return [(start[0] + k * velocity[0], start[1] + k * velocity[1]) for k in range(frames)]


def crossing_scene(sprites: list[np.ndarray], frames: int = 40,
                   faces_in_sprites: list | None = None) -> Scene:
    """Return two faces crossing each other horizontally (boxes overlapping as they pass), with drops."""
    width = 320
    inside = faces_in_sprites or [None, None]
    a = FacePath(1, sprites[0], line_path((10, 50), (6.5, 0.5), frames), {8: LOW, 9: LOW, 18: MISSED},
                 inside[0])
    b = FacePath(2, sprites[1], line_path((width - 10 - sprites[1].shape[1], 80), (-6.5, -0.3), frames),
                 {14: MISSED, 15: MISSED, 22: LOW}, inside[1])
    return Scene("crossing", 192, width, frames, [a, b])


def reentry_scene(sprites: list[np.ndarray], frames: int = 40) -> Scene:
    """Return a face that walks out at the right edge and comes back, and one that stays, with drops."""
    width = 320
    out_and_back = [(200 + 14 * k, 40) for k in range(12)] + [None] * 8
    out_and_back += [(width - 14 * (k + 1), 60) for k in range(frames - len(out_and_back))]
    c = FacePath(3, sprites[0], out_and_back, {5: MISSED, 26: LOW, 27: MISSED})
    d = FacePath(4, sprites[1], line_path((40, 110), (1.5, -0.5), frames), {12: MISSED, 13: MISSED, 30: LOW})
    return Scene("reentry", 192, width, frames, [c, d])


class ScriptedDetector(FaceDetector):
    """A FaceDetector that finds, on its n-th call for one image, the scene's scripted detections of frame
    n × stride (no network): the detections are fixed, so tracking is what is measured."""

    def __init__(self, scene: Scene, conf: float = 0.5, stride: int = 1):
        super().__init__(backend=None, conf=conf)
        self.scene, self.stride, self.calls = scene, stride, 0

    def detect_rgb(self, images_rgb, conf: float | None = None) -> list[list[Face]]:
        threshold = self.conf if conf is None else conf
        results = []
        for _ in images_rgb:
            frame = self.calls * self.stride
            results.append([f for f in self.scene.detections(frame) if f.score >= threshold])
            self.calls += 1
        return results


def write_clip(path: Path, scene: Scene, audio: bool = True, subtitle: bool = False, rotation: int = 0,
               render: Callable[[int], np.ndarray] | None = None) -> None:
    """Write the scene as an H.264 video with PyAV: optionally a sine AAC audio track, one subtitle and a
    display rotation (frames stored turned back by it, so the upright picture is the scene's)."""
    import av

    render = render or scene.render
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(scene.fps).limit_denominator(1000))
        h, w = (scene.width, scene.height) if rotation in (90, 270) else (scene.height, scene.width)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"crf": "12"}
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=16000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        text = out.add_mux_stream("subrip") if subtitle else None
        for k in range(scene.frames):
            stored = np.ascontiguousarray(np.rot90(render(k), -(rotation // 90)))
            frame = av.VideoFrame.from_ndarray(stored, format="bgr24")
            frame.pts = k
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            samples = int(16000 * scene.frames / scene.fps)
            tone = np.sin(2 * np.pi * 440 * np.arange(samples) / 16000).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
        if text is not None:
            packet = av.Packet(b"a face walks by")
            packet.stream, packet.pts, packet.dts, packet.duration = text, 0, 0, 1000
            packet.time_base = Fraction(1, 1000)
            out.mux(packet)


def packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    """Return (pts, payload) of every non-empty packet of the streams of type `kind` ("audio", …)."""
    import av

    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        return [(p.pts, bytes(p)) for p in container.demux(streams) if p.size] if streams else []


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Return every frame of a video, upright, BGR."""
    from faceyolo.inference.video import VideoInput

    return [frame.image for frame in VideoInput(path)]


def hidden_share(hidden: np.ndarray, box: np.ndarray) -> float:
    """Return the share of box xyxy (4,) covered by the True pixels of hidden (H, W) bool."""
    x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
    x2, y2 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    region = hidden[max(y1, 0):y2, max(x1, 0):x2]
    return float(region.mean()) if region.size else 1.0


def leak_share(scene: Scene, hidden_masks: list[np.ndarray], min_hidden: float = 0.9) -> float:
    """Return the share of ground-truth face-frames with under `min_hidden` of the face box hidden."""
    total = leaked = 0
    for k, hidden in enumerate(hidden_masks):
        for _, box in scene.ground_truth(k):
            total += 1
            leaked += hidden_share(hidden, box) < min_hidden
    return leaked / total

"""`faceyolo detect`: run a FaceDetector over a SOURCE and write the results under runs/detect/<name>/.

Per still image: the annotated image (same relative name), and with options `<stem>.json`
{"image", "width", "height", "faces": [{"box": [x1, y1, x2, y2], "score", "landmarks": [[x, y] × 5]}]},
face crops under crops/ and 112×112 aligned chips under aligned/. Per video, stream or webcam: an annotated
.mp4 and, with --json, one `<stem>.json` {"video", "fps", "frames": [{"frame", "time", "width", "height",
"faces"}]}; with `track` every face also has its "track_id". Files that cannot be read are reported by name
and skipped; the rest still runs. `process_source` is the loop `faceyolo blur` shares.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_bytes, atomic_write_json, atomic_write_text, new_run_dir
from faceyolo.inference.align import align_face
from faceyolo.inference.detector import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, FaceDetector
from faceyolo.inference.draw import draw_faces
from faceyolo.inference.face import Face
from faceyolo.inference.sources import Frame, Source, SourceError
from faceyolo.inference.track import FaceTracker, TrackedFrame
from faceyolo.inference.video import VideoFiles


@dataclass
class RunSummary:
    """What a detect or blur run did: counts, skipped files (name, reason), time and where the results are.

    faces_word names what was counted ("faces", "faces hidden").
    """

    run_dir: Path
    images: int = 0
    video_frames: int = 0
    faces: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    faces_word: str = "faces"

    def line(self) -> str:
        """Return the one-line summary printed at the end of a run."""
        frames = self.images + self.video_frames
        rate = f" ({1000 * self.seconds / frames:.1f} ms per frame, {frames / self.seconds:.1f} frames/s)" \
            if frames and self.seconds > 0 else ""
        return (
            f"{self.images} images, {self.video_frames} video frames, {self.faces} {self.faces_word}, "
            f"{len(self.skipped)} skipped in {self.seconds:.1f} s{rate}; results in {self.run_dir}"
        )


class VideoTracking:
    """The trackers of a run: each video or stream gets a new FaceTracker on its first frame."""

    def __init__(self, detector: FaceDetector):
        self.detector = detector
        self.tracker: FaceTracker | None = None
        self.video: str | None = None

    def step(self, frame: Frame, detect: bool = True) -> TrackedFrame:
        """Return the tracked faces of a video frame (`detect` False: the tracks' predictions only)."""
        if self.tracker is None or frame.name != self.video or frame.index == 0:
            self.tracker, self.video = self.detector.tracker(), frame.name
        return self.detector.track_frame(frame.image, self.tracker, detect=detect)


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """Return `image` encoded in the format of `suffix` (JPEG when OpenCV cannot write that format)."""
    ok, data = cv2.imencode(suffix, image)
    if not ok:
        ok, data = cv2.imencode(".jpg", image)
    return data.tobytes()


def _crop(image: np.ndarray, face: Face) -> np.ndarray | None:
    """Return the pixels inside face.box (rounded outwards, clipped), or None when the box is empty."""
    h, w = image.shape[:2]
    x1, y1 = max(int(np.floor(face.box[0])), 0), max(int(np.floor(face.box[1])), 0)
    x2, y2 = min(int(np.ceil(face.box[2])), w), min(int(np.ceil(face.box[3])), h)
    return image[y1:y2, x1:x2] if x2 > x1 and y2 > y1 else None


def _faces_record(frame: Frame, faces: list[Face]) -> dict:
    """Return the JSON record of one frame: size and faces (each with its track_id when tracked)."""
    h, w = frame.image.shape[:2]
    return {"width": w, "height": h, "faces": [face.to_dict() for face in faces]}


class _Outputs:
    """Writes everything a run produces into its folder; video writers stay open until `close`."""

    def __init__(self, run_dir: Path, save_json: bool, save_crops: bool, save_aligned: bool):
        self.run_dir = run_dir
        self.save_json, self.save_crops, self.save_aligned = save_json, save_crops, save_aligned
        self.videos = VideoFiles()
        self.video_records: dict[str, dict] = {}

    def write(self, frame: Frame, faces: list[Face]) -> None:
        """Write the annotated frame and the requested extras."""
        annotated = draw_faces(frame.image, faces)
        stem = Path(frame.name).with_suffix("").as_posix()
        if frame.is_video:
            self._write_video_frame(frame, annotated, faces)
            stem = f"{stem}_{frame.index:06d}"
        else:
            atomic_write_bytes(self.run_dir / frame.name, encode_image(annotated, Path(frame.name).suffix))
            if self.save_json:
                record = {"image": frame.source, **_faces_record(frame, faces)}
                atomic_write_json(self.run_dir / f"{stem}.json", record)
        for k, face in enumerate(faces):
            if self.save_crops and (crop := _crop(frame.image, face)) is not None:
                atomic_write_bytes(self.run_dir / "crops" / f"{stem}_{k}.jpg", encode_image(crop, ".jpg"))
            if self.save_aligned:
                try:
                    chip = align_face(frame.image, face.landmarks)
                except FaceyoloError as err:
                    tqdm.write(f"{frame.name}: face {k} not aligned ({err})", file=sys.stderr)
                    continue
                atomic_write_bytes(self.run_dir / "aligned" / f"{stem}_{k}.jpg", encode_image(chip, ".jpg"))

    def _write_video_frame(self, frame: Frame, annotated: np.ndarray, faces: list[Face]) -> None:
        """Append the annotated frame to its (silent) .mp4 and remember its faces for the JSON."""
        path = self.run_dir / Path(frame.name).with_suffix(".mp4")
        self.videos.write(path, annotated, None, frame.time, frame.fps, like=None)
        if self.save_json:
            record = self.video_records.setdefault(frame.name, {"video": frame.source, "fps": frame.fps,
                                                                "frames": []})
            record["frames"].append({"frame": frame.index, "time": round(frame.time, 4),
                                     **_faces_record(frame, faces)})

    def close(self) -> None:
        """Finish the videos and write their JSON files."""
        self.videos.close()
        for name, record in self.video_records.items():
            atomic_write_json(self.run_dir / Path(name).with_suffix(".json"), record)


def process_source(frames: Source, handle: Callable[[Frame], int | None], summary: RunSummary,
                   close: Callable[[], None], progress: bool = True) -> RunSummary:
    """Return `summary` after `handle(frame)` (→ faces counted, None for a frame left out) ran on every
    frame of `frames`, with a progress bar; unreadable files are reported on stderr and listed as skipped.

    `close` runs at the end, also after an error, so the outputs done so far are kept.
    """
    start = time.perf_counter()
    try:
        with tqdm(total=frames.frame_count(), unit="frame", disable=not progress, file=sys.stderr) as bar:
            for item in frames:
                if isinstance(item, SourceError):
                    summary.skipped.append((item.name, item.reason))
                    tqdm.write(f"skipped {item.name}: {item.reason}", file=sys.stderr)
                    bar.update()
                    continue
                try:
                    faces = handle(item)
                except OSError as err:
                    where = summary.run_dir / item.name
                    raise FaceyoloError(f"{where}: cannot write results ({err})") from err
                bar.update()
                if faces is None:
                    continue
                summary.faces += faces
                summary.video_frames += item.is_video
                summary.images += not item.is_video
    finally:
        close()
        summary.seconds = time.perf_counter() - start
    return summary


def run_detect(
    source: str,
    weights: str | os.PathLike | None = None,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    img_size: int | None = None,
    device: str = "cpu",
    half: bool = False,
    max_det: int | None = DEFAULT_MAX_DET,
    save_json: bool = False,
    save_crops: bool = False,
    save_aligned: bool = False,
    track: bool = False,
    vid_stride: int = 1,
    project: str | os.PathLike = "runs/detect",
    name: str = "exp",
    progress: bool = True,
) -> RunSummary:
    """Return the summary of detecting faces in every frame of `source`, written to a new run folder.

    `weights` None uses the packaged default model. `track` gives the faces of videos and streams track
    IDs; `vid_stride` N keeps only every N-th frame of them. Unreadable files are reported and skipped.
    """
    if vid_stride < 1:
        raise FaceyoloError(f"--vid-stride must be 1 or more, got {vid_stride}")
    frames = Source(source)
    detector = FaceDetector.from_file(weights, device=device, conf=conf, iou=iou, img_size=img_size,
                                      half=half, max_det=max_det)
    run_dir = new_run_dir(project, name)
    settings = {"source": str(source), "weights": str(weights) if weights else "default", "conf": conf,
                "iou": iou, "img_size": detector.img_size, "device": device, "half": half, "max_det": max_det,
                "track": track, "vid_stride": vid_stride}
    atomic_write_text(run_dir / "args.yaml", yaml.safe_dump(settings, sort_keys=False))
    outputs = _Outputs(run_dir, save_json, save_crops, save_aligned)
    tracking = VideoTracking(detector)

    def handle(frame: Frame) -> int | None:
        if frame.is_video and frame.index % vid_stride:
            return None
        faces = tracking.step(frame).faces if track and frame.is_video else detector(frame.image)
        outputs.write(frame, faces)
        return len(faces)

    return process_source(frames, handle, RunSummary(run_dir), outputs.close, progress)

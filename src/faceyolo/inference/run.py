"""`faceyolo detect`: run a FaceDetector over a SOURCE and write the results under runs/detect/<name>/.

Per still image: the annotated image (same relative name), and with options `<stem>.json`
{"image", "width", "height", "faces": [{"box": [x1, y1, x2, y2], "score", "landmarks": [[x, y] × 5]}]},
face crops under crops/ and 112×112 aligned chips under aligned/. Per video or webcam: an annotated .mp4
and, with --json, one `<stem>.json` {"video", "fps", "frames": [{"frame", "width", "height", "faces"}]}.
Files that cannot be read are reported by name and skipped; the rest still runs.
"""

from __future__ import annotations

import os
import sys
import time
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


@dataclass
class DetectSummary:
    """What a detect run did: counts, skipped files (name, reason), time and where the results are."""

    run_dir: Path
    images: int = 0
    video_frames: int = 0
    faces: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        """Return the one-line summary printed at the end of a run."""
        frames = self.images + self.video_frames
        per_frame = f" ({1000 * self.seconds / frames:.1f} ms per frame)" if frames else ""
        return (
            f"{self.images} images, {self.video_frames} video frames, {self.faces} faces, "
            f"{len(self.skipped)} skipped in {self.seconds:.1f} s{per_frame}; results in {self.run_dir}"
        )


def _encode_image(image: np.ndarray, suffix: str) -> bytes:
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
    """Return the JSON record of one frame: size and faces."""
    h, w = frame.image.shape[:2]
    return {"width": w, "height": h, "faces": [face.to_dict() for face in faces]}


class _Outputs:
    """Writes everything a run produces into its folder; video writers stay open until `close`."""

    def __init__(self, run_dir: Path, save_json: bool, save_crops: bool, save_aligned: bool):
        self.run_dir = run_dir
        self.save_json, self.save_crops, self.save_aligned = save_json, save_crops, save_aligned
        self.writers: dict[str, cv2.VideoWriter] = {}
        self.video_records: dict[str, dict] = {}

    def write(self, frame: Frame, faces: list[Face]) -> None:
        """Write the annotated frame and the requested extras."""
        annotated = draw_faces(frame.image, faces)
        stem = Path(frame.name).with_suffix("").as_posix()
        if frame.is_video:
            self._write_video_frame(frame, annotated, faces)
            stem = f"{stem}_{frame.index:06d}"
        else:
            atomic_write_bytes(self.run_dir / frame.name, _encode_image(annotated, Path(frame.name).suffix))
            if self.save_json:
                record = {"image": frame.source, **_faces_record(frame, faces)}
                atomic_write_json(self.run_dir / f"{stem}.json", record)
        for k, face in enumerate(faces):
            if self.save_crops and (crop := _crop(frame.image, face)) is not None:
                atomic_write_bytes(self.run_dir / "crops" / f"{stem}_{k}.jpg", _encode_image(crop, ".jpg"))
            if self.save_aligned:
                try:
                    chip = align_face(frame.image, face.landmarks)
                except FaceyoloError as err:
                    tqdm.write(f"{frame.name}: face {k} not aligned ({err})", file=sys.stderr)
                    continue
                atomic_write_bytes(self.run_dir / "aligned" / f"{stem}_{k}.jpg", _encode_image(chip, ".jpg"))

    def _write_video_frame(self, frame: Frame, annotated: np.ndarray, faces: list[Face]) -> None:
        """Append the annotated frame to its video (opened on its first frame) and remember its faces."""
        path = self.run_dir / Path(frame.name).with_suffix(".mp4")
        if frame.name not in self.writers:
            path.parent.mkdir(parents=True, exist_ok=True)
            h, w = annotated.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self.writers[frame.name] = cv2.VideoWriter(str(path), fourcc, frame.fps, (w, h))
            self.video_records[frame.name] = {"video": frame.source, "fps": frame.fps, "frames": []}
        self.writers[frame.name].write(annotated)
        if self.save_json:
            record = {"frame": frame.index, **_faces_record(frame, faces)}
            self.video_records[frame.name]["frames"].append(record)

    def close(self) -> None:
        """Finish the videos and write their JSON files."""
        for name, writer in self.writers.items():
            writer.release()
            if self.save_json:
                atomic_write_json(self.run_dir / Path(name).with_suffix(".json"), self.video_records[name])


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
    project: str | os.PathLike = "runs/detect",
    name: str = "exp",
    progress: bool = True,
) -> DetectSummary:
    """Return the summary of detecting faces in every frame of `source`, written to a new run folder.

    `weights` None uses the packaged default model. Unreadable files are reported on stderr and skipped.
    """
    frames = Source(source)
    detector = FaceDetector.from_file(weights, device=device, conf=conf, iou=iou, img_size=img_size,
                                      half=half, max_det=max_det)
    run_dir = new_run_dir(project, name)
    settings = {"source": str(source), "weights": str(weights) if weights else "default", "conf": conf,
                "iou": iou, "img_size": detector.img_size, "device": device, "half": half, "max_det": max_det}
    atomic_write_text(run_dir / "args.yaml", yaml.safe_dump(settings, sort_keys=False))
    summary = DetectSummary(run_dir=run_dir)
    outputs = _Outputs(run_dir, save_json, save_crops, save_aligned)
    start = time.perf_counter()
    try:
        with tqdm(total=frames.frame_count(), unit="frame", disable=not progress, file=sys.stderr) as bar:
            for item in frames:
                if isinstance(item, SourceError):
                    summary.skipped.append((item.name, item.reason))
                    tqdm.write(f"skipped {item.name}: {item.reason}", file=sys.stderr)
                    bar.update()
                    continue
                faces = detector(item.image)
                try:
                    outputs.write(item, faces)
                except OSError as err:
                    raise FaceyoloError(f"{run_dir / item.name}: cannot write results ({err})") from err
                summary.faces += len(faces)
                summary.video_frames += item.is_video
                summary.images += not item.is_video
                bar.update()
    finally:
        outputs.close()
        summary.seconds = time.perf_counter() - start
    return summary

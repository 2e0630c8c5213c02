"""`faceyolo blur`: hide every face of a SOURCE and write the results under runs/blur/<name>/.

Still images are written under their own relative name. Videos and streams are re-encoded through PyAV
with the input's container, timestamps, rotation and its audio and subtitle streams copied unchanged. On
video the faces hidden in a frame are all those the tracker places there — detected, or predicted for a
face the detector missed in that frame — so a face is not shown for the frame or two its score drops;
`tracking` False hides the per-frame detections only.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_bytes, atomic_write_text, new_run_dir
from faceyolo.inference.blur import DEFAULT_MASK_SCALE, anonymise, check_method
from faceyolo.inference.detector import DEFAULT_CONF, DEFAULT_IOU, DEFAULT_MAX_DET, FaceDetector
from faceyolo.inference.face import Face
from faceyolo.inference.run import RunSummary, VideoTracking, encode_image, process_source
from faceyolo.inference.sources import Frame, Source
from faceyolo.inference.video import DEFAULT_CRF, VideoFiles


class FrameBlurrer:
    """Returns each frame with its faces hidden: still images by their detections, video frames by their
    tracks (or by their detections alone when `tracking` is False); `vid_stride` N detects on every N-th
    video frame only, the frames between hidden at the tracks' predicted boxes (or the last detections)."""

    def __init__(self, detector: FaceDetector, method: str = "gaussian",
                 mask_scale: float = DEFAULT_MASK_SCALE, tracking: bool = True, vid_stride: int = 1):
        check_method(method, mask_scale)
        if vid_stride < 1:
            raise FaceyoloError(f"--vid-stride must be 1 or more, got {vid_stride}")
        self.detector, self.method, self.mask_scale = detector, method, mask_scale
        self.tracking, self.vid_stride = tracking, vid_stride
        self._video_tracks = VideoTracking(detector)
        self._last_faces: list[Face] = []

    def faces(self, frame: Frame) -> list[Face]:
        """Return the faces to hide in `frame`."""
        detect = not frame.is_video or frame.index % self.vid_stride == 0
        if frame.is_video and self.tracking:
            return self._video_tracks.step(frame, detect=detect).all_faces
        if detect:
            self._last_faces = self.detector(frame.image)
        return self._last_faces

    def __call__(self, frame: Frame) -> tuple:
        """Return (the frame's image with its faces hidden, the faces hidden)."""
        faces = self.faces(frame)
        return anonymise(frame.image, faces, self.method, self.mask_scale), faces


def run_blur(
    source: str,
    weights: str | os.PathLike | None = None,
    method: str = "gaussian",
    mask_scale: float = DEFAULT_MASK_SCALE,
    conf: float = DEFAULT_CONF,
    iou: float = DEFAULT_IOU,
    img_size: int | None = None,
    device: str = "cpu",
    half: bool = False,
    max_det: int | None = DEFAULT_MAX_DET,
    tracking: bool = True,
    vid_stride: int = 1,
    codec: str | None = None,
    crf: int | None = DEFAULT_CRF,
    project: str | os.PathLike = "runs/blur",
    name: str = "exp",
    progress: bool = True,
    detector: FaceDetector | None = None,
) -> RunSummary:
    """Return the summary of hiding the faces of every frame of `source`, written to a new run folder.

    `weights` None uses the packaged default model (`detector` given: that one instead). `codec` None:
    H.264 (VP9 for .webm); `crf` its constant quality. Unreadable files are reported and skipped; a video
    that stops early keeps the frames done.
    """
    check_method(method, mask_scale)
    frames = Source(source, copy_streams=True)
    if detector is None:
        detector = FaceDetector.from_file(weights, device=device, conf=conf, iou=iou, img_size=img_size,
                                          half=half, max_det=max_det)
    blurrer = FrameBlurrer(detector, method, mask_scale, tracking, vid_stride)
    run_dir = new_run_dir(project, name)
    settings = {"source": str(source), "weights": str(weights) if weights else "default", "method": method,
                "mask_scale": mask_scale, "conf": detector.conf, "iou": detector.iou,
                "img_size": detector.img_size, "tracking": tracking, "vid_stride": vid_stride,
                "codec": codec or "default", "crf": crf}
    atomic_write_text(run_dir / "args.yaml", yaml.safe_dump(settings, sort_keys=False))
    videos = VideoFiles(codec=codec, crf=crf)

    def handle(frame: Frame) -> int:
        hidden, faces = blurrer(frame)
        if frame.is_video:
            path = run_dir / frame.name
            videos.write(path, hidden, frame.pts, frame.time, frame.fps, like=frame.video)
        else:
            atomic_write_bytes(run_dir / frame.name, encode_image(hidden, Path(frame.name).suffix))
        return len(faces)

    return process_source(frames, handle, RunSummary(run_dir, faces_word="faces hidden"), videos.close,
                          progress)

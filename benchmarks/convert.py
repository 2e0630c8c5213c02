"""Print how fast `faceyolo convert widerface` is, per 10,000 faces.

Usage: python benchmarks/convert.py [--shared ../shared] [--repeats 2]
Runs (see ../shared/README.md; the 12,880-image train annotations are not available here):
1. placeholders: `wider_face_val_bbx_gt.txt` (3,226 images, 39,708 faces) with every image present as a
   1024x1024 JPEG placeholder in a temp folder: the whole file converts, no image is missing;
2. shared: the same annotations over `data/widerface/train_pool/images` (1,025 real images, 2,201 missing).
Image sizes come from file headers (Pillow's lazy open, faceyolo.data.imageinfo), never a decode.
The figure is the best of `--repeats` runs (the first one also warms the file cache); the train split
(12,880 images, ~159k faces) is extrapolated from the placeholder run's time per face. Wall and CPU time
are both printed: on a shared, loaded machine the wall time mostly measures waiting for a core.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from faceyolo.data.convert import convert_widerface
from faceyolo.data.widerface import read_annotations

REPO = Path(__file__).resolve().parents[1]
TRAIN_FACES = 159_424  # faces in wider_face_train_bbx_gt.txt (SPEC §1.1: about 159k)


def make_placeholders(annotation: Path, folder: Path) -> int:
    """Return the number of placeholder JPEGs written under `folder`, one per image of the annotation file."""
    ok, encoded = cv2.imencode(".jpg", np.full((1024, 1024, 3), 128, np.uint8))
    assert ok
    _, records = read_annotations(annotation)
    for record in records:
        path = folder / record.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded.tobytes())
    return len(records)


def best_run(images: Path, annotation: Path, work: Path, repeats: int):
    """Return (best wall seconds, its CPU seconds, its report) of `repeats` conversions into new folders."""
    best = None
    for k in range(repeats):
        out = work / f"out{k}"
        start, cpu = time.perf_counter(), time.process_time()
        report = convert_widerface(images, annotation, out, progress=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        shutil.rmtree(out)
        if best is None or seconds < best[0]:
            best = (seconds, cpu, report)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared folder")
    parser.add_argument("--repeats", type=int, default=2, help="runs per case; the best is printed")
    args = parser.parse_args()
    wider = args.shared / "data" / "widerface"
    annotation = wider / "wider_face_split" / "wider_face_val_bbx_gt.txt"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        count = make_placeholders(annotation, work / "images")
        cases = {"placeholders": work / "images", "shared train_pool": wider / "train_pool" / "images"}
        per_face = None
        for name, images in cases.items():
            seconds, cpu, report = best_run(images, annotation, work, args.repeats)
            per_face = per_face or (seconds / report.faces_total, cpu / report.faces_total)
            print(
                f"{name:>18}: {report.images_total:,} images ({report.images_written:,} written, "
                f"{sum(report.skipped_images.values()):,} skipped), {report.faces_total:,} faces in "
                f"{seconds:.2f} s wall / {cpu:.2f} s CPU = {seconds / report.faces_total * 1e4:.2f} s wall, "
                f"{cpu / report.faces_total * 1e4:.2f} s CPU per 10,000 faces (links: {report.link_mode})"
            )
        print(f"placeholders written: {count:,}")
        wall, cpu = (x * TRAIN_FACES for x in per_face)
        print(
            f"extrapolated train split (12,880 images, {TRAIN_FACES:,} faces): "
            f"{wall:.1f} s wall, {cpu:.1f} s CPU"
        )


if __name__ == "__main__":
    main()

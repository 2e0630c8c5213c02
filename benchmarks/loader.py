"""Print training samples per second of the data loader (mosaic at 640) with 0 and 2 worker processes.

Usage: python benchmarks/loader.py [--shared ../shared] [--batches 8] [--batch-size 16] [--workers 0 2]
The shared train images (`data/widerface/train_pool/images`, 1,025 real WIDER JPEGs) are converted with their
val bbx_gt annotations into a temp folder, then each loader runs one warm-up batch (worker start-up and the
label cache excluded) and `--batches` timed batches with hyp mosaic = 1.0 (every sample a 4-image mosaic,
random affine, HSV and flips). The machine may be shared with other jobs: quote the figures with that caveat.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from faceyolo.data.convert import convert_widerface
from faceyolo.data.loader import create_dataloader

REPO = Path(__file__).resolve().parents[1]


def samples_per_second(images: Path, workers: int, batches: int, batch_size: int, img_size: int) -> float:
    """Return samples per second over `batches` batches after one warm-up batch."""
    loader, _ = create_dataloader(
        images, img_size, batch_size, augment=True, hyp={"mosaic": 1.0}, workers=workers, seed=0
    )
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared folder")
    parser.add_argument("--batches", type=int, default=8, help="timed batches per set-up")
    parser.add_argument("--batch-size", type=int, default=16, help="samples per batch")
    parser.add_argument("--img-size", type=int, default=640, help="training image size")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="worker counts to time")
    args = parser.parse_args()
    wider = args.shared / "data" / "widerface"
    with tempfile.TemporaryDirectory() as tmp:
        report = convert_widerface(
            wider / "train_pool" / "images",
            wider / "wider_face_split" / "wider_face_val_bbx_gt.txt",
            tmp,
            progress=False,
        )
        images = Path(tmp) / "images" / report.split
        print(
            f"dataset: {report.images_written:,} images, {report.faces_kept:,} faces, mosaic 1.0 at "
            f"{args.img_size}, batch {args.batch_size}"
        )
        for workers in args.workers:
            rate = samples_per_second(images, workers, args.batches, args.batch_size, args.img_size)
            print(f"workers {workers}: {rate:.1f} samples/s")


if __name__ == "__main__":
    main()

"""Pack the default model's training set into packs small enough to travel to a lent GPU machine.

A device call carries at most 64 MiB of working tree, so the images of a data yaml (build_data.sh) are
written as JPEG copies at long side 640 (what training reads anyway), beside their unchanged label files
(labels are normalised): the train images into `OUT/pack<N>/{images,labels}/train/`, each pack under
--pack-mib, the val images (the holdout, ~5 MiB) into `OUT/val/`, carried with every pack. OUT must be
ignored by git (.git/info/exclude): the data is WIDER FACE and is never committed.
recipes/default/device.sh trains on whatever packs reached the machine.

    .venv/bin/python recipes/default/pack_device.py ~/datasets/wider_events.yaml --out .devdata
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from faceyolo.data.augment import resize_long_side
from faceyolo.data.config import image_files, load_data_config
from faceyolo.data.labels import label_path
from faceyolo.files import atomic_write_bytes


def encode(path: Path, long_side: int, quality: int) -> bytes | None:
    """Return the image shrunk to `long_side` (never enlarged) as JPEG bytes; None when it cannot be read."""
    image = cv2.imread(str(path))
    if image is None:
        return None
    if max(image.shape[:2]) > long_side:
        image = resize_long_side(image, long_side, shrink_with_area=True)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes() if ok else None


def pack(images: list[Path], out: Path, split: str, pack_bytes: int, long_side: int,
         quality: int) -> list[int]:
    """Write the images and their labels into folders `out`0, `out`1, ... of at most `pack_bytes` each (one
    folder when pack_bytes is 0); return the bytes in each."""
    sizes = [0]
    for image_path in tqdm(images, desc=f"packing {split}", unit="img"):
        data = encode(image_path, long_side, quality)
        if data is None:
            print(f"skipped {image_path}: not a readable image", file=sys.stderr)
            continue
        labels = label_path(image_path)
        label_bytes = labels.read_bytes() if labels.is_file() else b""
        if pack_bytes and sizes[-1] + len(data) + len(label_bytes) > pack_bytes:
            sizes.append(0)
        root = out.with_name(f"{out.name}{len(sizes) - 1}") if pack_bytes else out
        atomic_write_bytes(root / "images" / split / f"{image_path.stem}.jpg", data)
        atomic_write_bytes(root / "labels" / split / f"{image_path.stem}.txt", label_bytes)
        sizes[-1] += len(data) + len(label_bytes)
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="data yaml whose train and val images to pack")
    parser.add_argument("--out", type=Path, default=Path(".devdata"), help="folder of the packs (replaced)")
    parser.add_argument("--pack-mib", type=float, default=51.5,
                        help="most MiB per pack; a call carries 64 MiB: a pack, val/ and the repo's ~5 MiB "
                             "(default 51.5)")
    parser.add_argument("--long-side", type=int, default=640, help="long side of the copies (default 640)")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality of the copies (default 75)")
    args = parser.parse_args(argv)
    config = load_data_config(args.data)
    shutil.rmtree(args.out, ignore_errors=True)
    val = pack(image_files(config.val), args.out / "val", "val", 0, args.long_side, args.quality)
    train_images = image_files(config.train)
    sizes = pack(train_images, args.out / "pack", "train", int(args.pack_mib * 2**20), args.long_side,
                 args.quality)
    print(f"{len(train_images)} train images in {len(sizes)} packs under {args.out}: "
          + ", ".join(f"pack{i} {size / 2**20:.1f} MiB" for i, size in enumerate(sizes))
          + f"; val {val[0] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

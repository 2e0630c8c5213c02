"""The YOLO-face training/validation dataset (SPEC §5.1, §5.11, §5.12).

An item is `(image, labels, path, shapes)`:
* image: (3, H, W) uint8 RGB tensor (the trainer divides by 255);
* labels: (n, 16) float32 tensor `[batch_index, cls, cx, cy, w, h, x0, y0, ..., x4, y4]`, normalised to the
  network input (H, W); a missing landmark is -1; batch_index is 0 until `collate_fn` fills it;
* path: the image file, str;
* shapes: `((h0, w0), ((ratio_h, ratio_w), (pad_w, pad_h)))` mapping input pixels back to the original image
  (original = (input - pad) / ratio), or None for a mosaic sample, which has no single original.

Augmented items draw every random number from one Generator seeded with (seed, epoch, index), so a sample is
the same in any worker and under any start method. Index the dataset with `(index, epoch)` (as the loader's
sampler does) or set `dataset.epoch`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from faceyolo.data.augment import (
    Sample,
    augment_hsv,
    flip_lr,
    flip_ud,
    letterbox_sample,
    mosaic4,
    random_affine,
    resize_long_side,
)
from faceyolo.data.config import image_files
from faceyolo.data.labels import index_labels, label_path
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write
from faceyolo.geometry import xywh_to_xyxy, xyxy_to_xywh
from faceyolo.hyp import load_hyp
from faceyolo.images import read_image

LOG = logging.getLogger(__name__)
IMAGE_CACHES = (None, "ram", "disk")


class FaceDataset(Dataset):
    """Images and YOLO-face labels with the original's training augmentations; see the module docstring.

    paths: folders, image-list files or image files (a list of any). cache: None, "ram" (all images resized
    in memory) or "disk" (resized copies as .npy beside the label cache). rect: validation-style batches
    sorted by aspect ratio, each letterboxed to its own shape (SPEC §5.12); the dataset order changes.
    """

    def __init__(
        self,
        paths,
        img_size: int = 640,
        augment: bool = False,
        hyp: dict | None = None,
        rect: bool = False,
        batch_size: int = 16,
        stride: int = 32,
        pad: float = 0.0,
        cache: str | None = None,
        seed: int = 0,
        nc: int = 1,
        label_cache: bool = True,
        progress: bool = False,
    ):
        if cache not in IMAGE_CACHES:
            raise FaceyoloError(f"image cache must be one of {IMAGE_CACHES}, got {cache!r}")
        self.img_size, self.augment, self.rect, self.stride = img_size, augment, rect, stride
        self.hyp = load_hyp(hyp)
        self.mosaic = augment and not rect
        self.seed, self.epoch = seed, 0
        index = index_labels(image_files(paths), nc=nc, cache=label_cache, progress=progress)
        if not index.images:
            raise FaceyoloError(f"no usable images in {paths} ({index.summary()})")
        self.summary = index.summary()
        self.problems = index.problems
        self.image_files = [str(p) for p in index.images]
        self.labels = index.labels  # per image (n, 15) float32, normalised, landmarks -1 when missing
        self.sizes = index.sizes  # (N, 2) original (width, height)
        self.batch_shapes = self._sort_for_rect(batch_size, pad) if rect else None
        self._disk_cache = self._disk_cache_folder(index.cache_path) if cache == "disk" else None
        self._ram_cache = self._fill_ram_cache(progress) if cache == "ram" else None

    def __len__(self) -> int:
        return len(self.image_files)

    def __getitem__(self, item: int | tuple[int, int]):
        """Return (image (3, H, W) uint8 RGB, labels (n, 16), path, shapes) for `index` / `(index, epoch)`."""
        index, epoch = item if isinstance(item, tuple) else (item, self.epoch)
        rng = np.random.default_rng((self.seed, epoch, index))
        hyp = self.hyp
        if self.mosaic and rng.random() < hyp["mosaic"]:
            tiles = [self.load_sample(k) for k in (index, *rng.integers(0, len(self), 3).tolist())]
            sample = mosaic4(tiles, self.img_size, rng)
            border = -(self.img_size // 2)
            sample = self._random_affine(sample, rng, (border, border))
            shapes = None
        else:
            sample = self.load_sample(index)
            h, w = sample.image.shape[:2]
            w0, h0 = (int(v) for v in self.sizes[index])
            shape = tuple(self.batch_shapes[index]) if self.rect else self.img_size
            sample, ratio, pad = letterbox_sample(sample, shape, scaleup=self.augment, auto=False)
            shapes = ((h0, w0), ((h / h0 * ratio[1], w / w0 * ratio[0]), pad))
            if self.augment:
                sample = self._random_affine(sample, rng, (0, 0))
        if self.augment:
            sample = sample._replace(
                image=augment_hsv(sample.image, rng, hyp["hsv_h"], hyp["hsv_s"], hyp["hsv_v"])
            )
            if rng.random() < hyp["flipud"]:
                sample = flip_ud(sample)
            if rng.random() < hyp["fliplr"]:
                sample = flip_lr(sample)
        image = np.ascontiguousarray(sample.image[:, :, ::-1].transpose(2, 0, 1))
        return (
            torch.from_numpy(image),
            torch.from_numpy(normalised_labels(sample)),
            self.image_files[index],
            shapes,
        )

    def load_sample(self, index: int) -> Sample:
        """Return image `index` resized to long side img_size (SPEC §5.2) with its faces in its pixels."""
        image = self._load_resized(index)
        h, w = image.shape[:2]
        labels = self.labels[index]
        boxes = xywh_to_xyxy(labels[:, 1:5]) * np.array([w, h, w, h], np.float32)
        points = labels[:, 5:].reshape(-1, 5, 2)
        visible = (points > 0).all(axis=2)
        return Sample.of(image, boxes, points * np.array([w, h], np.float32), visible, labels[:, 0])

    @staticmethod
    def collate_fn(batch):
        """Return (images (B, 3, H, W) uint8, targets (n, 16), column 0 = index in batch, paths, shapes)."""
        images, labels, paths, shapes = zip(*batch, strict=True)
        for k, item in enumerate(labels):
            item[:, 0] = k
        return torch.stack(images), torch.cat(labels, 0), paths, shapes

    def _random_affine(self, sample: Sample, rng: np.random.Generator, border: tuple[int, int]) -> Sample:
        hyp = self.hyp
        return random_affine(
            sample,
            rng,
            hyp["degrees"],
            hyp["translate"],
            hyp["scale"],
            hyp["shear"],
            hyp["perspective"],
            border,
        )

    def _read(self, index: int) -> np.ndarray:
        image = read_image(self.image_files[index])
        return resize_long_side(image, self.img_size, shrink_with_area=not self.augment)

    def _load_resized(self, index: int) -> np.ndarray:
        if self._ram_cache is not None:
            return self._ram_cache[index]
        if self._disk_cache is None:
            return self._read(index)
        path = self._disk_cache / f"{_file_digest(self.image_files[index], self.img_size)}.npy"
        if path.is_file():
            try:
                return np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                pass  # a broken cache file is rebuilt below
        image = self._read(index)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, image)

        atomic_write(path, write)
        return image

    def _fill_ram_cache(self, progress: bool) -> list[np.ndarray]:
        images = [self._read(k) for k in tqdm(range(len(self)), desc="caching images", disable=not progress)]
        LOG.info("cached %d images in RAM (%.1f GB)", len(images), sum(x.nbytes for x in images) / 1e9)
        return images

    def _disk_cache_folder(self, label_cache: Path | None) -> Path | None:
        """Return the folder of resized .npy copies beside the label cache; None (logged) if unwritable."""
        base = label_cache or label_path(self.image_files[0]).parent.with_suffix(".cache.npz")
        folder = base.with_name(base.name.replace(".cache.npz", f".images{self.img_size}"))
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            LOG.warning("disk image cache disabled: cannot create %s (%s)", folder, err.strerror)
            return None
        return folder

    def _sort_for_rect(self, batch_size: int, pad: float) -> np.ndarray:
        """Return (N, 2) int (h, w) letterbox shapes per image, after sorting the images by aspect, §5.12."""
        aspect = self.sizes[:, 1] / self.sizes[:, 0]
        order = np.argsort(aspect, kind="stable")
        self.image_files = [self.image_files[k] for k in order]
        self.labels = [self.labels[k] for k in order]
        self.sizes = self.sizes[order]
        aspect = aspect[order]
        shapes = np.zeros((len(order), 2))
        for start in range(0, len(order), batch_size):
            batch = aspect[start : start + batch_size]
            low, high = batch.min(), batch.max()
            shapes[start : start + batch_size] = (
                [high, 1] if high < 1 else [1, 1 / low] if low > 1 else [1, 1]
            )
        return np.ceil(shapes * self.img_size / self.stride + pad).astype(np.int64) * self.stride


def normalised_labels(sample: Sample) -> np.ndarray:
    """Return (n, 16) float32 `[0, cls, cx, cy, w, h, x0, y0, ..., x4, y4]` normalised to the sample's image.

    Invisible landmarks are -1 (SPEC §5.9).
    """
    h, w = sample.image.shape[:2]
    n = len(sample.boxes)
    out = np.zeros((n, 16), np.float32)
    out[:, 1] = sample.classes
    out[:, 2:6] = xyxy_to_xywh(sample.boxes) / np.array([w, h, w, h], np.float32)
    points = sample.landmarks / np.array([w, h], np.float32)
    points[~sample.visible] = -1.0
    out[:, 6:] = points.reshape(n, 10)
    return out


def _file_digest(path: str, img_size: int) -> str:
    """Return a name for an image's cached copy that changes when the file or the size changes."""
    stat = os.stat(path)
    return hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{img_size}".encode()).hexdigest()[:20]

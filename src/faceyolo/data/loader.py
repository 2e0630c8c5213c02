"""A DataLoader that behaves the same everywhere: fork or spawn workers, deterministic under a seed.

* The sampler yields `(index, epoch)` pairs, so persistent workers (kept across epochs) still know the epoch
  and every sample draws its augmentation from (seed, epoch, index): workers = 0, 2 or 8, fork or spawn, give
  the same batches.
* Everything a worker receives is picklable (no lambdas, no open files), which the spawn start method used on
  Windows and macOS requires.
* A worker that dies (killed, out of memory) ends the epoch with a FaceyoloError saying so, and an error
  raised inside a worker reaches the caller as its own one-line message, not a nested traceback.
* Training shuffles by default (seeded per epoch); the original visited images in sorted order (SPEC §4.10).
"""

from __future__ import annotations

import multiprocessing
import os
import random
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from faceyolo.data.dataset import FaceDataset
from faceyolo.errors import FaceyoloError


class EpochSampler(Sampler):
    """Yields `(index, epoch)` for every index, shuffled per epoch from `seed` when `shuffle`."""

    def __init__(self, size: int, shuffle: bool = False, seed: int = 0):
        self.size, self.shuffle, self.seed, self.epoch = size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(self.size)
        return iter([(int(k), self.epoch) for k in order])

    def __len__(self) -> int:
        return self.size


class FaceLoader:
    """Batches of a dataset indexed by `(index, epoch)`; call `set_epoch(e)` before each epoch.

    Iterating yields what the dataset's collate function returns (for FaceDataset: images, targets, paths,
    shapes). Errors from workers are re-raised as FaceyoloError with a short message.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        workers: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        start_method: str | None = None,
        persistent_workers: bool = True,
        pin_memory: bool = False,
        collate_fn=FaceDataset.collate_fn,
    ):
        self.sampler = EpochSampler(len(dataset), shuffle, seed)
        workers = max(0, min(workers, os.cpu_count() or 1, batch_size if batch_size > 1 else 0))
        self.workers = workers
        context = multiprocessing.get_context(start_method) if workers and start_method else None
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate_fn,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and workers > 0,
            multiprocessing_context=context,
            worker_init_fn=seed_worker if workers else None,
            generator=torch.Generator().manual_seed(seed),
        )

    @property
    def dataset(self):
        return self.loader.dataset

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        try:
            yield from self.loader
        except FaceyoloError as err:
            raise FaceyoloError(_last_line(str(err))) from None
        except RuntimeError as err:
            if "DataLoader worker" in str(err):
                raise FaceyoloError(
                    f"a data loader worker died ({_last_line(str(err))}); if it ran out of memory, use fewer "
                    f"workers (--workers {max(0, self.workers // 2)}) or no image cache"
                ) from None
            raise


def create_dataloader(
    paths,
    img_size: int,
    batch_size: int,
    *,
    stride: int = 32,
    hyp: dict | None = None,
    augment: bool = False,
    rect: bool = False,
    pad: float = 0.0,
    cache: str | None = None,
    workers: int = 0,
    seed: int = 0,
    shuffle: bool | None = None,
    start_method: str | None = None,
    persistent_workers: bool = True,
    device: str | torch.device = "cpu",
    nc: int = 1,
    progress: bool = False,
) -> tuple[FaceLoader, FaceDataset]:
    """Return (loader, dataset) over YOLO-face images; see FaceDataset and FaceLoader for the arguments.

    shuffle defaults to `augment and not rect`. Memory is pinned when `device` is CUDA.
    """
    dataset = FaceDataset(
        paths,
        img_size=img_size,
        augment=augment,
        hyp=hyp,
        rect=rect,
        batch_size=batch_size,
        stride=stride,
        pad=pad,
        cache=cache,
        seed=seed,
        nc=nc,
        progress=progress,
    )
    shuffle = (augment and not rect) if shuffle is None else shuffle
    loader = FaceLoader(
        dataset,
        batch_size,
        workers=workers,
        shuffle=shuffle,
        seed=seed,
        start_method=start_method,
        persistent_workers=persistent_workers,
        pin_memory=torch.device(device).type == "cuda",
    )
    return loader, dataset


def seed_worker(worker_id: int) -> None:
    """Seed Python, NumPy and OpenCV state in a worker and keep OpenCV single-threaded there."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    cv2.setNumThreads(0)


def _last_line(message: str) -> str:
    """Return the last non-empty line of a (possibly traceback-carrying) message, without the type name."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else message
    return last.split("FaceyoloError: ", 1)[-1]

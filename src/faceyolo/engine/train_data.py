"""The data side of a training run: train/val datasets and loaders, anchor check, per-epoch validation."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import torch

from faceyolo.engine.distributed import DistInfo, ShardedDataset

VAL_PAD = 0.5  # rect val batches are padded by half a stride (SPEC §5.12)


class TrainData:
    """Datasets and loaders of one run. Only the main process builds the validation set.

    batch_size is the total over all processes; each process loads batch_size / world_size images.
    """

    def __init__(self, data_config, img_size: int, batch_size: int, stride: int, hyp: dict, config,
                 info: DistInfo, device: torch.device):
        from faceyolo.data.dataset import FaceDataset
        from faceyolo.data.loader import FaceLoader

        self.img_size, self.max_batches = img_size, config.max_batches
        per_process = max(batch_size // info.world_size, 1)
        workers = min(config.workers, max((os.cpu_count() or 1) // info.world_size, 1))
        pin = device.type == "cuda"
        self.train_set = FaceDataset(data_config.train, img_size=img_size, augment=True, hyp=hyp,
                                     batch_size=per_process, stride=stride, cache=config.cache,
                                     seed=config.seed, nc=data_config.nc, progress=info.is_main)
        shard = ShardedDataset(self.train_set, info, config.seed) if info.distributed else self.train_set
        self.train_loader = FaceLoader(shard, per_process, workers=workers, shuffle=True, seed=config.seed,
                                       pin_memory=pin)
        self.val_set = self.val_loader = None
        self.last_validation = None
        if info.is_main:
            self.val_set = FaceDataset(data_config.val, img_size=img_size, augment=False, hyp=hyp, rect=True,
                                       batch_size=batch_size, stride=stride, pad=VAL_PAD, cache=config.cache,
                                       nc=data_config.nc)
            self.val_loader = FaceLoader(self.val_set, batch_size, workers=workers, shuffle=False,
                                         pin_memory=pin)

    def batches_per_epoch(self) -> int:
        """Return the number of batches one epoch trains on (limited by --max-batches)."""
        return min(len(self.train_loader), self.max_batches or math.inf)

    def describe(self) -> str:
        """Return a one-line summary of the train and val images."""
        val = f", {len(self.val_set)} val images" if self.val_set is not None else ""
        return f"{len(self.train_set)} train images ({self.train_set.summary}){val}"

    def train_batches(self, epoch: int):
        """Return an iterator over epoch `epoch`'s batches (images uint8, targets (n, 16), paths, shapes)."""
        self.train_loader.set_epoch(epoch)
        return iter(self.train_loader)

    def check_anchors(self, detect, anchor_t: float, seed: int) -> str:
        """Return the autoanchor report for the training labels (re-fitting `detect`'s anchors if needed)."""
        from faceyolo.engine.autoanchor import check_anchors

        dataset = self.train_set
        return check_anchors(detect, dataset.sizes, dataset.labels, self.img_size, anchor_t, seed)

    def validate(self, model, loss_fn) -> dict[str, float]:
        """Return P, R, mAP@.5, mAP@.5:.95 (`metrics/...`) and val losses (`val/...`) of `model` (the EMA)."""
        from faceyolo.engine.validator import validate

        self.last_validation = validate(model, self.val_loader, loss_fn=loss_fn)
        return self.last_validation.as_row()

    def save_curves(self, run_dir: Path, names: list[str]) -> list[Path]:
        """Return the PNGs of the last validation's PR, F1, P and R curves (none before any validation)."""
        from faceyolo.eval.metrics import save_metric_plots

        if self.last_validation is None:
            return []
        return save_metric_plots(self.last_validation.metrics, run_dir, names)


def random_rescale(images: torch.Tensor, img_size: int, stride: int) -> torch.Tensor:
    """Return the batch (B, 3, H, W) float resized so its long side is a random multiple of `stride` in
    [0.5, 1.5]·img_size (multi-scale training, SPEC §4.9); labels are normalised, so they stay valid.
    """
    size = random.randrange(int(img_size * 0.5), int(img_size * 1.5) + stride) // stride * stride
    factor = size / max(images.shape[2:])
    if factor == 1:
        return images
    shape = [math.ceil(x * factor / stride) * stride for x in images.shape[2:]]
    return torch.nn.functional.interpolate(images, size=shape, mode="bilinear", align_corners=False)

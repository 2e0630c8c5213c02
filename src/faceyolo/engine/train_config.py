"""What a training run was asked to do: the options of `faceyolo train`, as one plain dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from faceyolo.engine.optim import OPTIMIZERS
from faceyolo.errors import FaceyoloError

DEFAULT_BATCH_SIZE = 16


@dataclass
class TrainConfig:
    """Options of one training run (SPEC §4.1 defaults). Saved, resolved, as `config.yaml` in the run folder.

    model: a variant name (yolov5n-0.5 ... blazeface_fpn) or a faceyolo `.safetensors` file to continue from.
    weights: optional checkpoint whose matching tensors start the model (transfer; anchors excluded).
    batch_size: total over all processes; -1 picks one automatically; None: 16 for a new run and the run's
        own on resume (a value given on resume replaces it, e.g. after running out of GPU memory).
    hyp: a hyperparameter yaml path, a dict of overrides, or None for the §4.2 defaults.
    resume: a run folder or its `weights/last.state.safetensors`; the run then continues where it stopped.
    nominal_batch: images per optimizer step after warm-up, reached by accumulation (the original's 64).
    min_warmup_iters: warm-up lasts max(warmup_epochs · batches per epoch, this) iterations (the original's
        1000); lower it for short runs on small datasets.
    max_batches: debugging limit on batches per epoch (None = all).
    cache: None, "ram" or "disk" (resized images kept between epochs).
    """

    data: str = ""
    model: str = "yolov5s"
    weights: str | None = None
    epochs: int = 250
    img_size: int = 800
    batch_size: int | None = None
    device: str = ""
    workers: int = 4
    project: str = "runs/train"
    name: str = "exp"
    hyp: Any = None
    optimizer: str = "sgd"
    cos_lr: bool = True
    multi_scale: bool = False
    sync_bn: bool = False
    autoanchor: bool = True
    activation: str = "silu"
    resume: str | None = None
    nominal_batch: int = 64
    min_warmup_iters: int = 1000
    max_batches: int | None = None
    cache: str | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def validate(self) -> TrainConfig:
        """Return self after checking the values a user can get wrong; FaceyoloError names the option."""
        if not self.data and not self.resume:
            raise FaceyoloError("train: --data is required")
        if self.epochs < 1:
            raise FaceyoloError(f"train: --epochs must be >= 1, got {self.epochs}")
        if self.img_size < 32:
            raise FaceyoloError(f"train: --img-size must be >= 32, got {self.img_size}")
        if self.batch_size is not None and (self.batch_size == 0 or self.batch_size < -1):
            raise FaceyoloError(f"train: --batch-size must be >= 1 or -1 (auto), got {self.batch_size}")
        if self.workers < 0:
            raise FaceyoloError(f"train: --workers must be >= 0, got {self.workers}")
        if self.optimizer not in OPTIMIZERS:
            raise FaceyoloError(f"train: --optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.nominal_batch < 1 or self.min_warmup_iters < 0:
            raise FaceyoloError("train: --nominal-batch must be >= 1 and --min-warmup-iters >= 0")
        if self.max_batches is not None and self.max_batches < 1:
            raise FaceyoloError(f"train: --max-batches must be >= 1, got {self.max_batches}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return the options as a plain dict (JSON / yaml friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Return a config from a dict, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

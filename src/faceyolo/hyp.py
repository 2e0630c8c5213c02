"""Training hyperparameters: the SPEC §4.2 `hyp.scratch.yaml` defaults as data, and a validating loader."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from faceyolo.errors import FaceyoloError

# SPEC §4.2, the repository's hyp.scratch.yaml. The released yolov5n-0.5 used lr0 0.001, shear 10, mosaic 1.0.
HYP_SCRATCH: dict[str, float] = {
    "lr0": 0.01,  # initial learning rate (SGD)
    "lrf": 0.2,  # final learning rate = lr0 * lrf (cosine schedule)
    "momentum": 0.937,  # SGD momentum / Adam beta1
    "weight_decay": 0.0005,  # at nominal batch 64
    "warmup_epochs": 3.0,
    "warmup_momentum": 0.8,
    "warmup_bias_lr": 0.1,
    "box": 0.05,  # box loss gain
    "cls": 0.5,  # class loss gain (the trainer scales it by nc / 80)
    "landmark": 0.005,  # landmark (Wing) loss gain
    "cls_pw": 1.0,  # class BCE positive weight
    "obj": 1.0,  # objectness loss gain
    "obj_pw": 1.0,  # objectness BCE positive weight
    "iou_t": 0.2,  # unused by the original, kept for file compatibility
    "anchor_t": 4.0,  # anchor-match ratio threshold
    "fl_gamma": 0.0,  # focal loss gamma (0 = plain BCE)
    "hsv_h": 0.015,  # hue gain (fraction)
    "hsv_s": 0.7,  # saturation gain (fraction)
    "hsv_v": 0.4,  # value gain (fraction)
    "degrees": 0.0,  # rotation, +/- degrees
    "translate": 0.1,  # translation, +/- fraction of the output size
    "scale": 0.5,  # scale, +/- gain
    "shear": 0.5,  # shear, +/- degrees
    "perspective": 0.0,  # perspective, +/- fraction (0 = affine)
    "flipud": 0.0,  # up-down flip probability
    "fliplr": 0.5,  # left-right flip probability (with the eye and mouth-corner swap)
    "mosaic": 0.5,  # mosaic probability
    "crop": 0.0,  # faceyolo: side of a square crop of each non-mosaic sample, fraction of img_size (0 = off)
    "mixup": 0.0,  # mixup probability (not implemented: must stay 0)
}

_PROBABILITIES = ("flipud", "fliplr", "mosaic", "mixup")


def load_hyp(source: str | os.PathLike | Mapping[str, Any] | None = None) -> dict[str, float]:
    """Return a full hyperparameter dict: the §4.2 defaults updated by a yaml file or a mapping.

    Unknown keys, non-numeric values, negative values and probabilities above 1 raise FaceyoloError,
    so a typo in a hyp file is caught before training starts. Keys the source omits keep their default.
    """
    if source is None:
        overrides: Mapping[str, Any] = {}
        where = "defaults"
    elif isinstance(source, Mapping):
        overrides, where = source, "hyp"
    else:
        path = Path(source)
        where = str(path)
        try:
            overrides = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as err:
            raise FaceyoloError(f"{path}: cannot read hyperparameters ({err.strerror})") from None
        except yaml.YAMLError as err:
            raise FaceyoloError(f"{path}: not valid yaml ({err})") from None
        if not isinstance(overrides, Mapping):
            raise FaceyoloError(
                f"{path}: expected a mapping of hyperparameters, got {type(overrides).__name__}"
            )
    unknown = sorted(set(overrides) - set(HYP_SCRATCH))
    if unknown:
        raise FaceyoloError(f"{where}: unknown hyperparameter(s) {', '.join(map(str, unknown))}")
    hyp = dict(HYP_SCRATCH)
    for key, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaceyoloError(f"{where}: {key} must be a number, got {value!r}")
        if value < 0:
            raise FaceyoloError(f"{where}: {key} must be >= 0, got {value}")
        if key in _PROBABILITIES and value > 1:
            raise FaceyoloError(f"{where}: {key} is a probability, got {value}")
        hyp[key] = float(value)
    if hyp["mixup"] > 0:
        raise FaceyoloError(f"{where}: mixup is not supported (set mixup: 0)")
    return hyp

"""Optimizer with the original's three parameter groups, warm-up and per-epoch schedules (SPEC §4.3–4.6)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from faceyolo.errors import FaceyoloError

NOMINAL_BATCH = 64
MIN_WARMUP_ITERS = 1000
OPTIMIZERS = ("sgd", "adam", "adamw")
# Group names, in the original's order: BN weights (no decay), other weights (decay), biases (no decay).
BN_WEIGHT, WEIGHT, BIAS = "bn_weight", "weight", "bias"


def accumulate_steps(total_batch: int, nominal_batch: int = NOMINAL_BATCH) -> int:
    """Return how many batches to accumulate so one optimizer step sees about `nominal_batch` images."""
    return max(round(nominal_batch / total_batch), 1)


def scaled_weight_decay(
    weight_decay: float, total_batch: int, accumulate: int, nominal_batch: int = NOMINAL_BATCH
) -> float:
    """Return the weight decay scaled to the batch actually seen per step (SPEC §4.4)."""
    return weight_decay * total_batch * accumulate / nominal_batch


def parameter_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Return the model's parameters split into BN weights, other module weights and biases."""
    groups: dict[str, list[nn.Parameter]] = {BN_WEIGHT: [], WEIGHT: [], BIAS: []}
    for module in model.modules():
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            groups[BIAS].append(bias)
        weight = getattr(module, "weight", None)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            groups[BN_WEIGHT].append(module.weight)
        elif isinstance(weight, nn.Parameter):
            groups[WEIGHT].append(weight)
    return groups


def build_optimizer(
    model: nn.Module, name: str, lr0: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """Return an SGD (Nesterov) / Adam / AdamW optimizer whose groups are named bn_weight, weight, bias.

    Only the `weight` group (conv and linear weights) is decayed, by `weight_decay`.
    """
    groups = parameter_groups(model)
    param_groups = [
        {"params": groups[BN_WEIGHT], "name": BN_WEIGHT, "weight_decay": 0.0},
        {"params": groups[WEIGHT], "name": WEIGHT, "weight_decay": weight_decay},
        {"params": groups[BIAS], "name": BIAS, "weight_decay": 0.0},
    ]
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr0, momentum=momentum, nesterov=True)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=lr0, betas=(momentum, 0.999))
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr0, betas=(momentum, 0.999))
    raise FaceyoloError(f"unknown optimizer {name!r}: expected one of {', '.join(OPTIMIZERS)}")


def lr_factor(epochs: int, lrf: float, cosine: bool = True) -> Callable[[int], float]:
    """Return lf(epoch): the lr multiplier, from 1 at epoch 0 down to lrf at `epochs` (cosine or linear)."""
    if cosine:
        return lambda e: ((1 + math.cos(math.pi * e / epochs)) / 2) * (1 - lrf) + lrf
    return lambda e: (1 - e / epochs) * (1 - lrf) + lrf


def warmup_iterations(warmup_epochs: float, batches_per_epoch: int, minimum: int = MIN_WARMUP_ITERS) -> int:
    """Return the warm-up length in iterations: max(round(warmup_epochs · nb), minimum) (SPEC §4.5)."""
    return max(round(warmup_epochs * batches_per_epoch), minimum)


def warmup_note(warmup_iters: int, batches_per_epoch: int, epochs: int) -> str:
    """Return the log line giving the warm-up's length, and a warning when it outlasts the run."""
    note = f"warm-up: {warmup_iters} iterations ({warmup_iters / batches_per_epoch:.1f} epochs)"
    if warmup_iters >= epochs * batches_per_epoch:
        note += (f"; WARNING: longer than the whole run ({epochs * batches_per_epoch} iterations), so the "
                 "learning rate never reaches lr0: lower --min-warmup-iters (default 1000, as the original)")
    return note


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's learning rate to `lr` (the schedule value of the current epoch)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def apply_warmup(
    optimizer: torch.optim.Optimizer,
    iteration: int,
    warmup_iters: int,
    target_lr: float,
    hyp: dict,
    total_batch: int,
    nominal_batch: int = NOMINAL_BATCH,
) -> int:
    """Ramp lr and momentum for global `iteration` <= `warmup_iters`; return the accumulation to use.

    Biases start at warmup_bias_lr and the other groups at 0; all reach `target_lr` (lr0 · lf(epoch)).
    SGD momentum rises from warmup_momentum to momentum. Accumulation rises from 1 to nominal / total batch.
    """
    xi = [0, warmup_iters]
    accumulate = max(1, round(float(np.interp(iteration, xi, [1, nominal_batch / total_batch]))))
    for group in optimizer.param_groups:
        start = hyp["warmup_bias_lr"] if group.get("name") == BIAS else 0.0
        group["lr"] = float(np.interp(iteration, xi, [start, target_lr]))
        if "momentum" in group:
            group["momentum"] = float(np.interp(iteration, xi, [hyp["warmup_momentum"], hyp["momentum"]]))
    return accumulate

"""Exponential moving average of a model's weights and buffers (SPEC §4.7)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def unwrap(model: nn.Module) -> nn.Module:
    """Return the bare model inside a DataParallel / DistributedDataParallel wrapper (or the model)."""
    return model.module if isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel) else model


class ModelEMA:
    """An FP32, eval-mode, gradient-free copy of a model, averaged after every optimizer step.

    decay(u) = 0.9999 · (1 − exp(−u / 2000)) after u updates; every floating-point state-dict entry
    (parameters and buffers: BN statistics, anchors) is averaged, integer counters are left alone.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0):
        self.ema = copy.deepcopy(unwrap(model)).float().eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.max_decay = decay
        self.tau = tau
        self.updates = updates

    def decay(self) -> float:
        """Return the averaging weight of the old EMA value at the current number of updates."""
        return self.max_decay * (1 - math.exp(-self.updates / self.tau))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Count one optimizer step and move the EMA towards `model`'s current state."""
        self.updates += 1
        d = self.decay()
        current = unwrap(model).state_dict()
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(d).add_(current[name].detach().to(value.dtype), alpha=1 - d)

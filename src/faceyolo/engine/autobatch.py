"""Choose a training batch size: probe CUDA memory use, or a fixed default on CPU."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

CPU_DEFAULT_BATCH = 16
PROBE_BATCHES = (1, 2, 4, 8, 16)
MAX_BATCH = 1024


def auto_batch_size(
    model: nn.Module,
    img_size: int,
    device: torch.device,
    loss_fn=None,
    fraction: float = 0.8,
    amp_dtype: torch.dtype | None = torch.float16,
) -> tuple[int, str]:
    """Return (batch size, report): the largest batch whose training step fits `fraction` of free GPU memory.

    On CUDA, a few forward+backward passes at small batches measure peak memory, a straight line through
    them is extrapolated to the free memory. On CPU (or when probing fails) a fixed default is used.
    """
    if device.type != "cuda":
        return CPU_DEFAULT_BATCH, f"auto batch: CPU, using the default batch size {CPU_DEFAULT_BATCH}"
    probe = copy.deepcopy(model).train()  # the probe must not touch the real model's BN statistics
    free, total = torch.cuda.mem_get_info(device)
    budget = fraction * (free + torch.cuda.memory_reserved(device))
    sizes, peaks = [], []
    for batch in PROBE_BATCHES:
        try:
            peaks.append(_peak_memory(probe, batch, img_size, device, loss_fn, amp_dtype))
            sizes.append(batch)
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            probe.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
    del probe
    if len(sizes) < 2:
        return max(sizes or [1]), "auto batch: the probe fitted fewer than two batch sizes; using the largest"
    slope, intercept = np.polyfit(sizes, peaks, 1)
    batch = int((budget - intercept) / slope) if slope > 0 else MAX_BATCH
    batch = int(np.clip(batch, 1, MAX_BATCH))
    report = (f"auto batch: {batch} for {fraction:.0%} of {free / 2**30:.1f} GiB free on {device} "
              f"(≈{slope / 2**20:.0f} MiB per image at {img_size} px)")
    return batch, report


def _peak_memory(model, batch, img_size, device, loss_fn, amp_dtype) -> float:
    """Return the peak bytes allocated by one training forward+backward pass at `batch` images."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    images = torch.rand(batch, 3, img_size, img_size, device=device)
    with torch.autocast("cuda", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        preds = model(images)
        if loss_fn is not None:
            loss = loss_fn(preds, torch.zeros((0, 16), device=device))[0]
        else:
            loss = sum(p.float().mean() for p in preds)
    loss.backward()
    torch.cuda.synchronize(device)
    return float(torch.cuda.max_memory_allocated(device))

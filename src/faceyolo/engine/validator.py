"""Validation: run a model over a YOLO-face val loader and score it (SPEC §4.13–4.14).

`validate(model, loader)` is what training calls each epoch (with the EMA model); `validate_weights` is
`faceyolo val`: it loads weights and a data yaml, builds the rect val loader and saves the results.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faceyolo.eval.metrics import DetectionMetrics, MetricsAccumulator, save_metric_plots
from faceyolo.files import atomic_write_json, new_run_dir
from faceyolo.geometry import scale_boxes, xywh_to_xyxy
from faceyolo.inference.nms import nms_faces

VAL_CONF = 0.001
VAL_IOU = 0.6
VAL_PAD = 0.5  # rect batches are padded by half a stride (SPEC §5.12)


@dataclass
class ValResult:
    """The metrics of one validation, the mean val loss terms (when a loss was given) and the time taken."""

    metrics: DetectionMetrics
    losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def map50(self) -> float:
        """Return mAP@.5."""
        return self.metrics.map50

    @property
    def map(self) -> float:
        """Return mAP@.5:.95."""
        return self.metrics.map

    @property
    def pr_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Return (recall (1000,), precision (1000,)) at IoU 0.5, averaged over classes."""
        c = self.metrics.curves
        return c.grid, c.pr.mean(axis=0) if len(c.pr) else np.zeros_like(c.grid)

    def as_row(self) -> dict[str, float]:
        """Return the figures keyed as training logs them: metrics/precision … metrics/mAP50-95, val/…"""
        m = self.metrics
        row = {"metrics/precision": m.precision, "metrics/recall": m.recall, "metrics/mAP50": m.map50,
               "metrics/mAP50-95": m.map}
        return row | {f"val/{k}": v for k, v in self.losses.items()}

    def line(self) -> str:
        """Return the one-line summary: images, targets, P, R, mAP@.5, mAP@.5:.95."""
        m = self.metrics
        return (f"{m.images} images, {m.targets} faces: P {m.precision:.4f}  R {m.recall:.4f}  "
                f"mAP@.5 {m.map50:.4f}  mAP@.5:.95 {m.map:.4f}  ({self.seconds:.1f} s)")


def _add_batch(acc: MetricsAccumulator, dets: list[torch.Tensor], targets: np.ndarray,
               input_hw: tuple[int, int], shapes) -> None:
    """Add each image of a batch: NMS rows (K, 16) and targets (n, 16) mapped back to original pixels.

    targets columns: [image index, cls, cx, cy, w, h (normalised to the input), landmarks]; shapes[i] is
    ((h0, w0), ((ratio_h, ratio_w), (pad_w, pad_h))) or None (then boxes stay in input pixels).
    """
    h, w = input_hw
    for i, det in enumerate(dets):
        det = det.cpu().numpy()
        labels = targets[targets[:, 0] == i]
        gt = xywh_to_xyxy(labels[:, 2:6]) * np.array([w, h, w, h], dtype=np.float32)
        pred = det[:, :4]
        if shapes[i] is not None:
            orig_hw, ratio_pad = shapes[i]
            gt = scale_boxes(input_hw, gt, orig_hw, ratio_pad)
            pred = scale_boxes(input_hw, pred, orig_hw, ratio_pad)
        acc.add_image(pred, det[:, 4], det[:, 15], gt, labels[:, 1])


def validate(
    model: torch.nn.Module,
    loader,
    conf: float = VAL_CONF,
    iou: float = VAL_IOU,
    loss_fn=None,
    half: bool = True,
    progress: bool = False,
) -> ValResult:
    """Return the ValResult of `model` on the batches of `loader` (images uint8, targets, paths, shapes).

    The model runs in eval mode on its own device (fp16 autocast on CUDA when `half`) and is put back in
    its previous mode. NMS: conf `conf`, IoU `iou`, no cap. With `loss_fn(raw outputs, targets)` the mean of
    its terms is returned too.
    """
    from tqdm import tqdm

    device = next(model.parameters()).device
    amp = half and device.type == "cuda"
    was_training = model.training
    model.eval()
    acc, loss_sums, batches = MetricsAccumulator(), {}, 0
    start = time.perf_counter()
    try:
        with torch.no_grad():
            for images, targets, _paths, shapes in tqdm(loader, desc="val", disable=not progress):
                images = images.to(device, non_blocking=True).float() / 255
                targets = targets.to(device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    decoded, raw = model(images)
                if loss_fn is not None:
                    _, terms = loss_fn([r.float() for r in raw], targets)
                    for k, v in terms.items():
                        loss_sums[k] = loss_sums.get(k, 0.0) + float(v)
                    batches += 1
                dets = nms_faces(decoded.float(), conf, iou)
                _add_batch(acc, dets, targets.cpu().numpy(), tuple(images.shape[2:]), shapes)
    finally:
        model.train(was_training)
    losses = {k: v / batches for k, v in loss_sums.items()}
    return ValResult(acc.compute(), losses, time.perf_counter() - start)


def validate_weights(
    weights: str | os.PathLike,
    data: str | os.PathLike,
    img_size: int = 640,
    batch_size: int = 32,
    conf: float = VAL_CONF,
    iou: float = VAL_IOU,
    device: str | None = None,
    workers: int = 0,
    half: bool = True,
    plots: bool = False,
    project: str | os.PathLike = "runs/val",
    name: str = "exp",
    progress: bool = True,
) -> tuple[ValResult, Path]:
    """Return (ValResult, run folder) for weights on the val split of a data yaml (rect batches, pad 0.5).

    img_size is rounded up to a multiple of the model's largest stride. The run folder holds results.json
    and, with `plots`, the PR / F1 / P / R curves.
    """
    from faceyolo.data.config import load_data_config
    from faceyolo.data.loader import create_dataloader
    from faceyolo.devices import torch_device
    from faceyolo.weights import load_model

    device = torch_device(device)
    config = load_data_config(data)
    model = load_model(weights, device=device)
    stride = int(model.stride.max())
    img_size = math.ceil(img_size / stride) * stride
    loader, _ = create_dataloader(config.val, img_size, batch_size, stride=stride, rect=True, pad=VAL_PAD,
                                  workers=workers, device=device, nc=config.nc, progress=progress)
    result = validate(model, loader, conf, iou, half=half, progress=progress)
    run_dir = new_run_dir(project, name)
    summary = {"weights": str(weights), "data": str(data), "img_size": img_size, "conf": conf, "iou": iou,
               "images": result.metrics.images, "faces": result.metrics.targets, **result.as_row()}
    atomic_write_json(run_dir / "results.json", summary)
    if plots:
        save_metric_plots(result.metrics, run_dir, config.names)
    return result, run_dir

"""ONNX export of a FaceModel: decoded pixels (default), raw heads, or final detections (NMS in the graph).

The graph is traced from `ExportModule` (a fused copy; the caller's model is never touched) with the
TorchScript-based exporter, which needs no extra package. Facts a reader needs (variant, stride, anchors,
input size, names, output kind) go into the model's `metadata_props` as JSON strings.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from faceyolo.errors import FaceyoloError
from faceyolo.export.onnx_nms import NmsSettings, append_nms
from faceyolo.export.wrapper import (
    DECODED_NAME,
    INPUT_NAME,
    ExportModule,
    export_metadata,
    level_names,
    quiet_tracing,
)
from faceyolo.files import atomic_write_bytes
from faceyolo.inference.onnx_metadata import write_metadata
from faceyolo.models.build import FaceModel

DEFAULT_OPSET = 17
MIN_OPSET = 13


def input_hw(img_size: int | tuple[int, int] | list[int], model: FaceModel) -> tuple[int, int]:
    """Return the export input (H, W) for `img_size` (int: a square), checked against the largest stride."""
    hw = (int(img_size), int(img_size)) if isinstance(img_size, int) else tuple(int(v) for v in img_size)
    if len(hw) != 2:
        raise FaceyoloError(f"image size must be one number or height and width, got {list(img_size)}")
    step = int(model.stride.max())
    if any(v <= 0 or v % step for v in hw):
        raise FaceyoloError(f"image size {hw[0]}x{hw[1]} must be positive multiples of the model's largest "
                            f"stride {step}")
    return hw


def _dynamic_axes(output_names: list[str], raw: bool) -> dict:
    """Return torch.onnx dynamic axes: batch, height and width of the input, and what follows from them."""
    axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    if raw:
        axes.update({name: {0: "batch", 2: f"{name}_ny", 3: f"{name}_nx"} for name in output_names})
    else:
        axes[DECODED_NAME] = {0: "batch", 1: "anchors"}
    return axes


def export_onnx(
    model: FaceModel,
    path: str | os.PathLike,
    img_size: int | tuple[int, int] = 640,
    dynamic: bool = False,
    raw: bool = False,
    nms: NmsSettings | None = None,
    opset: int = DEFAULT_OPSET,
    batch_size: int = 1,
) -> Path:
    """Return `path` after writing `model` as ONNX (atomically).

    Input `images` (B, 3, H, W) float32 RGB in [0, 1]. Outputs: `pred` (B, N, 16) decoded rows
    [cx, cy, w, h, obj, 10 landmarks, cls] in input pixels; with `raw`, one (B, 3, ny, nx, 16) head per level
    named `stride_<s>`; with `nms`, `detections` (K, 16) [x1, y1, x2, y2, score, 10 landmarks, cls] and
    `batch_index` (K,). `dynamic` leaves batch, height and width free (default: fixed batch_size × H × W).
    """
    import onnx

    if opset < MIN_OPSET:
        raise FaceyoloError(f"opset {opset} is too old: faceyolo exports opset {MIN_OPSET} or newer")
    if raw and nms is not None:
        raise FaceyoloError("--raw and --nms exclude each other: NMS needs the decoded output")
    hw = input_hw(img_size, model)
    module = ExportModule(model, raw=raw)
    output_names = level_names(model) if raw else [DECODED_NAME]
    example = torch.zeros(batch_size, 3, *hw)
    buffer = io.BytesIO()
    with quiet_tracing():
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
            output_names=output_names, dynamic_axes=_dynamic_axes(output_names, raw) if dynamic else None,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    output = "raw" if raw else "decoded"
    extra = {}
    if nms is not None:
        proto = append_nms(proto, model.nc, nms)
        output, extra = "nms", {"nms": nms.as_dict()}
    write_metadata(proto, export_metadata(model, hw, dynamic, output, opset=opset, **extra))
    proto.producer_name = "faceyolo"
    onnx.checker.check_model(proto)
    return atomic_write_bytes(path, proto.SerializeToString())

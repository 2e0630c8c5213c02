"""TorchScript export of a FaceModel: a traced `ExportModule` with the export metadata as an extra file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from faceyolo.export.onnx import input_hw
from faceyolo.export.wrapper import ExportModule, export_metadata, quiet_tracing
from faceyolo.files import atomic_write
from faceyolo.models.build import FaceModel

METADATA_FILE = "faceyolo.json"  # read back with torch.jit.load(path, _extra_files={METADATA_FILE: ""})


def export_torchscript(
    model: FaceModel, path: str | os.PathLike, img_size: int | tuple[int, int] = 640, raw: bool = False
) -> Path:
    """Return `path` after writing `model` as a traced TorchScript file (atomically).

    forward(images (B, 3, H, W) float32 RGB in [0, 1]) returns the decoded (B, N, 16) rows in input pixels,
    or with `raw` the per-level (B, 3, ny, nx, 16) heads. Any batch and any H, W multiple of the largest
    stride work: the trace builds the grids from the feature-map shapes.
    """
    hw = input_hw(img_size, model)
    module = ExportModule(model, raw=raw, channels_last=True)
    metadata = export_metadata(model, hw, dynamic=True, output="raw" if raw else "decoded")
    extra = {METADATA_FILE: json.dumps(metadata)}
    with quiet_tracing(), torch.no_grad():
        traced = torch.jit.trace(module, torch.zeros(1, 3, *hw), check_trace=False)
        return atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp), _extra_files=extra))

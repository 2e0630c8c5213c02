"""What every export traces: a fused copy of a FaceModel behind a plain tensor-in, tensors-out forward.

Shared by the ONNX and TorchScript exporters, together with the metadata both write into their files.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from faceyolo import __version__
from faceyolo.models.build import FaceModel
from faceyolo.models.fuse import fuse_model

EXPORT_FORMAT = "faceyolo-export"
EXPORT_FORMAT_VERSION = 1
INPUT_NAME = "images"
DECODED_NAME = "pred"
# Model facts copied from the weights metadata into every export.
MODEL_KEYS = ("variant", "nc", "names", "anchors_px", "stride", "activation")


class ExportModule(nn.Module):
    """forward(images (B, 3, H, W) float32 RGB in [0, 1]) → decoded (B, N, 16) input pixels, or the raw heads.

    Holds a fused deep copy of the model (eval mode, gradients off), so exporting never touches the caller's
    model. Decoded rows are [cx, cy, w, h, obj, 10 landmark numbers, cls probs] (SPEC §2.7); raw heads are
    one (B, na, ny, nx, no) tensor per level. The Detect grids come from each feature map's shape, so a trace
    follows the input size. `channels_last` suits a traced PyTorch module; ONNX has no memory formats, and
    a channels-last trace only adds transposes there (n-0.5 at 640 in ONNX Runtime: 17.6 vs 15.3 ms).
    """

    def __init__(self, model: FaceModel, raw: bool = False, channels_last: bool = False):
        super().__init__()
        self.model = fuse_model(model, channels_last=channels_last).float().eval()
        self.model.requires_grad_(False)
        self.raw = raw

    def forward(self, images: torch.Tensor):
        decoded, raw = self.model(images)
        return tuple(raw) if self.raw else decoded


def level_names(model: FaceModel) -> list[str]:
    """Return one output name per Detect level, "stride_8", "stride_16", … (the third-party ONNX's names)."""
    return [f"stride_{int(s)}" for s in model.stride.tolist()]


def export_metadata(model: FaceModel, img_hw: tuple[int, int], dynamic: bool, output: str, **extra) -> dict:
    """Return the facts an exported file carries: the model's (variant, names, anchors…) and the export's.

    `output` is "decoded", "raw" or "nms"; `img_hw` the traced input (H, W); `extra` adds e.g. NMS settings.
    """
    from faceyolo.weights import model_metadata

    facts = model_metadata(model)
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        **{key: facts[key] for key in MODEL_KEYS},
        "img_size": list(img_hw),
        "dynamic": dynamic,
        "output": output,
        "input": "images (B, 3, H, W) float32 RGB in [0, 1], letterboxed with pad 114",
        "letterbox_stride": 64,
        "tool": f"faceyolo {__version__}",
        **extra,
    }


@contextlib.contextmanager
def quiet_tracing():
    """Silence the tracer's expected warnings (Python floats from tensors, the legacy-exporter notice)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx")
        yield

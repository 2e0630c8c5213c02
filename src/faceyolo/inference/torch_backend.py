"""The PyTorch backend of FaceDetector: a fused FaceModel mapping input batches to decoded rows."""

from __future__ import annotations

import os

import numpy as np
import torch

from faceyolo.devices import torch_device


class TorchBackend:
    """Callable: images (B, 3, H, W) float32 RGB in [0, 1] → decoded (B, N, 16) float32 tensor.

    Holds a fused copy of the model in eval mode (fp16 when `half` on CUDA; `half` is ignored on CPU).
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", half: bool = False):
        from faceyolo.models.fuse import fuse_model

        self.device = torch_device(device)
        self.half = bool(half) and self.device.type == "cuda"
        fused = fuse_model(model).to(self.device).eval()
        self.model = fused.half() if self.half else fused.float()
        # The input size the weights were made for (their metadata), used when the caller names none.
        self.default_img_size = (getattr(model, "meta", None) or {}).get("img_size")

    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str = "cpu", half: bool = False) -> TorchBackend:
        """Return a backend for an official .pt or a faceyolo .safetensors file."""
        from faceyolo.weights import load_model

        return cls(load_model(path, device="cpu"), device=device, half=half)

    def __call__(self, images: np.ndarray) -> torch.Tensor:
        """Return the decoded rows (B, N, 16) [cx, cy, w, h, obj, 10 landmarks, cls] in input pixels."""
        batch = torch.from_numpy(images).to(self.device)
        with torch.inference_mode():
            decoded = self.model(batch.half() if self.half else batch)[0]
        return decoded.float()

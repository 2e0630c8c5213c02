"""FaceDetector: images in, `Face` lists out (original-image pixels, floats).

Data flow: preprocess (RGB, letterbox, group by shape) → backend (network + Detect decode) → nms_faces →
map back (`faces_from_detections`, NumPy only). The resize rule is test_widerface.py's (SPEC §6.5):
long side = img_size (rounded up to a multiple of 64), scale-up allowed, INTER_LINEAR, each padding
reduced modulo 64 with value 114, RGB input — not detect_face.py, which feeds BGR by mistake (SPEC §6.4).

A backend is any callable mapping images (B, 3, H, W) float32 RGB in [0, 1] to decoded rows
(B, N, 16) [cx, cy, w, h, obj, 10 landmarks, cls] in input pixels, as a torch tensor or a NumPy array.
`from_file` picks it by suffix: .pt / .safetensors → `TorchBackend`; .onnx → `load_backend(path, device,
half)` of `faceyolo.inference.onnx_backend`. This module imports neither torch nor onnxruntime itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from faceyolo.devices import parse_device
from faceyolo.errors import FaceyoloError
from faceyolo.extras import is_installed, require_train_extra
from faceyolo.inference.face import Face, faces_from_detections
from faceyolo.inference.nms import nms_faces
from faceyolo.inference.preprocess import letterbox_batches, network_size, to_rgb

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_ONNX = ASSETS / "default.onnx"  # what detection runs, with ONNX Runtime
DEFAULT_SAFETENSORS = ASSETS / "default.safetensors"  # the same model for PyTorch: training, GPUs
TORCH_SUFFIXES = (".pt", ".pth", ".safetensors")
DEFAULT_CONF = 0.5  # user-facing default; detect_face.py hard-codes 0.6, test_widerface.py uses 0.02
DEFAULT_IOU = 0.5
DEFAULT_MAX_DET = 1000


def resolve_weights(path: str | os.PathLike | None, device: str | None = "cpu") -> Path:
    """Return the weights path to use: `path`, or the packaged default model when `path` is None.

    The default model is its ONNX file, except on a CUDA device with PyTorch installed, where its
    safetensors runs (fp16 with `half`) without needing onnxruntime-gpu.
    """
    if path is None:
        on_gpu = parse_device(device).kind == "cuda" and is_installed("torch")
        default = DEFAULT_SAFETENSORS if on_gpu else DEFAULT_ONNX
        if not default.is_file():
            raise FaceyoloError(f"no weights given and no packaged default model ({default}): pass --weights")
        return default
    path = Path(path)
    if not path.is_file():
        raise FaceyoloError(f"{path}: no such weights file")
    return path


def _load_backend(path: Path, device: str, half: bool) -> Callable:
    """Return the backend for the weights file `path`, chosen by its suffix."""
    suffix = path.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        require_train_extra(f"{path}: reading {suffix} weights", ("torch", "safetensors"))
        from faceyolo.inference.torch_backend import TorchBackend

        return TorchBackend.from_file(path, device=device, half=half)
    if suffix == ".onnx":
        from faceyolo.inference.onnx_backend import load_backend

        return load_backend(path, device=device, half=half)
    raise FaceyoloError(f"{path}: unsupported weights format {suffix!r} (use .pt, .safetensors or .onnx)")


def _to_numpy(dets) -> np.ndarray:
    """Return detection rows as a NumPy array (torch tensors are moved to the CPU)."""
    return dets.cpu().numpy() if hasattr(dets, "cpu") else np.asarray(dets)


class FaceDetector:
    """Detects faces: `detector(image)` → list[Face]; `detector([images])` → list[list[Face]].

    Images are BGR uint8 arrays (OpenCV's order) unless `rgb=True`, PIL images, or paths. Results are in
    the original image's pixels, not rounded, sorted by descending score.
    """

    def __init__(
        self,
        backend: Callable,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        img_size: int = 640,
        max_det: int | None = DEFAULT_MAX_DET,
        batch_size: int = 16,
    ):
        self.backend = backend
        self.conf = conf
        self.iou = iou
        self.img_size = network_size(img_size)
        self.max_det = max_det
        self.batch_size = batch_size

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike | None = None,
        device: str = "cpu",
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        img_size: int | None = None,
        half: bool = False,
        max_det: int | None = DEFAULT_MAX_DET,
    ) -> FaceDetector:
        """Return a detector for a weights file (.pt, .safetensors, .onnx; None: the packaged default).

        `img_size` None uses the input size recorded in the weights' metadata, else 640.
        """
        backend = _load_backend(resolve_weights(path, device), device, half)
        if img_size is None:
            img_size = getattr(backend, "default_img_size", None) or 640
        return cls(backend, conf=conf, iou=iou, img_size=img_size, max_det=max_det)

    @classmethod
    def default(cls, **kwargs) -> FaceDetector:
        """Return a detector for the packaged default model (see the README's model card).

        `kwargs` are those of `from_file` (device, conf, iou, img_size, half, max_det).
        """
        return cls.from_file(None, **kwargs)

    @classmethod
    def from_model(
        cls,
        model,
        device: str | None = None,
        conf: float = DEFAULT_CONF,
        iou: float = DEFAULT_IOU,
        img_size: int = 640,
        half: bool = False,
        max_det: int | None = DEFAULT_MAX_DET,
    ) -> FaceDetector:
        """Return a detector for an in-memory FaceModel (a fused copy is used; `model` is left untouched).

        `device` None means the device the model's parameters are on.
        """
        from faceyolo.inference.torch_backend import TorchBackend

        if device is None:
            device = str(next(model.parameters()).device)
        backend = TorchBackend(model, device=device, half=half)
        return cls(backend, conf=conf, iou=iou, img_size=img_size, max_det=max_det)

    def __call__(self, images, rgb: bool = False) -> list[Face] | list[list[Face]]:
        """Return the faces of one image, or a list of face lists for a list/tuple of images."""
        if isinstance(images, (list, tuple)):
            return self.detect_rgb([to_rgb(image, rgb) for image in images])
        return self.detect_rgb([to_rgb(images, rgb)])[0]

    def detect_rgb(self, images_rgb: Sequence[np.ndarray]) -> list[list[Face]]:
        """Return a face list per image of images_rgb (each RGB uint8 (h, w, 3)), batched by input shape."""
        results: list[list[Face]] = [[] for _ in images_rgb]
        for batch in letterbox_batches(images_rgb, self.img_size, self.batch_size):
            decoded = self.backend(batch.images)
            dets_per_image = nms_faces(decoded, self.conf, self.iou, max_det=self.max_det)
            for index, dets in zip(batch.indices, dets_per_image, strict=True):
                orig_hw = images_rgb[index].shape[:2]
                results[index] = faces_from_detections(_to_numpy(dets), batch.input_hw, orig_hw)
        return results

"""faceyolo: face detection with five landmarks in the YOLOv5-Face family.

Heavy pieces (torch) are imported lazily, so the ONNX backend runs without PyTorch.
"""

from faceyolo.errors import FaceyoloError

__version__ = "0.1.0"

_LAZY = {
    "FaceDetector": "faceyolo.inference.detector",
    "Face": "faceyolo.inference.face",
}

__all__ = ["Face", "FaceDetector", "FaceyoloError", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faceyolo' has no attribute {name!r}")

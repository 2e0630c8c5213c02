"""Model weights in and out: faceyolo `.safetensors` (ours) and official YOLOv5-Face `.pt` (read safely).

`load_model` is the one door: it reads either format, builds the matching `FaceModel` and loads the tensors
as fp32 with strict key checking. Neither path executes code stored in the file: official checkpoints go
through `weights.official` (their module tree interpreted) and `weights.restricted_pickle` (the bytes).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import torch

from faceyolo import __version__
from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write
from faceyolo.geometry import MAX_IMG_SIZE, MIN_IMG_SIZE, is_input_size
from faceyolo.weights.official import (
    DEFAULT_IMG_SIZE,
    OfficialCheckpoint,
    activation_of,
    jsonable,
    read_official_checkpoint,
    variant_name,
)

__all__ = ["OfficialCheckpoint", "convert_weights", "load_model", "read_official_checkpoint", "read_weights",
           "save_weights"]

FORMAT_NAME = "faceyolo-weights"
FORMAT_VERSION = 1


def model_metadata(model: torch.nn.Module) -> dict:
    """Return the facts a saved file records about `model`: layer table, classes, anchors, strides."""
    detect = model.detect
    anchors_px = (detect.anchors.float().cpu() * detect.stride.float().cpu().view(-1, 1, 1))
    meta = getattr(model, "meta", None) or {}
    return {
        "variant": meta.get("variant") or variant_name(model.spec),
        "spec": jsonable(model.spec),
        "nc": int(model.nc),
        "names": [str(n) for n in model.names],
        "anchors_px": anchors_px.reshape(anchors_px.shape[0], -1).tolist(),
        "stride": [float(s) for s in model.stride],
        "activation": activation_of(model),
        "img_size": int(meta.get("img_size", DEFAULT_IMG_SIZE)),
    }


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict | None = None) -> Path:
    """Return `path` after writing the model's state dict and JSON metadata as `.safetensors`, atomically.

    Metadata: format version, layer table, variant, nc, names, anchors (px), stride, activation, default
    input size, provenance (source and its sha256 when known, date, tool version) and whatever
    `metadata` adds (e.g. a "training" summary); `metadata` wins over what the model carries.
    """
    from safetensors.torch import save_file

    path = Path(path)
    extra = dict(metadata or {})
    carried = dict(getattr(model, "meta", None) or {})
    provenance = {
        **(carried.get("provenance") or {}),
        **(extra.pop("provenance", None) or {}),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": f"faceyolo {__version__}",
    }
    merged = {**carried, **model_metadata(model), **extra, "provenance": provenance,
              "format": FORMAT_NAME, "format_version": FORMAT_VERSION}
    header = {key: json.dumps(jsonable(value)) for key, value in merged.items()}
    tensors = {name: t.detach().cpu().contiguous().clone() for name, t in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=header))
    return path


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (tensors name → CPU tensor, raw string metadata) of any `.safetensors` file; never unpickles."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FaceyoloError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise FaceyoloError(f"{path}: not a readable safetensors file, truncated or corrupt ({err})") from err
    return tensors, header


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (tensors name → CPU tensor, metadata dict) of a faceyolo `.safetensors` file."""
    tensors, header = read_safetensors(path)
    try:
        metadata = {key: json.loads(value) for key, value in header.items()}
    except (json.JSONDecodeError, RecursionError) as err:  # RecursionError: nested past Python's stack
        raise FaceyoloError(f"{path}: metadata is not valid JSON ({type(err).__name__}: {err})") from None
    if metadata.get("format") != FORMAT_NAME:
        raise FaceyoloError(f"{path}: not a faceyolo weights file (no '{FORMAT_NAME}' metadata)")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FaceyoloError(f"{path}: format version {version!r} is not one this faceyolo reads "
                            f"(up to {FORMAT_VERSION}); upgrade faceyolo")
    missing = [k for k in ("spec", "nc", "names", "activation") if k not in metadata]
    if missing:
        raise FaceyoloError(f"{path}: metadata lacks {', '.join(missing)}")
    return tensors, metadata


def _is_number(value, low: float, high: float) -> bool:
    """Return True for an int or float (not a bool) in [low, high]."""
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


def _check_metadata(metadata: dict, path: Path) -> None:
    """Refuse metadata entries of the wrong kind: names, activation, stride, input size, variant."""
    names, stride, img_size = metadata.get("names"), metadata.get("stride"), metadata.get("img_size")
    wrong = {
        "names": not (isinstance(names, list) and all(isinstance(n, str) for n in names)),
        "activation": not isinstance(metadata.get("activation"), str),
        "stride": stride is not None and not (isinstance(stride, list)
                                              and all(_is_number(s, 1, MAX_IMG_SIZE) for s in stride)),
        "img_size": img_size is not None and not is_input_size(img_size),
        "variant": not isinstance(metadata.get("variant"), str | None),
    }
    bad = [key for key, is_wrong in wrong.items() if is_wrong]
    if bad:
        shown = "; ".join(f"{key} {str(metadata.get(key))[:60]!r}" for key in bad)
        raise FaceyoloError(f"{path}: metadata entries of the wrong kind ({shown}; names: a list of strings, "
                            f"img_size: {MIN_IMG_SIZE} to {MAX_IMG_SIZE})")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Return the `FaceModel` stored in `path` (.pt/.pth official or .safetensors), fp32, eval, unfused.

    Everything the file says is checked against its tensors before the model is built, so a crafted file
    gets a one-line FaceyoloError and never more memory than its tensors take.
    """
    from faceyolo.models.from_tensors import build_from_tensors

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        checkpoint = read_official_checkpoint(path)
        tensors, metadata = checkpoint.state_dict, checkpoint.model_metadata()
    elif suffix == ".safetensors":
        tensors, metadata = read_weights(path)
    elif suffix == ".onnx":
        raise FaceyoloError(f"{path}: an ONNX file holds no PyTorch model; "
                            "use FaceDetector.from_file for ONNX")
    else:
        raise FaceyoloError(f"{path}: unknown weights format '{suffix}' (expected .pt, .pth or .safetensors)")
    _check_metadata(metadata, path)
    try:
        model = build_from_tensors(metadata["spec"], metadata["nc"], metadata["activation"], tensors)
    except FaceyoloError as err:
        raise FaceyoloError(f"{path}: {err}") from None
    file_stride = metadata.get("stride")
    if file_stride is not None and [float(s) for s in model.stride] != [float(s) for s in file_stride]:
        raise FaceyoloError(f"{path}: the built model has strides {model.stride.tolist()}, "
                            f"the file says {file_stride}")
    if len(metadata["names"]) != model.nc:
        raise FaceyoloError(f"{path}: {len(metadata['names'])} class names for {model.nc} classes")
    model.names = list(metadata["names"])
    model.meta = metadata
    try:
        return model.to(device).eval()
    except (RuntimeError, AssertionError) as err:  # torch asserts when built without that backend
        raise FaceyoloError(f"{path}: cannot move the model to device {device!r} ({err})") from err


def load_model_or_variant(model: str) -> torch.nn.Module:
    """Return a fresh FaceModel for a variant name, or the model stored in a weights file."""
    from faceyolo.models.build import build_model
    from faceyolo.models.variants import VARIANTS

    if model in VARIANTS:
        return build_model(model)
    if Path(model).is_file():
        return load_model(model)
    raise FaceyoloError(f"{model}: not a model variant ({', '.join(VARIANTS)}) nor an existing weights file")


def convert_weights(source: str | Path, destination: str | Path) -> dict:
    """Return {variant, num_params, path, bytes} after saving `source` as a faceyolo `.safetensors`."""
    destination = Path(destination)
    if destination.suffix.lower() != ".safetensors":
        raise FaceyoloError(f"{destination}: the output must end in .safetensors")
    model = load_model(source)
    save_weights(model, destination)
    return {
        "variant": model.meta.get("variant"),
        "num_params": sum(p.numel() for p in model.parameters()),
        "path": destination,
        "bytes": destination.stat().st_size,
    }

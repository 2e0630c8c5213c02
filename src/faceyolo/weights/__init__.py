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
    except json.JSONDecodeError as err:
        raise FaceyoloError(f"{path}: metadata is not valid JSON ({err})") from err
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


def _summarise(items: list[str], limit: int = 5) -> str:
    """Return the first `limit` items joined, with a count of the rest."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _load_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Copy `tensors` into `model` as fp32, refusing missing, unexpected or misshapen entries."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    misshapen = [f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in tensors and tensors[k].shape != v.shape]
    problems = [f"{label}: {_summarise(items)}" for label, items in
                (("missing", missing), ("unexpected", unexpected), ("shape mismatch", misshapen)) if items]
    if problems:
        raise FaceyoloError(f"{path}: weights do not fit the model built from its layer table; "
                            + "; ".join(problems))
    model.load_state_dict({k: t.float() if t.is_floating_point() else t for k, t in tensors.items()})


def load_model(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Return the `FaceModel` stored in `path` (.pt/.pth official or .safetensors), fp32, eval, unfused."""
    from faceyolo.models.build import build_model

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
    try:
        model = build_model(metadata["spec"], nc=int(metadata["nc"]), activation=metadata["activation"])
    except (FaceyoloError, KeyError, ValueError, TypeError) as err:
        raise FaceyoloError(f"{path}: cannot build the model from its layer table ({err})") from err
    file_stride = metadata.get("stride")
    if file_stride is not None and [float(s) for s in model.stride] != [float(s) for s in file_stride]:
        raise FaceyoloError(f"{path}: the built model has strides {model.stride.tolist()}, "
                            f"the file says {file_stride}")
    _load_tensors(model, tensors, path)
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

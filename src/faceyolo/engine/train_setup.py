"""Pieces a training run assembles before its first epoch: the model, image size, run folder, resume file."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from faceyolo.engine.transfer import TransferReport, transfer_weights
from faceyolo.errors import FaceyoloError

STATE_FILE = "last.state.safetensors"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")


def is_weights_file(model: str) -> bool:
    """Return True when `--model` names a weights file rather than a variant."""
    return model.lower().endswith(WEIGHT_SUFFIXES)


def make_model(
    model: str, nc: int, names: list[str], activation: str, weights: str | None
) -> tuple[nn.Module, list[str]]:
    """Return (a FaceModel in train mode, report lines) for `--model` and optional `--weights`.

    model: a variant name (new network) or a weights file (its architecture and, where they fit, tensors;
    when its class count differs from the data's, the network is rebuilt for `nc` and the rest transferred).
    weights: a checkpoint whose matching tensors are copied in (anchors excluded); mismatches are skipped.
    """
    from faceyolo.models.build import build_model
    from faceyolo.weights import load_model

    notes: list[str] = []
    if is_weights_file(model):
        loaded = load_model(model)
        if int(loaded.nc) == nc:
            net = loaded
            notes.append(f"model: {model} (all tensors)")
        else:
            net = build_model(loaded.spec, nc=nc, activation=loaded.activation)
            report = transfer_weights(net, loaded.state_dict(), exclude=())
            notes.append(f"model: {model} rebuilt for nc={nc}; {report.summary()}")
        net.meta = {k: v for k, v in (loaded.meta or {}).items() if k in ("variant", "provenance")}
    else:
        net = build_model(model, nc=nc, activation=activation)
        net.meta = {"variant": model}
    net.names = list(names)
    if weights:
        notes.append(f"weights: {weights}: {transfer_from_file(net, weights).summary()}")
    return net.float().train(), notes


def transfer_from_file(model: nn.Module, path: str) -> TransferReport:
    """Return the report of copying the matching tensors of the checkpoint at `path` into `model`."""
    from faceyolo.weights import load_model

    source = load_model(path)
    return transfer_weights(model, source.state_dict())


def check_img_size(img_size: int, max_stride: int) -> tuple[int, str | None]:
    """Return (size rounded up to a multiple of the largest stride, a warning when it changed)."""
    size = math.ceil(img_size / max_stride) * max_stride
    if size == img_size:
        return size, None
    return size, f"--img-size {img_size} is not a multiple of the largest stride {max_stride}: using {size}"


def resume_state_path(resume: str, project: str) -> Path:
    """Return the training-state file to resume from: a run folder, the file itself, or '' = latest run."""
    if resume:
        path = Path(resume)
        candidates = [path, path / "weights" / STATE_FILE, path.parent / STATE_FILE]
        found = next((p for p in candidates if p.is_file() and p.name == STATE_FILE), None)
        if found is None:
            raise FaceyoloError(f"{resume}: no {STATE_FILE} found to resume from")
        return found
    states = sorted(Path(project).glob(f"*/weights/{STATE_FILE}"), key=lambda p: p.stat().st_mtime)
    if not states:
        raise FaceyoloError(f"{project}: no run with weights/{STATE_FILE} to resume")
    return states[-1]


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype on `device`: bf16 where supported, else fp16 on CUDA; None (fp32) on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

"""`--device` strings, parsed once for every backend: '', 'cpu', 'cuda', 'cuda:N', 'N' or 'N,M,...'."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from faceyolo.errors import FaceyoloError

if TYPE_CHECKING:
    import torch


class Device(NamedTuple):
    """A parsed device: kind "auto" (CUDA when usable, else CPU), "cpu" or "cuda", and the GPU index."""

    kind: str
    index: int = 0


def parse_device(device: str | None) -> Device:
    """Return the Device a `--device` string names; FaceyoloError for anything else.

    '' or None is "auto"; a bare index or a comma list ('0,1', one GPU per torchrun process) is CUDA with
    its first index.
    """
    text = (device or "").strip().lower()
    if text in ("", "auto"):
        return Device("auto")
    if text == "cpu":
        return Device("cpu")
    first = text.removeprefix("cuda").removeprefix(":").split(",")[0] or "0"
    if not first.isdigit():
        raise FaceyoloError(f"unknown device {device!r}: use cpu, cuda, cuda:N or a GPU index")
    return Device("cuda", int(first))


def torch_device(device: str | None) -> torch.device:
    """Return the torch device a `--device` string names: FaceyoloError when that GPU is not there."""
    import torch

    parsed = parse_device(device)
    if parsed.kind == "cpu" or (parsed.kind == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise FaceyoloError(f"device {device!r} requested but CUDA is not available here; use --device cpu")
    if parsed.index >= torch.cuda.device_count():
        raise FaceyoloError(f"device {device!r}: no such CUDA device ({torch.cuda.device_count()} visible)")
    return torch.device("cuda", parsed.index)

"""The training state of a run in one safetensors file, written atomically; nothing is ever pickled.

Layout: tensors `model/<key>`, `ema/<key>`, `optimizer/<param index>/<name>`, and per process (rank r)
`rng/<r>/torch`, `rng/<r>/cuda/<i>`, `rng/<r>/numpy`; everything else (epoch, fitness, optimizer groups and
scalars, scaler, RNG scalars, the run config) is JSON in the file's `state` metadata entry.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write
from faceyolo.weights import read_safetensors

FORMAT = "faceyolo-train-state"
VERSION = 2  # 2: random generator states of every process, not only rank 0's


@dataclass
class TrainingState:
    """Everything needed to continue a run after its last completed epoch.

    epoch: the last completed epoch (0-based); the run continues at epoch + 1.
    model, ema: state dicts (CPU tensors). optimizer: a torch optimizer state dict. scaler: GradScaler state.
    rng: the random generators' states of each process in rank order, as `capture_rng` returns them (one
        entry for a single-process run). extra: free JSON (run config...).
    """

    epoch: int
    best_fitness: float
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    ema_updates: int
    optimizer: dict[str, Any]
    scaler: dict[str, Any] = field(default_factory=dict)
    rng: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def capture_rng() -> dict[str, Any]:
    """Return the states of Python's, NumPy's and torch's (CPU and CUDA) random generators."""
    version, py_state, gauss = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(py_state), gauss],
        "numpy": {"keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put the random generators back into the states `capture_rng` returned."""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda", [])
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_training_state(path: str | os.PathLike, state: TrainingState) -> Path:
    """Return `path` after writing `state` to it atomically (temp file + rename)."""
    tensors: dict[str, torch.Tensor] = {}
    for prefix, sd in (("model", state.model), ("ema", state.ema)):
        tensors.update({f"{prefix}/{k}": _plain(v) for k, v in sd.items()})

    optimizer_scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state.optimizer.get("state", {}).items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = _plain(value)
            else:
                optimizer_scalars.setdefault(str(index), {})[name] = value

    rng = []
    for rank, generators in enumerate(state.rng):
        tensors[f"rng/{rank}/torch"] = _plain(generators["torch"])
        tensors[f"rng/{rank}/numpy"] = _plain(generators["numpy"]["keys"])
        tensors.update({f"rng/{rank}/cuda/{i}": _plain(s) for i, s in enumerate(generators.get("cuda", []))})
        rng.append({"python": generators["python"], "cuda_devices": len(generators.get("cuda", [])),
                    "numpy": {k: v for k, v in generators["numpy"].items() if k != "keys"}})

    document = {
        "epoch": state.epoch,
        "best_fitness": state.best_fitness,
        "ema_updates": state.ema_updates,
        "optimizer": {"param_groups": state.optimizer.get("param_groups", []), "scalars": optimizer_scalars},
        "scaler": state.scaler,
        "rng": rng,
        "extra": state.extra,
    }
    metadata = {"format": FORMAT, "version": str(VERSION), "state": json.dumps(document)}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_training_state(path: str | os.PathLike) -> TrainingState:
    """Return the training state stored at `path`; FaceyoloError if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise FaceyoloError(f"{path}: training state not found")
    tensors, metadata = read_safetensors(path)
    if metadata.get("format") != FORMAT:
        raise FaceyoloError(f"{path}: not a faceyolo training state")
    if metadata.get("version") != str(VERSION):
        raise FaceyoloError(f"{path}: training state version {metadata.get('version')} is not this "
                            f"faceyolo's ({VERSION}); finish that run with the faceyolo that started it")
    try:
        return _state_from(tensors, json.loads(metadata["state"]))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        reason = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise FaceyoloError(f"{path}: damaged training state ({reason}); start the run again "
                            "or resume from an intact copy") from None


def _state_from(tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> TrainingState:
    """Return the TrainingState that a state file's tensors and JSON document describe."""

    def section(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}

    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in section("optimizer").items():
        index, name = key.split("/", 1)
        optimizer_state.setdefault(int(index), {})[name] = value
    for index, scalars in document["optimizer"]["scalars"].items():
        optimizer_state.setdefault(int(index), {}).update(scalars)
    param_groups = document["optimizer"]["param_groups"]
    for group in param_groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])

    rng = [
        {
            "python": saved["python"],
            "numpy": {"keys": tensors[f"rng/{rank}/numpy"], **saved["numpy"]},
            "torch": tensors[f"rng/{rank}/torch"],
            "cuda": [tensors[f"rng/{rank}/cuda/{i}"] for i in range(saved["cuda_devices"])],
        }
        for rank, saved in enumerate(document["rng"])
    ]
    return TrainingState(
        epoch=document["epoch"],
        best_fitness=document["best_fitness"],
        model=section("model"),
        ema=section("ema"),
        ema_updates=document["ema_updates"],
        optimizer={"state": optimizer_state, "param_groups": param_groups},
        scaler=document["scaler"],
        rng=rng,
        extra=document["extra"],
    )


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """Return a contiguous CPU copy that shares memory with nothing (safetensors refuses shared storage)."""
    return tensor.detach().to("cpu", copy=True).contiguous()

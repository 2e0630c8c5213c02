"""Start a model from another checkpoint's tensors where names and shapes match (SPEC §4.12)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class TransferReport:
    """What `transfer_weights` copied: counts and the names it skipped, with the reason."""

    transferred: int
    total: int
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self, max_names: int = 8) -> str:
        """Return 'transferred N/M tensors' and, when some were skipped, the first few names and why."""
        line = f"transferred {self.transferred}/{self.total} tensors"
        if not self.skipped:
            return line
        names = [f"{name} ({why})" for name, why in list(self.skipped.items())[:max_names]]
        more = len(self.skipped) - len(names)
        tail = f", and {more} more" if more > 0 else ""
        return f"{line}; skipped {len(self.skipped)}: {', '.join(names)}{tail}"


def transfer_weights(
    model: nn.Module, source: dict[str, torch.Tensor], exclude: tuple[str, ...] = ("anchor",)
) -> TransferReport:
    """Return a report after copying into `model` each `source` tensor whose name and shape match.

    Keys containing any of `exclude` are kept from the model (by default its anchors, which belong to the
    model's own variant). Mismatches are reported, never fatal.
    """
    own = model.state_dict()
    accepted: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    for name, tensor in own.items():
        if any(word in name for word in exclude):
            skipped[name] = "excluded"
        elif name not in source:
            skipped[name] = "not in checkpoint"
        elif tuple(source[name].shape) != tuple(tensor.shape):
            skipped[name] = f"shape {tuple(source[name].shape)} != {tuple(tensor.shape)}"
        else:
            accepted[name] = source[name]
    model.load_state_dict(accepted, strict=False)
    return TransferReport(transferred=len(accepted), total=len(own), skipped=skipped)

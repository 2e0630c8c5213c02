"""Model summary: the resolved layer table with parameter counts, totals and GFLOPs at 640x640."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from faceyolo.models.build import FaceModel


@dataclass(frozen=True)
class LayerRow:
    """One printed row: layer index, its inputs, repeats, block name, constructor args, parameters."""

    index: int
    source: int | tuple[int, ...]
    repeats: int
    block: str
    args: tuple
    params: int


@dataclass(frozen=True)
class ModelSummary:
    """Totals of a model: `layers` counts every nn.Module instance, as the original's summary did."""

    rows: list[LayerRow]
    layers: int
    parameters: int
    gflops: float
    img_size: int


def count_gflops(model: FaceModel, img_size: int = 640) -> float:
    """Return the GFLOPs (2 per multiply-accumulate) of one eval forward at 1x3xSxS.

    Counted by torch's FlopCounterMode on meta tensors, so no arithmetic runs and no memory is used.
    Convolutions and matmuls are counted; BatchNorm, activations and pooling are not.
    """
    state = model.state_dict(keep_vars=True)
    meta_state = {name: torch.empty_like(t, device="meta") for name, t in state.items()}
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            functional_call(model, meta_state, (torch.zeros(1, 3, img_size, img_size, device="meta"),))
    finally:
        model.train(was_training)
    return counter.get_total_flops() / 1e9


def summarize(model: FaceModel, img_size: int = 640) -> ModelSummary:
    """Return the layer rows, module count, parameter count and GFLOPs at img_size of `model`."""
    rows = [
        LayerRow(info.index, info.source, info.repeats, info.block, info.args,
                 sum(p.numel() for p in layer.parameters()))
        for info, layer in zip(model.layers, model.model, strict=True)
    ]
    return ModelSummary(
        rows=rows,
        layers=len(list(model.modules())),
        parameters=sum(p.numel() for p in model.parameters()),
        gflops=count_gflops(model, img_size),
        img_size=img_size,
    )


def format_summary(summary: ModelSummary) -> str:
    """Return the summary as a printable table followed by the 'Model Summary: ...' line."""
    lines = [f"{'':>3} {'from':>16} {'n':>3} {'params':>10}  {'module':<18} arguments"]
    for r in summary.rows:
        args = [list(a) if isinstance(a, tuple) else a for a in r.args]
        source = list(r.source) if isinstance(r.source, tuple) else r.source
        lines.append(f"{r.index:>3} {source!s:>16} {r.repeats:>3} {r.params:>10,}  {r.block:<18} {args}")
    lines.append(f"Model Summary: {summary.layers} layers, {summary.parameters} parameters, "
                 f"{summary.gflops:.3f} GFLOPs@{summary.img_size}")
    return "\n".join(lines)

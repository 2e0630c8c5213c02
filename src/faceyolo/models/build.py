"""Build a FaceModel from a variant name or a layer table (SPEC §2.1, §2.8).

`build_model` is the one door: it resolves depth and width, instantiates the blocks through an
explicit name -> class table, probes the strides, scales the anchors and initialises biases and BN.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from faceyolo.errors import FaceyoloError
from faceyolo.models.blocks import (
    C3,
    SPP,
    SPPF,
    ActFactory,
    BlazeBlock,
    Bottleneck,
    BottleneckCSP,
    Concat,
    Conv,
    DoubleBlazeBlock,
    Focus,
    ShuffleV2Block,
    StemBlock,
    activation_factory,
)
from faceyolo.models.detect import Detect
from faceyolo.models.variants import get_variant

# Blocks whose yaml args start with the output channels: they get (c_in, scaled c_out, *rest) and `act`.
# SPPF is listed here although the original parser forgot it (SPEC §2.1): we build it correctly.
CHANNEL_BLOCKS: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "StemBlock": StemBlock,
    "Bottleneck": Bottleneck,
    "C3": C3,
    "BottleneckCSP": BottleneckCSP,
    "SPP": SPP,
    "SPPF": SPPF,
    "Focus": Focus,
    "ShuffleV2Block": ShuffleV2Block,
    "BlazeBlock": BlazeBlock,
    "DoubleBlazeBlock": DoubleBlazeBlock,
}
# Blocks that take the repeat count as their third argument instead of being stacked n times.
REPEAT_INSIDE = {"C3", "BottleneckCSP"}
# Blocks that keep the channel count (or, for Concat/Detect, compute it from their inputs).
OTHER_BLOCKS: dict[str, type[nn.Module]] = {
    "Concat": Concat,
    "Detect": Detect,
    "nn.Upsample": nn.Upsample,
    "nn.MaxPool2d": nn.MaxPool2d,
}
SPEC_KEYS = ("depth_multiple", "width_multiple", "anchors", "backbone", "head")
STRIDE_PROBE_SIZE = 128
PROBE_MAX_ELEMENTS = 1 << 22  # 16x the largest activation of any built-in variant at the probe (l6: 262,144)
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


@dataclass(frozen=True)
class LayerInfo:
    """One resolved row of the layer table: what `faceyolo info` prints."""

    index: int
    source: int | tuple[int, ...]  # -1 = previous layer, else absolute layer indices
    repeats: int
    block: str
    args: tuple  # constructor arguments after channel/depth resolution (activation not included)


class FaceModel(nn.Module):
    """A YOLOv5-Face network: `model` is an nn.Sequential of layers, the last one the Detect head.

    Train mode returns the raw per-level list (B, na, ny, nx, no); eval mode returns
    (decoded (B, N, no) in input pixels, raw list).
    """

    def __init__(self, layers: list[nn.Module], infos: list[LayerInfo], spec: dict, activation: str):
        super().__init__()
        self.model = nn.Sequential(*layers)
        self.layers = infos
        self.spec = spec
        self.nc = int(spec["nc"])
        default_names = ["face"] if self.nc == 1 else [str(i) for i in range(self.nc)]
        self.names = list(spec.get("names") or default_names)
        self.activation = activation
        self.meta: dict[str, Any] = {}
        used = {j for info in infos for j in _as_tuple(info.source) if j != -1}
        # Per layer: (source, keep output for a later layer?); precomputed so forward does no lookups.
        self._plan = [(info.source, info.index in used) for info in infos]

    @property
    def detect(self) -> Detect:
        """Return the Detect head (the last layer)."""
        return self.model[-1]

    @property
    def stride(self) -> torch.Tensor:
        """Return the level strides, (nl,) float tensor (8, 16, 32[, 64])."""
        return self.detect.stride

    def forward(self, x: torch.Tensor):
        """Return the Detect output for images x (B, 3, H, W) float in [0, 1], RGB."""
        outputs: list[torch.Tensor | None] = []
        for layer, (source, keep) in zip(self.model, self._plan, strict=True):
            if source != -1:
                if isinstance(source, int):
                    x = outputs[source]
                else:
                    x = [x if j == -1 else outputs[j] for j in source]
            x = layer(x)
            outputs.append(x if keep else None)
        return x


def make_divisible(x: float, divisor: int) -> int:
    """Return the smallest multiple of `divisor` that is >= x."""
    return math.ceil(x / divisor) * divisor


def build_model(spec: str | dict, nc: int = 1, activation: str = "silu") -> FaceModel:
    """Return a freshly initialised FaceModel (train mode) for a variant name or a layer-table dict."""
    model = assemble_model(spec, nc, activation)
    probe_strides(model)
    _order_anchors(model.detect)
    model.detect.init_biases()
    set_batchnorm_defaults(model)
    return model


def assemble_model(spec: str | dict, nc: int = 1, activation: str = "silu") -> FaceModel:
    """Return the FaceModel of a variant name or layer table as its blocks initialise it, strides not probed.

    Its tensors are made on the current default device: under `torch.device("meta")` nothing is allocated.
    """
    table = get_variant(spec) if isinstance(spec, str) else copy.deepcopy(spec)
    missing = [k for k in SPEC_KEYS if k not in table]
    if missing:
        raise FaceyoloError(f"model spec: missing key(s) {', '.join(missing)}")
    table["nc"] = nc
    layers, infos = _build_layers(table, activation_factory(activation))
    return FaceModel(layers, infos, table, activation)


def set_batchnorm_defaults(model: nn.Module) -> None:
    """Give every BatchNorm2d of `model` the original's eps and momentum (SPEC §2.8)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = BN_EPS, BN_MOMENTUM


def resolved_repeats(n: int, depth_multiple: float) -> int:
    """Return how many times a layer-table row with `number` n is repeated at `depth_multiple` (SPEC §2.1)."""
    return max(round(n * depth_multiple), 1) if n > 1 else n


def _as_tuple(source: int | tuple[int, ...]) -> tuple[int, ...]:
    return (source,) if isinstance(source, int) else source


def _resolve_arg(value: Any, table: dict) -> Any:
    """Return a yaml argument with the tokens "nc", "anchors" and None/"None" resolved."""
    if value == "nc":
        return table["nc"]
    if value == "anchors":
        return table["anchors"]
    if value == "None":
        return None
    return value


def _build_layers(table: dict, act: ActFactory) -> tuple[list[nn.Module], list[LayerInfo]]:
    """Return the layer modules and their resolved table rows (SPEC §2.1 depth/width rules)."""
    gd, gw = table["depth_multiple"], table["width_multiple"]
    layers: list[nn.Module] = []
    infos: list[LayerInfo] = []
    channels: list[int] = []  # output channels of each built layer

    def channels_of(j: int) -> int:
        if j == -1:
            return channels[-1] if channels else 3
        return channels[j]

    for i, row in enumerate(table["backbone"] + table["head"]):
        try:
            source, n, name, args = row
            source = source if isinstance(source, int) else tuple(source)
            args = [_resolve_arg(a, table) for a in args]
            n = resolved_repeats(n, gd)
            if name in CHANNEL_BLOCKS:
                c1 = channels_of(source)
                c2 = make_divisible(args[0] * gw, 8)
                args = [c1, c2, *args[1:]]
                if name in REPEAT_INSIDE:
                    args.insert(2, n)
                    n = 1
                kwargs = {"act": act}
                cls = CHANNEL_BLOCKS[name]
            elif name in OTHER_BLOCKS:
                cls, kwargs = OTHER_BLOCKS[name], {}
                if name == "Concat":
                    c2 = sum(channels_of(j) for j in source)
                elif name == "Detect":
                    args.append([channels_of(j) for j in source])
                    c2 = 0
                else:
                    c2 = channels_of(source)
            else:
                known = ", ".join([*CHANNEL_BLOCKS, *OTHER_BLOCKS])
                raise FaceyoloError(f"model spec layer {i}: unknown block {name!r}; known blocks: {known}")
            repeated = [cls(*args, **kwargs) for _ in range(n)]
            module = repeated[0] if n == 1 else nn.Sequential(*repeated)
        except (TypeError, ValueError, IndexError, KeyError) as err:
            raise FaceyoloError(f"model spec layer {i} {row!r}: {err}") from err
        layers.append(module)
        infos.append(LayerInfo(i, source, n, name, tuple(args)))
        channels.append(c2)
    if not layers or not isinstance(layers[-1], Detect):
        raise FaceyoloError("model spec: the last layer must be Detect")
    return layers, infos


def _predicted_elements(module: nn.Module, inputs: tuple) -> int:
    """Return the element count of the output a growing layer (conv, upsample, concat) is about to make.

    Other layers make at most what they are given, so their outputs are checked once made.
    """
    if isinstance(module, Concat):
        return sum(t.numel() for t in inputs[0])
    x = inputs[0]
    if isinstance(module, nn.Upsample) and module.size is None:
        scale = module.scale_factor if isinstance(module.scale_factor, tuple) else (module.scale_factor,) * 2
        rows, columns = math.floor(x.shape[2] * scale[0]), math.floor(x.shape[3] * scale[1])
        return int(x.shape[0] * x.shape[1] * rows * columns)
    if isinstance(module, nn.Conv2d) and isinstance(module.padding, tuple):
        m = module
        geometry = zip(x.shape[2:], m.padding, m.dilation, m.kernel_size, m.stride, strict=True)
        sides = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, p, d, k, s in geometry]
        return x.shape[0] * module.out_channels * math.prod(max(side, 0) for side in sides)
    return 0


def _outputs_elements(output) -> int:
    """Return the elements of a layer output: a tensor, or a list/tuple of them."""
    if isinstance(output, torch.Tensor):
        return output.numel()
    return sum(_outputs_elements(o) for o in output) if isinstance(output, list | tuple) else 0


@contextmanager
def _activation_limit(model: nn.Module, limit: int):
    """Make every forward of `model` refuse, before or right after it is made, an activation over `limit`."""

    def refuse(module: nn.Module, elements: int) -> None:
        if elements > limit:
            raise FaceyoloError(f"model spec: a {type(module).__name__} layer would make a {elements:,}-"
                                f"element activation at the {STRIDE_PROBE_SIZE}px probe (limit {limit:,})")

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(lambda m, i: refuse(m, _predicted_elements(m, i))))
        handles.append(module.register_forward_hook(lambda m, i, o: refuse(m, _outputs_elements(o))))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def probe_strides(model: FaceModel) -> None:
    """Set Detect.stride from a train-mode forward at STRIDE_PROBE_SIZE (activations ≤ PROBE_MAX_ELEMENTS)."""
    model.train()
    with torch.no_grad(), _activation_limit(model, PROBE_MAX_ELEMENTS):
        probe = model(torch.zeros(1, 3, STRIDE_PROBE_SIZE, STRIDE_PROBE_SIZE))
    rows = [p.shape[-3] for p in probe]
    if min(rows) < 1:
        raise FaceyoloError(f"model spec: a Detect level has no cells at the {STRIDE_PROBE_SIZE}px probe")
    model.detect.stride = torch.tensor([STRIDE_PROBE_SIZE / r for r in rows])


def _order_anchors(detect: Detect) -> None:
    """Put new anchors in grid units, fixing their level order to run the way the strides do."""
    area = detect.anchor_grid.prod(-1).view(-1)
    if (area[-1] - area[0]).sign() != (detect.stride[-1] - detect.stride[0]).sign():
        detect.anchors.copy_(detect.anchors.flip(0))
        detect.anchor_grid.copy_(detect.anchor_grid.flip(0))
    detect.anchors /= detect.stride.view(-1, 1, 1)

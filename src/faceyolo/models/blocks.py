"""Network building blocks of the YOLOv5-Face family (SPEC §2.2).

Attribute names follow the original layout so that state-dict keys match it (SPEC §7.3).
Every block that has activations takes `act`, a zero-argument factory returning a fresh
activation module (see `activation_factory`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import nn

from faceyolo.errors import FaceyoloError

ActFactory = Callable[[], nn.Module]

ACTIVATIONS = ("silu", "leaky_relu:<slope>", "hardswish", "relu")


def activation_factory(name: str) -> ActFactory:
    """Return a factory of activation modules for "silu" | "leaky_relu:0.1" | "hardswish" | "relu"."""
    kind, _, arg = name.partition(":")
    if kind == "silu" and not arg:
        return nn.SiLU
    if kind == "hardswish" and not arg:
        return nn.Hardswish
    if kind == "relu" and not arg:
        return nn.ReLU
    if kind == "leaky_relu":
        try:
            return partial(nn.LeakyReLU, float(arg or 0.01))
        except ValueError:
            pass
    raise FaceyoloError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")


def autopad(k: int, p: int | None) -> int:
    """Return the padding that keeps 'same' size for an odd kernel k when p is None."""
    return k // 2 if p is None else p


def channel_interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return concat(a, b) along channels followed by a 2-group channel shuffle, in one copy.

    a, b: (B, C, H, W) each -> (B, 2C, H, W) where output channel 2j = a[j] and 2j+1 = b[j].
    The result keeps b's memory format (channels_last stays channels_last).
    """
    if b.dim() == 4 and b.is_contiguous(memory_format=torch.channels_last) and not b.is_contiguous():
        nhwc = torch.stack((a.permute(0, 2, 3, 1), b.permute(0, 2, 3, 1)), dim=-1).flatten(3)
        return nhwc.permute(0, 3, 1, 2)
    return torch.stack((a, b), dim=2).flatten(1, 2)


class Conv(nn.Module):
    """Conv2d (no bias) -> BatchNorm2d -> activation; `act=None` means no activation."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 act: ActFactory | None = nn.SiLU):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k, p), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = act() if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class StemBlock(nn.Module):
    """Stride-4 stem: conv s2, then (1x1 -> 3x3 s2) beside a 2x2 ceil max-pool, concat, 1x1."""

    def __init__(self, c1: int, c2: int, k: int = 3, s: int = 2, act: ActFactory = nn.SiLU):
        super().__init__()
        self.stem_1 = Conv(c1, c2, k, s, act=act)
        self.stem_2a = Conv(c2, c2 // 2, 1, 1, 0, act=act)
        self.stem_2b = Conv(c2 // 2, c2, 3, 2, 1, act=act)
        self.stem_2p = nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
        self.stem_3 = Conv(c2 * 2, c2, 1, 1, 0, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_1(x)
        return self.stem_3(torch.cat((self.stem_2b(self.stem_2a(x)), self.stem_2p(x)), 1))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 conv, plus the input when `shortcut` and c1 == c2."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 act: ActFactory = nn.SiLU):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_, c2, 3, 1, g=g, act=act)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP block with 3 convs: cv3(concat(m(cv1(x)), cv2(x)))."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 act: ActFactory = nn.SiLU):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c1, c_, 1, 1, act=act)
        self.cv3 = Conv(2 * c_, c2, 1, act=act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class BottleneckCSP(nn.Module):
    """CSP bottleneck: BN + LeakyReLU(0.1) over concat(cv3(m(cv1(x))), cv2(x)), then cv4."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
                 act: ActFactory = nn.SiLU):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, 1, act=act)
        self.bn = nn.BatchNorm2d(2 * c_)
        self.act = nn.LeakyReLU(0.1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, e=1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.cv3(self.m(self.cv1(x)))
        y2 = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((y1, y2), 1))))


class SPP(nn.Module):
    """Spatial pyramid pooling: cv2(concat(x, maxpool_k(x) for k)) after cv1 halves the channels."""

    def __init__(self, c1: int, c2: int, k: tuple[int, ...] = (5, 9, 13), act: ActFactory = nn.SiLU):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], 1))


class SPPF(nn.Module):
    """Fast SPP: the same k x k max-pool applied three times in series; equals SPP(k, 2k-1, 3k-2)."""

    def __init__(self, c1: int, c2: int, k: int = 5, act: ActFactory = nn.SiLU):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_ * 4, c2, 1, 1, act=act)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Focus(nn.Module):
    """Space-to-depth by 2 (slices ee, oe, eo, oo as (row, col) parity), then a Conv."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1,
                 act: ActFactory = nn.SiLU):
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, s, p, g, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat(
            (x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), 1))


class Concat(nn.Module):
    """Concatenation of a list of tensors along dimension `d` (channels by default)."""

    def __init__(self, d: int = 1):
        super().__init__()
        self.d = d

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, self.d)


def _depthwise(c: int, k: int, s: int, bias: bool) -> nn.Conv2d:
    """Return a depthwise k x k conv (c -> c channels, 'same' padding)."""
    return nn.Conv2d(c, c, k, s, k // 2, groups=c, bias=bias)


def _pointwise(c1: int, c2: int, bias: bool) -> nn.Conv2d:
    """Return a 1x1 conv c1 -> c2."""
    return nn.Conv2d(c1, c2, 1, 1, 0, bias=bias)


class ShuffleV2Block(nn.Module):
    """ShuffleNetV2 unit: stride 1 splits channels in halves, stride > 1 has two branches; then shuffle."""

    def __init__(self, inp: int, oup: int, stride: int, act: ActFactory = nn.SiLU):
        super().__init__()
        if not 1 <= stride <= 3:
            raise FaceyoloError(f"ShuffleV2Block: stride must be 1..3, got {stride}")
        bf = oup // 2
        if stride == 1 and inp != 2 * bf:
            raise FaceyoloError(f"ShuffleV2Block: stride 1 needs inp == oup, got {inp} and {oup}")
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                _depthwise(inp, 3, stride, bias=False), nn.BatchNorm2d(inp),
                _pointwise(inp, bf, bias=False), nn.BatchNorm2d(bf), act(),
            )
        else:
            self.branch1 = nn.Sequential()
        c_in2 = inp if stride > 1 else bf
        self.branch2 = nn.Sequential(
            _pointwise(c_in2, bf, bias=False), nn.BatchNorm2d(bf), act(),
            _depthwise(bf, 3, stride, bias=False), nn.BatchNorm2d(bf),
            _pointwise(bf, bf, bias=False), nn.BatchNorm2d(bf), act(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            return channel_interleave(x1, self.branch2(x2))
        return channel_interleave(self.branch1(x), self.branch2(x))


def _blaze_shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """Return the pooled 1x1 projection used when stride > 1, or None for the identity shortcut."""
    if stride == 1:
        return None
    return nn.Sequential(
        nn.MaxPool2d(kernel_size=stride, stride=stride),
        _pointwise(cin, cout, bias=True), nn.BatchNorm2d(cout),
    )


class BlazeBlock(nn.Module):
    """act(branch1(x) + shortcut(x)); branch1 = dw 5x5 (cin -> mid) -> BN -> 1x1 (mid -> cout) -> BN."""

    def __init__(self, cin: int, cout: int, mid: int | None = None, stride: int = 1,
                 act: ActFactory = nn.SiLU):
        super().__init__()
        if stride == 1 and cin != cout:
            raise FaceyoloError(f"{type(self).__name__}: stride 1 needs cin == cout, got {cin} and {cout}")
        self.branch1 = self.make_branch(cin, cout, mid or cin, stride, act)
        self.shortcut = _blaze_shortcut(cin, cout, stride)
        self.act = act()

    @staticmethod
    def make_branch(cin: int, cout: int, mid: int, stride: int, act: ActFactory) -> nn.Sequential:
        """Return the residual branch (indices 0-3 as in the original state dict)."""
        return nn.Sequential(
            nn.Conv2d(cin, mid, 5, stride, 2, groups=cin, bias=True), nn.BatchNorm2d(mid),
            _pointwise(mid, cout, bias=True), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.branch1(x) + residual)


class DoubleBlazeBlock(BlazeBlock):
    """BlazeBlock whose branch is dw 5x5 -> BN -> 1x1 -> BN -> act -> dense 5x5 -> BN -> 1x1 -> BN."""

    @staticmethod
    def make_branch(cin: int, cout: int, mid: int, stride: int, act: ActFactory) -> nn.Sequential:
        """Return the residual branch (indices 0-8 as in the original state dict)."""
        return nn.Sequential(
            _depthwise(cin, 5, stride, bias=True), nn.BatchNorm2d(cin),
            _pointwise(cin, mid, bias=True), nn.BatchNorm2d(mid), act(),
            nn.Conv2d(mid, mid, 5, 1, 2, bias=True), nn.BatchNorm2d(mid),
            _pointwise(mid, cout, bias=True), nn.BatchNorm2d(cout),
        )

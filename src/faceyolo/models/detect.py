"""The Detect head: one 1x1 conv per level, and the eval-mode decode of SPEC §2.7."""

from __future__ import annotations

import math

import torch
from torch import nn

NUM_LANDMARKS = 5
MAX_CACHED_GRIDS = 64  # many input shapes (rect batches, letterbox auto) must not grow the cache forever


class Detect(nn.Module):
    """Per-level 1x1 convs mapping c_l -> na·no channels; decodes boxes and landmarks in eval mode.

    Buffers: `anchors` (nl, na, 2) in grid units and `anchor_grid` (nl, 1, na, 1, 1, 2) in pixels.
    `stride` (nl,) is set by `build_model` after its probe forward (anchors are then divided by it).
    """

    def __init__(self, nc: int, anchors: list[list[float]], ch: list[int]):
        super().__init__()
        self.nc = nc
        self.no = nc + 5 + 2 * NUM_LANDMARKS
        self.nl = len(anchors)
        self.na = len(anchors[0]) // 2
        self.stride = torch.ones(self.nl)
        pixels = torch.tensor(anchors, dtype=torch.float32).view(self.nl, -1, 2)
        self.register_buffer("anchors", pixels.clone())
        self.register_buffer("anchor_grid", pixels.clone().view(self.nl, 1, -1, 1, 1, 2))
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        # (level, ny, nx, device, dtype, stride) -> (xy offset, corner) in pixels, each (1, 1, 2, ny, nx)
        self._grids: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, xs: list[torch.Tensor]):
        """Return raw per-level (B, na, ny, nx, no) tensors (train), or (decoded (B, N, no), raw) (eval)."""
        heads = [conv(x) for conv, x in zip(self.m, xs, strict=True)]
        raw = [self.to_cells(head) for head in heads]
        if self.training:
            return raw
        return self.decode(heads), raw

    def to_cells(self, head: torch.Tensor) -> torch.Tensor:
        """Return a level's conv output (B, na·no, ny, nx) as (B, na, ny, nx, no); channel a·no + k is
        anchor a, field k."""
        bs, _, ny, nx = head.shape
        return head.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()

    def decode(self, heads: list[torch.Tensor]) -> torch.Tensor:
        """Return (B, N, no) rows [cx, cy, w, h, obj, 10 landmark numbers, cls probs] in input pixels.

        heads: the per-level conv outputs (B, na·no, ny, nx). Rows are ordered by level, anchor, row, column.
        Landmarks get no sigmoid: raw·anchor_px + cell·stride. The decode works on whole field planes and
        transposes once at the end: slicing fields off the last axis of (B, na, ny, nx, no) instead is ~4x
        slower in ONNX Runtime (n-0.5 at 640: 3.2 vs 0.8 ms) and ~2.5x in PyTorch.
        """
        out = []
        for i, head in enumerate(heads):
            bs, _, ny, nx = head.shape
            p = head.view(bs, self.na, self.no, ny, nx)
            offset, corner = self.grids(i, ny, nx, p.device, p.dtype)
            anchor = self.anchor_grid[i].to(p.dtype).view(1, self.na, 2, 1, 1)
            y = p[:, :, :5].sigmoid()
            xy = y[:, :, 0:2] * (2 * float(self.stride[i])) + offset
            wh = (y[:, :, 2:4] * 2) ** 2 * anchor
            # reshape, not unflatten: ONNX opset 12 (the original export's) has no unflatten
            lmk = p[:, :, 5:15].reshape(bs, self.na, NUM_LANDMARKS, 2, ny, nx)
            lmk = (lmk * anchor.unsqueeze(2) + corner.unsqueeze(2)).reshape(bs, self.na, -1, ny, nx)
            fields = torch.cat((xy, wh, y[:, :, 4:5], lmk, p[:, :, 15:].sigmoid()), 2)
            out.append(fields.permute(0, 1, 3, 4, 2).reshape(bs, -1, self.no))
        return torch.cat(out, 1)

    def grids(self, i: int, ny: int, nx: int, device: torch.device, dtype: torch.dtype):
        """Return level i's ((cell_xy - 0.5)·stride, cell_xy·stride), each (1, 1, 2, ny, nx), cached."""
        key = (i, ny, nx, device, dtype, float(self.stride[i]))
        if key not in self._grids:
            if len(self._grids) >= MAX_CACHED_GRIDS:
                self._grids.clear()
            yv, xv = torch.meshgrid(torch.arange(ny, device=device), torch.arange(nx, device=device),
                                    indexing="ij")
            corner = torch.stack((xv, yv)).view(1, 1, 2, ny, nx).to(dtype) * float(self.stride[i])
            self._grids[key] = (corner - 0.5 * float(self.stride[i]), corner)
        return self._grids[key]

    def init_biases(self) -> None:
        """Add the RetinaNet-style priors to each level's bias (SPEC §2.8), landmark fields included.

        Objectness gets ln(8 / (640/s)²); every field from 5 on gets ln(0.6 / (nc - 0.99)) (ln 60 for nc = 1).
        """
        for conv, s in zip(self.m, self.stride.tolist(), strict=True):
            b = conv.bias.detach().view(self.na, -1)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5:] += math.log(0.6 / (self.nc - 0.99))

"""Assign ground-truth faces to anchors and grid cells of each detection level (SPEC §3.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Neighbour-cell offsets in the order centre, left, up, right, down; multiplied by 0.5 (SPEC §3.2 step 4).
_CELL_OFFSETS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]) * 0.5
_NEIGHBOUR_FRACTION = 0.5


@dataclass
class LevelTargets:
    """The positives of one level; every field has one row per (face, anchor, cell) positive.

    image, anchor, cell_y, cell_x: (n,) int64 indices into the level's (B, na, ny, nx) prediction.
    box: (n, 4) float [dx, dy, w, h] grid units; dx, dy relative to the chosen cell, in [-0.5, 1.5].
    anchor_wh: (n, 2) float anchor size, grid units.
    landmarks: (n, 10) float landmark offsets from the chosen cell (x - cell_x, y - cell_y), grid units,
        not masked (a missing landmark gives a large negative number).
    landmark_mask: (n, 10) float, 1 for a present coordinate and 0 for a missing one.
    cls: (n,) int64 class index.
    """

    image: torch.Tensor
    anchor: torch.Tensor
    cell_y: torch.Tensor
    cell_x: torch.Tensor
    box: torch.Tensor
    anchor_wh: torch.Tensor
    landmarks: torch.Tensor
    landmark_mask: torch.Tensor
    cls: torch.Tensor

    def __len__(self) -> int:
        return int(self.image.shape[0])


def build_targets(
    targets: torch.Tensor,
    grid_shapes: list[tuple[int, int]],
    anchors: torch.Tensor,
    anchor_t: float = 4.0,
) -> list[LevelTargets]:
    """Return the positives of every level, in the original order (cell group, then anchor, then face).

    targets: (nt, 16) float [image, cls, cx, cy, w, h, x0, y0, ..., x4, y4], normalised to the network
        input, -1 for a missing landmark coordinate.
    grid_shapes: (ny, nx) of each level.
    anchors: (nl, na, 2) float anchor (w, h) in grid units of each level.
    anchor_t: a face matches an anchor when both size ratios (and their inverses) are below it.
    """
    device = targets.device
    na = anchors.shape[1]
    nt = targets.shape[0]
    anchor_index = torch.arange(na, device=device, dtype=targets.dtype).view(na, 1).repeat(1, nt)
    # (na, nt, 17): every face once per anchor, the anchor index appended.
    per_anchor = torch.cat((targets.repeat(na, 1, 1), anchor_index[:, :, None]), dim=2)
    offsets = _CELL_OFFSETS.to(device=device, dtype=targets.dtype)
    return [
        _level_targets(per_anchor, ny, nx, anchors[level].to(device=device, dtype=targets.dtype), offsets,
                       anchor_t)
        for level, (ny, nx) in enumerate(grid_shapes)
    ]


def _level_targets(
    per_anchor: torch.Tensor,
    ny: int,
    nx: int,
    level_anchors: torch.Tensor,
    offsets: torch.Tensor,
    anchor_t: float,
) -> LevelTargets:
    """Return the positives of one level from the (na, nt, 17) per-anchor face table."""
    gain = torch.ones(17, device=per_anchor.device, dtype=per_anchor.dtype)
    gain[2:16:2] = nx  # cx, w, landmark x
    gain[3:16:2] = ny  # cy, h, landmark y
    grid = per_anchor * gain
    if grid.shape[1]:
        ratio = grid[:, :, 4:6] / level_anchors[:, None]
        matched = torch.max(ratio, 1.0 / ratio).max(dim=2).values < anchor_t
        grid = grid[matched]
        centre = grid[:, 2:4]
        from_far_side = gain[[2, 3]] - centre
        left, up = ((centre % 1.0 < _NEIGHBOUR_FRACTION) & (centre > 1.0)).T
        right, down = ((from_far_side % 1.0 < _NEIGHBOUR_FRACTION) & (from_far_side > 1.0)).T
        use = torch.stack((torch.ones_like(left), left, up, right, down))
        grid = grid.repeat((5, 1, 1))[use]
        cell_offsets = (torch.zeros_like(centre)[None] + offsets[:, None])[use]
    else:
        grid = grid.reshape(0, 17)
        cell_offsets = torch.zeros((0, 2), device=grid.device, dtype=grid.dtype)

    image, cls = grid[:, :2].long().T
    centre = grid[:, 2:4]
    size = grid[:, 4:6]
    cell = (centre - cell_offsets).long()
    # The clamped cells are used for the box and landmark targets too (SPEC §3.2 step 5).
    cell[:, 0].clamp_(0, nx - 1)
    cell[:, 1].clamp_(0, ny - 1)
    cell_x, cell_y = cell.T
    anchor = grid[:, 16].long()
    landmarks_grid = grid[:, 6:16]
    landmark_mask = (landmarks_grid >= 0).to(grid.dtype)
    landmarks = landmarks_grid - cell.repeat(1, 5).to(grid.dtype)
    return LevelTargets(
        image=image,
        anchor=anchor,
        cell_y=cell_y,
        cell_x=cell_x,
        box=torch.cat((centre - cell, size), dim=1),
        anchor_wh=level_anchors[anchor],
        landmarks=landmarks,
        landmark_mask=landmark_mask,
        cls=cls,
    )

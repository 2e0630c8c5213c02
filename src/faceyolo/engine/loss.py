"""The YOLOv5-Face training loss: CIoU box, objectness, class and Wing landmark terms (SPEC §3)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from faceyolo.engine.targets import LevelTargets, build_targets

WING_WIDTH = 10.0
WING_CURVATURE = 2.0
_IOU_RATIO = 1.0  # gr: objectness target = (1 - gr) + gr * CIoU


def ciou(pred_cxcywh: torch.Tensor, target_cxcywh: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Return the complete IoU (n,) between boxes pred (n, 4) and target (n, 4), both centre format."""
    px1, px2 = pred_cxcywh[:, 0] - pred_cxcywh[:, 2] / 2, pred_cxcywh[:, 0] + pred_cxcywh[:, 2] / 2
    py1, py2 = pred_cxcywh[:, 1] - pred_cxcywh[:, 3] / 2, pred_cxcywh[:, 1] + pred_cxcywh[:, 3] / 2
    tx1, tx2 = target_cxcywh[:, 0] - target_cxcywh[:, 2] / 2, target_cxcywh[:, 0] + target_cxcywh[:, 2] / 2
    ty1, ty2 = target_cxcywh[:, 1] - target_cxcywh[:, 3] / 2, target_cxcywh[:, 1] + target_cxcywh[:, 3] / 2

    inter = (torch.min(px2, tx2) - torch.max(px1, tx1)).clamp(0) * (
        torch.min(py2, ty2) - torch.max(py1, ty1)
    ).clamp(0)
    pw, ph = px2 - px1, py2 - py1 + eps
    tw, th = tx2 - tx1, ty2 - ty1 + eps
    iou = inter / (pw * ph + tw * th - inter + eps)

    enclose_w = torch.max(px2, tx2) - torch.min(px1, tx1)
    enclose_h = torch.max(py2, ty2) - torch.min(py1, ty1)
    diagonal_sq = enclose_w**2 + enclose_h**2 + eps
    centre_dist_sq = ((tx1 + tx2 - px1 - px2) ** 2 + (ty1 + ty2 - py1 - py2) ** 2) / 4
    v = (4 / math.pi**2) * torch.pow(torch.atan(tw / th) - torch.atan(pw / ph), 2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (centre_dist_sq / diagonal_sq + v * alpha)


def wing_loss_sum(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Return the summed Wing loss (w = 10, e = 2) over all elements of pred and target (same shape).

    A target of exactly -1.0 gets weight 0 (SPEC §3.6).
    """
    weight = (target != -1.0).to(pred.dtype)
    diff = (weight * (pred * weight - target * weight)).abs()
    constant = WING_WIDTH - WING_WIDTH * math.log(1 + WING_WIDTH / WING_CURVATURE)
    per_element = torch.where(
        diff < WING_WIDTH, WING_WIDTH * torch.log1p(diff / WING_CURVATURE), diff - constant
    )
    return per_element.sum()


def objectness_balance(nl: int) -> list[float]:
    """Return the per-level objectness weights: [4, 1, 0.4] for 3 levels, else [4, 1, 0.4, 0.1][:nl]."""
    return [4.0, 1.0, 0.4] if nl == 3 else [4.0, 1.0, 0.4, 0.1][:nl]


class FaceLoss:
    """Callable training loss: `(preds, targets) -> (loss × batch size, terms)`.

    Anchors (grid units), number of levels and classes are read from the Detect head at every call, so
    anchors re-fitted by autoanchor or moved to another device are always the current ones.
    """

    def __init__(self, detect_or_model: Any, hyp: dict):
        self.detect = getattr(detect_or_model, "detect", detect_or_model)
        self.hyp = hyp
        self.nl = int(self.detect.nl)
        self.nc = int(self.detect.nc)
        self.balance = objectness_balance(self.nl)

    def __call__(
        self, preds: list[torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (loss × batch size, scalar) and the detached terms box, obj, cls, landmark, total.

        preds: nl raw tensors (B, na, ny, nx, 5 + 10 + nc) from the train-mode forward.
        targets: (nt, 16) [image, cls, cx, cy, w, h, 10 landmark numbers], normalised, -1 = missing.
        """
        anchors = self.detect.anchors.to(device=preds[0].device, dtype=torch.float32)
        level_targets = self.build_targets(preds, targets, anchors)
        zero = torch.zeros((), device=preds[0].device)
        lbox, lobj, lcls, lmark = zero, zero, zero, zero
        for pi, tgt, balance in zip(preds, level_targets, self.balance, strict=False):
            obj_target = torch.zeros_like(pi[..., 4])
            if len(tgt):
                box_iou, box_loss, cls_loss, mark_loss = self._positive_terms(pi, tgt)
                lbox, lcls, lmark = lbox + box_loss, lcls + cls_loss, lmark + mark_loss
                obj_value = (1.0 - _IOU_RATIO) + _IOU_RATIO * box_iou.detach().clamp(0).to(obj_target.dtype)
                obj_target[tgt.image, tgt.anchor, tgt.cell_y, tgt.cell_x] = obj_value
            lobj = lobj + self._bce(pi[..., 4], obj_target, self.hyp.get("obj_pw", 1.0)) * balance

        scale = 3.0 / self.nl
        lbox = lbox * (self.hyp["box"] * scale)
        lobj = lobj * (self.hyp["obj"] * scale * (1.4 if self.nl == 4 else 1.0))
        lcls = lcls * (self.hyp["cls"] * scale)
        lmark = lmark * (self.hyp["landmark"] * scale)
        total = lbox + lobj + lcls + lmark
        batch_size = preds[0].shape[0]
        terms = {"box": lbox, "obj": lobj, "cls": lcls, "landmark": lmark, "total": total}
        return total * batch_size, {k: v.detach() for k, v in terms.items()}

    def build_targets(
        self, preds: list[torch.Tensor], targets: torch.Tensor, anchors: torch.Tensor | None = None
    ) -> list[LevelTargets]:
        """Return the positives of each level for these predictions (SPEC §3.2)."""
        if anchors is None:
            anchors = self.detect.anchors.to(device=preds[0].device, dtype=torch.float32)
        shapes = [(int(p.shape[2]), int(p.shape[3])) for p in preds]
        return build_targets(targets.to(preds[0].device).float(), shapes, anchors, self.hyp["anchor_t"])

    def _positive_terms(
        self, pi: torch.Tensor, tgt: LevelTargets
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (CIoU per positive, box loss, class loss, landmark loss) of one level."""
        ps = pi[tgt.image, tgt.anchor, tgt.cell_y, tgt.cell_x].float()
        pxy = ps[:, :2].sigmoid() * 2.0 - 0.5
        pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * tgt.anchor_wh
        box_iou = ciou(torch.cat((pxy, pwh), dim=1), tgt.box)
        box_loss = (1.0 - box_iou).mean()

        cls_loss = torch.zeros((), device=pi.device)
        if self.nc > 1:
            cls_target = torch.zeros_like(ps[:, 15:])
            cls_target[torch.arange(len(tgt), device=pi.device), tgt.cls] = 1.0
            cls_loss = self._bce(ps[:, 15:], cls_target, self.hyp.get("cls_pw", 1.0))

        anchor_xy = tgt.anchor_wh.repeat(1, 5)  # (n, 10): w, h, w, h, ...
        pred_marks = ps[:, 5:15] * anchor_xy
        mask = tgt.landmark_mask
        mark_loss = wing_loss_sum(pred_marks * mask, tgt.landmarks * mask) / (mask.sum() + 1e-13)
        return box_iou, box_loss, cls_loss, mark_loss

    @staticmethod
    def _bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
        """Return the mean binary cross-entropy with logits and a positive-class weight."""
        weight = torch.tensor([pos_weight], device=logits.device, dtype=logits.dtype)
        return nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)

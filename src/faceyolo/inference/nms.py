"""Non-maximum suppression for face rows: the original `non_max_suppression_face` semantics (SPEC §6.2).

Works on torch tensors (returns tensors) and on NumPy arrays (returns arrays, never imports torch, for the
ONNX path). With torch input the box NMS runs in `torchvision.ops.nms` when torchvision imports; otherwise
(and always for NumPy input) in `greedy_nms`, a vectorised NumPy greedy NMS with the same keeps.
"""

from __future__ import annotations

import functools

import numpy as np

from faceyolo.geometry import box_iou, xywh_to_xyxy

CLASS_OFFSET = 4096  # boxes of different classes are shifted apart so they never suppress each other
_BLOCK = 128  # rows resolved together in greedy_nms; bounds memory at _BLOCK × kept boxes


def greedy_nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_thres: float) -> np.ndarray:
    """Return the kept indices (K,) int64 of greedy NMS, in descending score order.

    boxes_xyxy (N, 4), scores (N,). A box is suppressed by any kept, higher-scored box with IoU > iou_thres.
    Equal scores keep their input order (stable sort). Exact, without a per-box Python loop: boxes are taken
    in score order in blocks; a block first drops boxes overlapping earlier keeps, then settles the
    suppressions inside the block by fixed-point iteration (entry i only depends on entries before it, so
    the iteration ends at the greedy answer after at most block-size rounds, in practice a few).
    """
    order = np.argsort(-scores, kind="stable")
    boxes = boxes_xyxy[order]
    kept: list[np.ndarray] = []
    for start in range(0, len(order), _BLOCK):
        block = boxes[start : start + _BLOCK]
        survivors = np.arange(len(block))
        if kept:
            earlier_keeps = boxes[np.concatenate(kept)]
            survivors = np.flatnonzero(~(box_iou(earlier_keeps, block) > iou_thres).any(axis=0))
        overlaps = np.triu(box_iou(block[survivors], block[survivors]) > iou_thres, k=1)  # [j, i]: j before i
        keep = np.ones(len(survivors), dtype=bool)
        while True:
            new_keep = ~(overlaps & keep[:, None]).any(axis=0)
            if np.array_equal(new_keep, keep):
                break
            keep = new_keep
        kept.append(start + survivors[keep])
    if not kept:
        return np.zeros(0, dtype=np.int64)
    return order[np.concatenate(kept)].astype(np.int64)


@functools.cache
def _torchvision_nms():
    """Return torchvision.ops.nms, or None when torchvision does not import (it often fails on CPU torch)."""
    try:
        from torchvision.ops import nms
    except Exception:  # ImportError, or RuntimeError "operator torchvision::nms does not exist"
        return None
    return nms


def _candidate_rows(pred: np.ndarray, conf_thres: float) -> np.ndarray:
    """Return detection rows (M, 16) [x1, y1, x2, y2, score, 10 landmarks, cls] of one pred (N, 15+nc).

    obj > conf first; score = obj × cls prob; one row per (box, class) with score > conf, in row order.
    """
    pred = pred[pred[:, 4] > conf_thres]
    class_scores = pred[:, 15:] * pred[:, 4:5]
    rows, classes = np.nonzero(class_scores > conf_thres)
    out = np.empty((len(rows), 16), dtype=np.float32)
    out[:, :4] = xywh_to_xyxy(pred[rows, :4])
    out[:, 4] = class_scores[rows, classes]
    out[:, 5:15] = pred[rows, 5:15]
    out[:, 15] = classes
    return out


def _keep_indices(dets: np.ndarray, iou_thres: float, agnostic: bool, use_torchvision: bool) -> np.ndarray:
    """Return the NMS keeps (K,) of detection rows (M, 16), in descending score order."""
    boxes = dets[:, :4] if agnostic else dets[:, :4] + dets[:, 15:16] * CLASS_OFFSET
    tv_nms = _torchvision_nms() if use_torchvision else None
    if tv_nms is None:
        return greedy_nms(boxes, dets[:, 4], iou_thres)
    import torch

    return tv_nms(torch.from_numpy(boxes), torch.from_numpy(dets[:, 4].copy()), iou_thres).numpy()


def nms_faces(
    pred,
    conf_thres: float = 0.25,
    iou_thres: float = 0.5,
    agnostic: bool = False,
    max_det: int | None = None,
) -> list:
    """Return per-image detections: a list of (K, 16) rows [x1, y1, x2, y2, score, 10 landmarks, cls].

    pred (B, N, 15+nc) decoded rows [cx, cy, w, h, obj, 10 landmarks, cls probs] in input pixels, a torch
    tensor (result: float32 tensors on its device) or a NumPy array (result: float32 arrays). Rows are sorted
    by descending score; `max_det` caps the count (None: no cap, as the original).
    """
    is_numpy = isinstance(pred, np.ndarray)
    results = []
    for image_pred in pred:
        candidates = image_pred[image_pred[:, 4] > conf_thres]  # cheap first cut, on the tensor's device
        if not is_numpy:
            candidates = candidates.detach().float().cpu().numpy()
        dets = _candidate_rows(np.asarray(candidates, dtype=np.float32), conf_thres)
        keep = _keep_indices(dets, iou_thres, agnostic, use_torchvision=not is_numpy)
        dets = dets[keep[:max_det]]
        if not is_numpy:
            import torch

            dets = torch.from_numpy(dets).to(pred.device)
        results.append(dets)
    return results

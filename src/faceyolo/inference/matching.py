"""Association of tracks to detections: IoU cost and an optimal one-to-one assignment (Hungarian)."""

from __future__ import annotations

import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.extras import VIDEO_INSTALL
from faceyolo.geometry import box_iou


def _linear_sum_assignment():
    """Return scipy's Hungarian solver, or raise FaceyoloError saying how to install it."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ModuleNotFoundError:
        raise FaceyoloError(f"tracking needs SciPy: {VIDEO_INSTALL}") from None
    return linear_sum_assignment


def match_by_iou(
    track_boxes_xyxy: np.ndarray, detection_boxes_xyxy: np.ndarray, min_iou: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Return (matches [(track, detection)], unmatched tracks, unmatched detections) by index.

    The assignment maximises the summed IoU of tracks (T, 4) and detections (D, 4); a pair whose IoU is
    below `min_iou` is never matched.
    """
    n_tracks, n_dets = len(track_boxes_xyxy), len(detection_boxes_xyxy)
    if n_tracks == 0 or n_dets == 0:
        return [], list(range(n_tracks)), list(range(n_dets))
    iou = box_iou(np.asarray(track_boxes_xyxy, np.float64), np.asarray(detection_boxes_xyxy, np.float64))
    rows, cols = _linear_sum_assignment()(1 - iou)
    matches = [(int(t), int(d)) for t, d in zip(rows, cols, strict=True) if iou[t, d] >= min_iou]
    matched_tracks = {t for t, _ in matches}
    matched_dets = {d for _, d in matches}
    return (matches, [t for t in range(n_tracks) if t not in matched_tracks],
            [d for d in range(n_dets) if d not in matched_dets])

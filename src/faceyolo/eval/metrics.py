"""Detection metrics of a YOLO-face val set: P, R, mAP@.5 and mAP@.5:.95 as test.py has them (SPEC §4.14).

Per image, predictions (in NMS order, i.e. descending score) are matched first-come to the highest-IoU target
of their class; a match needs IoU > 0.5 and a target not yet taken, and is then correct at every threshold
0.50, 0.55, … 0.95 its IoU exceeds. AP per threshold is the 101-point interpolated area under the PR envelope;
P and R are read off the IoU-0.5 curve at confidence 0.1. This is not the WIDER protocol (`faceyolo.eval`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceyolo.geometry import box_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
PR_CONF = 0.1  # confidence at which P and R are reported
CURVE_POINTS = 1000


def match_predictions(
    pred_xyxy: np.ndarray,
    pred_cls: np.ndarray,
    gt_xyxy: np.ndarray,
    gt_cls: np.ndarray,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> np.ndarray:
    """Return correct (P, T) bool: prediction p is a true positive at IoU threshold t.

    pred_xyxy (P, 4) in NMS order, pred_cls (P,); gt_xyxy (G, 4), gt_cls (G,), same pixel frame.
    """
    correct = np.zeros((len(pred_xyxy), len(iou_thresholds)), dtype=bool)
    for c in np.unique(gt_cls):
        pi, ti = np.flatnonzero(pred_cls == c), np.flatnonzero(gt_cls == c)
        if len(pi) == 0:
            continue
        iou = box_iou(np.asarray(pred_xyxy[pi], np.float64), np.asarray(gt_xyxy[ti], np.float64))
        best, target = iou.max(axis=1), iou.argmax(axis=1)
        candidates = np.flatnonzero(best > iou_thresholds[0])
        _, first = np.unique(target[candidates], return_index=True)  # the first claim on a target wins
        winners = candidates[first]
        correct[pi[winners]] = best[winners, None] > iou_thresholds[None, :]
    return correct


def compute_ap(recall: np.ndarray, precision: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Return (AP, envelope precision, padded recall) of one PR curve, 101-point interpolated.

    recall, precision (N,) in descending-confidence order; the curve is padded with (0, 1) in front and
    (last recall + 0.01, 0) behind, and precision is made non-increasing from the right.
    """
    mrec = np.concatenate(([0.0], recall, [recall[-1] + 0.01]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x)), mpre, mrec


@dataclass
class ClassCurves:
    """Curves per class at IoU 0.5, sampled on `grid` (CURVE_POINTS,) in [0, 1].

    pr (C, CURVE_POINTS): envelope precision at recall = grid; precision, recall, f1 (C, CURVE_POINTS): at
    confidence = grid.
    """

    grid: np.ndarray
    pr: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


@dataclass
class DetectionMetrics:
    """P, R, mAP@.5 and mAP@.5:.95 (means over classes), per-class AP (C, T), and the curves."""

    precision: float
    recall: float
    map50: float
    map: float
    classes: np.ndarray
    ap: np.ndarray
    curves: ClassCurves
    images: int = 0
    targets: int = 0


def ap_per_class(
    correct: np.ndarray,
    conf: np.ndarray,
    pred_cls: np.ndarray,
    target_cls: np.ndarray,
) -> DetectionMetrics:
    """Return the DetectionMetrics of all predictions of a dataset.

    correct (N, T) bool, conf (N,), pred_cls (N,) over every image; target_cls (M,) the class of every
    target. Classes without targets are not scored; a class without predictions scores 0.
    """
    order = np.argsort(-conf, kind="stable")
    correct, conf, pred_cls = correct[order], conf[order], pred_cls[order]
    classes = np.unique(target_cls)
    n_t = correct.shape[1]
    grid = np.linspace(0, 1, CURVE_POINTS)
    ap = np.zeros((len(classes), n_t))
    p, r = np.zeros(len(classes)), np.zeros(len(classes))
    pr, p_curve, r_curve = (np.zeros((len(classes), CURVE_POINTS)) for _ in range(3))
    for k, c in enumerate(classes):
        mine = pred_cls == c
        n_targets = int((target_cls == c).sum())
        if not mine.any():
            continue
        tp = np.cumsum(correct[mine], axis=0)
        fp = np.cumsum(~correct[mine], axis=0)
        recall = tp / (n_targets + 1e-16)
        precision = tp / (tp + fp)
        # np.interp needs increasing x: confidences are descending, so interpolate on -conf
        r[k] = np.interp(-PR_CONF, -conf[mine], recall[:, 0])
        p[k] = np.interp(-PR_CONF, -conf[mine], precision[:, 0])
        r_curve[k] = np.interp(-grid, -conf[mine], recall[:, 0], left=0)
        p_curve[k] = np.interp(-grid, -conf[mine], precision[:, 0], left=1)
        for t in range(n_t):
            ap[k, t], envelope, padded_recall = compute_ap(recall[:, t], precision[:, t])
            if t == 0:
                pr[k] = np.interp(grid, padded_recall, envelope)
    f1 = 2 * p_curve * r_curve / (p_curve + r_curve + 1e-16)
    curves = ClassCurves(grid, pr, p_curve, r_curve, f1)
    if len(classes) == 0:
        return DetectionMetrics(0.0, 0.0, 0.0, 0.0, classes, ap, curves)
    return DetectionMetrics(float(p.mean()), float(r.mean()), float(ap[:, 0].mean()), float(ap.mean()),
                            classes, ap, curves, targets=len(target_cls))


class MetricsAccumulator:
    """Collects per-image matches; `compute()` returns the DetectionMetrics of everything added."""

    def __init__(self, iou_thresholds: np.ndarray = IOU_THRESHOLDS):
        self.iou_thresholds = iou_thresholds
        self._correct, self._conf, self._pred_cls, self._target_cls = [], [], [], []
        self.images = 0

    def add_image(self, pred_xyxy: np.ndarray, pred_conf: np.ndarray, pred_cls: np.ndarray,
                  gt_xyxy: np.ndarray, gt_cls: np.ndarray) -> None:
        """Add one image: predictions (P, 4) xyxy in NMS order, conf (P,), cls (P,); targets (G, 4), (G,)."""
        self.images += 1
        self._correct.append(match_predictions(pred_xyxy, pred_cls, gt_xyxy, gt_cls, self.iou_thresholds))
        self._conf.append(np.asarray(pred_conf, np.float64))
        self._pred_cls.append(np.asarray(pred_cls))
        self._target_cls.append(np.asarray(gt_cls))

    def compute(self) -> DetectionMetrics:
        """Return the metrics of all images added so far."""
        n_t = len(self.iou_thresholds)
        metrics = ap_per_class(
            np.concatenate(self._correct) if self._correct else np.zeros((0, n_t), bool),
            np.concatenate(self._conf) if self._conf else np.zeros(0),
            np.concatenate(self._pred_cls) if self._pred_cls else np.zeros(0),
            np.concatenate(self._target_cls) if self._target_cls else np.zeros(0),
        )
        metrics.images = self.images
        return metrics


def save_metric_plots(metrics: DetectionMetrics, out_dir: str | os.PathLike, names: list[str]) -> list[Path]:
    """Return the PNG paths after plotting the PR curve (IoU 0.5) and P, R, F1 against confidence."""
    from faceyolo.eval.plots import save_curves_png

    out_dir = Path(out_dir)
    label = [names[int(c)] if int(c) < len(names) else str(int(c)) for c in metrics.classes]
    c = metrics.curves
    pr = {f"{n} AP@0.5 {metrics.ap[k, 0]:.3f}": (c.grid, c.pr[k]) for k, n in enumerate(label)}
    paths = [save_curves_png(out_dir / "PR_curve.png", pr, "recall", "precision", "Precision-recall")]
    for file, title, values in (("F1_curve.png", "F1", c.f1), ("P_curve.png", "precision", c.precision),
                                ("R_curve.png", "recall", c.recall)):
        series = {n: (c.grid, values[k]) for k, n in enumerate(label)}
        paths.append(save_curves_png(out_dir / file, series, "confidence", title, f"{title} vs confidence"))
    return paths

"""Check how well the anchors fit the training labels and re-fit them by k-means + evolution (SPEC §4.11)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BPR_REFIT_BELOW = 0.98
MIN_SIDE_PX = 2.0


@dataclass
class AnchorFit:
    """How well anchors (pixels) fit the labels: best possible recall, mean anchors above threshold."""

    bpr: float
    anchors_above: float


def label_sizes(
    image_wh: np.ndarray, labels: list[np.ndarray], img_size: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Return (N, 2) float pixel (w, h) of every labelled face at training scale (long side = img_size).

    image_wh: (n_images, 2) original (w, h). labels: per image (k, >= 5) [cls, cx, cy, w, h, ...] normalised.
    With `rng`, each image's sizes are also scaled by one U(0.9, 1.1) draw, as the fit check does.
    """
    image_wh = np.asarray(image_wh, dtype=np.float64).reshape(-1, 2)
    scaled = img_size * image_wh / image_wh.max(1, keepdims=True)
    if rng is not None:
        scaled = scaled * rng.uniform(0.9, 1.1, size=(len(scaled), 1))
    sizes = [lab[:, 3:5] * wh for lab, wh in zip(labels, scaled, strict=True) if len(lab)]
    return np.concatenate(sizes, 0) if sizes else np.zeros((0, 2))


def anchor_metric(wh: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (best ratio per label (N,), ratios (N, K)); a ratio is the min over sides of min(r, 1/r)."""
    r = wh[:, None] / anchors[None]
    x = np.minimum(r, 1 / r).min(2)
    return x.max(1), x


def anchor_fit(wh: np.ndarray, anchors: np.ndarray, anchor_t: float) -> AnchorFit:
    """Return the best possible recall and mean anchors-above-threshold of `anchors` (K, 2) on `wh` (N, 2)."""
    thr = 1 / anchor_t
    best, x = anchor_metric(wh, anchors)
    return AnchorFit(bpr=float((best > thr).mean()), anchors_above=float((x > thr).sum(1).mean()))


def evolve_anchors(
    wh: np.ndarray, n: int, anchor_t: float, generations: int = 1000, seed: int = 0
) -> np.ndarray:
    """Return `n` anchors (n, 2) pixels sorted by area: k-means on whitened sizes, then a genetic search.

    wh: (N, 2) label sizes in pixels; sizes with both sides under 2 px are left out.
    """
    from scipy.cluster.vq import kmeans

    thr = 1 / anchor_t
    wh = wh[(wh >= MIN_SIDE_PX).any(1)].astype(np.float64)
    if len(wh) < n:
        raise ValueError(f"only {len(wh)} labels of 2 px or more, need at least {n} to fit anchors")
    sigma = wh.std(0)
    sigma[sigma == 0] = 1.0
    centroids, _ = kmeans(wh / sigma, n, iter=30, seed=seed)
    anchors = centroids * sigma
    if len(anchors) < n:  # k-means can drop empty clusters; pad with label sizes
        anchors = np.concatenate((anchors, wh[: n - len(anchors)]), 0)

    def fitness(k: np.ndarray) -> float:
        best, _ = anchor_metric(wh, k)
        return float((best * (best > thr)).mean())

    rng = np.random.default_rng(seed)
    best_fitness = fitness(anchors)
    for _ in range(generations):
        multiplier = np.ones_like(anchors)
        while (multiplier == 1).all():  # make sure something changes
            mutate = rng.random(anchors.shape) < 0.9
            multiplier = (mutate * rng.random() * rng.standard_normal(anchors.shape) * 0.1 + 1).clip(0.3, 3.0)
        candidate = (anchors * multiplier).clip(min=MIN_SIDE_PX)
        candidate_fitness = fitness(candidate)
        if candidate_fitness > best_fitness:
            best_fitness, anchors = candidate_fitness, candidate
    return anchors[np.argsort(anchors.prod(1))]


def check_anchors(
    detect,
    image_wh: np.ndarray,
    labels: list[np.ndarray],
    img_size: int,
    anchor_t: float,
    seed: int = 0,
    generations: int = 1000,
) -> str:
    """Return a report of the anchors' fit; re-fit them in `detect` when the best possible recall < 0.98.

    detect: the Detect head (buffers `anchors` (nl, na, 2) grid units and `anchor_grid` pixels, `stride`).
    image_wh, labels: as for `label_sizes`. New anchors are kept only when they fit better.
    """
    stride = detect.stride.detach().cpu().view(-1, 1, 1).double()
    current = (detect.anchors.detach().cpu().double() * stride).view(-1, 2).numpy()
    wh = label_sizes(image_wh, labels, img_size)
    if len(wh) == 0:
        return "autoanchor: no labelled faces, anchors kept"
    fit = anchor_fit(label_sizes(image_wh, labels, img_size, np.random.default_rng(seed)), current, anchor_t)
    report = f"autoanchor: {fit.anchors_above:.2f} anchors/target, best possible recall {fit.bpr:.4f}"
    if fit.bpr >= BPR_REFIT_BELOW:
        return report + " (anchors kept)"
    try:
        new = evolve_anchors(wh, len(current), anchor_t, generations=generations, seed=seed)
    except ValueError as err:
        return report + f"; cannot re-fit ({err}), anchors kept"
    new_fit = anchor_fit(wh, new, anchor_t)
    if new_fit.bpr <= anchor_fit(wh, current, anchor_t).bpr:
        return report + f"; re-fitted anchors reach only {new_fit.bpr:.4f}, anchors kept"
    set_anchors(detect, new)
    shown = ", ".join(f"{w:.0f},{h:.0f}" for w, h in new)
    return report + f"; re-fitted anchors (best possible recall {new_fit.bpr:.4f}): {shown}"


def set_anchors(detect, anchors_px: np.ndarray) -> None:
    """Write `anchors_px` (nl·na, 2) pixels, sorted by area, into the Detect buffers, small ones on P3."""
    anchor_grid = torch.as_tensor(anchors_px, dtype=detect.anchors.dtype, device=detect.anchors.device)
    anchor_grid = anchor_grid.view(detect.anchors.shape)
    stride = detect.stride.to(anchor_grid.device).view(-1, 1, 1)
    if (stride.view(-1)[-1] - stride.view(-1)[0]).sign() == -1:  # levels listed large stride first
        anchor_grid = anchor_grid.flip(0)
    detect.anchors.copy_(anchor_grid / stride.to(anchor_grid.dtype))
    detect.anchor_grid.copy_(anchor_grid.view(detect.anchor_grid.shape).to(detect.anchor_grid.dtype))

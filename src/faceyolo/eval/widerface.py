"""The official WIDER FACE Easy/Medium/Hard protocol (SPEC §6.6), exact and pure numpy.

Reproduces `widerface_evaluate/evaluation.py` to the last digit, including its quirks: global min-max
score normalisation, the +1 pixel IoU, "ignored" predictions (matched to a face outside the setting) removed
from both TP and proposals, the last-index-with-score≥thr rule, and the unguarded 0/0 precision. Two rules
are added. Each image's boxes are first sorted by descending score (stable), because the last-index rule
assumes it and other tools write boxes in any order: on sorted files this changes nothing, on unsorted
ones it gives the detector's APs instead of ones that depend on the line order. Ground-truth images without
a prediction file are left out entirely (faces not counted, no PR info), so a subset of the val images can
be scored; on a complete prediction folder this is the official full-set rule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceyolo.errors import FaceyoloError

SETTINGS = ("easy", "medium", "hard")
THRESH_NUM = 1000
IOU_THRESH = 0.5
GT_FILES = {"all": "wider_face_val.mat", **{s: f"wider_{s}_val.mat" for s in SETTINGS}}


@dataclass
class GroundTruth:
    """The val ground truth, images in .mat order.

    `keys[i]` = (event, image name without extension); `boxes_xywh[i]` (G, 4) float64 pixels;
    `keep[setting][i]` (K,) int64 0-based indices of image i's faces that belong to the setting.
    """

    keys: list[tuple[str, str]]
    boxes_xywh: list[np.ndarray]
    keep: dict[str, list[np.ndarray]]

    def event_of(self) -> dict[str, str]:
        """Return {image name: event folder} for every val image."""
        return {name: event for event, name in self.keys}


@dataclass
class PredictionSet:
    """Predictions read from a WIDER result folder.

    `boxes[(event, key)]` (P, 5) float64 `x y w h score` in file order, `sources[(event, key)]` the file it
    came from; `malformed` lists "path: reason" for files that could not be read (they are skipped).
    """

    boxes: dict[tuple[str, str], np.ndarray]
    malformed: list[str] = field(default_factory=list)
    folder: Path | None = None
    sources: dict[tuple[str, str], Path] = field(default_factory=dict)


@dataclass
class WiderResult:
    """APs (fractions) and PR curves per setting, with what was scored and what was not.

    `precision[s]`, `recall[s]` (THRESH_NUM,) float64, one point per score threshold 0.999 … 0.0.
    """

    ap: dict[str, float]
    precision: dict[str, np.ndarray]
    recall: dict[str, np.ndarray]
    gt_faces: dict[str, int]
    images: int
    missing: list[str]
    malformed: list[str]


def _mat_cells(path: Path, name: str) -> np.ndarray:
    """Return the (n, 1) object array `name` of a .mat file, or raise FaceyoloError."""
    from scipy.io import loadmat

    if not path.is_file():
        raise FaceyoloError(f"{path}: ground-truth file not found")
    try:
        cells = loadmat(str(path), variable_names=[name]).get(name)
    except (OSError, ValueError, TypeError) as err:
        raise FaceyoloError(f"{path}: cannot read .mat file ({err})") from err
    if cells is None:
        raise FaceyoloError(f"{path}: no '{name}' variable")
    return cells


def load_ground_truth(gt_dir: str | os.PathLike) -> GroundTruth:
    """Return the ground truth read from the four official .mat files in `gt_dir`."""
    gt_dir = Path(gt_dir)
    main = gt_dir / GT_FILES["all"]
    events = _mat_cells(main, "event_list")
    files = _mat_cells(main, "file_list")
    bbx = _mat_cells(main, "face_bbx_list")
    keys, boxes = [], []
    try:
        for e in range(len(events)):
            event = str(events[e, 0][0])
            for i in range(len(files[e, 0])):
                keys.append((event, str(files[e, 0][i, 0][0])))
                boxes.append(np.asarray(bbx[e, 0][i, 0], dtype=np.float64).reshape(-1, 4))
    except (IndexError, TypeError, ValueError) as err:
        raise FaceyoloError(f"{main}: not the WIDER FACE val ground-truth layout ({err})") from None
    keep = {}
    for setting in SETTINGS:
        path = gt_dir / GT_FILES[setting]
        gt_list = _mat_cells(path, "gt_list")
        try:
            per_image = [np.asarray(gt_list[e, 0][i, 0]).reshape(-1).astype(np.int64) - 1
                         for e in range(len(gt_list)) for i in range(len(gt_list[e, 0]))]
        except (IndexError, TypeError, ValueError) as err:
            raise FaceyoloError(f"{path}: not the WIDER FACE setting layout ({err})") from None
        if len(per_image) != len(keys):
            raise FaceyoloError(f"{path}: {len(per_image)} images, but {main.name} lists {len(keys)}")
        keep[setting] = per_image
    return GroundTruth(keys, boxes, keep)


def parse_prediction_text(text: str) -> tuple[str, np.ndarray]:
    """Return (image key, boxes (P, 5) float64 `x y w h score` in file order) of a WIDER result file's text.

    The key is line 1 without any path and with trailing '.', 'j', 'p', 'g' characters stripped, as the
    original does. Blank lines are skipped; fields after the fifth are ignored. Raises ValueError saying
    what is wrong: no name or count line, a count that is not the number of box lines, a field that is not
    a finite number, a negative width or height.
    """
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].strip():
        raise ValueError("needs an image-name line and a count line")
    key = lines[0].strip().split("/")[-1].removesuffix(".jpg")
    try:
        count = int(lines[1])
    except ValueError:
        raise ValueError(f"line 2: face count expected, got {lines[1][:40]!r}") from None
    numbers, body = [], []
    for number, line in enumerate(lines[2:], start=3):
        if line.strip():
            numbers.append(number)
            body.append(line.split()[:5])
    if len(body) != count:
        raise ValueError(f"line 2 says {count} faces, the file has {len(body)} box lines")
    try:
        boxes = np.array(body, dtype=np.float64).reshape(-1, 5)
    except ValueError:
        bad = next(k for k, row in enumerate(body) if len(row) < 5 or not _all_numbers(row))
        got = " ".join(body[bad])[:60]
        raise ValueError(f"line {numbers[bad]}: 'x y w h score' expected, got {got!r}") from None
    for problem, rows in (("not a finite number", ~np.isfinite(boxes).all(axis=1)),
                          ("negative width or height", (boxes[:, 2:4] < 0).any(axis=1))):
        if rows.any():
            bad = int(np.argmax(rows))
            raise ValueError(f"line {numbers[bad]}: {problem} in {' '.join(body[bad])!r}")
    return key, boxes


def _all_numbers(fields: list[str]) -> bool:
    """Return True when every field parses as a float."""
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def read_predictions(pred_dir: str | os.PathLike) -> PredictionSet:
    """Return the predictions of a WIDER result folder `<pred_dir>/<event>/<name>.txt`.

    Files that cannot be read, and every later file naming an image already read, are reported in
    `malformed` and skipped; the rest are read.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FaceyoloError(f"{pred_dir}: prediction folder not found")
    result = PredictionSet({}, folder=pred_dir)
    for path in sorted(pred_dir.glob("*.txt")):
        result.malformed.append(f"{path}: not inside an event folder (<folder>/<event>/<name>.txt)")
    for event_dir in sorted(p for p in pred_dir.iterdir() if p.is_dir()):
        for path in sorted(event_dir.glob("*.txt")):
            try:
                key, boxes = parse_prediction_text(path.read_text(encoding="utf-8", errors="strict"))
            except (OSError, UnicodeDecodeError, ValueError) as err:
                result.malformed.append(f"{path}: {err}")
                continue
            first = result.sources.get((event_dir.name, key))
            if first is not None:
                result.malformed.append(f"{path}: names image {key!r}, already given by {first}")
                continue
            result.boxes[(event_dir.name, key)] = boxes
            result.sources[(event_dir.name, key)] = path
    return result


def normalised_scores(preds: PredictionSet) -> dict[tuple[str, str], np.ndarray]:
    """Return each image's scores min-max normalised over all predictions read (min starts at 1, max at 0)."""
    scores = [b[:, 4] for b in preds.boxes.values() if len(b)]
    lo = min([1.0] + [float(s.min()) for s in scores])
    hi = max([0.0] + [float(s.max()) for s in scores])
    with np.errstate(divide="ignore", invalid="ignore"):
        return {k: (b[:, 4] - lo) / (hi - lo) for k, b in preds.boxes.items()}


def overlaps_plus_one(pred_xywh: np.ndarray, gt_xywh: np.ndarray) -> np.ndarray:
    """Return the (P, G) float64 IoU with the pixel-inclusive (+1) convention of the WIDER toolkit."""
    p = pred_xywh[:, :4].copy()
    p[:, 2:] += p[:, :2]
    g = gt_xywh.copy()
    g[:, 2:] += g[:, :2]
    p_area = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1)
    g_area = (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1)
    iw = np.minimum(p[:, None, 2], g[None, :, 2]) - np.maximum(p[:, None, 0], g[None, :, 0]) + 1
    ih = np.minimum(p[:, None, 3], g[None, :, 3]) - np.maximum(p[:, None, 1], g[None, :, 1]) + 1
    inter = iw * ih
    union = p_area[:, None] + g_area[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((iw > 0) & (ih > 0), inter / union, 0.0)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Return the continuous VOC AP of a PR curve (envelope from the right; NaN propagates as originally)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class _Matched:
    """Best-IoU matches of every prediction of the images that have both faces and boxes, in gt order.

    Within an image the predictions are in descending score order. `starts` (n,) index of each image's
    first prediction; `image` (M,) image of each prediction; `scores` (M,) normalised; `max_iou` (M,) and
    `best_gt` (M,) its best face as a global face index; `gt_index` (n,) the GroundTruth index of each image
    and `gt_starts` (n,) its first global face index; `n_gt` faces in all.
    """

    starts: np.ndarray
    image: np.ndarray
    scores: np.ndarray
    max_iou: np.ndarray
    best_gt: np.ndarray
    gt_index: np.ndarray
    gt_starts: np.ndarray
    n_gt: int


def _concat(parts: list[np.ndarray], dtype) -> np.ndarray:
    """Return the concatenation of parts as dtype (empty when there are none)."""
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _match_images(gt: GroundTruth, preds: PredictionSet, scored: list[int]) -> _Matched:
    """Return the best-IoU match of every prediction in the scored images that have both faces and boxes."""
    norm = normalised_scores(preds)
    starts, gt_index, gt_starts, scores, max_iou, best_gt = [], [], [], [], [], []
    n_pred = n_gt = 0
    for i in scored:
        boxes, faces = preds.boxes[gt.keys[i]], gt.boxes_xywh[i]
        if len(boxes) == 0 or len(faces) == 0:
            continue
        # the protocol walks each image's boxes as if sorted by descending score: sort them so it holds
        order = np.argsort(-boxes[:, 4], kind="stable")
        iou = overlaps_plus_one(boxes[order], faces)
        starts.append(n_pred)
        gt_index.append(i)
        gt_starts.append(n_gt)
        scores.append(norm[gt.keys[i]][order])
        max_iou.append(iou.max(axis=1))
        best_gt.append(iou.argmax(axis=1) + n_gt)
        n_pred += len(boxes)
        n_gt += len(faces)
    starts_arr = np.array(starts, dtype=np.int64)
    counts = np.diff(np.append(starts_arr, n_pred))
    return _Matched(
        starts=starts_arr,
        image=np.repeat(np.arange(len(starts)), counts),
        scores=_concat(scores, np.float64),
        max_iou=_concat(max_iou, np.float64),
        best_gt=_concat(best_gt, np.int64),
        gt_index=np.array(gt_index, dtype=np.int64),
        gt_starts=np.array(gt_starts, dtype=np.int64),
        n_gt=n_gt,
    )


def _segment_cumsum(values: np.ndarray, image: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Return the running sum of `values` (M,) restarted at each image's first prediction."""
    total = np.cumsum(values)
    before = np.concatenate(([0], total))[starts]
    return total - before[image]


def _pr_counts(m: _Matched, keep: np.ndarray, iou_thresh: float, thresh_num: int) -> np.ndarray:
    """Return (thresh_num, 2) int64 [proposals, true positives] summed over images, per score threshold.

    `keep` (n_gt,) bool marks the faces of the setting. Per image, in descending score order: a prediction
    whose best face (over all faces) has IoU ≥ iou_thresh is "ignored" when that face is outside the
    setting, and recalls it when it is inside and not yet recalled. At threshold t the image contributes, up
    to its last prediction with score ≥ t, the non-ignored predictions and the faces recalled so far.
    """
    matched = m.max_iou >= iou_thresh
    hits_kept = keep[m.best_gt]
    counted = ~(matched & ~hits_kept)
    candidates = np.flatnonzero(matched & hits_kept)
    _, first = np.unique(m.best_gt[candidates], return_index=True)
    recalls = np.zeros(len(m.scores), dtype=np.int64)
    recalls[candidates[first]] = 1
    recalled_so_far = _segment_cumsum(recalls, m.image, m.starts)
    counted_so_far = _segment_cumsum(counted.astype(np.int64), m.image, m.starts)

    # last[i, t]: the last prediction of image i with score >= thresholds[t] (-1: none). A prediction covers
    # every threshold from the first one its score reaches; a running max over t then gives the last index.
    thresholds = 1 - (np.arange(thresh_num) + 1) / thresh_num
    first_t = np.searchsorted(-thresholds, -m.scores, side="left")
    last = np.full((len(m.starts), thresh_num + 1), -1, dtype=np.int64)
    np.maximum.at(last, (m.image, first_t), np.arange(len(m.scores)) - m.starts[m.image])
    last = np.maximum.accumulate(last[:, :thresh_num], axis=1)
    some = last >= 0
    flat = np.where(some, m.starts[:, None] + last, 0)
    proposals = np.where(some, counted_so_far[flat], 0).sum(axis=0) if len(m.scores) else np.zeros(thresh_num)
    tps = np.where(some, recalled_so_far[flat], 0).sum(axis=0) if len(m.scores) else np.zeros(thresh_num)
    return np.stack([proposals, tps], axis=1).astype(np.int64)


def evaluate(gt: GroundTruth, preds: PredictionSet, iou_thresh: float = IOU_THRESH,
             thresh_num: int = THRESH_NUM) -> WiderResult:
    """Return the WIDER APs of `preds`, scoring only the ground-truth images that have a prediction file."""
    scored = [i for i, key in enumerate(gt.keys) if key in preds.boxes]
    if not scored:
        raise FaceyoloError(f"{preds.folder or 'predictions'}: no prediction file matches a WIDER val image "
                            f"(expected <folder>/<event>/<image name>.txt; {len(preds.malformed)} malformed)")
    missing = [f"{event}/{name}" for event, name in gt.keys if (event, name) not in preds.boxes]
    known = set(gt.keys)
    strangers = [f"{preds.sources.get(key, '/'.join(key))}: {key[0]}/{key[1]} is not a WIDER val image"
                 for key in preds.boxes if key not in known]
    m = _match_images(gt, preds, scored)
    result = WiderResult({}, {}, {}, {}, len(scored), missing, preds.malformed + strangers)
    for setting in SETTINGS:
        keep = np.zeros(m.n_gt, dtype=bool)
        for start, i in zip(m.gt_starts, m.gt_index, strict=True):
            keep[start + gt.keep[setting][i]] = True
        counts = _pr_counts(m, keep, iou_thresh, thresh_num).astype(np.float64)
        count_face = sum(len(gt.keep[setting][i]) for i in scored)
        with np.errstate(divide="ignore", invalid="ignore"):
            result.precision[setting] = counts[:, 1] / counts[:, 0]
            result.recall[setting] = counts[:, 1] / count_face
        result.ap[setting] = voc_ap(result.recall[setting], result.precision[setting])
        result.gt_faces[setting] = count_face
    return result


def evaluate_folder(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> WiderResult:
    """Return the WIDER APs of the result folder `pred_dir` against the .mat files in `gt_dir`."""
    return evaluate(load_ground_truth(gt_dir), read_predictions(pred_dir))

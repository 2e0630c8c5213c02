"""The `faceyolo eval widerface` task: detect (or take a prediction folder), score, plot, save.

Results go to a fresh run folder (runs/eval/widerface, widerface2, …): `predictions/` when a detector ran,
`pr_curves.png`, `results.json`, and `missing.txt` / `problems.txt` listing files that were not scored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from faceyolo.errors import FaceyoloError
from faceyolo.eval.plots import save_widerface_pr
from faceyolo.eval.predictions import WIDER_CONF, WIDER_IMG_SIZE, WIDER_IOU, find_images, write_predictions
from faceyolo.eval.widerface import SETTINGS, WiderResult, evaluate, load_ground_truth, read_predictions
from faceyolo.files import atomic_write_json, atomic_write_text, new_run_dir


@dataclass
class WiderEvalReport:
    """The outcome of a WIDER evaluation run: the scores, where things were written, what was skipped."""

    result: WiderResult
    run_dir: Path
    predictions_dir: Path
    plot_path: Path
    skipped_images: list[str]

    def summary(self) -> dict:
        """Return {"easy": AP, "medium": AP, "hard": AP, "images": N}, APs as fractions."""
        return {**{s: self.result.ap[s] for s in SETTINGS}, "images": self.result.images}

    def lines(self, shown: int = 10) -> list[str]:
        """Return the printable report: the AP table, what was scored, and files not scored by name."""
        r = self.result
        out = [f"{'setting':<8}{'AP':>8}{'faces':>8}"]
        out += [f"{s:<8}{r.ap[s]:>8.4f}{r.gt_faces[s]:>8}" for s in SETTINGS]
        out.append(f"scored {r.images} of {r.images + len(r.missing)} WIDER val images "
                   f"(images without a prediction file are left out)")
        # names of missing files are printed only when few: many means a subset was scored on purpose
        for title, items, listing, show in (
            ("malformed prediction files (skipped)", r.malformed, "problems.txt", True),
            ("images not used", self.skipped_images, "problems.txt", True),
            ("val images without a prediction file", r.missing, "missing.txt", len(r.missing) <= shown),
        ):
            if items and not show:
                out.append(f"{len(items)} {title}, listed in {self.run_dir / listing}")
            elif items:
                out.append(f"{len(items)} {title}:")
                out += [f"  {item}" for item in items[:shown]]
                if len(items) > shown:
                    out.append(f"  … {len(items) - shown} more in {self.run_dir / listing}")
        out += [f"predictions: {self.predictions_dir}", f"PR curves: {self.plot_path}",
                f"results: {self.run_dir / 'results.json'}"]
        return out


def _detect_to_folder(weights, images, out_dir: Path, event_of: dict[str, str], img_size: int, conf: float,
                      iou: float, flip: bool, scales: Sequence[float], device: str, batch_size: int,
                      progress: bool) -> list[str]:
    """Return the images skipped after writing WIDER prediction files for every image under `images`."""
    from tqdm import tqdm

    from faceyolo.inference.detector import FaceDetector

    paths = find_images(images)
    if not paths:
        raise FaceyoloError(f"{images}: no images found")
    # img_size here is a placeholder: detect_passes sizes each pass itself (img_size 0 = per-image size)
    detector = FaceDetector.from_file(weights, device=device, conf=conf, iou=iou,
                                      img_size=WIDER_IMG_SIZE, max_det=None)
    detector.batch_size = batch_size
    with tqdm(total=len(paths), desc="detect", unit="img", disable=not progress) as bar:
        summary = write_predictions(detector, paths, out_dir, event_of, img_size, scales, flip,
                                    chunk=batch_size, progress=bar.update)
    return summary.skipped


def run_widerface_eval(
    gt_dir: str | os.PathLike,
    predictions: str | os.PathLike | None = None,
    weights: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    project: str | os.PathLike = "runs/eval",
    name: str = "widerface",
    img_size: int = WIDER_IMG_SIZE,
    conf: float = WIDER_CONF,
    iou: float = WIDER_IOU,
    flip: bool = False,
    scales: Sequence[float] = (1.0,),
    device: str = "",
    batch_size: int = 16,
    json_path: str | os.PathLike | None = None,
    progress: bool = True,
) -> WiderEvalReport:
    """Return the WIDER Easy/Medium/Hard report of `weights` run on `images`, or of a `predictions` folder.

    `weights` None (and no `predictions`) runs the packaged default model, as `faceyolo detect` does.
    Only the val images that have a prediction file are scored (subset rule of SPEC §6.6 / faceyolo).
    `json_path` also receives {"easy", "medium", "hard", "images"}.
    """
    if predictions is not None and weights is not None:
        raise FaceyoloError("give either --weights (with --images) or --predictions, not both")
    detecting = predictions is None
    if detecting and images is None:
        raise FaceyoloError(f"{'--weights' if weights else 'the default model'} needs --images (a folder of "
                            "WIDER val images), or give --predictions to score a prediction folder")
    gt = load_ground_truth(gt_dir)
    run_dir = new_run_dir(project, name)
    skipped: list[str] = []
    if detecting:
        pred_dir = run_dir / "predictions"
        skipped = _detect_to_folder(weights, images, pred_dir, gt.event_of(), img_size, conf, iou, flip,
                                    scales, device, batch_size, progress)
    else:
        pred_dir = Path(predictions)
    result = evaluate(gt, read_predictions(pred_dir))
    report = WiderEvalReport(result, run_dir, pred_dir, run_dir / "pr_curves.png", skipped)
    save_widerface_pr(report.plot_path, result)
    details = {**report.summary(), "gt_faces": result.gt_faces, "missing": len(result.missing),
               "malformed": len(result.malformed), "skipped_images": len(skipped),
               "predictions": str(pred_dir)}
    if detecting:
        details["detection"] = {"weights": str(weights) if weights else "default", "img_size": img_size,
                                "conf": conf, "iou": iou, "flip": flip, "scales": list(scales)}
    atomic_write_json(run_dir / "results.json", details)
    if result.missing:
        atomic_write_text(run_dir / "missing.txt", "\n".join(result.missing) + "\n")
    if result.malformed or skipped:
        atomic_write_text(run_dir / "problems.txt", "\n".join(result.malformed + skipped) + "\n")
    if json_path is not None:
        atomic_write_json(json_path, report.summary())
    return report

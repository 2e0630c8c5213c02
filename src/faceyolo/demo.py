"""`faceyolo demo` (`make demo`): the packaged default model on a public-domain photograph.

No third-party photo is committed and nothing is downloaded: the photograph is `grace_hopper.jpg` in
matplotlib's sample data, the US Navy portrait of Rear Admiral Grace Hopper (a work of the US government,
in the public domain). matplotlib comes with `faceyolo[train]`; the lean install takes a photo of yours.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from faceyolo.errors import FaceyoloError
from faceyolo.extras import TRAIN_INSTALL, is_installed

DEMO_PHOTO = "grace_hopper.jpg"


def demo_photo() -> Path:
    """Return the path of the demo photograph inside matplotlib's sample data (matplotlib not imported)."""
    if not is_installed("matplotlib"):
        raise FaceyoloError(f"the demo photograph comes with matplotlib, which the lean install leaves out: "
                            f"pass a photo (faceyolo demo PHOTO) or {TRAIN_INSTALL}")
    package = Path(importlib.util.find_spec("matplotlib").origin).parent
    path = package / "mpl-data" / "sample_data" / DEMO_PHOTO
    if not path.is_file():
        raise FaceyoloError(f"{path}: demo photograph missing from matplotlib's sample data")
    return path


def run_demo(project: str | os.PathLike = "runs/demo", weights: str | os.PathLike | None = None,
             photo: str | os.PathLike | None = None) -> dict:
    """Return the JSON record of detecting faces in `photo` (None: the demo photograph), under `project`.

    The record is what `faceyolo detect --json` writes, plus "run_dir" and "summary".
    """
    from faceyolo.inference.run import run_detect

    photo = Path(photo) if photo is not None else demo_photo()
    if not photo.is_file():
        raise FaceyoloError(f"{photo}: no such photo")
    summary = run_detect(str(photo), weights=weights, save_json=True, project=project, name="exp",
                         progress=False)
    record = json.loads((summary.run_dir / f"{photo.stem}.json").read_text())
    return {**record, "run_dir": str(summary.run_dir), "summary": summary.line()}


def describe(record: dict) -> str:
    """Return a few human lines listing the faces in a demo record."""
    lines = [f"{record['image']}: {record['width']}x{record['height']}, {len(record['faces'])} face(s)"]
    names = ("left eye", "right eye", "nose", "left mouth", "right mouth")
    for k, face in enumerate(record["faces"], 1):
        x1, y1, x2, y2 = (round(v) for v in face["box"])
        pairs = zip(names, face["landmarks"], strict=True)
        points = ", ".join(f"{n} ({x:.0f},{y:.0f})" for n, (x, y) in pairs)
        lines.append(f"  face {k}: box ({x1},{y1})-({x2},{y2}) score {face['score']:.2f}; {points}")
    lines.append(record["summary"])
    return "\n".join(lines)

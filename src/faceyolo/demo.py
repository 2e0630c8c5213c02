"""`faceyolo demo` (`make demo`): the packaged default model on a public-domain photograph.

The photograph ships with a dependency, so nothing is downloaded and no third-party photo is committed:
matplotlib's sample data holds `grace_hopper.jpg`, the US Navy portrait of Rear Admiral Grace Hopper
(a work of the US government, in the public domain).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from faceyolo.errors import FaceyoloError

DEMO_PHOTO = "grace_hopper.jpg"


def demo_photo() -> Path:
    """Return the path of the demo photograph inside matplotlib's sample data."""
    import matplotlib.cbook

    try:
        path = Path(matplotlib.cbook.get_sample_data(DEMO_PHOTO, asfileobj=False))
    except (OSError, ValueError) as err:
        raise FaceyoloError(f"matplotlib sample data: {DEMO_PHOTO} not found ({err})") from err
    if not path.is_file():
        raise FaceyoloError(f"{path}: demo photograph missing from matplotlib's sample data")
    return path


def run_demo(project: str | os.PathLike = "runs/demo", weights: str | os.PathLike | None = None) -> dict:
    """Return the JSON record of detecting faces in the demo photograph (written under `project`).

    The record is what `faceyolo detect --json` writes, plus "run_dir" and "summary".
    """
    from faceyolo.inference.run import run_detect

    photo = demo_photo()
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

"""The lean install: detection never imports the `[train]` extra, and what needs it says so in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from faceyolo.extras import TRAIN_EXTRA, TRAIN_INSTALL
from faceyolo.inference.detector import DEFAULT_SAFETENSORS

# Put first in a subprocess: importing any [train] module then fails, as in a venv without them.
HIDE_TRAIN_EXTRA = f"""
import importlib.abc, sys

class HideTrainExtra(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {(*TRAIN_EXTRA, "torchvision")!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)")
        return None

sys.meta_path.insert(0, HideTrainExtra())
"""
IMPORTED_EXTRA = f"sorted({{m.split('.')[0] for m in sys.modules}} & set({TRAIN_EXTRA!r}))"


def run_hidden(code: str, cwd) -> dict:
    """Return the JSON that `code` prints last, run in a subprocess with the [train] extra hidden."""
    result = subprocess.run([sys.executable, "-c", HIDE_TRAIN_EXTRA + code], capture_output=True, text=True,
                            cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def photos(tmp_path):
    """A folder of two generated pictures (no faces needed: what matters is what gets imported)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a.jpg", (360, 480, 3)), ("b.png", (200, 150, 3))):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, shape, dtype=np.uint8))
    return folder


def test_default_detector_and_detect_command_never_import_torch(photos, tmp_path):
    code = f"""
import json, sys
from faceyolo import FaceDetector
from faceyolo.cli import main
from faceyolo.inference.detector import DEFAULT_ONNX

faces = FaceDetector.default()({str(photos / "a.jpg")!r})
faces += FaceDetector.from_file(DEFAULT_ONNX)({str(photos / "b.png")!r})
status = main(["detect", {str(photos)!r}, "--json", "--project", {str(tmp_path / "runs")!r}])
print(json.dumps({{"status": status, "faces": len(faces), "imported": {IMPORTED_EXTRA}}}))
"""
    outcome = run_hidden(code, tmp_path)
    assert outcome["status"] == 0 and outcome["imported"] == []
    assert sorted(p.name for p in (tmp_path / "runs" / "exp").glob("*.json")) == ["a.json", "b.json"]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "data.yaml", "--project", "runs"],
        ["val", "--weights", "w.safetensors", "--data", "data.yaml", "--project", "runs"],
        ["eval", "widerface", "--predictions", "p", "--gt-dir", "gt", "--project", "runs"],
        ["export", "--weights", "w.safetensors"],
        ["info", "--model", "yolov5n"],
        ["convert-weights", "w.pt", "w.safetensors"],
        ["data", "show", "--data", "data.yaml", "--project", "runs"],
        ["annotate", "--data", "data.yaml", "--teacher", "retinaface"],
        ["detect", "photos", "--weights", "DEFAULT_SAFETENSORS", "--project", "runs"],
        ["demo", "--project", "runs"],
    ],
)
def test_what_needs_the_train_extra_says_so_in_one_line_and_writes_nothing(photos, tmp_path, argv):
    argv = [str(DEFAULT_SAFETENSORS) if a == "DEFAULT_SAFETENSORS" else a for a in argv]
    code = f"""
import contextlib, io, json, sys
from faceyolo.cli import main

err = io.StringIO()
with contextlib.redirect_stderr(err):
    status = main({argv!r})
print(json.dumps({{"status": status, "err": err.getvalue(), "imported": {IMPORTED_EXTRA}}}))
"""
    outcome = run_hidden(code, photos.parent)
    assert outcome["status"] == 2
    assert outcome["err"].count("\n") == 1 and TRAIN_INSTALL in outcome["err"], outcome["err"]
    assert outcome["imported"] == []
    assert not (photos.parent / "runs").exists()

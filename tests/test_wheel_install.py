"""A user's install: the wheel, in a fresh venv without torch, finds faces with `demo` and `detect`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import cv2
import pytest

from faceyolo.demo import demo_photo
from faceyolo.extras import TRAIN_INSTALL

REPO = Path(__file__).resolve().parents[1]


def _run(*argv, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=600)
    if check:
        assert result.returncode == 0, f"{argv}: {result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def lean_bin(tmp_path_factory) -> Path:
    """Return the bin folder of a fresh venv holding the wheel built from this checkout (no extras)."""
    root = tmp_path_factory.mktemp("lean")
    source = root / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".*", "*.egg-info", "__pycache__", "build", "dist", "runs", "tests", "benchmarks"))
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist",
         source)
    wheel = next((root / "dist").glob("faceyolo-*.whl"))
    venv.create(root / "venv", with_pip=True)
    _run(root / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    return root / "venv" / "bin"


def test_wheel_installs_without_torch_and_detects_faces(lean_bin, tmp_path):
    imports = _run(lean_bin / "python", "-c", "import torch", check=False)
    assert imports.returncode != 0 and "No module named 'torch'" in imports.stderr
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = cv2.imread(str(demo_photo()))
    cv2.imwrite(str(photos / "portrait.jpg"), photo)
    cv2.imwrite(str(photos / "mirrored.png"), photo[:, ::-1])

    demo = _run(lean_bin / "faceyolo", "demo", photos / "portrait.jpg", "--project", tmp_path / "demo")
    assert "portrait.jpg: 512x600, 1 face(s)" in demo.stdout
    _run(lean_bin / "faceyolo", "detect", photos, "--json", "--project", tmp_path / "detect")
    records = {p.name: json.loads(p.read_text()) for p in (tmp_path / "detect" / "exp").glob("*.json")}
    assert set(records) == {"portrait.json", "mirrored.json"}
    assert all(len(record["faces"]) == 1 for record in records.values())

    train = _run(lean_bin / "faceyolo", "train", "--data", "data.yaml", cwd=tmp_path, check=False)
    assert train.returncode == 2 and TRAIN_INSTALL in train.stderr and "Traceback" not in train.stderr

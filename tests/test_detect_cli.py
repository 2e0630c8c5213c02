"""`faceyolo detect`: outputs, JSON schema, skipped files, videos, run folders and error exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceyolo.cli import main
from faceyolo.errors import FaceyoloError
from faceyolo.inference import detector as detector_module
from faceyolo.inference.sources import Source, SourceError

ZIDANE = "reference/yolov5n-0.5/raw/images/zidane.jpg"
BUS = "reference/yolov5n-0.5/raw/images/bus.jpg"


@pytest.fixture()
def photo_folder(tmp_path, shared) -> Path:
    """A folder with two small photos (one in a subfolder), a corrupt JPEG and a text file."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "zidane.jpg"), cv2.resize(cv2.imread(str(shared / ZIDANE)), (640, 360)))
    cv2.imwrite(str(folder / "sub" / "bus.png"), cv2.resize(cv2.imread(str(shared / BUS)), (405, 540)))
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_detect_folder_writes_outputs_and_skips_bad_files_by_name(
    photo_folder, official_pt, tmp_path, capsys
):
    project = tmp_path / "runs"
    argv = ["detect", str(photo_folder), "--weights", str(official_pt), "--json", "--save-crops",
            "--save-aligned", "--project", str(project), "--name", "faces"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skipped corrupt.jpg: cannot decode image" in captured.err
    assert "skipped notes.txt: unsupported file type" in captured.err
    assert "2 images" in captured.out and "2 skipped" in captured.out

    run = project / "faces"
    assert cv2.imread(str(run / "zidane.jpg")).shape == (360, 640, 3)
    assert cv2.imread(str(run / "sub" / "bus.png")).shape == (540, 405, 3)
    record = json.loads((run / "zidane.json").read_text())
    assert set(record) == {"image", "width", "height", "faces"}
    assert (record["width"], record["height"]) == (640, 360)
    assert record["image"] == str(photo_folder / "zidane.jpg")
    assert len(record["faces"]) == 2
    for face in record["faces"]:
        assert set(face) == {"box", "score", "landmarks"}
        x1, y1, x2, y2 = face["box"]
        assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360 and 0.5 < face["score"] <= 1
        assert np.array(face["landmarks"]).shape == (5, 2)
    assert json.loads((run / "sub" / "bus.json").read_text())["faces"]
    assert not (run / "corrupt.json").exists()
    assert sorted(p.name for p in (run / "crops").glob("zidane_*.jpg")) == ["zidane_0.jpg", "zidane_1.jpg"]
    chips = sorted((run / "aligned").rglob("*.jpg"))
    assert len(chips) >= 3 and all(cv2.imread(str(c)).shape == (112, 112, 3) for c in chips)

    assert main(argv) == 0  # a second run never overwrites the first
    assert (project / "faces2" / "zidane.jpg").is_file()


def test_detect_video_writes_annotated_mp4_and_per_frame_json(tmp_path, shared, official_pt):
    video = tmp_path / "clip.avi"
    frame = cv2.resize(cv2.imread(str(shared / ZIDANE)), (320, 192))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 192))
    for shift in range(3):
        writer.write(np.roll(frame, 4 * shift, axis=1))
    writer.release()
    project = tmp_path / "runs"
    argv = ["detect", str(video), "--weights", str(official_pt), "--json", "--project", str(project)]
    assert main(argv) == 0
    capture = cv2.VideoCapture(str(project / "exp" / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()
    record = json.loads((project / "exp" / "clip.json").read_text())
    assert record["video"] == str(video) and record["fps"] == pytest.approx(10)
    assert [f["frame"] for f in record["frames"]] == [0, 1, 2]
    assert all(f["faces"] for f in record["frames"])


def test_glob_source_names_outputs_relative_to_the_folder_before_the_wildcard(photo_folder):
    source = Source(str(photo_folder / "**" / "*.png"))
    items = list(source)
    assert len(source) == 1 and [item.name for item in items] == ["sub/bus.png"]
    folder_items = list(Source(str(photo_folder)))
    errors = {item.name for item in folder_items if isinstance(item, SourceError)}
    assert errors == {"corrupt.jpg", "notes.txt"}
    (photo_folder / ".cache").mkdir()
    (photo_folder / ".cache" / "thumb.jpg").write_bytes(b"")
    assert len(Source(str(photo_folder))) == 4  # hidden files and folders are left out
    (photo_folder.parent / "empty").mkdir()
    with pytest.raises(FaceyoloError, match="holds no files"):
        Source(str(photo_folder.parent / "empty"))


def test_detect_without_weights_asks_for_them_when_no_default_model_ships(
    photo_folder, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(detector_module, "DEFAULT_ONNX", tmp_path / "absent.onnx")
    assert main(["detect", str(photo_folder), "--project", str(tmp_path / "runs")]) == 2
    assert "pass --weights" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_detect_missing_source_exits_2_with_the_name(official_pt, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["detect", str(missing), "--weights", str(official_pt), "--project", str(tmp_path)]) == 2
    assert f"{missing}: no such file or folder" in capsys.readouterr().err


def test_detection_modules_load_without_torch():
    code = "import sys, faceyolo.inference.run; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

"""`faceyolo blur` and `faceyolo detect --track` end to end with the packaged default model, on a clip with
sound made from two real face crops (zidane.jpg) crossing each other; the second face scores near the
threshold in many frames and the crossing hides one face for a few, as in real footage."""

from __future__ import annotations

import json

import cv2
import motmetrics as mm
import numpy as np
import pytest

from faceyolo.cli import main
from faceyolo.geometry import box_iou
from video_scenes import crossing_scene, decoded_frames, face_crops, leak_share, packets, write_clip

pytest.importorskip("av")
ZIDANE = "reference/yolov5n-0.5/raw/images/zidane.jpg"


@pytest.fixture(scope="module")
def scene(shared):
    """The crossing scene with the two most confident faces of zidane.jpg, 72 px wide with some margin."""
    sprites, inside = face_crops(cv2.imread(str(shared / ZIDANE)), 72)
    return crossing_scene(sprites, frames=26, faces_in_sprites=inside)


@pytest.fixture(scope="module")
def clip(scene, tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_clip(path, scene, audio=True)
    return path


def test_blur_cli_keeps_the_sound_and_frame_count_and_shows_no_face(scene, clip, tmp_path, capsys):
    project = tmp_path / "runs"
    assert main(["blur", str(clip), "--method", "solid", "--img-size", "320", "--project", str(project)]) == 0
    assert main(["blur", str(clip), "--method", "solid", "--no-track", "--img-size", "320",
                 "--project", str(project)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and f"{scene.frames} video frames" in lines[0] and "faces hidden" in lines[0]
    out = project / "exp" / "clip.mp4"
    assert packets(out, "audio") == packets(clip, "audio")
    leaks = {}
    for run in ("exp", "exp2"):
        frames = decoded_frames(project / run / "clip.mp4")
        assert len(frames) == scene.frames
        leaks[run] = leak_share(scene, [frame.max(axis=2) < 40 for frame in frames])
    assert leaks["exp"] == 0  # tracking hides the face through the frames where it scores low
    assert leaks["exp2"] < 0.5  # --no-track blurs too; a weaker model leaks a few frames


def test_detect_track_json_gives_one_stable_id_per_face(scene, clip, tmp_path):
    project = tmp_path / "runs"
    argv = ["detect", str(clip), "--track", "--json", "--img-size", "320", "--project", str(project)]
    assert main(argv) == 0
    record = json.loads((project / "exp" / "clip.json").read_text())
    assert [f["frame"] for f in record["frames"]] == list(range(scene.frames))
    assert record["frames"][3]["time"] == pytest.approx(3 / scene.fps, abs=1e-3)
    accumulator = mm.MOTAccumulator(auto_id=True)
    for k, frame in enumerate(record["frames"]):
        truth = scene.ground_truth(k)
        boxes = np.array([f["box"] for f in frame["faces"]], dtype=np.float32).reshape(-1, 4)
        distance = 1 - box_iou(np.array([b for _, b in truth]).reshape(-1, 4), boxes)
        distance[distance > 0.5] = np.nan
        accumulator.update([i for i, _ in truth], [f["track_id"] for f in frame["faces"]], distance)
    figures = mm.metrics.create().compute(accumulator, metrics=["num_switches", "idf1"]).iloc[0]
    assert figures["num_switches"] == 0 and figures["idf1"] > 0.8
    assert cv2.VideoCapture(str(project / "exp" / "clip.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == scene.frames

"""The packaged default model and `faceyolo demo` (make demo)."""

import numpy as np

from faceyolo.demo import run_demo
from faceyolo.inference.detector import DEFAULT_WEIGHTS, FaceDetector
from faceyolo.weights import read_weights


def test_default_model_ships_small_with_its_provenance():
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 1024 * 1024
    _, meta = read_weights(DEFAULT_WEIGHTS)
    training = meta["training"]
    for key in ("data", "teacher", "epochs", "img_size", "widerface_val_sample_ap"):
        assert key in training, key
    assert set(training["widerface_val_sample_ap"]) == {"easy", "medium", "hard"}
    assert "yolov5" not in training["teacher"].lower()  # never the GPL official weights


def test_demo_finds_the_face_with_landmarks_inside_the_box(tmp_path):
    record = run_demo(project=tmp_path)
    assert (tmp_path / "exp" / "grace_hopper.jpg").is_file()
    assert (tmp_path / "exp" / "grace_hopper.json").is_file()
    best = max(record["faces"], key=lambda face: face["score"])
    x1, y1, x2, y2 = best["box"]
    # The portrait's face: centred in the upper half of the 512x600 photo, about 190 px wide.
    assert 150 < (x1 + x2) / 2 < 380 and 120 < (y1 + y2) / 2 < 330
    assert 100 < x2 - x1 < 300
    points = np.array(best["landmarks"])
    assert points.shape == (5, 2)
    assert np.all((points[:, 0] >= x1) & (points[:, 0] <= x2) & (points[:, 1] >= y1) & (points[:, 1] <= y2))
    left_eye, right_eye = points[0], points[1]
    assert left_eye[0] < right_eye[0]  # L0 is the eye on the image's left


def test_detect_without_weights_uses_the_default_model(tmp_path):
    from faceyolo.demo import demo_photo
    from faceyolo.inference.run import run_detect

    summary = run_detect(str(demo_photo()), weights=None, project=tmp_path, name="d", progress=False)
    assert summary.images == 1 and summary.faces >= 1
    faces = FaceDetector.default()(str(demo_photo()))
    assert len(faces) == summary.faces

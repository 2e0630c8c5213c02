"""The packaged default model and `faceyolo demo` (make demo)."""

import cv2
import numpy as np

from faceyolo.demo import demo_photo, run_demo
from faceyolo.geometry import box_iou
from faceyolo.inference.detector import DEFAULT_ONNX, DEFAULT_SAFETENSORS, FaceDetector
from faceyolo.inference.onnx_backend import create_session
from faceyolo.inference.onnx_metadata import decode_metadata
from faceyolo.weights import read_weights


def test_default_model_ships_small_with_its_provenance():
    assert DEFAULT_SAFETENSORS.stat().st_size < 5 * 1024 * 1024
    assert DEFAULT_ONNX.stat().st_size < 5 * 1024 * 1024
    _, meta = read_weights(DEFAULT_SAFETENSORS)
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
    from faceyolo.inference.run import run_detect

    summary = run_detect(str(demo_photo()), weights=None, project=tmp_path, name="d", progress=False)
    assert summary.images == 1 and summary.faces >= 1
    faces = FaceDetector.default()(str(demo_photo()))
    assert len(faces) == summary.faces


def test_default_onnx_takes_any_height_and_width_of_the_safetensors_model():
    session = create_session(DEFAULT_ONNX)
    assert session.get_inputs()[0].shape[2:] == ["height", "width"]
    _, meta = read_weights(DEFAULT_SAFETENSORS)
    onnx_meta = decode_metadata(session.get_modelmeta().custom_metadata_map)
    assert onnx_meta["variant"] == meta["variant"] and onnx_meta["anchors_px"] == meta["anchors_px"]


def test_default_onnx_and_safetensors_find_the_same_faces():
    photo = cv2.imread(str(demo_photo()))
    # The photo, a half-size copy beside it and its mirror: several faces, a non-square input.
    small = cv2.resize(photo, None, fx=0.5, fy=0.5)
    canvas = np.full((photo.shape[0], photo.shape[1] * 2 + small.shape[1], 3), 90, np.uint8)
    canvas[:, : photo.shape[1]] = photo
    canvas[: small.shape[0], photo.shape[1] : photo.shape[1] + small.shape[1]] = small
    canvas[:, photo.shape[1] + small.shape[1] :] = photo[:, ::-1]
    onnx_faces = FaceDetector.from_file(DEFAULT_ONNX, conf=0.3)(canvas)
    torch_faces = FaceDetector.from_file(DEFAULT_SAFETENSORS, conf=0.3)(canvas)
    assert len(onnx_faces) == len(torch_faces) >= 3
    boxes = np.array([f.box for f in onnx_faces])
    iou = box_iou(boxes, np.array([f.box for f in torch_faces]))
    assert iou.max(axis=1).min() > 0.99
    scores = np.array([f.score for f in torch_faces])[iou.argmax(axis=1)]
    np.testing.assert_allclose([f.score for f in onnx_faces], scores, atol=2e-3)
    landmarks = np.array([f.landmarks for f in torch_faces])[iou.argmax(axis=1)]
    np.testing.assert_allclose([f.landmarks for f in onnx_faces], landmarks, atol=0.5)

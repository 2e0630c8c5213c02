"""FaceDetector against the original pipelines (reference README §3), inputs, batching and alignment."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceyolo.errors import FaceyoloError
from faceyolo.geometry import box_iou
from faceyolo.inference.align import ARCFACE_TEMPLATE, align_face, alignment_matrix
from faceyolo.inference.detector import FaceDetector
from faceyolo.inference.face import faces_from_detections
from faceyolo.inference.nms import nms_faces

RAW = "reference/yolov5n-0.5/raw"
NAMES = [
    "test", "zidane", "bus", "30_Surgeons_Surgeons_30_722", "11_Meeting_Meeting_11_Meeting_Meeting_11_807",
]


def reference_image_path(shared: Path, name: str) -> Path:
    """Return the photo a raw reference was made from (its JSON records the path inside ../shared)."""
    return shared / json.loads((shared / RAW / f"{name}.json").read_text())["image"]


@pytest.fixture(scope="module")
def widerface_detector(official_pt) -> FaceDetector:
    """The test_widerface.py settings: conf 0.02, IoU 0.5, 640, no cap."""
    return FaceDetector.from_file(official_pt, conf=0.02, iou=0.5, img_size=640, max_det=None)


@pytest.fixture(scope="module")
def random_detector() -> FaceDetector:
    """A freshly initialised yolov5n-0.5 (no shared data needed), everything above conf 0.01 kept."""
    from faceyolo.models.build import build_model

    torch.manual_seed(0)
    return FaceDetector.from_model(build_model("yolov5n-0.5"), conf=0.01, iou=0.5)


def _arrays(faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return boxes (K, 4), scores (K,), landmarks (K, 5, 2) of a face list."""
    return (
        np.array([f.box for f in faces]).reshape(-1, 4),
        np.array([f.score for f in faces]),
        np.array([f.landmarks for f in faces]).reshape(-1, 5, 2),
    )


@pytest.mark.parametrize("name", NAMES)
def test_decoded_rows_match_reference_pred(shared, widerface_detector, name):
    reference = np.load(shared / RAW / f"{name}.test_widerface.npz")["pred"]
    rgb = np.load(shared / RAW / f"{name}.detect_face.npz")["input_uint8"][::-1]
    decoded = widerface_detector.backend(rgb[None].astype(np.float32) / 255)[0].numpy()
    assert decoded.shape == reference.shape
    difference = np.abs(decoded - reference)
    assert difference.max() < 2e-3  # both fused; fp32 accumulation order differs
    assert difference[:, 4].max() < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_detector_reproduces_test_widerface_detections(shared, widerface_detector, name):
    image = cv2.imread(str(reference_image_path(shared, name)))
    npz = np.load(shared / RAW / f"{name}.test_widerface.npz")
    input_hw = np.load(shared / RAW / f"{name}.detect_face.npz")["input_uint8"].shape[1:]
    # `final` is rounded: compare with the unrounded nms_out mapped back, and our rounded boxes with `final`.
    expected = faces_from_detections(npz["nms_out"], input_hw, image.shape[:2])
    faces = widerface_detector(image)
    assert len(faces) == len(expected)
    boxes, scores, landmarks = _arrays(faces)
    ref_boxes, ref_scores, ref_landmarks = _arrays(expected)
    assert np.diag(box_iou(boxes, ref_boxes)).min() >= 0.99
    assert np.abs(landmarks - ref_landmarks).max() <= 0.5
    assert np.abs(scores - ref_scores).max() <= 1e-3
    assert np.abs(boxes.round() - npz["final"][:, :4]).max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_stored_bgr_input_reproduces_detect_face_pipeline(shared, widerface_detector, name):
    npz = np.load(shared / RAW / f"{name}.detect_face.npz")
    bgr = npz["input_uint8"]  # detect_face.py feeds BGR (its bug); this replays exactly that
    decoded = widerface_detector.backend(bgr[None].astype(np.float32) / 255)
    (dets,) = nms_faces(decoded, 0.6, 0.5)
    expected = npz["nms_out"]
    assert dets.shape == expected.shape
    assert np.abs(dets.numpy()[:, :15] - expected[:, :15]).max() < 2e-3


def test_batched_call_equals_one_call_per_image(shared, widerface_detector):
    zidane = cv2.imread(str(reference_image_path(shared, "zidane")))
    images = [
        zidane,
        cv2.imread(str(reference_image_path(shared, "bus"))),
        cv2.resize(zidane, (640, 360)),  # same letterboxed shape as zidane: batched together
        zidane[100:500, 300:1000].copy(),
    ]
    batched = widerface_detector(images)
    assert len(batched) == len(images)
    for image, faces in zip(images, batched, strict=True):
        single = widerface_detector(image)
        assert len(faces) == len(single) > 0
        for got, want in zip(_arrays(faces), _arrays(single), strict=True):
            assert np.abs(got - want).max() < 1e-3


def test_bgr_rgb_pil_and_path_inputs_give_the_same_faces(shared, widerface_detector):
    from PIL import Image

    path = reference_image_path(shared, "zidane")
    bgr = cv2.imread(str(path))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    detect = widerface_detector
    expected = _arrays(detect(bgr))
    assert len(expected[0]) > 0
    for faces in (detect(rgb, rgb=True), detect(Image.fromarray(rgb)), detect(path), detect([path])[0]):
        for got, want in zip(_arrays(faces), expected, strict=True):
            assert np.array_equal(got, want)
    swapped = _arrays(detect(rgb))  # RGB passed as BGR: the network sees other colours
    assert len(swapped[0]) != len(expected[0]) or not np.array_equal(swapped[1], expected[1])


def test_faces_are_in_original_pixels_and_sorted(random_detector):
    image = np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    faces = random_detector(image)
    boxes, scores, landmarks = _arrays(faces)
    assert len(faces) > 0
    assert (np.diff(scores) <= 0).all()
    assert boxes[:, [0, 2]].max() <= 500 and boxes[:, [1, 3]].max() <= 300 and boxes.min() >= 0
    assert landmarks[..., 0].max() <= 500 and landmarks[..., 1].max() <= 300


def test_images_without_faces_give_empty_lists(random_detector):
    strict = FaceDetector(random_detector.backend, conf=0.99)
    grey = np.full((240, 320, 3), 114, np.uint8)
    assert strict(grey) == []
    assert strict([grey, grey[:100]]) == [[], []]


def test_bad_inputs_raise_faceyolo_errors(tmp_path, random_detector):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(FaceyoloError, match="broken.jpg: cannot decode image"):
        random_detector(broken)
    with pytest.raises(FaceyoloError, match="missing.jpg"):
        random_detector(tmp_path / "missing.jpg")
    with pytest.raises(FaceyoloError, match="uint8"):
        random_detector(np.zeros((10, 10, 3), np.float32))


def test_from_file_explains_unusable_weights(tmp_path):
    with pytest.raises(FaceyoloError, match="no such weights file"):
        FaceDetector.from_file(tmp_path / "absent.pt")
    odd = tmp_path / "model.bin"
    odd.write_bytes(b"")
    with pytest.raises(FaceyoloError, match="unsupported weights format"):
        FaceDetector.from_file(odd)


def test_aligned_chip_is_112_square_with_eyes_on_the_template(shared, widerface_detector):
    image = cv2.imread(str(reference_image_path(shared, "zidane")))
    face = widerface_detector(image)[0]
    chip = align_face(image, face.landmarks)
    assert chip.shape == (112, 112, 3)
    matrix = alignment_matrix(face.landmarks)
    eyes_in_chip = face.landmarks[:2] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(eyes_in_chip - ARCFACE_TEMPLATE[:2]).max() < 4.0
    assert chip.std() > 10  # real pixels, not the black border


def test_alignment_recovers_a_known_similarity():
    angle, scale, shift = np.deg2rad(25), 2.2, np.array([310.0, 95.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE @ rotation.T + shift
    matrix = alignment_matrix(landmarks)
    assert np.allclose(landmarks @ matrix[:, :2].T + matrix[:, 2], ARCFACE_TEMPLATE, atol=1e-3)
    with pytest.raises(FaceyoloError, match="degenerate"):
        alignment_matrix(np.zeros((5, 2)))


def test_unavailable_device_is_a_clear_error():
    from faceyolo.devices import torch_device

    assert torch_device("cpu").type == "cpu"
    if torch.cuda.is_available():
        assert torch_device("0") == torch.device("cuda:0")
        return
    for name in ("cuda", "0", "cuda:1"):
        with pytest.raises(FaceyoloError, match="CUDA is not available"):
            torch_device(name)
    with pytest.raises(FaceyoloError, match="unknown device"):
        torch_device("tpu7")

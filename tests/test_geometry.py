"""Letterbox, its inverse and box helpers (SPEC §5.3, §6.3, §9.5; reference README §3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceyolo.geometry import (
    box_iou,
    letterbox,
    letterbox_shape,
    scale_boxes,
    scale_landmarks,
    xywh_to_xyxy,
    xyxy_to_xywh,
)

RAW = "reference/yolov5n-0.5/raw"
NAMES = [
    "test", "zidane", "bus", "30_Surgeons_Surgeons_30_722", "11_Meeting_Meeting_11_Meeting_Meeting_11_807",
]


def reference_image_path(shared: Path, name: str) -> Path:
    """Return the photo a raw reference was made from (its JSON records the path inside ../shared)."""
    return shared / json.loads((shared / RAW / f"{name}.json").read_text())["image"]


@pytest.mark.parametrize("name", NAMES)
def test_letterbox_reproduces_reference_network_input(shared, name):
    image_bgr = cv2.imread(str(reference_image_path(shared, name)))
    reference_bgr = np.load(shared / RAW / f"{name}.detect_face.npz")["input_uint8"]  # (3, H, W) BGR
    boxed, _, _ = letterbox(image_bgr, 640)
    assert np.array_equal(boxed.transpose(2, 0, 1), reference_bgr)
    boxed_rgb, _, _ = letterbox(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), 640)
    assert np.array_equal(boxed_rgb.transpose(2, 0, 1), reference_bgr[::-1])  # the test_widerface input


SHAPES = [(683, 1024), (1080, 810), (300, 500), (640, 640), (97, 1201)]


@pytest.mark.parametrize("shape", SHAPES)
def test_letterbox_keeps_colour_order_and_pads_grey_to_its_shape(shape):
    """The synthetic twin of the reference-input test: any channel order letterboxes alike, pad 114."""
    bgr = np.random.default_rng(sum(shape)).integers(0, 114, (*shape, 3), dtype=np.uint8)
    boxed, ratio, (pad_x, pad_y) = letterbox(bgr, 640)
    assert boxed.shape[:2] == letterbox_shape(shape, 640) and max(boxed.shape[:2]) == 640
    assert np.array_equal(letterbox(bgr[..., ::-1].copy(), 640)[0], boxed[..., ::-1])
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    inner = np.zeros(boxed.shape[:2], bool)
    inner[top : top + round(shape[0] * ratio[1]), left : left + round(shape[1] * ratio[0])] = True
    assert (boxed[~inner] == 114).all() and (boxed[inner] < 114).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_mapping_back_finds_a_drawn_box_and_its_corners(shape):
    """The synthetic twin of the reference mapping test: a box drawn on the image, found in the network
    input, maps back onto itself (boxes and landmark points), within the resize's pixel."""
    h, w = shape
    box = np.array([[w * 0.3, h * 0.2, w * 0.7, h * 0.6]]).round()
    image = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box[0].astype(int)
    image[y1:y2, x1:x2] = 255
    boxed, ratio, _ = letterbox(image, 640)
    ys, xs = np.nonzero(boxed[..., 0] > 127)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    tolerance = 1.5 / ratio[0]
    np.testing.assert_allclose(scale_boxes(boxed.shape[:2], found, shape), box, atol=tolerance)
    corners = found[:, [0, 1, 2, 1, 2, 3, 0, 3, 0, 1]]  # five points: the four corners and the first again
    mapped = scale_landmarks(boxed.shape[:2], corners, shape)
    np.testing.assert_allclose(mapped, box[:, [0, 1, 2, 1, 2, 3, 0, 3, 0, 1]], atol=tolerance)


def test_letterbox_pads_each_side_modulo_64_with_odd_pixel_at_bottom():
    image = np.zeros((683, 1024, 3), np.uint8)  # SPEC §9.5
    boxed, ratio, pad = letterbox(image, 640)
    assert boxed.shape == (448, 640, 3)
    assert ratio == (0.625, 0.625) and pad == (0.0, 10.5)
    grey_rows = np.flatnonzero((boxed == 114).all(axis=(1, 2)))
    assert grey_rows.tolist() == list(range(10)) + list(range(437, 448))
    assert letterbox_shape((683, 1024), 640) == (448, 640)


def test_letterbox_scales_small_images_up_unless_told_not_to():
    image = np.full((100, 50, 3), 7, np.uint8)
    assert letterbox(image, 640)[0].shape == (640, 320, 3)
    kept, ratio, _ = letterbox(image, 640, scaleup=False)
    assert ratio == (1.0, 1.0) and kept.shape == (128, 64, 3)
    exact, _, _ = letterbox(image, 640, auto=False, scaleup=False)
    assert exact.shape == (640, 640, 3)


def test_scale_boxes_recomputes_padding_from_shapes():
    # 1024×683 → 640×448 input; the original assumes a top pad of (448 − 683·0.625)/2 = 10.5625, not 10.
    box_in_input = np.array([[100.0, 10.5625, 200.0, 110.5625]], np.float32)
    mapped = scale_boxes((448, 640), box_in_input, (683, 1024))
    assert np.allclose(mapped, [[160.0, 0.0, 320.0, 160.0]], atol=1e-4)
    actual_pad = scale_boxes((448, 640), box_in_input, (683, 1024), ratio_pad=((0.625, 0.625), (0.0, 10.0)))
    assert np.allclose(actual_pad, [[160.0, 0.9, 320.0, 160.9]], atol=1e-4)


def test_scale_boxes_clips_to_the_image_and_keeps_the_input():
    boxes = np.array([[-20.0, -5.0, 700.0, 500.0]], np.float32)
    mapped = scale_boxes((448, 640), boxes, (683, 1024))
    assert mapped.min() == 0 and mapped[0, 2] == 1024 and mapped[0, 3] == 683
    assert boxes[0, 0] == -20.0 and mapped.dtype == np.float32


def test_scale_landmarks_clamps_each_coordinate_and_keeps_shape():
    points = np.array([[[-3, 5], [700, 10.5625], [320, 460], [0, 0], [640, 448]]], np.float32)
    mapped = scale_landmarks((448, 640), points, (683, 1024))
    assert mapped.shape == (1, 5, 2)
    assert mapped[0, 0, 0] == 0 and mapped[0, 1, 0] == 1024 and mapped[0, 2, 1] == 683
    assert np.isclose(mapped[0, 1, 1], 0.0, atol=1e-4)
    flat = scale_landmarks((448, 640), points.reshape(1, 10), (683, 1024))
    assert np.array_equal(flat.reshape(1, 5, 2), mapped)


def test_mapping_back_accepts_no_rows():
    assert scale_landmarks((448, 640), np.zeros((0, 10), np.float32), (683, 1024)).shape == (0, 10)
    assert scale_boxes((448, 640), np.zeros((0, 4), np.float32), (683, 1024)).shape == (0, 4)


@pytest.mark.parametrize("name", NAMES)
def test_mapping_back_reference_nms_rows_gives_reference_final_rows(shared, name):
    npz = np.load(shared / RAW / f"{name}.test_widerface.npz")
    input_hw = np.load(shared / RAW / f"{name}.detect_face.npz")["input_uint8"].shape[1:]
    orig_hw = cv2.imread(str(reference_image_path(shared, name))).shape[:2]
    nms_out, final = npz["nms_out"], npz["final"]
    assert np.array_equal(scale_boxes(input_hw, nms_out[:, :4], orig_hw).round(), final[:, :4])
    assert np.array_equal(scale_landmarks(input_hw, nms_out[:, 5:15], orig_hw).round(), final[:, 5:15])


@pytest.mark.parametrize("as_tensor", [False, True])
def test_box_conversions_round_trip_on_arrays_and_tensors(as_tensor):
    xywh = np.array([[50.0, 60.0, 20.0, 10.0], [0.5, 0.5, 1.0, 1.0]], np.float32)
    boxes = torch.from_numpy(xywh) if as_tensor else xywh
    xyxy = xywh_to_xyxy(boxes)
    assert type(xyxy) is type(boxes)
    assert np.allclose(np.asarray(xyxy), [[40, 55, 60, 65], [0, 0, 1, 1]])
    assert np.allclose(np.asarray(xyxy_to_xywh(xyxy)), xywh)
    assert np.asarray(boxes)[0, 0] == 50.0  # input untouched


def test_box_iou_of_known_pairs():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]], np.float32)
    iou = box_iou(a, b)
    assert iou.shape == (2, 4) and iou.dtype == np.float32
    assert np.allclose(iou[0], [1.0, 50 / 150, 0.0, 0.0])


def test_geometry_does_not_import_torch():
    code = "import sys, faceyolo.geometry; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

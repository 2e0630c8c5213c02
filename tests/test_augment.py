"""Augmentations: flips, affine, mosaic, HSV, box filtering, letterbox, and the hyperparameter loader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceyolo.data.augment import (
    Sample,
    affine_matrix,
    augment_hsv,
    box_candidates,
    flip_lr,
    flip_ud,
    letterbox_sample,
    mosaic4,
    random_affine,
    random_crop,
    warp_sample,
)
from faceyolo.errors import FaceyoloError
from faceyolo.hyp import HYP_SCRATCH, load_hyp

EYES_NOSE_MOUTH = [
    [15, 30],
    [35, 30],
    [25, 40],
    [18, 50],
    [32, 50],
]  # L0..L4 of a face in box (10,20)-(40,60)


def _face_sample(width: int = 100, height: int = 80) -> Sample:
    image = np.zeros((height, width, 3), np.uint8)
    return Sample.of(image, [[10, 20, 40, 60]], [EYES_NOSE_MOUTH], [[True, True, True, True, False]], [0])


def _random_faces_sample(rng: np.random.Generator, size: int) -> Sample:
    """Return an image with a long side of `size` and a few faces whose landmarks lie inside their boxes."""
    h = int(rng.integers(size // 2, size + 1))
    image = rng.integers(0, 255, (h, size, 3), dtype=np.uint8)
    n = int(rng.integers(0, 6))
    x1, y1 = rng.uniform(0, size - 20, n), rng.uniform(0, h - 20, n)
    w, bh = rng.uniform(8, 60, n), rng.uniform(8, 60, n)
    boxes = np.stack([x1, y1, np.minimum(x1 + w, size), np.minimum(y1 + bh, h)], 1)
    t = rng.uniform(0.1, 0.9, (n, 5, 2))
    landmarks = boxes[:, None, :2] + t * (boxes[:, None, 2:] - boxes[:, None, :2])
    return Sample.of(image, boxes, landmarks, rng.random((n, 5)) < 0.8)


def test_flip_lr_swaps_eye_and_mouth_corners():
    flipped = flip_lr(_face_sample(width=100))
    np.testing.assert_allclose(flipped.boxes, [[60, 20, 90, 60]])
    # new L0 = mirrored old L1 (100 - 35), new L1 = mirrored old L0, nose stays L2, L3 <-> L4
    np.testing.assert_allclose(flipped.landmarks[0], [[65, 30], [85, 30], [75, 40], [68, 50], [82, 50]])
    np.testing.assert_array_equal(flipped.visible[0], [True, True, True, False, True])


def test_flip_lr_mirrors_the_pixels():
    sample = _face_sample()
    sample.image[5, 2] = 255
    assert flip_lr(sample).image[5, 97].tolist() == [255, 255, 255]


def test_flip_ud_mirrors_y_without_swapping_points():
    flipped = flip_ud(_face_sample(height=80))
    np.testing.assert_allclose(flipped.boxes, [[10, 20, 40, 60]])
    np.testing.assert_allclose(flipped.landmarks[0, :, 1], [50, 50, 40, 30, 30])
    np.testing.assert_allclose(flipped.landmarks[0, :, 0], [15, 35, 25, 18, 32])


def test_affine_maps_a_landmark_where_the_matrix_says():
    sample = _face_sample(200, 160)
    sample.image[38:43, 23:28] = 255  # a white 5x5 square centred on the nose (25, 40)
    rng = np.random.default_rng(7)
    matrix, scale = affine_matrix(rng, (160, 200), (160, 200), degrees=10, translate=0.05, scale=0.2, shear=5)
    warped = warp_sample(sample, matrix, (160, 200), scale)
    x, y, _ = matrix @ [25, 40, 1]
    np.testing.assert_allclose(warped.landmarks[0, 2], [x, y], atol=1e-4)
    # the image moved the same way: the white square's centre is at the mapped nose
    ys, xs = np.nonzero(warped.image[..., 0] > 200)
    assert abs(xs.mean() - x) <= 1 and abs(ys.mean() - y) <= 1
    assert warped.visible[0, :4].all() and not warped.visible[0, 4]


def test_affine_invalidates_landmarks_that_leave_the_image_and_clips_the_box():
    sample = _face_sample(100, 80)
    shift_left = np.array([[1.0, 0, -20], [0, 1, 0], [0, 0, 1]])  # x - 20: L0 (15) and L3 (18) leave
    warped = warp_sample(sample, shift_left, (80, 100))
    np.testing.assert_allclose(warped.boxes, [[0, 20, 20, 60]])
    np.testing.assert_array_equal(warped.visible[0], [False, True, True, False, False])


def test_box_candidates_drop_tiny_squashed_and_mostly_cropped_boxes():
    before = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 100, 100], [0, 0, 50, 50]], np.float32)
    after = np.array([[0, 0, 2, 10], [0, 0, 10, 10], [0, 0, 30, 30], [0, 0, 100, 4]], np.float32)
    np.testing.assert_array_equal(box_candidates(before, after), [False, True, False, False])


def test_mosaic_keeps_every_surviving_face_landmarks_inside_its_box():
    size, faces_seen = 96, 0
    for seed in range(25):
        rng = np.random.default_rng(seed)
        tiles = [_random_faces_sample(rng, size) for _ in range(4)]
        mosaic = mosaic4(tiles, size, rng)
        assert mosaic.image.shape == (2 * size, 2 * size, 3)
        out = random_affine(mosaic, rng, degrees=5, shear=5, border=(-size // 2, -size // 2))
        assert out.image.shape == (size, size, 3)
        for box, points, visible in zip(out.boxes, out.landmarks, out.visible, strict=True):
            inside = points[visible]
            assert (inside >= box[:2] - 1e-3).all() and (inside <= box[2:] + 1e-3).all()
        assert ((out.boxes >= 0) & (out.boxes <= size)).all()
        faces_seen += int(out.visible.any(axis=1).sum())
    assert faces_seen > 20


def test_mosaic_places_tile_pixels_with_their_faces():
    size = 64
    tiles = []
    for k in range(4):
        image = np.full((size, size, 3), 40 * (k + 1), np.uint8)
        image[10:20, 30:40] = 250  # a bright square where the face is
        tiles.append(Sample.of(image, [[30, 10, 40, 20]]))
    mosaic = mosaic4(tiles, size, np.random.default_rng(3))
    for box in mosaic.boxes:
        x1, y1, x2, y2 = box.astype(int)
        if x2 - x1 == 10 and y2 - y1 == 10:  # uncropped faces
            assert (mosaic.image[y1:y2, x1:x2] == 250).all()


def test_random_crop_moves_faces_by_its_gain_and_offset():
    image = np.zeros((80, 100, 3), np.uint8)
    image[20:60, 10:40] = 200  # the face's pixels
    sample = Sample.of(image, [[10, 20, 40, 60]], [EYES_NOSE_MOUTH], [[True] * 5], [0])
    for seed in range(20):
        crop = random_crop(sample, 64, np.random.default_rng(seed), scale=0.5)
        assert crop.image.shape == (64, 64, 3)
        if not len(crop.boxes):
            continue
        x1, y1, x2, y2 = crop.boxes[0].round().astype(int)
        inner = crop.image[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2]
        assert inner.size == 0 or inner.mean() > 150  # the box still frames the face's pixels
        gain = (crop.landmarks[0, 1, 0] - crop.landmarks[0, 0, 0]) / 20  # the eyes were 20 px apart
        assert 0.5 - 1e-6 <= gain <= 1.5 + 1e-6


def test_hsv_is_deterministic_under_a_seed_and_follows_the_value_gain():
    image = np.random.default_rng(0).integers(0, 200, (16, 16, 3), dtype=np.uint8)
    a = augment_hsv(image, np.random.default_rng(5))
    np.testing.assert_array_equal(a, augment_hsv(image, np.random.default_rng(5)))
    round_trip = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2HSV), cv2.COLOR_HSV2BGR)
    np.testing.assert_array_equal(augment_hsv(image, np.random.default_rng(5), 0, 0, 0), round_trip)
    for seed in range(4):
        value_gain = np.random.default_rng(seed).uniform(-1, 1, 3)[2] * 0.4 + 1
        brighter = augment_hsv(image, np.random.default_rng(seed), 0, 0, 0.4).mean() > round_trip.mean()
        assert brighter == (value_gain > 1)


def test_letterbox_sample_moves_faces_with_the_padding():
    sample = _face_sample(100, 50)
    boxed, ratio, pad = letterbox_sample(sample, 200, scaleup=True)
    assert boxed.image.shape == (200, 200, 3) and ratio == (2.0, 2.0) and pad == (0.0, 50.0)
    np.testing.assert_allclose(boxed.boxes, [[20, 90, 80, 170]])
    np.testing.assert_allclose(boxed.landmarks[0, 0], [30, 110])


def test_load_hyp_defaults_and_overrides(tmp_path):
    assert load_hyp() == HYP_SCRATCH and HYP_SCRATCH["mosaic"] == 0.5 and HYP_SCRATCH["shear"] == 0.5
    path = tmp_path / "hyp.yaml"
    path.write_text("lr0: 0.001\nshear: 10\nmosaic: 1.0\n")
    hyp = load_hyp(path)
    assert (hyp["lr0"], hyp["shear"], hyp["mosaic"], hyp["fliplr"]) == (0.001, 10.0, 1.0, 0.5)


@pytest.mark.parametrize(
    "text, message",
    [("mosiac: 1.0\n", "unknown hyperparameter"), ("fliplr: 2\n", "probability"), ("lr0: fast\n", "number")],
)
def test_load_hyp_rejects_bad_files_with_the_file_name(tmp_path, text, message):
    path = tmp_path / "bad_hyp.yaml"
    path.write_text(text)
    with pytest.raises(FaceyoloError, match=message) as err:
        load_hyp(path)
    assert "bad_hyp.yaml" in str(err.value)

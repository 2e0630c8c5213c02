"""Filling missing landmarks from a teacher detector (`faceyolo annotate`)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceyolo.cli import main
from faceyolo.data.annotate import REPORT_NAME, annotate_dataset, match_faces
from faceyolo.data.teachers import (
    TeacherDetections,
    decode_centerface,
    fuse_detections,
    load_teacher,
    retinaface_teacher,
)
from faceyolo.errors import FaceyoloError

MISSING = " -1" * 10

# Synthetic val images (conftest) with two faces of at least 40 px each.
LARGE_FACE_IMAGES = ["0--Parade/0_Parade_Parade_0_1.jpg", "12--Group/12_Group_Group_12_3.jpg",
                     "7--Cheering/7_Cheering_Cheering_7_7.jpg"]


def _label_line(box_xyxy, width: int, height: int, landmarks: str = MISSING) -> str:
    """Return a YOLO-face label line for a pixel box on a width x height image."""
    x1, y1, x2, y2 = box_xyxy
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
    return f"0 {cx} {cy} {w} {h}{landmarks}"


def _write_image(root: Path, name: str, width: int, height: int, lines: list[str]) -> Path:
    """Return the labels folder of `root` after writing a grey image and its label file."""
    image = root / "images" / name
    image.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image), np.full((height, width, 3), 90, np.uint8))
    label = (root / "labels" / name).with_suffix(".txt")
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_text("".join(line + "\n" for line in lines))
    return root / "labels"


def _fake_teacher(boxes, landmarks, calls: list | None = None):
    """Return a teacher that always answers the given boxes (N, 4) and landmarks (N, 5, 2), in pixels."""

    def detect(image_bgr):
        if calls is not None:
            calls.append(image_bgr.shape)
        return TeacherDetections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.ones(len(boxes), np.float32),
            np.asarray(landmarks, np.float32).reshape(-1, 5, 2),
        )

    return detect


def _rows(label: Path) -> np.ndarray:
    """Return a label file's rows as an (n, 15) float array."""
    return np.array([[float(v) for v in line.split()] for line in label.read_text().splitlines()])


# The 200 x 100 scene used by several tests: faces A, B, C (pixels, xyxy).
FACE_A, FACE_B, FACE_C = (20, 20, 60, 80), (100, 10, 140, 50), (150, 50, 190, 90)
POINTS_A = [(30, 40), (50, 40), (40, 55), (32, 70), (48, 70)]


def test_fake_teacher_fills_exactly_the_matched_faces(tmp_path):
    lines = [_label_line(b, 200, 100) for b in (FACE_A, FACE_B, FACE_C)]
    labels = _write_image(tmp_path, "a.png", 200, 100, lines)
    detections = [
        (0, 0, 10, 10),  # spurious, overlaps nothing
        (22, 22, 60, 80),  # IoU with A = 38*58 / (40*60) = 0.918: matched
        (110, 20, 150, 60),  # IoU with B = 900 / 2300 = 0.391: below 0.5, B stays missing
    ]
    points = [[(1, 1)] * 5, POINTS_A, [(120, 30)] * 5]
    summary = annotate_dataset(labels, _fake_teacher(detections, points), progress=False)

    rows = _rows(labels / "a.txt")
    expected_a = [0.15, 0.4, 0.25, 0.4, 0.2, 0.55, 0.16, 0.7, 0.24, 0.7]  # POINTS_A / (200, 100)
    np.testing.assert_allclose(rows[0, 5:], expected_a, atol=1e-6)
    assert (rows[1:, 5:] == -1).all()
    boxes_kept = [[0.2, 0.5, 0.2, 0.6], [0.6, 0.3, 0.2, 0.4], [0.85, 0.7, 0.2, 0.4]]
    np.testing.assert_allclose(rows[:, 1:5], boxes_kept)
    c = summary.counts
    assert (c.faces, c.had_landmarks, c.filled, c.unmatched) == (3, 0, 1, 2)
    report = json.loads((tmp_path / REPORT_NAME).read_text())
    assert (report["faces"], report["filled"], report["unmatched"]) == (3, 1, 2)


def test_match_faces_finds_the_assignment_greedy_matching_misses():
    gt = np.array([[0, 0, 10, 10], [3, 0, 13, 10]], np.float32)
    # det 0 fits gt 0 best (0.818) but is gt 1's only option (0.667); det 1 fits gt 0 only (0.727).
    det = np.array([[1, 0, 11, 10], [-1, 0, 8, 10]], np.float32)
    assert match_faces(gt, det).tolist() == [1, 0]
    assert match_faces(gt, det, iou_min=0.7).tolist() == [0, -1]
    assert match_faces(gt, det[:0]).tolist() == [-1, -1]


def test_filled_landmarks_map_back_to_teacher_pixels(tmp_path):
    width, height = 320, 240
    box = (100, 50, 220, 200)
    labels = _write_image(tmp_path, "b.jpg", width, height, [_label_line(box, width, height)])
    points = np.array([(130.25, 100.5), (190.75, 101.0), (160.5, 140.25), (135.0, 170.5), (185.5, 171.75)])
    annotate_dataset(labels, _fake_teacher([box], [points]), progress=False)

    row = _rows(labels / "b.txt")[0]
    np.testing.assert_allclose(row[5:].reshape(5, 2) * [width, height], points, atol=1e-3)


def test_points_outside_the_image_are_written_missing(tmp_path):
    labels = _write_image(tmp_path, "c.png", 200, 100, [_label_line(FACE_A, 200, 100)])
    points = [(-3, 40), (50, 40), (40, 55), (32, 70), (48, 101)]
    summary = annotate_dataset(labels, _fake_teacher([FACE_A], [points]), progress=False)

    row = _rows(labels / "c.txt")[0]
    assert row[5:7].tolist() == [-1, -1] and row[13:15].tolist() == [-1, -1]
    assert (row[7:13] > 0).all() and (row[5:] <= 1).all()
    assert summary.counts.points_outside_image == 2


def test_existing_landmarks_are_kept_unless_overwrite(tmp_path):
    kept = " 0.1 0.2 0.3 0.2 0.2 0.3 0.1 0.4 0.3 0.4"
    labels = _write_image(
        tmp_path, "d.png", 200, 100, [_label_line(FACE_A, 200, 100, kept), _label_line(FACE_C, 200, 100)]
    )
    teacher = _fake_teacher([FACE_A, FACE_C], [POINTS_A, [(170, 70)] * 5])

    summary = annotate_dataset(labels, teacher, progress=False)
    rows = _rows(labels / "d.txt")
    np.testing.assert_allclose(rows[0, 5:], [float(v) for v in kept.split()], atol=1e-6)
    assert (rows[1, 5:] > 0).all()
    assert (summary.counts.had_landmarks, summary.counts.filled) == (1, 1)

    summary = annotate_dataset(labels, teacher, overwrite=True, progress=False)
    np.testing.assert_allclose(_rows(labels / "d.txt")[0, 5:7], [0.15, 0.4], atol=1e-6)
    assert (summary.counts.had_landmarks, summary.counts.filled) == (2, 2)


def test_teacher_is_not_run_when_every_face_has_landmarks(tmp_path):
    full = " 0.1 0.2 0.3 0.2 0.2 0.3 0.1 0.4 0.3 0.4"
    labels = _write_image(tmp_path, "e.png", 200, 100, [_label_line(FACE_A, 200, 100, full)])
    calls: list = []
    summary = annotate_dataset(labels, _fake_teacher([FACE_A], [POINTS_A], calls), progress=False)
    assert calls == [] and summary.counts.filled == 0


def test_corrupt_image_is_reported_by_name_and_skipped(tmp_path):
    labels = _write_image(tmp_path, "good.png", 200, 100, [_label_line(FACE_A, 200, 100)])
    _write_image(tmp_path, "bad.jpg", 200, 100, [_label_line(FACE_A, 200, 100)])
    (tmp_path / "images" / "bad.jpg").write_bytes(b"not a jpeg at all")
    summary = annotate_dataset(labels, _fake_teacher([FACE_A], [POINTS_A]), progress=False)

    assert list(summary.failures) == [str(tmp_path / "images" / "bad.jpg")]
    assert "cannot decode image" in summary.failures[str(tmp_path / "images" / "bad.jpg")]
    assert summary.counts.filled == 1
    assert (_rows(labels / "bad.txt")[0, 5:] == -1).all()
    report = json.loads((tmp_path / REPORT_NAME).read_text())
    assert list(report["failures"]) == [str(tmp_path / "images" / "bad.jpg")]


def test_malformed_label_file_is_reported_and_skipped(tmp_path):
    labels = _write_image(tmp_path, "f.png", 200, 100, ["0 0.5 0.5 0.2"])
    summary = annotate_dataset(labels, _fake_teacher([FACE_A], [POINTS_A]), progress=False)
    (reason,) = summary.failures.values()
    assert "f.txt:1: expected 15 numbers" in reason


def test_missing_retinaface_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "retinaface", None)
    with pytest.raises(FaceyoloError, match="--no-deps"):
        retinaface_teacher()


def test_cli_reports_an_unknown_teacher(tmp_path, capsys):
    labels = _write_image(tmp_path, "g.png", 200, 100, [_label_line(FACE_A, 200, 100)])
    status = main(["annotate", "--data", str(labels), "--teacher", str(tmp_path / "nope.safetensors")])
    assert status == 2
    assert "nope.safetensors" in capsys.readouterr().err


def _faces_dataset(wider, root: Path, names: list[str]) -> tuple[Path, dict[str, np.ndarray]]:
    """Return a labels folder of synthetic val images (symlinked) with box-only labels; and the boxes."""
    boxes = {}
    for name in names:
        event, stem = name.split("/")
        xywh = wider.faces[(event, Path(stem).stem)].astype(np.float64)
        boxes[name] = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        image = root / "images" / name
        image.parent.mkdir(parents=True, exist_ok=True)
        image.symlink_to(wider.images / name)
        height, width = cv2.imread(str(image)).shape[:2]
        label = (root / "labels" / name).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(_label_line(b, width, height) + "\n" for b in boxes[name]))
    return root / "labels", boxes


def _assert_large_faces_filled_inside_boxes(labels: Path, boxes: dict[str, np.ndarray]) -> None:
    """Assert most large faces got landmarks, each inside its box (a few px slack) and in L0..L4 order."""
    large = filled_large = 0
    for name in boxes:
        height, width = cv2.imread(str(labels.parent / "images" / name)).shape[:2]
        rows = _rows((labels / name).with_suffix(".txt"))
        for box, row in zip(boxes[name], rows, strict=True):
            is_large = min(box[2] - box[0], box[3] - box[1]) >= 40
            large += is_large
            if (row[5:] <= 0).all():
                continue
            filled_large += is_large
            points = row[5:].reshape(5, 2) * [width, height]
            margin = 3 + 0.1 * (box[2:] - box[:2])
            assert (points >= box[:2] - margin).all() and (points <= box[2:] + margin).all(), name
            assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0], f"{name}: left/right order"
    assert large >= 2 * len(boxes)
    assert filled_large >= 0.8 * large


@pytest.mark.parametrize("teacher", ["retinaface", "centerface", "yunet"])
def test_each_mit_teacher_fills_large_faces_with_landmarks_inside_their_boxes(
    synthetic_wider, tmp_path, capsys, teacher
):
    try:
        load_teacher(teacher)
    except FaceyoloError as err:
        pytest.skip(str(err))
    labels, boxes = _faces_dataset(synthetic_wider, tmp_path, LARGE_FACE_IMAGES)
    assert main(["annotate", "--data", str(labels), "--teacher", teacher]) == 0
    out = capsys.readouterr().out
    assert "filled" in out and ">=128 px" in out
    _assert_large_faces_filled_inside_boxes(labels, boxes)


def test_any_faceyolo_weights_file_can_teach(synthetic_wider, official_style_pt, tmp_path, capsys):
    labels, boxes = _faces_dataset(synthetic_wider, tmp_path, LARGE_FACE_IMAGES[::2])
    assert main(["annotate", "--data", str(labels), "--teacher", str(official_style_pt)]) == 0
    assert "GPL" in capsys.readouterr().err  # any .pt may be the official weights
    _assert_large_faces_filled_inside_boxes(labels, boxes)
    report = json.loads((tmp_path / REPORT_NAME).read_text())
    assert report["teacher"] == str(official_style_pt) and report["filled"] > 0


def test_data_yaml_annotates_its_images_once_and_reports_beside_it(tmp_path):
    _write_image(tmp_path, "train/a.png", 200, 100, [_label_line(FACE_A, 200, 100)])
    data = tmp_path / "data.yaml"
    data.write_text("train: images/train\nval: images/train\nnc: 1\nnames: [face]\n")
    summary = annotate_dataset(data, _fake_teacher([FACE_A], [POINTS_A]), progress=False)
    assert (summary.images, summary.counts.filled) == (1, 1)
    assert summary.report_path == tmp_path / REPORT_NAME


def test_boxes_mode_labels_only_images_without_faces_and_counts_height_bands(tmp_path):
    labels = _write_image(tmp_path, "labelled.png", 200, 100, [_label_line(FACE_A, 200, 100)])
    _write_image(tmp_path, "empty.png", 200, 100, [])
    _write_image(tmp_path, "nolabel.png", 200, 100, [])
    (labels / "nolabel.txt").unlink()
    teacher = _fake_teacher([FACE_B, (190, 90, 260, 160)], [[(120, 30)] * 5, [(195, 95)] * 5])
    summary = annotate_dataset(labels, teacher, progress=False, boxes=True)
    for name in ("empty", "nolabel"):
        rows = _rows(labels / f"{name}.txt")
        assert rows.shape == (2, 15)
        np.testing.assert_allclose(rows[0, :5], [0, 0.6, 0.3, 0.2, 0.4], atol=1e-6)  # FACE_B
        np.testing.assert_allclose(rows[1, 1:5], [0.975, 0.95, 0.05, 0.1], atol=1e-6)  # clipped to the image
    assert (_rows(labels / "labelled.txt")[0, 1:5] == [0.2, 0.5, 0.2, 0.6]).all()  # boxes kept, none added
    c = summary.counts
    assert (c.boxes_added, c.faces) == (4, 5)
    assert c.band_faces == [2, 0, 3, 0, 0]  # heights 10 px (clipped), 40 px (B twice), 60 px (A)
    assert summary.counts.band_shares()["<16 px"] == 1.0


def test_boxes_mode_takes_a_labels_folder_that_does_not_exist_yet(tmp_path):
    labels = _write_image(tmp_path, "photo.png", 200, 100, [])
    shutil.rmtree(labels)
    summary = annotate_dataset(labels, _fake_teacher([FACE_B], [POINTS_A]), progress=False, boxes=True)
    assert summary.counts.boxes_added == 1 and _rows(labels / "photo.txt").shape == (1, 15)
    with pytest.raises(FaceyoloError, match="no images folder beside it"):
        annotate_dataset(tmp_path / "elsewhere/labels", _fake_teacher([], []), progress=False, boxes=True)


def test_fused_teachers_average_what_overlaps_and_discount_what_one_teacher_sees():
    points = np.zeros((1, 5, 2), np.float32)
    a = TeacherDetections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.9], np.float32), points)
    b = TeacherDetections(np.array([[1, 0, 11, 10]], np.float32), np.array([0.3], np.float32), points + 4)
    c = TeacherDetections(np.array([[50, 50, 60, 60]], np.float32), np.array([0.6], np.float32), points)
    fused = fuse_detections([a, b, c])
    order = np.argsort(-fused.scores)
    np.testing.assert_allclose(fused.scores[order], [0.4, 0.2], atol=1e-6)  # (0.9 + 0.3) / 3, 0.6 / 3
    np.testing.assert_allclose(fused.boxes_xyxy[order[0]], [0.25, 0, 10.25, 10], atol=1e-5)  # 0.75/0.25
    np.testing.assert_allclose(fused.landmarks[order[0]], 1.0, atol=1e-5)
    assert len(fuse_detections([a, a._replace(boxes_xyxy=a.boxes_xyxy + 30)]).scores) == 2


def test_centerface_maps_decode_to_the_box_and_points_they_encode():
    h = w = 8
    heatmap, scale = np.zeros((1, h, w), np.float32), np.zeros((2, h, w), np.float32)
    offset, points = np.zeros((2, h, w), np.float32), np.zeros((10, h, w), np.float32)
    heatmap[0, 2, 3] = 0.9
    scale[:, 2, 3] = np.log([20 / 4, 12 / 4])  # box height 20, width 12
    offset[:, 2, 3] = (0.25, 0.5)  # centre y = (2 + 0.25 + 0.5) * 4 = 11, x = (3 + 0.5 + 0.5) * 4 = 16
    points[:, 2, 3] = [0.5, 0.25] * 5  # (y, x) fractions of the box
    found = decode_centerface(heatmap, scale, offset, points, conf=0.5)
    np.testing.assert_allclose(found.boxes_xyxy, [[10, 1, 22, 21]], atol=1e-5)
    np.testing.assert_allclose(found.landmarks[0], [[13, 11]] * 5, atol=1e-5)
    assert found.scores.tolist() == pytest.approx([0.9])

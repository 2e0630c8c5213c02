"""The WIDER FACE protocol (exact against the original's APs) and the writing of WIDER prediction files."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import wider_predictions, write_wider_predictions
from faceyolo.errors import FaceyoloError
from faceyolo.eval.predictions import pass_size, unflip_faces, wider_box_rows, wider_file_text
from faceyolo.eval.widerface import (
    SETTINGS,
    GroundTruth,
    PredictionSet,
    evaluate,
    evaluate_folder,
    load_ground_truth,
    read_predictions,
)
from faceyolo.inference.face import Face


def _extract(archive: Path, dest: Path, top: str = "") -> Path:
    """Return dest / top after extracting a prediction archive (<top>/<event>/<name>.txt) into dest."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest / top


@pytest.fixture(scope="module")
def gt_dir(shared: Path) -> Path:
    return shared / "data" / "widerface" / "ground_truth"


@pytest.fixture(scope="module")
def gt(gt_dir: Path) -> GroundTruth:
    return load_ground_truth(gt_dir)


@pytest.fixture(scope="module")
def sample_reference(shared: Path) -> dict:
    return json.loads((shared / "reference" / "yolov5n-0.5" / "val_sample_APs.json").read_text())


@pytest.fixture(scope="module")
def prediction_sets(shared: Path, tmp_path_factory) -> dict[str, Path]:
    """Return {name: folder} of the three full-val reference prediction sets, extracted once."""
    ref = shared / "reference"
    archives = {
        "yolov5n-0.5": ref / "yolov5n-0.5" / "widerface_val_predictions.tar.xz",
        "yolov7-face": ref / "widerface_predictions" / "yolov7-face.tar.xz",
        "retinaface-mobilenet0.25": ref / "widerface_predictions" / "retinaface-mobilenet0.25.tar.xz",
    }
    return {name: _extract(path, tmp_path_factory.mktemp(name)) for name, path in archives.items()}


def _subset(full: Path, image_list: list[str], dest: Path) -> Path:
    """Return dest after copying the prediction files of image_list ("event/name") from the folder full."""
    for item in image_list:
        (dest / item).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(full / f"{item}.txt", dest / f"{item}.txt")
    return dest


def test_original_pipeline_predictions_reproduce_official_full_val_aps(shared, gt_dir, prediction_sets):
    reference = json.loads((shared / "reference" / "yolov5n-0.5" / "widerface_val_APs.json").read_text())
    result = evaluate_folder(prediction_sets["yolov5n-0.5"], gt_dir)
    for setting in SETTINGS:
        assert result.ap[setting] == pytest.approx(reference[setting], abs=1e-6)
    assert result.gt_faces == {"easy": 7211, "medium": 13319, "hard": 31958}
    assert result.images == 3226 and not result.missing and not result.malformed


@pytest.mark.parametrize(
    "name, expected",
    [
        ("yolov7-face", (0.932493, 0.912794, 0.829721)),
        ("retinaface-mobilenet0.25", (0.900315, 0.872708, 0.719752)),
    ],
)
def test_other_detectors_predictions_reproduce_their_published_aps(gt_dir, prediction_sets, name, expected):
    result = evaluate_folder(prediction_sets[name], gt_dir)
    assert [result.ap[s] for s in SETTINGS] == pytest.approx(expected, abs=1e-6)


def test_val_sample_predictions_reproduce_subset_aps(shared, gt_dir, sample_reference, tmp_path):
    archive = shared / "reference" / "yolov5n-0.5" / "val_sample_predictions.tar.xz"
    folder = _extract(archive, tmp_path, top="val_sample_predictions")
    result = evaluate_folder(folder, gt_dir)
    for setting in SETTINGS:
        assert result.ap[setting] == pytest.approx(sample_reference[setting], abs=1e-6)
    assert result.gt_faces == sample_reference["gt_faces_counted"]
    assert result.images == 305 and len(result.missing) == 3226 - 305


@pytest.mark.parametrize("name", ["yolov7-face", "retinaface-mobilenet0.25"])
def test_subset_rule_normalises_and_counts_only_images_with_a_file(
    gt_dir, prediction_sets, sample_reference, tmp_path, name
):
    folder = _subset(prediction_sets[name], sample_reference["image_list"], tmp_path)
    result = evaluate_folder(folder, gt_dir)
    others = sample_reference["same_rule_other_models_for_scale"]
    expected = next(v for k, v in others.items() if k.startswith(name))
    for setting in SETTINGS:
        assert result.ap[setting] == pytest.approx(expected[setting], abs=1e-9)


def test_malformed_and_missing_prediction_files_are_reported_by_name(
    synthetic_wider, synthetic_predictions, tmp_path
):
    items = synthetic_wider.image_list
    folder = _subset(synthetic_predictions, items, tmp_path)
    bad_count, bad_line, removed = (folder / f"{item}.txt" for item in items[:3])
    bad_count.write_text(f"{bad_count.stem}\n5\n1 2 3 4 0.5\n")
    bad_line.write_text(f"{bad_line.stem}\n1\n1 2 three 4 0.5\n")
    removed.unlink()
    result = evaluate_folder(folder, synthetic_wider.gt_dir)
    assert any(str(bad_count) in m and "faces" in m for m in result.malformed)
    assert any(str(bad_line) in m and "line 3" in m for m in result.malformed)
    assert items[2] in result.missing
    assert result.images == len(items) - 3


def test_ground_truth_boxes_as_predictions_score_one_and_count_each_settings_faces(synthetic_wider, tmp_path):
    gt = load_ground_truth(synthetic_wider.gt_dir)
    assert gt.keys == list(synthetic_wider.faces)
    for (event, name), faces in synthetic_wider.faces.items():
        path = tmp_path / event / f"{name}.txt"
        path.parent.mkdir(exist_ok=True)
        scores = np.linspace(0.9, 0.5, len(faces))
        path.write_text(f"{name}\n{len(faces)}\n" + "".join(
            f"{x} {y} {w} {h} {s}\n" for (x, y, w, h), s in zip(faces, scores, strict=True)))
    result = evaluate_folder(tmp_path, synthetic_wider.gt_dir)
    assert result.ap == pytest.approx(dict.fromkeys(SETTINGS, 1.0))
    assert result.gt_faces == {s: sum(len(k) for k in gt.keep[s]) for s in SETTINGS}
    assert result.gt_faces["easy"] < result.gt_faces["medium"] < result.gt_faces["hard"]
    assert result.gt_faces["hard"] == sum(len(f) for f in synthetic_wider.faces.values())


def test_recall_counts_the_faces_a_detector_missed(synthetic_wider, synthetic_predictions):
    """The conftest predictions find every face at least 15 px wide, above their false positives."""
    gt = load_ground_truth(synthetic_wider.gt_dir)
    result = evaluate_folder(synthetic_predictions, synthetic_wider.gt_dir)
    assert result.images == len(gt.keys) and not result.missing and not result.malformed
    for setting in SETTINGS:
        widths = np.concatenate([b[k, 2] for b, k in zip(gt.boxes_xywh, gt.keep[setting], strict=True)])
        assert result.recall[setting].max() == pytest.approx((widths >= 15).mean())
    assert result.ap["easy"] == pytest.approx(1.0) and result.ap["hard"] < 1


def test_folder_without_any_val_image_is_an_error(synthetic_wider, tmp_path):
    (tmp_path / "wrapper" / "0--Parade").mkdir(parents=True)
    with pytest.raises(FaceyoloError, match="no prediction file matches"):
        evaluate_folder(tmp_path, synthetic_wider.gt_dir)


def _toy(boxes_xywh: list[list[float]], keep: dict[str, list[int]]) -> GroundTruth:
    """Return a one-image ground truth with the given faces and per-setting kept indices (0-based)."""
    faces = np.array(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    kept = {s: [np.array(keep.get(s, []), np.int64)] for s in SETTINGS}
    return GroundTruth([("0--Toy", "toy")], [faces], kept)


def _preds(rows: list[list[float]]) -> PredictionSet:
    return PredictionSet({("0--Toy", "toy"): np.array(rows, dtype=np.float64).reshape(-1, 5)})


def test_iou_counts_pixels_inclusively():
    # corners 1..3 × 0..2 against 0..2 × 0..2: IoU 0.5 with +1 pixel sizes, 1/3 without
    gt = _toy([[0, 0, 2, 2]], {"easy": [0]})
    result = evaluate(gt, _preds([[1, 0, 2, 2, 0.9], [100, 100, 5, 5, 0.3]]))
    assert result.ap["easy"] == pytest.approx(1.0)


def test_match_to_a_face_outside_the_setting_is_neither_tp_nor_proposal():
    gt = _toy([[0, 0, 10, 10], [50, 50, 10, 10]], {"easy": [0], "hard": [0, 1]})
    result = evaluate(gt, _preds([[50, 50, 10, 10, 0.9], [0, 0, 10, 10, 0.5]]))
    easy_precision = result.precision["easy"]
    assert np.isnan(easy_precision[:-1]).all()  # only the ignored box passes: 0/0, left unguarded
    assert easy_precision[-1] == 1.0 and result.ap["easy"] == pytest.approx(1.0)
    assert result.gt_faces == {"easy": 1, "medium": 0, "hard": 2}
    assert result.recall["hard"][0] == 0.5 and result.ap["hard"] == pytest.approx(1.0)


def test_unsorted_file_scores_as_its_score_sorted_copy():
    # the high-scored false positive comes second: walked in file order, the top threshold would count the hit
    gt = _toy([[0, 0, 10, 10]], {"easy": [0]})
    unsorted = evaluate(gt, _preds([[0, 0, 10, 10, 0.2], [80, 80, 10, 10, 0.9], [40, 40, 9, 9, 0.5]]))
    in_order = evaluate(gt, _preds([[80, 80, 10, 10, 0.9], [40, 40, 9, 9, 0.5], [0, 0, 10, 10, 0.2]]))
    assert unsorted.recall["easy"][0] == 0.0 and unsorted.recall["easy"][-1] == 1.0
    np.testing.assert_array_equal(unsorted.precision["easy"], in_order.precision["easy"])
    assert unsorted.ap["easy"] == in_order.ap["easy"]


@pytest.fixture
def synthetic(synthetic_wider) -> tuple[Path, dict]:
    """Return (ground-truth folder, predictions by image) of the synthetic WIDER val tree."""
    return synthetic_wider.gt_dir, wider_predictions(synthetic_wider)


@pytest.mark.parametrize("order", ["shuffled", "reversed", "ascending"])
def test_aps_do_not_depend_on_the_order_of_lines_in_prediction_files(synthetic, tmp_path, order):
    gt_dir, rows = synthetic
    rng = np.random.default_rng(3)
    reorder = {
        "shuffled": lambda r: r[rng.permutation(len(r))],
        "reversed": lambda r: r[::-1],
        "ascending": lambda r: r[np.argsort(r[:, 4], kind="stable")],
    }[order]
    sorted_result = evaluate_folder(write_wider_predictions(tmp_path / "sorted", rows), gt_dir)
    other = evaluate_folder(write_wider_predictions(tmp_path / order, rows, reorder), gt_dir)
    assert other.images == sorted_result.images == len(rows)
    assert 0 < sorted_result.ap["hard"] < 1
    assert other.ap == sorted_result.ap
    for setting in SETTINGS:
        np.testing.assert_array_equal(other.precision[setting], sorted_result.precision[setting])
        np.testing.assert_array_equal(other.recall[setting], sorted_result.recall[setting])


def test_each_bad_prediction_file_is_named_with_its_reason_and_the_rest_scored(synthetic, tmp_path):
    gt_dir, rows = synthetic
    keys = list(rows)
    good = write_wider_predictions(tmp_path / "good", {k: rows[k] for k in keys[6:]})
    folder = write_wider_predictions(tmp_path / "preds", rows)
    path = {key: folder / key[0] / f"{key[1]}.txt" for key in keys}
    broken = {  # image: (reason, what replaces line k of its file: (k, text); k = 1 is the count line)
        keys[0]: ("line 2 says 99 faces", (1, "99")),
        keys[1]: ("line 4: 'x y w h score' expected", (3, "1 2 three 4 0.5")),
        keys[2]: ("line 3: not a finite number", (2, "1 2 3 4 nan")),
        keys[3]: ("line 5: negative width or height", (4, "10 10 -3 5 0.4")),
    }
    for key, (_, (k, text)) in broken.items():
        lines = path[key].read_text().splitlines()
        lines[k] = text
        path[key].write_text("\n".join(lines) + "\n")
    path[keys[4]].write_text("")
    broken[keys[4]] = ("needs an image-name line and a count line", None)
    event = keys[5][0]
    path[keys[5]].unlink()
    duplicate = folder / keys[6][0] / "copy.txt"
    duplicate.write_text(path[keys[6]].read_text())
    stranger = folder / event / "not_in_val.txt"
    stranger.write_text("not_in_val\n1\n1 1 5 5 0.5\n")
    loose = folder / "loose.txt"
    loose.write_text(path[keys[7]].read_text())

    result = evaluate_folder(folder, gt_dir)
    reasons = dict(m.split(": ", 1) for m in result.malformed)
    for key, (reason, _) in broken.items():
        assert reasons[str(path[key])].startswith(reason)
    assert "already given by" in reasons[str(duplicate)] and str(path[keys[6]]) in reasons[str(duplicate)]
    assert reasons[str(stranger)] == f"{event}/not_in_val is not a WIDER val image"
    assert "not inside an event folder" in reasons[str(loose)]
    assert len(result.malformed) == 8
    assert set(result.missing) == {f"{e}/{n}" for e, n in keys[:6]}
    assert result.images == len(keys) - 6
    assert result.ap == evaluate_folder(good, gt_dir).ap


def test_second_box_on_a_recalled_face_is_a_false_positive():
    gt = _toy([[0, 0, 10, 10]], {"easy": [0]})
    result = evaluate(gt, _preds([[0, 0, 10, 10, 0.9], [1, 0, 10, 10, 0.5]]))
    assert result.precision["easy"][-1] == 0.5 and result.recall["easy"][-1] == 1.0


def test_read_predictions_uses_the_name_line_and_ignores_extra_fields(tmp_path):
    path = tmp_path / "0--Toy" / "whatever.txt"
    path.parent.mkdir()
    path.write_text("0--Toy/toy.jpg\n2\n1 2 3 4 0.9 7 7 \n5 6 7 8 0.5\n")
    preds = read_predictions(tmp_path)
    np.testing.assert_array_equal(preds.boxes[("0--Toy", "toy")], [[1, 2, 3, 4, 0.9], [5, 6, 7, 8, 0.5]])


def test_box_rows_reproduce_the_original_txt_truncation(shared):
    raw = shared / "reference" / "yolov5n-0.5" / "raw"
    for name in ("test", "bus", "11_Meeting_Meeting_11_Meeting_Meeting_11_807"):
        ref = np.load(raw / f"{name}.test_widerface.npz")
        info = json.loads((raw / f"{name}.json").read_text())
        final, h_w = ref["final"], tuple(info["orig_hw"])
        np.testing.assert_array_equal(wider_box_rows(final[:, :4], h_w), ref["boxes_x1y1wh_conf"][:, :4])
        faces = [Face(row[:4], float(row[4]), row[5:15].reshape(5, 2)) for row in final]
        lines = wider_file_text(name, faces, h_w).splitlines()
        assert lines[:2] == [name, str(len(faces))]
        assert lines[2:] == info["test_widerface"]["widerface_txt_lines"]


def test_unflip_mirrors_boxes_and_swaps_eyes_and_mouth_corners():
    points = np.array([[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]], dtype=np.float32)
    face = Face(np.array([20, 30, 60, 70], np.float32), 0.8, points)
    (back,) = unflip_faces([face], width=100)
    np.testing.assert_array_equal(back.box, [40, 30, 80, 70])
    np.testing.assert_array_equal(back.landmarks, [[50, 40], [70, 40], [60, 50], [52, 60], [68, 60]])
    assert back.landmarks[0, 0] < back.landmarks[1, 0]  # left eye stays left of the right eye


def test_pass_size_scales_then_rounds_up_to_64():
    assert pass_size((583, 1024), 640, 1.0) == 640
    assert pass_size((583, 1024), 640, 1.5) == 960
    assert pass_size((583, 1024), 640, 0.3) == 192
    assert pass_size((583, 1000), 0, 1.0) == 1024  # original-size mode: the long side, rounded up


def test_flip_and_multiscale_passes_find_the_same_faces(scene_files, official_style_pt):
    from faceyolo.eval.predictions import detect_passes
    from faceyolo.geometry import box_iou
    from faceyolo.images import read_image
    from faceyolo.inference.detector import FaceDetector
    from faceyolo.inference.preprocess import to_rgb

    detector = FaceDetector.from_file(official_style_pt, conf=0.3, iou=0.5, max_det=None)
    image = to_rgb(read_image(scene_files["pair"]))
    (plain,) = detect_passes(detector, [image])
    (merged,) = detect_passes(detector, [image], scales=(0.75, 1.0), flip=True)
    assert len(plain) == 2 and len(merged) >= 2
    assert [f.score for f in merged] == sorted((f.score for f in merged), reverse=True)
    iou = box_iou(np.stack([f.box for f in plain]), np.stack([f.box for f in merged]))
    best = iou.argmax(axis=1)
    assert (iou.max(axis=1) > 0.7).all()
    for face, k in zip(plain, best, strict=True):  # de-flipped landmarks land on the same eyes and mouth
        assert np.abs(merged[k].landmarks - face.landmarks).max() < 0.1 * (face.box[2] - face.box[0])

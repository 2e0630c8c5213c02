"""Face NMS: the original's semantics (SPEC §6.2), its stored outputs, and the vectorised greedy NMS."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from faceyolo.geometry import box_iou
from faceyolo.inference import nms as nms_module
from faceyolo.inference.nms import greedy_nms, nms_faces

RAW = "reference/yolov5n-0.5/raw"
NAMES = [
    "test", "zidane", "bus", "30_Surgeons_Surgeons_30_722", "11_Meeting_Meeting_11_Meeting_Meeting_11_807",
]


def reference_greedy_loop(boxes: np.ndarray, scores: np.ndarray, iou_thres: float) -> list[int]:
    """The textbook greedy NMS, one box at a time."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while len(order):
        best, order = order[0], order[1:]
        keep.append(int(best))
        order = order[box_iou(boxes[best : best + 1], boxes[order])[0] <= iou_thres]
    return keep


def random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return clustered boxes (n, 4) xyxy and scores (n,) with some exact ties."""
    centres = rng.uniform(0, 300, (n // 8 + 1, 2))[rng.integers(0, n // 8 + 1, n)] + rng.normal(0, 6, (n, 2))
    sizes = rng.uniform(10, 60, (n, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    scores = rng.choice(np.linspace(0.05, 1, 40), n).astype(np.float32)
    return boxes, scores


def face_rows(boxes_cxcywh, obj, cls=None) -> np.ndarray:
    """Return decoded pred rows (1, N, 16) with the given boxes, objectness and class probability."""
    n = len(boxes_cxcywh)
    pred = np.zeros((1, n, 16), np.float32)
    pred[0, :, :4] = boxes_cxcywh
    pred[0, :, 4] = obj
    pred[0, :, 5:15] = np.arange(10, dtype=np.float32) + np.arange(n, dtype=np.float32)[:, None] * 100
    pred[0, :, 15] = 1.0 if cls is None else cls
    return pred


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_nms_reproduces_reference_outputs_of_both_pipelines(shared, name, as_tensor):
    widerface = np.load(shared / RAW / f"{name}.test_widerface.npz")
    demo = np.load(shared / RAW / f"{name}.detect_face.npz")
    demo_pred = demo["pred"] if "pred" in demo.files else demo["pred_candidate_rows"]
    cases = [(widerface["pred"], 0.02, widerface["nms_out"]), (demo_pred, 0.6, demo["nms_out"])]
    for pred, conf, expected in cases:
        batch = torch.from_numpy(pred[None]) if as_tensor else pred[None]
        (out,) = nms_faces(batch, conf, 0.5)
        out = out.numpy() if as_tensor else out
        assert out.shape == expected.shape
        assert np.array_equal(out, expected)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("as_tensor", [False, True])
def test_nms_equals_the_spec_steps_on_random_rows(seed, as_tensor):
    """The synthetic twin of the reference test: obj > conf, score = obj × cls > conf, greedy NMS at 0.5."""
    rng = np.random.default_rng(seed)
    boxes, _ = random_boxes(rng, 600)
    pred = face_rows(np.c_[(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]],
                     obj=rng.uniform(0, 1, 600), cls=rng.uniform(0.2, 1, 600))
    conf = 0.02 + 0.1 * seed
    rows = pred[0][pred[0, :, 4] > conf]
    rows = rows[rows[:, 4] * rows[:, 15] > conf]
    xyxy = np.c_[rows[:, :2] - rows[:, 2:4] / 2, rows[:, :2] + rows[:, 2:4] / 2]
    keep = reference_greedy_loop(xyxy, rows[:, 4] * rows[:, 15], 0.5)
    expected = np.c_[xyxy, rows[:, 4] * rows[:, 15], rows[:, 5:15], np.zeros(len(rows))][keep]
    (out,) = nms_faces(torch.from_numpy(pred) if as_tensor else pred, conf, 0.5)
    out = out.numpy() if as_tensor else out
    assert 10 < len(out) < len(rows)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("iou_thres", [0.3, 0.5, 0.7])
def test_greedy_nms_equals_a_one_box_at_a_time_loop(iou_thres, monkeypatch):
    monkeypatch.setattr(nms_module, "_BLOCK", 64)  # many blocks, so keeps cross block borders
    boxes, scores = random_boxes(np.random.default_rng(int(iou_thres * 10)), 1000)
    keep = greedy_nms(boxes, scores, iou_thres)
    assert keep.tolist() == reference_greedy_loop(boxes, scores, iou_thres)


def test_greedy_nms_agrees_with_torchvision_when_it_imports():
    tv_nms = nms_module._torchvision_nms()
    if tv_nms is None:
        pytest.skip("torchvision does not import here; the loop test covers the fallback")
    boxes, scores = random_boxes(np.random.default_rng(3), 2000)
    scores = scores + np.random.default_rng(4).uniform(0, 1e-3, len(scores)).astype(np.float32)  # no ties
    expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert greedy_nms(boxes, scores, 0.5).tolist() == expected.tolist()


def test_candidates_need_objectness_and_score_above_conf():
    boxes = [[50, 50, 20, 20], [150, 50, 20, 20], [250, 50, 20, 20]]
    pred = face_rows(boxes, obj=[0.5, 0.9, 0.3], cls=[1.0, 0.4, 1.0])  # scores 0.5, 0.36, 0.3
    (out,) = nms_faces(pred, conf_thres=0.4, iou_thres=0.5)
    assert out.shape == (1, 16)
    assert np.allclose(out[0, :5], [40, 40, 60, 60, 0.5])
    assert np.array_equal(out[0, 5:15], pred[0, 0, 5:15])  # landmarks ride along unchanged
    assert out[0, 15] == 0


def test_output_is_sorted_by_score_and_capped_by_max_det():
    boxes = [[50 + 100 * k, 50, 20, 20] for k in range(5)]
    pred = face_rows(boxes, obj=[0.3, 0.9, 0.5, 0.7, 0.6])
    (out,) = nms_faces(pred, 0.1, 0.5)
    assert out[:, 4].tolist() == pytest.approx([0.9, 0.7, 0.6, 0.5, 0.3])
    (capped,) = nms_faces(pred, 0.1, 0.5, max_det=2)
    assert np.array_equal(capped, out[:2])


def test_overlap_suppresses_only_above_the_iou_threshold():
    pred = face_rows([[50, 50, 20, 20], [52, 50, 20, 20], [150, 50, 20, 20]], obj=[0.9, 0.8, 0.7])
    assert len(nms_faces(pred, 0.1, 0.5)[0]) == 2  # IoU(0, 1) = 18/22 > 0.5
    assert len(nms_faces(pred, 0.1, 0.9)[0]) == 3


def test_classes_suppress_each_other_only_when_agnostic():
    pred = np.zeros((1, 2, 17), np.float32)
    pred[0, :, :4] = [[50, 50, 20, 20], [51, 50, 20, 20]]
    pred[0, :, 4] = [0.9, 0.8]
    pred[0, :, 15:] = [[1.0, 0.0], [0.0, 1.0]]
    (per_class,) = nms_faces(pred, 0.1, 0.5)
    assert per_class[:, 15].tolist() == [0, 1]
    (agnostic,) = nms_faces(pred, 0.1, 0.5, agnostic=True)
    assert agnostic[:, 15].tolist() == [0]


def test_empty_results_keep_the_row_layout_and_type():
    pred = face_rows([[50, 50, 20, 20]], obj=[0.01])
    assert nms_faces(pred, 0.5, 0.5)[0].shape == (0, 16)
    out = nms_faces(torch.from_numpy(pred).repeat(2, 1, 1), 0.5, 0.5)
    assert len(out) == 2 and isinstance(out[0], torch.Tensor) and out[0].shape == (0, 16)


def test_nms_on_arrays_does_not_import_torch():
    code = (
        "import sys, numpy as np; from faceyolo.inference.nms import nms_faces; "
        "p = np.zeros((1, 4, 16), np.float32); p[..., 2:5] = 1; nms_faces(p, 0.5, 0.5); "
        "assert 'torch' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

"""Detection metrics (P, R, mAP@.5, mAP@.5:.95 as test.py) and the validator training calls each epoch."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceyolo.engine.validator import validate
from faceyolo.eval.metrics import (
    MetricsAccumulator,
    ap_per_class,
    compute_ap,
    match_predictions,
    save_metric_plots,
)

BOX = np.array([[10, 10, 50, 50]], dtype=np.float64)


def test_first_claim_on_a_target_wins_even_against_a_better_later_box():
    preds = np.array([[12, 12, 52, 52], [10, 10, 50, 50]], dtype=np.float64)
    correct = match_predictions(preds, np.zeros(2), BOX, np.zeros(1))
    assert correct[0, 0] and not correct[1].any()


def test_match_is_correct_at_every_threshold_below_its_iou():
    pred = np.array([[10, 10, 50, 44]], dtype=np.float64)  # IoU 34/40 = 0.85
    correct = match_predictions(pred, np.zeros(1), BOX, np.zeros(1))
    np.testing.assert_array_equal(correct[0], np.linspace(0.5, 0.95, 10) < 0.85)


def test_iou_of_exactly_one_half_does_not_match():
    pred = np.array([[10, 10, 50, 30]], dtype=np.float64)  # IoU 20/40 = 0.5
    assert not match_predictions(pred, np.zeros(1), BOX, np.zeros(1)).any()


def test_predictions_match_only_targets_of_their_class():
    correct = match_predictions(BOX, np.array([1]), BOX, np.array([0]))
    assert not correct.any()


def test_perfect_detections_score_one_everywhere():
    correct = np.ones((4, 10), dtype=bool)
    m = ap_per_class(correct, np.array([0.9, 0.8, 0.7, 0.6]), np.zeros(4), np.zeros(4))
    assert (m.precision, m.recall, m.map50, m.map) == pytest.approx((1, 1, 1, 1))


def test_ap_is_the_101_point_area_under_the_padded_envelope():
    ap, envelope, recall = compute_ap(np.array([0.5]), np.array([1.0]))
    x = np.linspace(0, 1, 101)
    expected = np.trapezoid(np.interp(x, [0, 0.5, 0.51], [1, 1, 0]), x)
    assert ap == pytest.approx(expected) and 0.5 < ap < 0.51
    np.testing.assert_array_equal(recall, [0, 0.5, 0.51])
    np.testing.assert_array_equal(envelope, [1, 1, 0])


def test_precision_and_recall_are_interpolated_at_confidence_one_tenth():
    correct = np.array([[True] * 10, [False] * 10])
    m = ap_per_class(correct, np.array([0.9, 0.05]), np.zeros(2), np.zeros(1))
    assert m.recall == pytest.approx(1.0)
    assert m.precision == pytest.approx(1 - 0.5 * (0.9 - 0.1) / (0.9 - 0.05))


def test_targets_of_images_without_predictions_still_count():
    acc = MetricsAccumulator()
    acc.add_image(BOX, np.array([0.9]), np.zeros(1), BOX, np.zeros(1))
    acc.add_image(np.zeros((0, 4)), np.zeros(0), np.zeros(0), BOX, np.zeros(1))
    m = acc.compute()
    assert m.images == 2 and m.targets == 2
    assert m.recall == pytest.approx(0.5) and m.map50 < 0.51


def test_metric_plots_are_written(tmp_path):
    correct = np.array([[True] * 10, [False] * 10, [True] * 5 + [False] * 5])
    m = ap_per_class(correct, np.array([0.9, 0.5, 0.3]), np.zeros(3), np.zeros(3))
    paths = save_metric_plots(m, tmp_path, ["face"])
    assert {p.name for p in paths} == {"PR_curve.png", "F1_curve.png", "P_curve.png", "R_curve.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def _write_dataset(root: Path) -> list[Path]:
    """Return the image paths after writing three noise images of different shapes with YOLO-face labels."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    no_landmarks = " -1" * 10
    faces = f"0 0.30 0.40 0.20 0.25{no_landmarks}\n0 0.70 0.60 0.15 0.20{no_landmarks}"
    paths = []
    for k, (h, w) in enumerate([(120, 160), (160, 120), (100, 100)]):
        path = root / "images" / f"im{k}.jpg"
        cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        (root / "labels" / f"im{k}.txt").write_text(faces + "\n")
        paths.append(path)
    return paths


class _ModelReturningLabels(torch.nn.Module):
    """Stands in for a FaceModel: in eval mode it returns, batch after batch, the labels it was given."""

    def __init__(self, batches: list[torch.Tensor]):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.batches = batches

    def forward(self, images):
        targets = self.batches.pop(0)
        b, _, h, w = images.shape
        decoded = torch.zeros(b, 4, 16)
        for i in range(b):
            rows = targets[targets[:, 0] == i]
            decoded[i, : len(rows), :4] = rows[:, 2:6] * torch.tensor([w, h, w, h])
            decoded[i, : len(rows), 4] = 0.9
            decoded[i, : len(rows), 15] = 1.0
        return decoded, [torch.zeros(b, 3, 1, 1, 16)]


def test_validate_scores_perfect_predictions_one_and_restores_train_mode(tmp_path):
    from faceyolo.data.loader import create_dataloader

    paths = _write_dataset(tmp_path)
    loader, _ = create_dataloader(paths, 128, 2, stride=32, rect=True, pad=0.5)
    model = _ModelReturningLabels([targets for _, targets, _, _ in loader])
    model.train()
    calls = []

    def loss_fn(raw, targets):
        calls.append(len(targets))
        return torch.tensor(0.0), {"box": torch.tensor(0.5), "obj": torch.tensor(1.0)}

    result = validate(model, loader, loss_fn=loss_fn)
    assert model.training
    m = result.metrics
    assert (m.precision, m.recall, m.map50, m.map) == pytest.approx((1, 1, 1, 1))
    assert result.metrics.images == 3 and result.metrics.targets == 6
    assert calls == [4, 2] and result.losses == {"box": 0.5, "obj": 1.0}
    assert result.as_row()["metrics/mAP50-95"] == pytest.approx(1) and result.as_row()["val/obj"] == 1.0


def test_validate_runs_a_random_model_with_its_loss(tmp_path):
    from faceyolo.data.loader import create_dataloader
    from faceyolo.engine.loss import FaceLoss
    from faceyolo.hyp import load_hyp
    from faceyolo.models.build import build_model

    torch.manual_seed(0)
    model = build_model("yolov5n-0.5")
    loader, _ = create_dataloader(_write_dataset(tmp_path), 128, 3, stride=32, rect=True, pad=0.5)
    result = validate(model, loader, loss_fn=FaceLoss(model, load_hyp(None)))
    assert model.training
    assert {"box", "obj", "landmark"} <= set(result.losses)
    m = result.metrics
    assert 0 <= m.map <= m.map50 <= 1 and 0 <= m.precision <= 1 and 0 <= m.recall <= 1
    recall, precision = result.pr_curve
    assert recall.shape == precision.shape == (1000,)

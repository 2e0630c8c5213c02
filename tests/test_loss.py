"""The training loss against the original's golden outputs (reference/loss) and the spec's test vectors."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from faceyolo.engine.loss import FaceLoss, objectness_balance, wing_loss_sum
from faceyolo.engine.targets import build_targets

CASES = ["caseA_official_weights_real_images", "caseB_random_logits_256", "caseC_random_init_real_images"]
TERM_NAMES = {"box": "lbox", "obj": "lobj", "cls": "lcls", "landmark": "lmark", "total": "total"}
TARGET_FIELDS = {
    "image": "b", "anchor": "a", "cell_y": "gj", "cell_x": "gi", "box": "tbox", "anchor_wh": "anch",
    "landmarks": "tlandmarks", "landmark_mask": "lmks_mask", "cls": "tcls",
}
P5_ANCHORS_GRID = torch.tensor([
    [[0.5, 0.625], [1.0, 1.25], [1.625, 2.0]],
    [[1.4375, 1.8125], [2.6875, 3.4375], [4.5625, 6.5625]],
    [[4.5625, 6.78125], [7.21875, 9.375], [10.46875, 13.53125]],
])
HYP = {
    "box": 0.05, "obj": 1.0, "cls": 0.00625, "landmark": 0.005, "cls_pw": 1.0, "obj_pw": 1.0, "anchor_t": 4.0,
}


def _golden(shared, case):
    folder = shared / "reference" / "loss"
    arrays = np.load(folder / f"{case}.npz")
    info = json.loads((folder / f"{case}.json").read_text())
    detect = SimpleNamespace(nl=3, na=3, nc=1, anchors=torch.tensor(info["anchors_grid_units"]))
    preds = [torch.tensor(arrays[f"p{i}"], requires_grad=True) for i in range(3)]
    return arrays, info, FaceLoss(detect, info["hyp"]), preds, torch.tensor(arrays["targets"])


@pytest.mark.parametrize("case", CASES)
def test_loss_terms_match_original_within_1e_4(shared, case):
    arrays, info, loss_fn, preds, targets = _golden(shared, case)
    loss, terms = loss_fn(preds, targets)
    expected = info["outputs"]
    assert loss.item() == pytest.approx(expected["loss_times_bs"], rel=1e-4)
    for ours, theirs in TERM_NAMES.items():
        assert terms[ours].item() == pytest.approx(expected[theirs], rel=1e-4, abs=1e-9), ours


@pytest.mark.parametrize("case", CASES)
def test_loss_gradients_match_original(shared, case):
    arrays, _, loss_fn, preds, targets = _golden(shared, case)
    loss_fn(preds, targets)[0].backward()
    for i, pred in enumerate(preds):
        expected = arrays[f"grad_p{i}"]
        assert np.abs(pred.grad.numpy() - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("case", CASES)
def test_target_assignment_matches_original_order_and_values(shared, case):
    arrays, info, loss_fn, preds, targets = _golden(shared, case)
    levels = loss_fn.build_targets(preds, targets)
    assert [len(level) for level in levels] == info["positives_per_level"]
    for i, level in enumerate(levels):
        for ours, theirs in TARGET_FIELDS.items():
            np.testing.assert_allclose(getattr(level, ours).numpy(), arrays[f"bt{i}_{theirs}"], atol=1e-5)


SYNTHETIC_CASES = [(2, 64, 5, 0), (1, 96, 12, 1), (3, 128, 20, 2)]  # (batch, input px, faces, seed)
STEP = 3e-3  # the loss computes in float32: a larger step keeps rounding out of the differences


def _synthetic_case(batch: int, size: int, faces: int, seed: int):
    """Return (loss fn, raw preds at strides 8/16/32 with grad, targets (faces, 16)): random logits, random
    faces of 2-40 % of the image with landmarks inside them, some missing."""
    gen = torch.Generator().manual_seed(seed)
    detect = SimpleNamespace(nl=3, na=3, nc=1, anchors=P5_ANCHORS_GRID)
    preds = [(torch.randn(batch, 3, size // s, size // s, 16, generator=gen, dtype=torch.float64) * 0.5)
             .requires_grad_() for s in (8, 16, 32)]
    wh = torch.rand(faces, 2, generator=gen, dtype=torch.float64) * 0.38 + 0.02
    centre = wh / 2 + torch.rand(faces, 2, generator=gen, dtype=torch.float64) * (1 - wh)
    spread = torch.rand(faces, 5, 2, generator=gen, dtype=torch.float64) - 0.5
    points = centre[:, None] + spread * wh[:, None]
    points[torch.rand(faces, generator=gen) < 0.3] = -1
    image = torch.randint(0, batch, (faces, 1), generator=gen).double()
    cls = torch.zeros(faces, 1, dtype=torch.float64)
    targets = torch.cat([image, cls, centre, wh, points.view(faces, 10)], 1)
    return FaceLoss(detect, HYP), preds, targets


@pytest.mark.parametrize("case", SYNTHETIC_CASES)
def test_loss_is_the_batch_times_the_sum_of_its_terms(case):
    """The synthetic twin of the golden-term test."""
    loss_fn, preds, targets = _synthetic_case(*case)
    loss, terms = loss_fn(preds, targets)
    assert all(terms[k] > 0 for k in ("box", "obj", "landmark")) and terms["cls"] == 0
    assert terms["total"].item() == pytest.approx(sum(terms[k].item() for k in TERM_NAMES if k != "total"))
    assert loss.item() == pytest.approx(case[0] * terms["total"].item())
    no_faces = loss_fn(preds, targets[:0])[1]
    assert no_faces["box"] == no_faces["landmark"] == 0 and 0 < no_faces["obj"] < terms["obj"] + 1


@pytest.mark.parametrize("case", SYNTHETIC_CASES)
def test_loss_gradients_match_finite_differences(case):
    """The synthetic twin of the golden-gradient test: autograd against central differences, on
    landmark logits of positives and a background objectness logit (box logits also move the IoU that is
    the detached objectness target, which autograd rightly ignores)."""
    loss_fn, preds, targets = _synthetic_case(*case)
    loss_fn(preds, targets)[0].backward()
    positives = loss_fn.build_targets(preds, targets)
    for level, (pred, tgt) in enumerate(zip(preds, positives, strict=True)):
        picks = [(int(b), int(a), int(y), int(x), f) for b, a, y, x, f in zip(
            tgt.image[:2], tgt.anchor[:2], tgt.cell_y[:2], tgt.cell_x[:2], (5, 12), strict=False)]
        picks.append((0, 1, 0, 0, 4))  # a background objectness logit
        for index in picks:
            with torch.no_grad():
                pred[index] += STEP
                up = loss_fn(preds, targets)[0].item()
                pred[index] -= 2 * STEP
                down = loss_fn(preds, targets)[0].item()
                pred[index] += STEP
            numeric = (up - down) / (2 * STEP)
            assert pred.grad[index].item() == pytest.approx(numeric, rel=2e-2, abs=2e-5), (level, index)


@pytest.mark.parametrize("case", SYNTHETIC_CASES)
def test_targets_sit_on_their_cells_with_anchors_in_ratio(case):
    """The synthetic twin of the golden-assignment test: every positive follows SPEC §3.2's rules."""
    loss_fn, preds, targets = _synthetic_case(*case)
    levels = loss_fn.build_targets(preds, targets)
    assert sum(len(level) for level in levels) >= len(targets)
    for pred, level, anchors in zip(preds, levels, P5_ANCHORS_GRID, strict=True):
        ny, nx = pred.shape[2:4]
        assert ((level.box[:, :2] >= -0.5) & (level.box[:, :2] <= 1.5)).all()
        assert ((level.cell_x >= 0) & (level.cell_x < nx) & (level.cell_y >= 0) & (level.cell_y < ny)).all()
        ratio = level.box[:, 2:] / anchors[level.anchor].to(level.box.dtype)
        assert (torch.max(ratio, 1 / ratio).max(1).values < HYP["anchor_t"]).all()
        assert torch.equal(level.anchor_wh, anchors[level.anchor].to(level.anchor_wh.dtype))


def test_spec_9_4_assigns_centre_left_and_lower_cells():
    face = torch.tensor([[0, 0, 0.1031, 0.2094, 0.02, 0.025] + [0.095, 0.2] * 5])
    p3, p4, p5 = build_targets(face, [(80, 80), (40, 40), (20, 20)], P5_ANCHORS_GRID)
    assert len(p3) == 9 and len(p5) == 0
    assert sorted(set(p4.anchor.tolist())) == [0, 1]
    cells = {(x, y) for x, y in zip(p3.cell_x.tolist(), p3.cell_y.tolist(), strict=True)}
    assert cells == {(8, 16), (7, 16), (8, 17)}
    first = p3.anchor == 0
    np.testing.assert_allclose(p3.box[first, :2].numpy(), [[0.248, 0.752], [1.248, 0.752], [0.248, -0.248]],
                               atol=1e-4)
    np.testing.assert_allclose(p3.landmarks[first, :2].numpy(), [[-0.4, 0.0], [0.6, 0.0], [-0.4, -1.0]],
                               atol=1e-4)


def test_missing_landmarks_are_masked_per_coordinate():
    face = torch.tensor([[0, 0, 0.5, 0.5, 0.1, 0.1, -1, -1, 0.5, 0.5, 0.5, -1, 0.5, 0.5, 0.5, 0.5]])
    (level,) = build_targets(face, [(20, 20)], P5_ANCHORS_GRID[1:2])
    assert level.landmark_mask[0].tolist() == [0, 0, 1, 1, 1, 0, 1, 1, 1, 1]


def test_no_targets_gives_only_objectness_loss():
    detect = SimpleNamespace(nl=3, na=3, nc=1, anchors=P5_ANCHORS_GRID)
    preds = [torch.zeros(2, 3, s, s, 16, requires_grad=True) for s in (8, 4, 2)]
    loss, terms = FaceLoss(detect, HYP)(preds, torch.zeros(0, 16))
    assert terms["box"] == 0 and terms["landmark"] == 0
    expected_obj = math.log(2) * sum(objectness_balance(3))  # BCE(0 logit, 0 target) = ln 2 per level
    assert terms["obj"].item() == pytest.approx(expected_obj, rel=1e-6)
    assert loss.item() == pytest.approx(2 * expected_obj, rel=1e-6)


@pytest.mark.parametrize(("distance", "expected"), [(0.5, 2.231436), (9.99, 17.909258), (10.0, 17.917595),
                                                    (12.0, 19.917595)])
def test_wing_loss_spec_9_6_values(distance, expected):
    loss = wing_loss_sum(torch.tensor([distance]), torch.tensor([0.0]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_wing_loss_ignores_target_of_exactly_minus_one():
    assert wing_loss_sum(torch.tensor([3.0]), torch.tensor([-1.0])).item() == 0.0


def test_class_loss_is_zero_for_one_class_and_positive_for_two():
    def face(cls):
        return torch.tensor([[0, cls, 0.5, 0.5, 0.1, 0.12] + [0.5] * 10])

    def loss_terms(nc, targets):
        detect = SimpleNamespace(nl=3, na=3, nc=nc, anchors=P5_ANCHORS_GRID)
        preds = [torch.zeros(1, 3, s, s, 15 + nc) for s in (16, 8, 4)]
        return FaceLoss(detect, HYP)(preds, targets)[1]

    assert loss_terms(1, face(0))["cls"] == 0
    assert loss_terms(2, face(1))["cls"] > 0


def test_four_level_objectness_uses_extra_gain():
    anchors = torch.cat((P5_ANCHORS_GRID, P5_ANCHORS_GRID[-1:]))
    preds = [torch.zeros(1, 3, s, s, 16) for s in (8, 4, 2, 1)]
    _, terms = FaceLoss(SimpleNamespace(nl=4, na=3, nc=1, anchors=anchors), HYP)(preds, torch.zeros(0, 16))
    expected = math.log(2) * (4.0 + 1.0 + 0.4 + 0.1) * (3 / 4) * 1.4
    assert terms["obj"].item() == pytest.approx(expected, rel=1e-6)

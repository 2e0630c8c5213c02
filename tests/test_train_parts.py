"""Trainer building blocks: parameter groups, warm-up, schedules, EMA, training state, anchors, transfer."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from faceyolo.engine import checkpoint as ckpt
from faceyolo.engine.autoanchor import anchor_fit, check_anchors, evolve_anchors
from faceyolo.engine.ema import ModelEMA
from faceyolo.engine.optim import (
    BIAS,
    BN_WEIGHT,
    WEIGHT,
    accumulate_steps,
    apply_warmup,
    build_optimizer,
    lr_factor,
    scaled_weight_decay,
    warmup_iterations,
    warmup_note,
)
from faceyolo.engine.train_data import random_rescale
from faceyolo.engine.transfer import transfer_weights
from faceyolo.errors import FaceyoloError
from faceyolo.hyp import load_hyp
from faceyolo.models.build import build_model


def _tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))


def test_only_conv_weights_are_decayed():
    net = _tiny_net()
    opt = build_optimizer(net, "sgd", lr0=0.01, momentum=0.937, weight_decay=5e-4)
    groups = {g["name"]: g for g in opt.param_groups}
    assert [g["name"] for g in opt.param_groups] == [BN_WEIGHT, WEIGHT, BIAS]
    assert {id(p) for p in groups[WEIGHT]["params"]} == {id(net[0].weight), id(net[2].weight)}
    assert {id(p) for p in groups[BIAS]["params"]} == {id(net[1].bias), id(net[2].bias)}
    assert groups[WEIGHT]["weight_decay"] == 5e-4 and groups[BIAS]["weight_decay"] == 0
    assert groups[BN_WEIGHT]["weight_decay"] == 0 and opt.defaults["nesterov"]


def test_adam_uses_momentum_as_beta1():
    opt = build_optimizer(_tiny_net(), "adam", lr0=0.001, momentum=0.9, weight_decay=0.0)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    with pytest.raises(FaceyoloError):
        build_optimizer(_tiny_net(), "lion", 0.01, 0.9, 0.0)


def test_nominal_batch_accumulation_and_decay_scaling():
    assert accumulate_steps(16) == 4 and accumulate_steps(64) == 1 and accumulate_steps(128) == 1
    assert scaled_weight_decay(5e-4, 16, 4) == pytest.approx(5e-4)
    assert scaled_weight_decay(5e-4, 8, 8) == pytest.approx(5e-4)
    assert scaled_weight_decay(5e-4, 128, 1) == pytest.approx(1e-3)


def test_spec_9_8_warmup_length_and_ramps():
    assert warmup_iterations(3.0, 805) == 2415 and warmup_iterations(3.0, 4) == 1000
    hyp = load_hyp()
    opt = build_optimizer(_tiny_net(), "sgd", hyp["lr0"], hyp["momentum"], 5e-4)
    lr_end = hyp["lr0"] * lr_factor(250, hyp["lrf"])(0)
    assert apply_warmup(opt, 0, 2415, lr_end, hyp, total_batch=16) == 1
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs[BIAS] == pytest.approx(0.1) and lrs[WEIGHT] == 0 and opt.param_groups[0]["momentum"] == 0.8
    assert apply_warmup(opt, 2415, 2415, lr_end, hyp, total_batch=16) == 4
    assert all(g["lr"] == pytest.approx(0.01) for g in opt.param_groups)
    assert opt.param_groups[1]["momentum"] == pytest.approx(0.937)


def test_cosine_and_linear_schedules_end_at_lrf():
    cosine, linear = lr_factor(10, 0.2, cosine=True), lr_factor(10, 0.2, cosine=False)
    assert cosine(0) == 1 and linear(0) == 1
    assert cosine(10) == pytest.approx(0.2) and linear(10) == pytest.approx(0.2)
    assert cosine(5) == pytest.approx(0.6) and linear(2) == pytest.approx(0.84)


@pytest.mark.parametrize(("updates", "decay"), [(1, 0.000499825), (2000, 0.632057), (10000, 0.993163)])
def test_spec_9_7_ema_decay(updates, decay):
    ema = ModelEMA(_tiny_net(), updates=updates)
    assert ema.decay() == pytest.approx(decay, rel=1e-5)


def test_ema_averages_weights_and_buffers_but_not_counters():
    net = _tiny_net()
    ema = ModelEMA(net, updates=1999)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.add_(2.0)
        net[1].num_batches_tracked += 5
    before = {k: v.clone() for k, v in ema.ema.state_dict().items()}
    ema.update(net)
    d = ema.decay()
    torch.testing.assert_close(ema.ema[0].weight, before["0.weight"] * d + net[0].weight * (1 - d))
    torch.testing.assert_close(ema.ema[1].running_mean, before["1.running_mean"] + 2.0 * (1 - d))
    assert ema.ema[1].num_batches_tracked == before["1.num_batches_tracked"]
    assert not any(p.requires_grad for p in ema.ema.parameters())


def test_training_state_round_trips_optimizer_rng_and_tensors(tmp_path):
    net = _tiny_net()
    opt = build_optimizer(net, "adamw", 0.01, 0.9, 1e-4)
    net(torch.rand(2, 3, 8, 8)).sum().backward()
    opt.step()
    random.seed(3)
    np.random.seed(4)
    torch.manual_seed(5)
    state = ckpt.TrainingState(epoch=2, best_fitness=0.25, model=net.state_dict(), ema=net.state_dict(),
                               ema_updates=7, optimizer=opt.state_dict(), scaler={}, rng=[ckpt.capture_rng()],
                               extra={"config": {"epochs": 5}})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state.rng.append(ckpt.capture_rng())  # a second process's generators, one draw further on
    path = ckpt.save_training_state(tmp_path / "w" / "last.state.safetensors", state)
    random.seed(0)
    loaded = ckpt.load_training_state(path)
    assert len(loaded.rng) == 2
    ckpt.restore_rng(loaded.rng[0])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    ckpt.restore_rng(loaded.rng[1])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) != expected
    assert (loaded.epoch, loaded.best_fitness, loaded.ema_updates, loaded.extra) == (2, 0.25, 7, state.extra)
    fresh = build_optimizer(_tiny_net(), "adamw", 0.01, 0.9, 1e-4)
    fresh.load_state_dict(loaded.optimizer)
    for index, value in opt.state_dict()["state"].items():
        torch.testing.assert_close(fresh.state_dict()["state"][index]["exp_avg"], value["exp_avg"])
    assert not list(path.parent.glob("*.tmp"))


def test_loading_a_non_state_file_names_it(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"nonsense")
    with pytest.raises(FaceyoloError, match="x.safetensors"):
        ckpt.load_training_state(bad)


@pytest.mark.parametrize("document", ["{not json", '{"epoch": 3}', '{"epoch": 3, "optimizer": []}'])
def test_a_damaged_training_state_is_named_with_its_reason(tmp_path, document):
    path = tmp_path / "last.state.safetensors"
    metadata = {"format": ckpt.FORMAT, "version": str(ckpt.VERSION), "state": document}
    save_file({"model/w": torch.zeros(1)}, str(path), metadata=metadata)
    with pytest.raises(FaceyoloError, match=r"last\.state\.safetensors: damaged training state \(.+\)"):
        ckpt.load_training_state(path)


def test_evolved_anchors_fit_labels_better_than_badly_chosen_ones():
    rng = np.random.default_rng(0)
    wh = np.concatenate([rng.normal(c, c / 8, size=(200, 2)) for c in (10, 40, 160)]).clip(3)
    bad = np.full((9, 2), 600.0)
    new = evolve_anchors(wh, 9, anchor_t=4.0, generations=100)
    assert new.shape == (9, 2) and np.all(np.diff(new.prod(1)) >= 0)
    assert anchor_fit(wh, new, 4.0).bpr > 0.98 > anchor_fit(wh, bad, 4.0).bpr


def test_check_anchors_refits_detect_buffers_when_recall_is_low():
    model = build_model("yolov5n-0.5")
    detect = model.detect
    # Thin 6 x 190 px faces: no default anchor is within a factor 4 on both sides.
    labels = [np.array([[0, 0.5, 0.5, 0.01, 0.3]] * 3 + [[0, 0.5, 0.5, 0.012, 0.28]] * 3)] * 6
    image_wh = np.full((6, 2), 640)
    report = check_anchors(detect, image_wh, labels, img_size=640, anchor_t=4.0, generations=50)
    assert "re-fitted" in report
    torch.testing.assert_close(detect.anchor_grid.view(-1, 2),
                               (detect.anchors * detect.stride.view(-1, 1, 1)).view(-1, 2))
    assert (detect.anchor_grid.view(-1, 2)[:, 1] / detect.anchor_grid.view(-1, 2)[:, 0]).max() > 10
    assert "kept" in check_anchors(detect, image_wh, labels, img_size=640, anchor_t=4.0)


def test_transfer_between_variants_reports_skipped_tensors():
    small, large = build_model("yolov5n-0.5"), build_model("yolov5n")
    report = transfer_weights(large, small.state_dict())
    assert 0 < report.transferred < report.total
    assert report.transferred + len(report.skipped) == report.total
    assert any("shape" in why for why in report.skipped.values())
    assert "model.24.anchors" in report.skipped or any("anchor" in k for k in report.skipped)
    assert f"transferred {report.transferred}/{report.total} tensors" in report.summary()
    target = build_model("yolov5n-0.5")
    same = transfer_weights(target, small.state_dict())
    assert same.transferred == same.total - sum("anchor" in k for k in small.state_dict())
    first_conv = next(k for k in small.state_dict() if k.endswith("conv.weight"))
    assert torch.equal(target.state_dict()[first_conv], small.state_dict()[first_conv])


def test_multi_scale_sizes_are_stride_multiples_within_half_to_one_and_a_half():
    random.seed(0)
    images = torch.rand(2, 3, 320, 256)
    sizes = {tuple(random_rescale(images, 320, 32).shape[2:]) for _ in range(40)}
    assert len(sizes) > 3
    for h, w in sizes:
        assert h % 32 == 0 and w % 32 == 0 and 160 <= h <= 512 and w <= h


def test_a_warm_up_longer_than_the_run_is_announced():
    # 103 batches an epoch: the original's 1,000-iteration floor is 9.7 epochs, longer than a 6-epoch run.
    assert "WARNING" in warmup_note(1000, 103, 6) and "--min-warmup-iters" in warmup_note(1000, 103, 6)
    assert warmup_note(31, 103, 6) == "warm-up: 31 iterations (0.3 epochs)"

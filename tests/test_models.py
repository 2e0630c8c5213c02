"""The YOLOv5-Face model family: layout, init, decode and fusion against the original's reference data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from faceyolo.cli import main
from faceyolo.errors import FaceyoloError
from faceyolo.models.blocks import channel_interleave
from faceyolo.models.build import build_model, make_divisible
from faceyolo.models.fuse import fuse_model
from faceyolo.models.summary import summarize
from faceyolo.models.variants import variant_names


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _reference(shared, variant: str) -> dict:
    return json.loads((shared / "reference" / "state_dict" / f"{variant}.json").read_text())


def _randomise_batchnorm(model: nn.Module) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters, so fusion has work to do."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(c, generator=gen) * 0.6 - 0.3)


@pytest.mark.parametrize("variant", variant_names())
def test_state_dict_layout_params_strides_and_anchors_match_original(shared, variant):
    ref = _reference(shared, variant)
    model = build_model(variant)
    layout = [[k, list(t.shape), str(t.dtype).removeprefix("torch.")] for k, t in model.state_dict().items()]
    assert layout == ref["keys"]
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]
    assert model.stride.tolist() == ref["stride"]
    detect = model.detect
    assert (detect.nl, detect.na, detect.no) == (ref["nl"], ref["na"], ref["no"])
    assert detect.anchor_grid.view(ref["nl"], ref["na"], 2).tolist() == ref["anchors"]
    grid_units = torch.tensor(ref["anchors"]) / torch.tensor(ref["stride"]).view(-1, 1, 1)
    assert torch.equal(detect.anchors, grid_units)


@pytest.mark.parametrize("variant", variant_names())
def test_levels_strides_anchors_and_output_rows_agree(variant):
    """The synthetic twin of the layout test: what each variant's Detect head says about itself holds."""
    model = build_model(variant).eval()
    detect = model.detect
    strides = detect.stride.tolist()
    assert strides == [8.0 * 2**k for k in range(detect.nl)]
    anchors_px = detect.anchor_grid.view(detect.nl, -1, 2)
    assert torch.equal(detect.anchors * detect.stride.view(-1, 1, 1), anchors_px)
    areas = anchors_px.prod(-1).mean(-1)
    assert (areas.diff() > 0).all()  # larger anchors on coarser levels
    with torch.no_grad():
        decoded, raw = model(torch.rand(1, 3, 128, 192))
    assert [level.shape[2:4] for level in raw] == [(128 // s, 192 // s) for s in map(int, strides)]
    assert decoded.shape == (1, detect.na * sum(128 * 192 // int(s) ** 2 for s in strides), detect.no)


def test_build_under_seed_0_reproduces_the_original_initial_state(shared):
    expected = np.load(shared / "reference" / "loss" / "caseC_model_state_dict.npz")
    torch.manual_seed(0)
    state = build_model("yolov5n-0.5").state_dict()
    assert list(state) == list(expected.keys())
    mismatched = [k for k in expected.keys() if not np.array_equal(state[k].numpy(), expected[k])]
    assert mismatched == []


def test_train_forward_matches_original_on_real_images(shared):
    loss_dir = shared / "reference" / "loss"
    state = np.load(loss_dir / "caseC_model_state_dict.npz")
    images = np.load(loss_dir / "caseA_official_weights_real_images.npz")["images_uint8"]
    expected = np.load(loss_dir / "caseC_random_init_real_images.npz")
    model = build_model("yolov5n-0.5")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()  # the loaded state must fully determine the output
    model.load_state_dict({k: torch.from_numpy(state[k]) for k in state.keys()})
    model.train()
    with torch.no_grad():
        outputs = model(torch.from_numpy(images).float() / 255)
    assert len(outputs) == 3
    for i, out in enumerate(outputs):
        np.testing.assert_allclose(out.numpy(), expected[f"p{i}"], atol=1e-4, rtol=0)


def test_detect_bias_init_adds_objectness_and_landmark_priors():
    model = build_model("yolov5n6")  # four levels: strides 8, 16, 32, 64
    expected_obj = [-6.684612, -5.298317, -3.912023, -2.525729]
    for conv, obj_prior in zip(model.detect.m, expected_obj, strict=True):
        bound = 1 / math.sqrt(conv.in_channels)  # PyTorch's default uniform bias init lies within it
        bias = conv.bias.detach().view(3, 16)
        assert (bias[:, 4] - obj_prior).abs().max() <= bound
        assert (bias[:, 5:] - 4.094345).abs().max() <= bound
        assert bias[:, :4].abs().max() <= bound


def test_fresh_yolov5s_predicts_class_probability_near_098():
    torch.manual_seed(0)
    model = build_model("yolov5s").eval()
    with torch.no_grad():
        decoded, _ = model(torch.rand(1, 3, 64, 64))
    assert decoded[..., 15].mean().item() == pytest.approx(0.9836, abs=0.005)


def test_decode_follows_spec_vector():
    detect = build_model("yolov5n-0.5").detect.eval()
    heads = [torch.zeros(1, 3 * 16, 32, 32), torch.zeros(1, 3 * 16, 16, 16), torch.zeros(1, 3 * 16, 8, 8)]
    heads[0][0, 5:7, 20, 10] = torch.tensor([1.0, -0.5])  # anchor 0: (4, 5) px, cell (gx, gy) = (10, 20)
    decoded = detect.decode(heads)
    assert decoded.shape == (1, 3 * (32 * 32 + 16 * 16 + 8 * 8), 16)
    row = decoded[0, 20 * 32 + 10]
    assert row[:4].tolist() == [84.0, 164.0, 4.0, 5.0]
    assert row[5:7].tolist() == [84.0, 157.5]
    assert row[7:15].tolist() == [80.0, 160.0] * 4  # raw 0 lands on the cell's top-left corner
    assert row[4].item() == 0.5 and row[15].item() == 0.5


def test_eval_grid_follows_input_shape_changes():
    torch.manual_seed(0)
    model = build_model("yolov5n-0.5").eval()
    small, tall = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 128, 64)
    with torch.no_grad():
        model(small)
        decoded, raw = model(tall)  # cached 64x64 grids must not be reused
        heads = [level.permute(0, 1, 4, 2, 3).flatten(1, 2) for level in raw]
        reference = build_model("yolov5n-0.5").eval().detect.decode(heads)
    assert decoded.shape == (1, 3 * (16 * 8 + 8 * 4 + 4 * 2), 16)
    cx, cy = decoded[0, :, 0], decoded[0, :, 1]
    assert cy.max() > 100 and cx.max() < 80
    assert torch.equal(decoded, reference)


@pytest.mark.parametrize("variant", ["yolov5n-0.5", "blazeface"])
def test_fused_model_matches_unfused_and_leaves_original_untouched(variant):
    torch.manual_seed(0)
    model = build_model(variant)
    _randomise_batchnorm(model)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_model(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected, _ = model(x)
        got, _ = fused(x)
    assert (got - expected).abs().max().item() < 1e-3
    assert (got[..., 4] - expected[..., 4]).abs().max().item() < 1e-5


def test_channel_and_depth_rounding_follow_spec():
    assert [make_divisible(64 * 0.5, 8), make_divisible(1024 * 0.75, 8)] == [32, 768]
    assert [make_divisible(768 * 0.75, 8), make_divisible(128 * 0.5, 8)] == [576, 64]
    repeats = {info.index: info.args[2] for info in build_model("yolov5m").layers if info.block == "C3"}
    assert (repeats[1], repeats[3], repeats[8]) == (2, 6, 2)  # round(3·0.67), round(9·0.67)


def test_activation_choice_reaches_every_block():
    model = build_model("yolov5n-0.5", activation="leaky_relu:0.1")
    kinds = {type(m) for m in model.modules() if isinstance(m, nn.SiLU | nn.LeakyReLU | nn.ReLU)}
    assert kinds == {nn.LeakyReLU}
    assert {m.negative_slope for m in model.modules() if isinstance(m, nn.LeakyReLU)} == {0.1}
    with pytest.raises(FaceyoloError, match="unknown activation"):
        build_model("yolov5n-0.5", activation="gelu")


def test_unknown_variant_error_lists_valid_names():
    with pytest.raises(FaceyoloError, match="yolov5n-0.5.*blazeface_fpn"):
        build_model("yolov5x")


def test_custom_spec_with_unknown_block_is_a_faceyolo_error():
    spec = {"depth_multiple": 1.0, "width_multiple": 1.0, "anchors": [[4, 5, 8, 10, 13, 16]],
            "backbone": [[-1, 1, "Conv", [16, 3, 2]], [-1, 1, "Warp", [16]]], "head": []}
    with pytest.raises(FaceyoloError, match="unknown block 'Warp'"):
        build_model(spec)


def test_summary_gflops_scale_with_area_and_count_every_parameter():
    model = build_model("yolov5n-0.5")
    at_640, at_320 = summarize(model, 640), summarize(model, 320)
    assert at_640.parameters == sum(p.numel() for p in model.parameters())
    assert at_640.gflops == pytest.approx(4 * at_320.gflops, rel=1e-6)
    assert model.training  # counting did not leave the model in eval mode


def test_summary_matches_the_reference_conv_share(shared):
    at_640 = summarize(build_model("yolov5n-0.5"), 640)
    assert at_640.parameters == _reference(shared, "yolov5n-0.5")["num_params"]
    # The reference (thop) also counts BatchNorm, which fusion removes: ours is the conv share of it.
    assert 0.9 < at_640.gflops / _reference(shared, "yolov5n-0.5")["gflops_640"] <= 1.0


def test_info_cli_prints_table_and_summary_line(capsys):
    assert main(["info", "--model", "yolov5n-0.5"]) == 0
    out = capsys.readouterr().out
    assert "ShuffleV2Block" in out and "Detect" in out
    assert "Model Summary:" in out and "447456 parameters" in out and "GFLOPs@640" in out


def test_info_cli_reads_official_format_weights(official_style_pt, capsys):
    assert main(["info", "--model", str(official_style_pt)]) == 0
    assert "447456 parameters" in capsys.readouterr().out


def test_info_cli_rejects_unknown_model(capsys):
    assert main(["info", "--model", "no-such-model"]) == 2
    assert "yolov5n-0.5" in capsys.readouterr().err


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_channel_interleave_is_concat_then_two_group_shuffle(memory_format):
    a = torch.rand(2, 4, 3, 5).contiguous(memory_format=memory_format)
    b = torch.rand(2, 4, 3, 5).contiguous(memory_format=memory_format)
    out = channel_interleave(a, b)
    assert torch.equal(out[:, 0::2], a) and torch.equal(out[:, 1::2], b)
    assert out.is_contiguous(memory_format=memory_format)

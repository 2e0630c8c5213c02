"""ONNX and TorchScript export: parity with PyTorch, dynamic shapes, metadata, NMS in the graph, INT8, CLI."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from faceyolo.cli import main
from faceyolo.errors import FaceyoloError
from faceyolo.export.onnx import export_onnx
from faceyolo.export.onnx_nms import NmsSettings
from faceyolo.export.torchscript import METADATA_FILE, export_torchscript
from faceyolo.export.wrapper import ExportModule
from faceyolo.geometry import box_iou, letterbox
from faceyolo.inference.detector import FaceDetector
from faceyolo.inference.nms import nms_faces
from faceyolo.inference.onnx_backend import create_session
from faceyolo.inference.onnx_metadata import read_metadata
from faceyolo.models.build import build_model
from faceyolo.weights import load_model

VAL = "data/widerface/val_sample"
COORDINATES = np.r_[0:4, 5:15]  # decoded columns in pixels: box cx, cy, w, h and the 10 landmark numbers
WIDER_CONF = 0.02  # the lowest threshold in use (test_widerface.py): rows below it never become faces


def val_images(shared: Path, count: int, step: int = 1) -> list[Path]:
    """Return `count` images of the shared WIDER val sample, every `step`-th from the first."""
    names = (shared / "data/widerface/val_sample.txt").read_text().split()[::step][:count]
    return [shared / VAL / "images" / name for name in names]


def assert_decoded_equal(got: np.ndarray, expected: np.ndarray, candidate_obj: float = WIDER_CONF) -> None:
    """Assert decoded rows (B, N, 16) agree within 1e-4: scores absolutely, pixels relatively.

    Pixel columns are compared as |Δ| / max(1, |v|) ≤ 1e-4 on every row with obj > candidate_obj, and
    ≤ 1e-3 on all rows: two float32 convolution libraries round the head differently, and the decode
    multiplies that by anchors of up to 433 px (background rows reach ~3e-4 relative, candidates ~1e-5).
    """
    assert got.shape == expected.shape
    np.testing.assert_allclose(got[..., 4], expected[..., 4], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[..., 15:], expected[..., 15:], rtol=0, atol=1e-4)
    pixels_got, pixels = got[..., COORDINATES], expected[..., COORDINATES]
    error = np.abs(pixels_got - pixels) / np.maximum(1, np.abs(pixels))
    candidates = expected[..., 4] > candidate_obj
    assert candidates.any()
    assert error[candidates].max() <= 1e-4
    assert error.max() <= 1e-3


def network_input(path: Path, size: int | tuple[int, int], auto: bool = True) -> np.ndarray:
    """Return the image at `path` as a network input (1, 3, H, W) float32 RGB in [0, 1], letterboxed."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return letterbox(rgb, size, auto=auto)[0].transpose(2, 0, 1)[None].astype(np.float32) / 255


def torch_decoded(module: ExportModule, images: np.ndarray) -> np.ndarray:
    """Return the fused PyTorch model's decoded rows (B, N, 16) for images, as NumPy."""
    with torch.no_grad():
        return module(torch.from_numpy(images)).numpy()


@pytest.fixture(scope="module")
def official(official_pt):
    return load_model(official_pt)


@pytest.fixture(scope="module")
def official_dynamic_onnx(official, tmp_path_factory) -> Path:
    """The official n-0.5 exported with dynamic shapes, after a 640x640 forward filled its grid cache."""
    with torch.no_grad():
        official.eval()(torch.zeros(1, 3, 640, 640))
    return export_onnx(official, tmp_path_factory.mktemp("onnx") / "n05.onnx", img_size=640, dynamic=True)


def test_onnx_equals_pytorch_on_val_images_for_official_n05(shared, official, official_dynamic_onnx):
    session, module = create_session(official_dynamic_onnx), ExportModule(official)
    for path in val_images(shared, 3, step=100):
        images = network_input(path, 640)
        assert_decoded_equal(session.run(None, {"images": images})[0], torch_decoded(module, images))


def test_onnx_equals_pytorch_on_val_images_for_random_s6(shared, tmp_path):
    torch.manual_seed(0)
    model = build_model("yolov5s6").eval()
    path = export_onnx(model, tmp_path / "s6.onnx", img_size=256, dynamic=True)
    session = create_session(path)
    images = np.concatenate([network_input(p, 256, auto=False) for p in val_images(shared, 2)])
    got = session.run(None, {"images": images})[0]
    assert got.shape == (2, 3 * (32 * 32 + 16 * 16 + 8 * 8 + 4 * 4), 16)  # four levels, P6 included
    assert_decoded_equal(got, torch_decoded(ExportModule(model), images), candidate_obj=0)  # every row
    assert read_metadata(onnx.load(path))["stride"] == [8.0, 16.0, 32.0, 64.0]


def test_export_leaves_the_model_untouched(tmp_path):
    torch.manual_seed(0)
    model = build_model("yolov5n-0.5")  # train mode, BatchNorms unfused
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modules_before = [type(m) for m in model.modules()]
    export_onnx(model, tmp_path / "m.onnx", 256)
    export_torchscript(model, tmp_path / "m.torchscript", 256)
    assert model.training
    assert [type(m) for m in model.modules()] == modules_before  # nothing fused in place
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in model.parameters())


def test_dynamic_export_follows_the_input_size_despite_cached_grids(shared, official, official_dynamic_onnx):
    session = create_session(official_dynamic_onnx)  # traced at 640x640 with cached 640x640 grids
    image = network_input(val_images(shared, 1)[0], 320)
    images = np.concatenate([image, image[:, :, ::-1]])  # a batch of 2 at another size than traced
    assert images.shape[2:] != (640, 640)
    got = session.run(None, {"images": images})[0]
    assert_decoded_equal(got, torch_decoded(ExportModule(official), images))


def test_static_export_fixes_batch_and_size_and_records_metadata(official, tmp_path):
    path = export_onnx(official, tmp_path / "s.onnx", img_size=(384, 640))
    proto = onnx.load(path)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 13
    session = create_session(path)
    assert session.get_inputs()[0].shape == [1, 3, 384, 640]
    assert session.get_outputs()[0].shape == [1, 3 * (48 * 80 + 24 * 40 + 12 * 20), 16]
    meta = read_metadata(proto)
    assert meta["variant"] == "yolov5n-0.5"
    assert meta["names"] == ["face"]
    assert meta["stride"] == [8.0, 16.0, 32.0]
    assert meta["anchors_px"][0] == [4.0, 5.0, 8.0, 10.0, 13.0, 16.0]
    assert meta["img_size"] == [384, 640] and meta["dynamic"] is False and meta["output"] == "decoded"


def test_raw_export_matches_the_third_party_export_of_the_same_weights(shared, official, tmp_path):
    ours = create_session(export_onnx(official, tmp_path / "raw.onnx", raw=True))
    theirs = create_session(shared / "weights/yolov5n-0.5.third-party-export.onnx")
    images = network_input(shared / "reference/yolov5n-0.5/raw/images/zidane.jpg", 640, auto=False)
    assert [o.name for o in ours.get_outputs()] == ["stride_8", "stride_16", "stride_32"]
    for mine, reference in zip(ours.run(None, {"images": images}), theirs.run(None, {"data": images}),
                               strict=True):
        assert mine.shape == reference.shape
        np.testing.assert_allclose(mine, reference, atol=1e-3)  # theirs is within 1.6e-4 of PyTorch


def test_nms_in_the_graph_equals_nms_faces(shared, official, official_dynamic_onnx, tmp_path):
    settings = NmsSettings(conf=0.02, iou=0.5, max_det=1000)
    nms_session = create_session(export_onnx(official, tmp_path / "nms.onnx", dynamic=True, nms=settings))
    crowd = network_input(shared / "reference/yolov5n-0.5/raw/images/test.jpg", 640)
    images = np.concatenate([crowd, crowd[:, :, :, ::-1]])  # the same crowd, mirrored: a different image
    detections, batch_index = nms_session.run(None, {"images": images})
    decoded = create_session(official_dynamic_onnx).run(None, {"images": images})[0]
    expected = nms_faces(decoded, settings.conf, settings.iou, max_det=settings.max_det)
    for b in range(2):
        assert len(expected[b]) > 500
        np.testing.assert_allclose(detections[batch_index == b], expected[b], atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_equals_pytorch_at_another_size_and_keeps_metadata(shared, official, tmp_path):
    path = export_torchscript(official, tmp_path / "m.torchscript", 320)
    extra = {METADATA_FILE: ""}
    traced = torch.jit.load(str(path), _extra_files=extra)
    image = network_input(val_images(shared, 1)[0], 448)
    images = np.concatenate([image, image[:, :, ::-1]])
    with torch.no_grad():
        got = traced(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(got, torch_decoded(ExportModule(official), images), rtol=0, atol=1e-5)
    assert b'"variant": "yolov5n-0.5"' in extra[METADATA_FILE]


def test_int8_model_finds_the_same_faces(shared, official_pt, official, tmp_path, capsys):
    calibration = tmp_path / "calib"
    calibration.mkdir()
    for name in (shared / "data/widerface/train_pool.txt").read_text().split()[:4]:
        (calibration / Path(name).name).symlink_to(shared / "data/widerface/train_pool/images" / name)
    (calibration / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "int8.onnx"
    status = main(["export", "--weights", str(official_pt), "--out", str(out), "--img-size", "320",
                   "--int8", "--calib", str(calibration)])
    assert status == 0
    assert "skipped broken.jpg" in capsys.readouterr().out
    meta = read_metadata(onnx.load(out))
    assert meta["int8"]["calibration_images"] == 4
    graph = onnx.load(out).graph
    assert sum(node.op_type == "QuantizeLinear" for node in graph.node) > 50
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    detect = f"/model/model.{len(official.model) - 1}/m."
    float_weights = {node.input[1] for node in graph.node
                     if node.op_type == "Conv" and node.name.startswith(("/model/model.0/", detect))}
    assert len(float_weights) == 4 + 3  # the stem's four convs and the three Detect convs keep fp32 weights
    assert not float_weights & dequantized
    assert any(node.op_type == "Conv" and node.input[1] in dequantized for node in graph.node)
    image = shared / "reference/yolov5n-0.5/raw/images/zidane.jpg"
    reference = FaceDetector.from_model(official, conf=0.5, img_size=320)(str(image))
    faces = FaceDetector.from_file(out, conf=0.5, img_size=320)(str(image))
    assert len(faces) == len(reference) == 2
    boxes = np.array([f.box for f in faces])
    assert box_iou(boxes, np.array([f.box for f in reference])).max(1).min() > 0.8


def test_export_refuses_bad_requests_with_a_message(official_pt, official, tmp_path, capsys):
    assert main(["export", "--weights", str(official_pt), "--out", str(tmp_path / "x.onnx"),
                 "--img-size", "100"]) == 2
    assert "multiples of the model's largest stride 32" in capsys.readouterr().err
    assert main(["export", "--weights", str(official_pt), "--out", str(tmp_path / "x.onnx"), "--raw",
                 "--nms"]) == 2
    assert "--raw excludes --nms" in capsys.readouterr().err
    assert main(["export", "--weights", str(official_pt), "--int8"]) == 2
    assert "--calib" in capsys.readouterr().err
    assert main(["export", "--weights", str(official_pt), "--int8", "--calib", str(tmp_path),
                 "--calib-images", "0"]) == 2
    assert "--calib-images must be at least 1, got 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    with pytest.raises(FaceyoloError, match="opset 11"):
        export_onnx(official, tmp_path / "old.onnx", opset=11)
    with pytest.raises(FaceyoloError, match="--raw and --nms"):
        export_onnx(official, tmp_path / "both.onnx", raw=True, nms=NmsSettings())

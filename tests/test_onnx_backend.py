"""The PyTorch-free ONNX backend: runs with torch hidden, and finds the faces the torch backend finds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceyolo.errors import FaceyoloError
from faceyolo.export.onnx import export_onnx
from faceyolo.export.onnx_nms import NmsSettings
from faceyolo.geometry import box_iou
from faceyolo.inference.detector import FaceDetector

# Run first in a subprocess: any later `import torch` (or torchvision) fails, as on a machine without them.
HIDE_TORCH = """
import sys

class HideTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")
        return None

sys.meta_path.insert(0, HideTorch())
"""


def run_without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Return the finished `python -c` run of `code` with torch hidden; it must not have imported torch."""
    check = "\nassert not any(m.split('.')[0] == 'torch' for m in sys.modules), 'torch was imported'\n"
    result = subprocess.run([sys.executable, "-c", HIDE_TORCH + code + check], capture_output=True, text=True,
                            cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def boxes_scores(faces) -> tuple[np.ndarray, np.ndarray]:
    """Return boxes (K, 4) and scores (K,) of a face list."""
    return np.array([f.box for f in faces]).reshape(-1, 4), np.array([f.score for f in faces])


def assert_same_faces(faces, reference, min_iou: float = 0.99) -> None:
    """Assert both lists hold the same faces: equal counts, each box matched with IoU ≥ min_iou."""
    assert len(faces) == len(reference) > 0
    boxes, scores = boxes_scores(faces)
    ref_boxes, ref_scores = boxes_scores(reference)
    iou = box_iou(boxes, ref_boxes)
    assert iou.max(axis=1).min() >= min_iou
    np.testing.assert_allclose(scores, ref_scores[iou.argmax(axis=1)], atol=1e-3)


@pytest.fixture(scope="module")
def onnx_models(default_model, tmp_path_factory) -> dict[str, Path]:
    """The default n-0.5 exported three ways: dynamic decoded, fixed 640x640 decoded, dynamic with NMS."""
    folder = tmp_path_factory.mktemp("onnx")
    nms = NmsSettings(conf=0.1, iou=0.5)
    return {
        "dynamic": export_onnx(default_model, folder / "dynamic.onnx", dynamic=True),
        "static": export_onnx(default_model, folder / "static.onnx"),
        "nms": export_onnx(default_model, folder / "nms.onnx", dynamic=True, nms=nms),
    }


@pytest.fixture(scope="module")
def torch_detector(default_model) -> FaceDetector:
    return FaceDetector.from_model(default_model, conf=0.3, iou=0.5)


def test_detector_runs_an_onnx_model_with_torch_hidden(scene_files, onnx_models, torch_detector, tmp_path):
    image = scene_files["pair"]
    code = (
        "import json\n"
        "from faceyolo.inference.detector import FaceDetector\n"
        f"faces = FaceDetector.from_file({str(onnx_models['dynamic'])!r}, conf=0.3)({str(image)!r})\n"
        "print(json.dumps([face.to_dict(decimals=4) for face in faces]))\n"
    )
    found = json.loads(run_without_torch(code, tmp_path).stdout)
    reference = [face.to_dict(decimals=4) for face in torch_detector(str(image))]
    assert len(found) == len(reference) == 2
    iou = box_iou(np.array([f["box"] for f in found]), np.array([f["box"] for f in reference]))
    assert np.diag(iou).min() >= 0.99


def test_detect_command_runs_an_onnx_model_with_torch_hidden(scene_files, onnx_models, tmp_path):
    image = scene_files["pair"]
    args = ["detect", str(image), "--weights", str(onnx_models["static"]), "--json", "--project",
            str(tmp_path / "runs"), "--name", "onnx"]
    code = f"from faceyolo.cli import main\nstatus = main({args!r})\nassert status == 0, status\n"
    run_without_torch(code, tmp_path)
    written = list((tmp_path / "runs/onnx").rglob("*.json"))
    assert written and "landmarks" in written[0].read_text()


@pytest.mark.parametrize("kind", ["dynamic", "nms"])
def test_onnx_faces_equal_torch_faces_on_face_scenes(scene_files, onnx_models, torch_detector, kind):
    images = [str(path) for path in scene_files.values()]
    detector = FaceDetector.from_file(onnx_models[kind], conf=0.3, iou=0.5)
    for faces, reference in zip(detector(images), torch_detector(images), strict=True):
        assert_same_faces(faces, reference)


def test_fixed_size_model_takes_smaller_inputs_padded(scene_files, onnx_models, torch_detector):
    image = str(scene_files["pair"])  # letterboxed to 384x640, padded to the model's 640x640
    detector = FaceDetector.from_file(onnx_models["static"], conf=0.3)
    assert detector.backend.fixed_hw == (640, 640)
    assert_same_faces(detector(image), torch_detector(image))


def test_fixed_size_model_refuses_larger_inputs(scene_files, onnx_models):
    detector = FaceDetector.from_file(onnx_models["static"], img_size=1024)
    with pytest.raises(FaceyoloError, match="takes 640x640 inputs.*--dynamic"):
        detector(str(scene_files["pair"]))


def test_a_decoded_model_without_metadata_runs_too(scene_files, onnx_models, torch_detector, tmp_path):
    import onnx  # a model from another exporter (e.g. the original export.py): one (B, N, 16) output

    proto = onnx.load(onnx_models["dynamic"])
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "foreign.onnx")
    image = str(scene_files["trio"])
    detector = FaceDetector.from_file(tmp_path / "foreign.onnx", conf=0.3)
    assert detector.backend.output == "decoded"
    assert_same_faces(detector(image), torch_detector(image))


@pytest.fixture(params=["ours-without-metadata", "third-party"])
def raw_head_onnx(request, default_model, tmp_path) -> Path:
    """Return a raw-head ONNX without metadata (three (1, 3, ny, nx, 16) outputs): ours, a third party's."""
    if request.param == "third-party":
        return request.getfixturevalue("shared") / "weights/yolov5n-0.5.third-party-export.onnx"
    import onnx

    proto = onnx.load(export_onnx(default_model, tmp_path / "raw.onnx", img_size=320, raw=True))
    del proto.metadata_props[:]
    onnx.save(proto, tmp_path / "raw.onnx")
    return tmp_path / "raw.onnx"


def test_raw_head_model_is_refused_with_a_reason(raw_head_onnx):
    with pytest.raises(FaceyoloError, match="raw heads"):
        FaceDetector.from_file(raw_head_onnx)


def test_broken_onnx_file_is_a_faceyolo_error(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00not a protobuf")
    with pytest.raises(FaceyoloError, match="broken.onnx: not a loadable ONNX model"):
        FaceDetector.from_file(path)

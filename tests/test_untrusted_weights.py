"""A weights file is untrusted input: whatever its metadata says, a one-line FaceyoloError and no more memory
than its tensors take. Crafted here: safetensors with lying metadata, hand-made pickles, odd ONNX files."""

from __future__ import annotations

import json
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faceyolo.errors import FaceyoloError
from faceyolo.models.build import build_model
from faceyolo.weights import load_model, read_official_checkpoint, read_weights, save_weights


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """Return a faceyolo .safetensors of a fresh blazeface (the smallest built-in variant)."""
    torch.manual_seed(0)
    return save_weights(build_model("blazeface").eval(), tmp_path_factory.mktemp("w") / "blaze.safetensors")


@pytest.fixture
def real_allocations(monkeypatch) -> list[nn.Module]:
    """Return the list of models given real memory by `to_empty` (the only door from meta to CPU)."""
    made: list[nn.Module] = []
    original = nn.Module.to_empty

    def spy(self, *args, **kwargs):
        made.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "to_empty", spy)
    return made


def _lying_copy(source: Path, dest: Path, edit) -> Path:
    """Return dest: source's tensors with the metadata as `edit(metadata)` changes it."""
    from safetensors.torch import save_file

    tensors, metadata = read_weights(source)
    edit(metadata)
    save_file(tensors, str(dest), metadata={k: json.dumps(v) for k, v in metadata.items()})
    return dest


def _set(key, value):
    def edit(metadata):
        metadata[key] = value
    return edit


def _set_spec(change):
    def edit(metadata):
        change(metadata["spec"])
    return edit


def _set_row(part: str, row: int, field: int, value):
    """Return an edit setting field `field` of layer-table row `row` of `part` (backbone or head)."""
    return _set_spec(lambda spec: spec[part][row].__setitem__(field, value))


LIES = {
    "giant widths": (_set_spec(lambda s: s.update(width_multiple=16)), "do not fit"),
    "absurd width": (_set_spec(lambda s: s.update(width_multiple=1e300)), "width_multiple"),
    "negative depth": (_set_spec(lambda s: s.update(depth_multiple=-1)), "depth_multiple"),
    "billion repeats": (_set_row("backbone", 1, 1, 10**9), "more blocks"),
    "no rows": (_set_spec(lambda s: s.update(backbone="x")), "lists of rows"),
    "broken row": (_set_spec(lambda s: s["head"].__setitem__(0, "x")), "row 8"),
    "unknown block": (_set_row("head", 0, 2, "os.system"), "unknown block"),
    "extra anchors": (_set_spec(lambda s: s["anchors"][0].extend(range(1, 2001))), "do not fit"),
    "huge upsample": (_set_row("head", 1, 3, [None, 4096, "nearest"]), "activation"),
    "huge padding": (_set_row("backbone", 0, 3, [24, 3, 2, 10**5]), "activation"),
    "spec a list": (_set("spec", [1, 2]), "not a mapping"),
    "nc a trillion": (_set("nc", 10**12), "not a class count"),
    "nc a string": (_set("nc", "1"), "not a class count"),
    "nc true": (_set("nc", True), "not a class count"),
    "names a string": (_set("names", "face"), "names"),
    "names too many": (_set("names", ["face"] * 10**5), "100000 class names for 1 classes"),
    "activation a number": (_set("activation", 5), "activation"),
    "unknown activation": (_set("activation", "gelu"), "unknown activation"),
    "input size a billion": (_set("img_size", 10**9), "img_size"),
    "negative input size": (_set("img_size", -640), "img_size"),
    "stride not a list": (_set("stride", "8"), "stride"),
    "stride lies": (_set("stride", [4, 8]), "strides"),
    "variant a dict": (_set("variant", {"a": 1}), "variant"),
}


@pytest.mark.parametrize("lie", LIES)
def test_lying_metadata_is_one_line_error_before_any_real_memory(saved, tmp_path, real_allocations, lie):
    edit, reason = LIES[lie]
    path = _lying_copy(saved, tmp_path / "lying.safetensors", edit)
    with pytest.raises(FaceyoloError) as err:
        load_model(path)
    message = str(err.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message
    # these are found once the model holds the file's tensors (the probe, or a check of the built model)
    if lie not in ("huge upsample", "huge padding", "stride lies", "names too many"):
        assert not real_allocations


def test_deeply_nested_metadata_is_one_line_error(saved, tmp_path):
    from safetensors.torch import save_file

    tensors, metadata = read_weights(saved)
    header = {k: json.dumps(v) for k, v in metadata.items()}
    header["spec"] = "[" * 100_000 + "]" * 100_000
    save_file(tensors, str(tmp_path / "deep.safetensors"), metadata=header)
    with pytest.raises(FaceyoloError, match="deep.safetensors: metadata is not valid JSON"):
        load_model(tmp_path / "deep.safetensors")


def test_honest_file_takes_exactly_its_tensors(saved, real_allocations):
    tensors, _ = read_weights(saved)
    model = load_model(saved)
    assert len(real_allocations) == 1
    state = model.state_dict()
    assert sorted(state) == sorted(tensors)
    assert sum(t.numel() for t in state.values()) == sum(t.numel() for t in tensors.values())
    assert model.stride.tolist() == [8.0, 16.0]


# --- official-style .pt files crafted by hand ---


class _Reduce:
    """Pickles as `func(*args)`."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _Storage:
    """Pickled by `_StoragePickler` as a torch storage of `numel` floats, data/<key> in the zip."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class _StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def _torch_zip(path: Path, root_object, members: dict[str, bytes] | None = None) -> Path:
    """Return path after writing a torch.save-style zip whose data.pkl pickles root_object."""
    import io

    buffer = io.BytesIO()
    _StoragePickler(buffer, protocol=2).dump(root_object)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        for name, data in (members or {}).items():
            archive.writestr(f"archive/data/{name}", data)
    return path


@pytest.fixture
def yolo_classes(monkeypatch):
    """Return (Model, Detect): nn.Modules that pickle as models.yolo.Model / models.yolo.Detect."""
    package, module = types.ModuleType("models"), types.ModuleType("models.yolo")
    monkeypatch.setitem(sys.modules, "models", package)
    monkeypatch.setitem(sys.modules, "models.yolo", module)

    class Detect(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("anchor_grid", torch.ones(1, 1, 1, 1, 1, 2))
            self.m = nn.ModuleList([nn.Conv2d(4, 16, 1)])

    class Model(nn.Module):
        def __init__(self, yaml, nc=1):
            super().__init__()
            self.model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.SiLU(), Detect())
            self.yaml, self.nc, self.names, self.stride = yaml, nc, ["face"], torch.tensor([8.0])

    for cls in (Detect, Model):
        cls.__module__, cls.__qualname__ = "models.yolo", cls.__name__
        setattr(module, cls.__name__, cls)
    return Model, Detect


def _refused(path: Path, reason: str) -> str:
    with pytest.raises(FaceyoloError) as err:
        read_official_checkpoint(path)
    message = str(err.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message
    return message


def test_checkpoint_yaml_that_unfolds_exponentially_is_refused(yolo_classes, tmp_path):
    Model, _ = yolo_classes
    bomb: list = [1]
    for _ in range(60):  # 60 pickled lists that unfold into 2^60 values
        bomb = [bomb, bomb]
    torch.save({"model": Model({"backbone": bomb, "head": []})}, tmp_path / "bomb.pt")
    _refused(tmp_path / "bomb.pt", "unfolds into more than")


def test_checkpoint_with_a_shared_module_is_refused(yolo_classes, tmp_path):
    Model, _ = yolo_classes
    model = Model({"backbone": [], "head": []})
    shared = model.model[0]
    for _ in range(40):  # each level holds the one below twice: 2^40 paths to the bottom
        shared = nn.Sequential(shared, shared)
    model.model.add_module("tower", shared)
    torch.save({"model": model}, tmp_path / "shared.pt")
    _refused(tmp_path / "shared.pt", "reaches one module twice")


def test_checkpoint_class_count_past_its_tensors_is_refused(yolo_classes, tmp_path):
    Model, _ = yolo_classes
    torch.save({"model": Model({"backbone": [], "head": []}, nc=10**12)}, tmp_path / "classes.pt")
    _refused(tmp_path / "classes.pt", "not a class count")


def test_checkpoint_storage_larger_than_the_file_is_refused_before_reading(tmp_path):
    from torch._utils import _rebuild_tensor_v2

    tensor = _Reduce(_rebuild_tensor_v2, (_Storage("0", 10**12), 0, (10**12,), (1,), False, None))
    path = _torch_zip(tmp_path / "huge.pt", {"model": tensor}, {"0": b"\0" * 64})
    with pytest.raises(FaceyoloError, match="huge.pt: its storages claim more bytes than the file holds"):
        read_official_checkpoint(path)


def test_checkpoint_array_that_does_not_start_empty_is_refused(tmp_path):
    reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's own _reconstruct, whatever its module
    path = _torch_zip(tmp_path / "array.pt", {"model": _Reduce(reconstruct, (np.ndarray, (10**10,), b"b"))})
    with pytest.raises(FaceyoloError, match="array.pt: corrupt checkpoint.*must start empty"):
        read_official_checkpoint(path)


# --- ONNX files with odd metadata ---


def _tiny_onnx(path: Path, metadata: dict[str, str], outputs: int = 1, input_shape=(1, 3, 8, 8)) -> Path:
    """Return path after writing an images (B, 3, H, W) → (B, N, 16) reshape graph with metadata_props."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    batch = input_shape[0]
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [batch, -1, 16])
    nodes = [helper.make_node("Reshape", ["images", "shape"], ["pred"])]
    outs = [helper.make_tensor_value_info("pred", TensorProto.FLOAT, [batch, "N", 16])]
    if outputs == 2:
        nodes.append(helper.make_node("Identity", ["pred"], ["second"]))
        outs.append(helper.make_tensor_value_info("second", TensorProto.FLOAT, [batch, "N", 16]))
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))
    graph = helper.make_graph(nodes, "tiny", [images], outs, [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


ONNX = (1, 3, 8, 8)


@pytest.mark.parametrize(("metadata", "outputs", "input_shape", "reason"), [
    ({"nc": "1000000000000"}, 1, ONNX, "metadata nc 1000000000000, expected 1 for its 16 output columns"),
    ({"nc": '"many"'}, 1, ONNX, "metadata nc 'many'"),
    ({"nc": "-3"}, 1, ONNX, "metadata nc -3"),
    ({"output": '"nms"', "nc": "1000000000000"}, 2, ONNX, "metadata nc 1000000000000, expected 1 to 1000"),
    ({"output": '"nms"'}, 1, ONNX, "metadata output 'nms' but the graph has 1 outputs"),
    ({"output": '"banana"'}, 1, ONNX, "metadata output 'banana'"),
    ({}, 1, (1, 3, 65536, 65536), "is past what faceyolo feeds"),
    ({}, 1, (100000, 3, 8, 8), "is past what faceyolo feeds"),
])
def test_onnx_metadata_that_does_not_fit_the_graph_is_one_line_error(tmp_path, metadata, outputs, input_shape,
                                                                      reason):
    pytest.importorskip("onnxruntime")
    from faceyolo.inference.detector import FaceDetector

    path = _tiny_onnx(tmp_path / "odd.onnx", metadata, outputs, input_shape)
    with pytest.raises(FaceyoloError) as err:
        FaceDetector.from_file(path)
    message = str(err.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


def test_onnx_without_metadata_takes_its_class_count_from_the_output(tmp_path):
    pytest.importorskip("onnxruntime")
    from faceyolo.inference.onnx_backend import load_backend

    assert load_backend(_tiny_onnx(tmp_path / "plain.onnx", {})).nc == 1

"""Weights in and out: the safe official-checkpoint reader, faceyolo's .safetensors and `convert-weights`."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from faceyolo.cli import main
from faceyolo.errors import FaceyoloError
from faceyolo.models.build import build_model
from faceyolo.weights import load_model, model_metadata, read_official_checkpoint, read_weights, save_weights

REFERENCE = Path("reference") / "yolov5n-0.5"


# --- an independent, permissive reader: only ever run on trusted files (the shared one, or ours) ---


class _Stub:
    """Whatever class the pickle names: keeps its attributes, runs nothing."""


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.root = archive, root

    def find_class(self, module, name):
        if name.endswith("Storage") and module == "torch":
            return np.dtype({"Half": "<f2", "Float": "<f4", "Double": "<f8", "Long": "<i8"}[name[:-7]])
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *rest: np.lib.stride_tricks.as_strided(
                storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]).copy()
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, *rest: data
        if module.split(".")[0] in ("numpy", "collections", "__builtin__", "builtins", "_codecs"):
            return super().find_class(module, name)
        return type(name, (_Stub,), {})

    def persistent_load(self, pid):
        _, dtype, key, _, numel = pid
        raw = self.archive.read(f"{self.root}/data/{key}")
        return np.frombuffer(raw, dtype=dtype, count=numel)


def _plain_state_dict(path: Path) -> list[tuple[str, np.ndarray]]:
    with zipfile.ZipFile(path) as archive:
        pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        root = pkl.rsplit("/", 1)[0]
        model = _PlainUnpickler(archive.read(pkl), archive, root).load()["model"]
    entries: list[tuple[str, np.ndarray]] = []

    def walk(module, prefix):
        d = module.__dict__
        for name, value in [*d["_parameters"].items(), *d["_buffers"].items()]:
            if value is not None:
                entries.append((prefix + name, value))
        for name, child in d["_modules"].items():
            walk(child, f"{prefix}{name}.")

    walk(model, "")
    return entries


# --- helpers that craft checkpoints ---


def _write_torch_zip(path: Path, pickle_bytes: bytes, root: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{root}/data.pkl", pickle_bytes)
        archive.writestr(f"{root}/version", "3\n")
    return path


class _Reduce:
    """Pickles as `func(*args)`: what a malicious checkpoint does."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _malicious_pickles(marker: Path) -> dict[str, bytes]:
    import os
    import subprocess as sp

    command = f"touch {marker}"
    return {
        "os.system": b"cos\nsystem\n(V" + command.encode() + b"\ntR.",
        "posix.system": pickle.dumps({"model": _Reduce(os.system, (command,))}, protocol=2),
        # protocol 4 names globals with STACK_GLOBAL (protocol 2 would spell it __builtin__.exec)
        "builtins.exec": pickle.dumps(_Reduce(exec, (f"open({str(marker)!r}, 'w').close()",)), protocol=4),
        "subprocess.Popen": pickle.dumps({"epoch": -1, "model": _Reduce(sp.Popen, (["touch", str(marker)],))},
                                         protocol=2, fix_imports=False),
    }


@pytest.fixture
def fake_yolov5_classes(monkeypatch):
    """Return a real nn.Module `Model` whose classes pickle as models.yolo.* / models.common.*."""
    modules = {name: types.ModuleType(name) for name in ("models", "models.yolo", "models.common")}
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)

    class Conv(nn.Module):
        def __init__(self, c1, c2, act):
            super().__init__()
            self.conv, self.bn, self.act = nn.Conv2d(c1, c2, 1, bias=False), nn.BatchNorm2d(c2), act

    class SPPF(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.cv1 = Conv(c, c, nn.LeakyReLU(0.1))
            self.m = nn.MaxPool2d(5, 1, 2)
            self.register_buffer("scratch", torch.zeros(3), persistent=False)

    class Detect(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.stride = torch.tensor([8.0])
            self.register_buffer("anchors", torch.tensor([[[0.5, 0.625], [1.0, 1.25], [1.625, 2.0]]]))
            self.register_buffer("anchor_grid", (self.anchors * 8).view(1, 1, 3, 1, 1, 2))
            self.m = nn.ModuleList([nn.Conv2d(c, 48, 1)])

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = nn.Sequential(Conv(3, 8, nn.LeakyReLU(0.1)), SPPF(8), Detect(8))
            self.yaml = {"nc": 1, "depth_multiple": 1.0, "width_multiple": 1.0,
                         "anchors": [[4, 5, 8, 10, 13, 16]], "backbone": [], "head": []}
            self.names, self.nc, self.stride = ["face"], 1, torch.tensor([8.0])

    for cls, module in ((Conv, "models.common"), (SPPF, "models.common"), (Detect, "models.yolo"),
                        (Model, "models.yolo")):
        cls.__module__, cls.__qualname__ = module, cls.__name__
        setattr(modules[module], cls.__name__, cls)
    return Model


@pytest.fixture
def tiny_model() -> nn.Module:
    """Return a small two-class blazeface with non-trivial BN statistics, in eval mode."""
    torch.manual_seed(0)
    model = build_model("blazeface", nc=2, activation="leaky_relu:0.1")
    model.names = ["face", "mask"]
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


# --- the official checkpoint ---


def test_official_state_dict_equals_reference_bit_for_bit(shared, official_pt):
    state = read_official_checkpoint(official_pt).state_dict
    reference = np.load(shared / REFERENCE / "official_state_dict_fp16.npz")
    assert list(state) == list(reference.keys())
    for name, tensor in state.items():
        expected = reference[name]
        assert tensor.numpy().dtype == expected.dtype, name
        assert np.array_equal(tensor.numpy(), expected), name


def test_official_state_dict_equals_plain_zip_pickle_read(yolov5_face_pt):
    state = read_official_checkpoint(yolov5_face_pt).state_dict
    plain = _plain_state_dict(yolov5_face_pt)
    assert list(state) == [name for name, _ in plain]
    for name, array in plain:
        assert state[name].numpy().dtype == array.dtype and np.array_equal(state[name].numpy(), array), name


def test_official_metadata_is_extracted(shared, official_pt):
    info = json.loads((shared / REFERENCE / "checkpoint_info.json").read_text())
    checkpoint = read_official_checkpoint(official_pt)
    assert checkpoint.names == info["model_attrs"]["names"] == ["face"]
    assert checkpoint.nc == 1
    assert checkpoint.stride == info["model_attrs"]["stride"] == [8.0, 16.0, 32.0]
    assert checkpoint.anchors_px == info["model_yaml"]["anchors"]
    assert checkpoint.activation == "silu"
    assert checkpoint.hyp == info["model_attrs"]["hyp_used_in_training"]
    assert checkpoint.hyp["lr0"] == 0.001
    assert checkpoint.spec == info["model_yaml"]
    assert checkpoint.epoch == info["epoch"]
    assert checkpoint.best_fitness == pytest.approx(info["best_fitness"][0])
    assert checkpoint.bn_eps == info["batchnorm"]["eps"]
    assert checkpoint.sha256 == info["sha256"]
    assert checkpoint.model_metadata()["variant"] == "yolov5n-0.5"


def test_checkpoint_metadata_is_what_the_file_recorded(official_style_pt, default_model):
    checkpoint = read_official_checkpoint(official_style_pt)
    assert (checkpoint.names, checkpoint.nc, checkpoint.activation) == (default_model.names, 1, "silu")
    assert checkpoint.stride == default_model.stride.tolist()
    anchors = model_metadata(default_model)["anchors_px"]
    np.testing.assert_allclose(checkpoint.anchors_px, anchors, rtol=1e-3)  # stored as fp16
    assert checkpoint.spec == default_model.spec and checkpoint.model_metadata()["variant"] == "yolov5n-0.5"
    assert checkpoint.hyp == {"lr0": 0.004, "box": 0.05}  # as the conftest fixture wrote them
    assert (checkpoint.epoch, checkpoint.best_fitness) == (41, 0.25)
    assert checkpoint.bn_eps == [pytest.approx(1e-3)]
    assert all(t.dtype == torch.float16 for t in checkpoint.state_dict.values() if t.is_floating_point())


def test_official_style_model_loads_the_stored_fp16_weights_as_fp32(official_style_pt, default_model):
    model = load_model(official_style_pt)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    stored = default_model.state_dict()
    for name, tensor in model.state_dict().items():
        expected = stored[name].half().float() if tensor.is_floating_point() else stored[name]
        assert torch.equal(tensor, expected), name


def test_official_model_runs_and_matches_reference_decode(shared, official_pt):
    model = load_model(official_pt)
    assert not model.training and model.names == ["face"]
    assert next(model.parameters()).dtype == torch.float32
    raw = np.load(shared / REFERENCE / "raw" / "zidane.detect_face.npz")
    image = torch.from_numpy(raw["input_uint8"][None].astype(np.float32) / 255)
    with torch.no_grad():
        decoded, _ = model(image)
    assert decoded.shape[-1] == 16
    # the reference comes from a fused model; unfused differs by < 1e-3 (reference README)
    np.testing.assert_allclose(decoded[0].numpy(), raw["pred"], atol=1e-3)


def test_checkpoint_with_another_zip_root_folder_loads(official_style_pt, tmp_path):
    renamed = tmp_path / "renamed.pt"
    with zipfile.ZipFile(official_style_pt) as src, zipfile.ZipFile(renamed, "w") as dst:
        for name in src.namelist():
            dst.writestr("yolov5n-0.5/" + name.split("/", 1)[1], src.read(name))
    original = read_official_checkpoint(official_style_pt).state_dict
    assert list(read_official_checkpoint(renamed).state_dict) == list(original)


# --- malicious and crafted checkpoints ---


@pytest.mark.parametrize("global_name", ["os.system", "posix.system", "builtins.exec", "subprocess.Popen"])
def test_malicious_checkpoint_is_refused_without_running(tmp_path, global_name):
    marker = tmp_path / "pwned"
    path = _write_torch_zip(tmp_path / "evil.pt", _malicious_pickles(marker)[global_name])
    with pytest.raises(FaceyoloError) as err:
        load_model(path)
    assert f"'{global_name}'" in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()


def test_checkpoint_with_a_cut_pickle_is_a_faceyolo_error(official_style_pt, tmp_path):
    with zipfile.ZipFile(official_style_pt) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    path = _write_torch_zip(tmp_path / "cut.pt", pickled[: len(pickled) // 3])
    with pytest.raises(FaceyoloError, match="corrupt checkpoint") as err:
        read_official_checkpoint(path)
    assert str(path) in str(err.value)


def test_crafted_checkpoint_naming_sppf_is_accepted(fake_yolov5_classes, tmp_path):
    model = fake_yolov5_classes().half()
    path = tmp_path / "crafted.pt"
    torch.save({"epoch": 7, "best_fitness": np.array([0.5]), "model": model, "optimizer": None}, path)
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    assert b"models.common\nSPPF" in pickled
    checkpoint = read_official_checkpoint(path)
    expected = model.state_dict()
    assert "model.1.scratch" not in checkpoint.state_dict  # non-persistent buffers are not state
    assert list(checkpoint.state_dict) == list(expected)
    for name, tensor in expected.items():
        got = checkpoint.state_dict[name]
        assert got.dtype == tensor.dtype and torch.equal(got, tensor), name
    assert checkpoint.activation == "leaky_relu:0.1"  # the pickled activation class wins
    assert checkpoint.epoch == 7 and checkpoint.best_fitness == 0.5
    assert checkpoint.anchors_px == [[4.0, 5.0, 8.0, 10.0, 13.0, 16.0]]


# --- faceyolo's format ---


def test_round_trip_gives_identical_outputs_and_metadata(tiny_model, tmp_path):
    path = save_weights(tiny_model, tmp_path / "tiny.safetensors", metadata={"training": {"epochs": 3}})
    loaded = load_model(path)
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected, loaded_out = tiny_model(image)[0], loaded(image)[0]
    assert torch.equal(expected, loaded_out)
    for name, tensor in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    _, metadata = read_weights(path)
    assert loaded.meta == metadata
    assert metadata["names"] == loaded.names == ["face", "mask"]
    assert metadata["nc"] == 2 and metadata["variant"] == "blazeface"
    assert metadata["activation"] == "leaky_relu:0.1"
    assert metadata["training"] == {"epochs": 3}
    assert metadata["stride"] == tiny_model.stride.tolist()
    assert metadata["provenance"]["tool"].startswith("faceyolo ")
    resaved = save_weights(loaded, tmp_path / "again.safetensors")
    _, again = read_weights(resaved)
    assert {k: v for k, v in again.items() if k != "provenance"} == {
        k: v for k, v in metadata.items() if k != "provenance"}


def test_weights_that_do_not_fit_the_layer_table_are_refused(tiny_model, tmp_path):
    from safetensors.torch import save_file

    path = save_weights(tiny_model, tmp_path / "tiny.safetensors")
    tensors, metadata = read_weights(path)
    dropped = sorted(tensors)[0]
    del tensors[dropped]
    tensors["model.99.weight"] = torch.zeros(1)
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata={k: json.dumps(v) for k, v in metadata.items()})
    with pytest.raises(FaceyoloError, match=rf"missing: {dropped}.*unexpected: model\.99\.weight"):
        load_model(broken)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_truncated_file_is_a_faceyolo_error(tiny_model, official_style_pt, tmp_path, suffix):
    source = official_style_pt if suffix == ".pt" else save_weights(tiny_model, tmp_path / "full.safetensors")
    half = tmp_path / f"half{suffix}"
    half.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(FaceyoloError, match="truncated") as err:
        load_model(half)
    assert str(half) in str(err.value)


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("text.pt", b"not a checkpoint", "not a zip"),
    ("text.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{}", "safetensors"),
    ("model.onnx", b"", "FaceDetector.from_file"),
    ("model.bin", b"", "unknown weights format"),
])
def test_bad_files_are_named_with_the_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FaceyoloError, match=reason) as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_convert_weights_cli_writes_loadable_safetensors(yolov5_face_pt, tmp_path, capsys):
    out = tmp_path / "n05.safetensors"
    assert main(["convert-weights", str(yolov5_face_pt), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "yolov5n-0.5" in printed and f"{sum(p.numel() for p in load_model(out).parameters()):,}" in printed
    tensors, metadata = read_weights(out)
    checkpoint = read_official_checkpoint(yolov5_face_pt)
    assert metadata["provenance"]["source_sha256"] == checkpoint.sha256
    assert metadata["original"]["hyp"] == checkpoint.hyp and checkpoint.hyp["lr0"] > 0
    assert all(torch.equal(tensors[k], v.float() if v.is_floating_point() else v)
               for k, v in checkpoint.state_dict.items())


def test_convert_weights_cli_exits_2_on_bad_input(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    out = subprocess.run([sys.executable, "-m", "faceyolo", "convert-weights", str(bad),
                          str(tmp_path / "out.safetensors")], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and str(bad) in out.stderr

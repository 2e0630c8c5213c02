"""Official YOLOv5-Face `.pt` checkpoints, interpreted: state dict, layer table, activation and metadata.

The bytes are read by `faceyolo.weights.restricted_pickle` (restricted unpickler, no pickled code runs); this
module walks the recorded module stand-ins the way torch's `state_dict()` does (SPEC §7).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceyolo.errors import FaceyoloError
from faceyolo.models.from_tensors import check_class_count
from faceyolo.weights.restricted_pickle import PickledModule, read_torch_pickle

DEFAULT_IMG_SIZE = 640
MAX_DOCUMENT_ITEMS = 100_000  # values in a pickled yaml or hyp dict (the official ones hold about 200)
SHARED_MODULE = "the pickled module tree reaches one module twice (a cycle or a shared module)"
_ACTIVATIONS = {"SiLU": "silu", "Hardswish": "hardswish", "ReLU": "relu", "LeakyReLU": "leaky_relu"}


@dataclass
class OfficialCheckpoint:
    """What an official YOLOv5-Face `.pt` holds, read without executing pickled code.

    `state_dict` is exactly as stored (fp16 tensors, int64 counters, torch's key order);
    `anchors_px` is (nl, 2·na) anchor w,h pairs in pixels per level, as in the model yaml;
    `bn_eps` / `bn_momentum` are the distinct values found in the pickled BatchNorms.
    """

    path: Path
    sha256: str
    state_dict: OrderedDict[str, torch.Tensor]
    spec: dict
    names: list[str]
    nc: int
    stride: list[float]
    anchors_px: list[list[float]]
    activation: str
    hyp: dict | None
    epoch: int
    best_fitness: float | None
    yaml_file: str | None
    bn_eps: list[float]
    bn_momentum: list[float]

    def model_metadata(self) -> dict:
        """Return the metadata a model loaded from this checkpoint carries (same keys as our format)."""
        return {
            "variant": variant_name(self.spec),
            "spec": self.spec,
            "nc": self.nc,
            "names": self.names,
            "anchors_px": self.anchors_px,
            "stride": self.stride,
            "activation": self.activation,
            "img_size": DEFAULT_IMG_SIZE,
            "provenance": {"source": self.path.name, "source_sha256": self.sha256,
                           "source_format": "yolov5-face .pt"},
            "original": {"epoch": self.epoch, "best_fitness": self.best_fitness, "hyp": self.hyp,
                         "yaml_file": self.yaml_file},
        }


def jsonable(obj: Any, max_items: int | None = None) -> Any:
    """Return `obj` with tensors, arrays, numpy scalars, tuples and paths turned into JSON types.

    With `max_items`, FaceyoloError when the result would hold more values: a crafted pickle can refer to
    one list many times over and so unfold into a document exponentially larger than itself.
    """
    left = [max_items]

    def convert(o: Any) -> Any:
        if left[0] is not None:
            left[0] -= 1
            if left[0] < 0:
                raise FaceyoloError(f"a pickled document unfolds into more than {max_items:,} values")
        if isinstance(o, dict):
            return {str(k): convert(v) for k, v in o.items()}
        if isinstance(o, list | tuple | set):
            return [convert(v) for v in o]
        if isinstance(o, torch.Tensor | np.ndarray | np.generic):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        if o is None or isinstance(o, bool | int | float | str):
            return o
        return str(o)

    return convert(obj)


def _sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _class_name(module: Any) -> str:
    """Return the bare class name of a real module or of a pickled stand-in."""
    if isinstance(module, PickledModule):
        return module.global_name.rsplit(".", 1)[-1]
    return type(module).__name__


def _children(module: Any) -> dict:
    """Return the module's `_modules` dict (real nn.Module and pickled stand-in alike)."""
    return vars(module).get("_modules") or {}


def _iter_modules(module: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """Yield the module and all its descendants, depth first in registration order.

    A crafted pickle can make a module its own descendant (a walk without end) or reach one module by many
    paths (2^depth walks): a module met twice is refused.
    """
    seen = set() if seen is None else seen
    if id(module) in seen:
        raise FaceyoloError(SHARED_MODULE)
    seen.add(id(module))
    yield module
    for child in _children(module).values():
        if child is not None:
            yield from _iter_modules(child, seen)


def activation_of(model: Any) -> str:
    """Return the activation string ("silu", "leaky_relu:0.1", ...) of a real or pickled model.

    BottleneckCSP's own post-BN LeakyReLU is fixed by that block and does not count (SPEC §2.3).
    """
    fixed = {id(_children(m).get("act")) for m in _iter_modules(model) if _class_name(m) == "BottleneckCSP"}
    found = set()
    for module in _iter_modules(model):
        name = _ACTIVATIONS.get(_class_name(module))
        if name is None or id(module) in fixed:
            continue
        if name == "leaky_relu":
            name = f"leaky_relu:{float(vars(module).get('negative_slope', 0.01)):g}"
        found.add(name)
    if len(found) != 1:
        raise FaceyoloError(f"expected one activation type in the model, found {sorted(found) or 'none'}")
    return found.pop()


def _pickled_state_dict(module: PickledModule, path: Path) -> OrderedDict[str, torch.Tensor]:
    """Return torch's `state_dict()` of a pickled module tree: parameters, then persistent buffers, then
    children, recursively, keys joined with dots."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    seen: set[int] = set()

    def visit(node: Any, prefix: str) -> None:
        if id(node) in seen:
            raise FaceyoloError(f"{path}: {SHARED_MODULE} (at {prefix or 'model'})")
        seen.add(id(node))
        if not isinstance(node, PickledModule):
            raise FaceyoloError(f"{path}: {prefix or 'model'} is not a module ({type(node).__name__})")
        attrs = vars(node)
        non_persistent = attrs.get("_non_persistent_buffers_set") or set()
        entries = list((attrs.get("_parameters") or {}).items())
        entries += [(k, v) for k, v in (attrs.get("_buffers") or {}).items() if k not in non_persistent]
        for name, tensor in entries:
            if tensor is None:
                continue
            if not isinstance(tensor, torch.Tensor):
                raise FaceyoloError(f"{path}: {prefix}{name} is not a tensor ({type(tensor).__name__})")
            out[prefix + name] = tensor
        for name, child in _children(node).items():
            if child is not None:
                visit(child, f"{prefix}{name}.")

    visit(module, "")
    return out


def _checkpoint_model(root: Any, path: Path) -> PickledModule:
    """Return the pickled `models.yolo.Model` of a checkpoint (its 'model' entry, else 'ema')."""
    model = root
    if isinstance(root, dict):
        model = root.get("model") if root.get("model") is not None else root.get("ema")
    if not (isinstance(model, PickledModule) and model.global_name == "models.yolo.Model"):
        raise FaceyoloError(f"{path}: no YOLOv5-Face model in the checkpoint (found {type(model).__name__})")
    return model


def read_official_checkpoint(path: str | Path) -> OfficialCheckpoint:
    """Return the contents of an official YOLOv5-Face `.pt`, read with a restricted unpickler."""
    path = Path(path)
    root = read_torch_pickle(path)
    try:
        return _interpret(root, path)
    except FaceyoloError:
        raise
    except Exception as err:  # untrusted objects: anything but the checkpoint layout is a bad file
        reason = f"{type(err).__name__}: {str(err)[:200]}"
        raise FaceyoloError(f"{path}: not the layout of a YOLOv5-Face checkpoint ({reason})") from None


def _interpret(root: Any, path: Path) -> OfficialCheckpoint:
    """Return the OfficialCheckpoint of the object graph `root` unpickled from `path`."""
    model = _checkpoint_model(root, path)
    state_dict = _pickled_state_dict(model, path)  # also rejects cyclic and shared module trees
    attrs = vars(model)
    spec = attrs.get("yaml")
    if not isinstance(spec, dict):
        raise FaceyoloError(f"{path}: the pickled model has no yaml layer table")
    detects = [m for m in _iter_modules(model) if _class_name(m) == "Detect"]
    if len(detects) != 1:
        raise FaceyoloError(f"{path}: expected one Detect head, found {len(detects)}")
    buffers = vars(detects[0]).get("_buffers") or {}
    if "anchor_grid" not in buffers:
        raise FaceyoloError(f"{path}: the Detect head has no anchor_grid buffer")
    anchor_grid = buffers["anchor_grid"].float()
    stride = attrs.get("stride", vars(detects[0]).get("stride"))
    try:
        activation = activation_of(model)
    except FaceyoloError as err:
        raise FaceyoloError(f"{path}: {err}") from None
    try:
        nc = check_class_count(attrs.get("nc", spec.get("nc", 1)), state_dict)
    except FaceyoloError as err:
        raise FaceyoloError(f"{path}: {err}") from None
    try:
        documents = {key: jsonable(value, MAX_DOCUMENT_ITEMS) for key, value in (("yaml", spec),
                                                                                ("hyp", attrs.get("hyp")))}
    except FaceyoloError as err:
        raise FaceyoloError(f"{path}: {err}") from None
    batchnorms = [vars(m) for m in _iter_modules(model) if _class_name(m) == "BatchNorm2d"]
    best_fitness = root.get("best_fitness") if isinstance(root, dict) else None
    return OfficialCheckpoint(
        path=path,
        sha256=_sha256(path),
        state_dict=state_dict,
        spec=documents["yaml"],
        names=[str(n) for n in attrs.get("names") or range(nc)],
        nc=nc,
        stride=[float(s) for s in jsonable(stride)],
        anchors_px=anchor_grid.reshape(anchor_grid.shape[0], -1).tolist(),
        activation=activation,
        hyp=documents["hyp"],
        epoch=int(root.get("epoch", -1)) if isinstance(root, dict) else -1,
        best_fitness=None if best_fitness is None else float(np.asarray(best_fitness).ravel()[0]),
        yaml_file=None if attrs.get("yaml_file") is None else str(attrs["yaml_file"])[:1000],
        bn_eps=sorted({float(bn["eps"]) for bn in batchnorms if "eps" in bn}),
        bn_momentum=sorted({float(bn["momentum"]) for bn in batchnorms if bn.get("momentum") is not None}),
    )


def variant_name(spec: dict) -> str | None:
    """Return the name of the built-in variant whose layer table `spec` matches, or None."""
    try:
        from faceyolo.models.variants import VARIANTS
    except ImportError:
        return None
    fields = ("depth_multiple", "width_multiple", "backbone", "head")
    wanted = _canonical([spec.get(f) for f in fields])
    return next((name for name, table in VARIANTS.items()
                 if _canonical([table.get(f) for f in fields]) == wanted), None)


def _canonical(obj: Any) -> Any:
    """Return a yaml value in a comparable form: numbers as float, None as the yaml string "None"."""
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    if obj is None:
        return "None"
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return float(obj)
    return obj

"""Safe reader for `torch.save` zip checkpoints: a restricted unpickler that never runs pickled code.

Only the globals on an explicit allow-list (SPEC §7.2) are resolved. Module classes become inert
`PickledModule` stand-ins that only record their `__dict__`; tensors are rebuilt by our own functions
from the storage bytes in the zip; anything else is refused with a `FaceyoloError` naming the global.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceyolo.errors import FaceyoloError

try:
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # NumPy < 2
    from numpy.core import multiarray as _np_multiarray


class PickledModule:
    """Inert stand-in for a pickled module object: its attributes are whatever the pickle recorded.

    `global_name` (class attribute) is the pickled class, e.g. "models.common.Conv".
    """

    global_name = ""

    def __repr__(self) -> str:
        return f"<PickledModule {self.global_name}>"


# Module classes a YOLOv5-Face checkpoint may pickle: each becomes a PickledModule subclass.
_MODULE_CLASSES = {
    "models.yolo": ("Model", "Detect"),
    "models.common": (
        "Conv", "StemBlock", "C3", "Bottleneck", "SPP", "SPPF", "Focus", "BottleneckCSP", "Concat",
        "ShuffleV2Block", "BlazeBlock", "DoubleBlazeBlock", "NMS", "autoShape",
    ),
    "models.experimental": ("CrossConv", "MixConv2d"),
    "torch.nn.modules.container": ("Sequential", "ModuleList"),
    "torch.nn.modules.conv": ("Conv2d",),
    "torch.nn.modules.batchnorm": ("BatchNorm2d",),
    "torch.nn.modules.activation": ("SiLU", "LeakyReLU", "Hardswish", "ReLU"),
    "torch.nn.modules.pooling": ("MaxPool2d",),
    "torch.nn.modules.upsampling": ("Upsample",),
    "torch.nn.modules.linear": ("Identity",),
}

_STORAGE_DTYPES = {
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _StorageType:
    """Marker the unpickler returns for `torch.<X>Storage`: only its dtype matters."""

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None) -> torch.Tensor:
    """Return the tensor view (size, stride, offset) of a storage read from the zip."""
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise ValueError("tensor rebuilt from something that is not a checkpoint storage")
    return torch.as_strided(storage, tuple(int(s) for s in size), tuple(int(s) for s in stride),
                            int(storage_offset))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> torch.Tensor:
    """Return the parameter's data as a plain tensor (requires_grad is not restored)."""
    if not isinstance(data, torch.Tensor):
        raise ValueError("parameter rebuilt from something that is not a tensor")
    return data


_SAFE_CODECS = ("latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii")


def _encode_text(text: str, encoding: str = "utf-8") -> bytes:
    """Return `text` encoded; only the byte-string codecs pickles use for NumPy data are allowed."""
    if encoding.lower().replace("_", "-") not in _SAFE_CODECS:
        raise ValueError(f"codec {encoding!r} is not allowed")
    return text.encode(encoding)


def _reconstruct_array(subtype, shape, dtype) -> np.ndarray:
    """Return the empty array NumPy's pickles start from (shape (0,)); `__setstate__` then fills it."""
    if subtype is not np.ndarray or tuple(shape) != (0,):
        raise ValueError("a pickled array must start empty, as NumPy pickles do")
    return _np_multiarray._reconstruct(subtype, shape, dtype)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """Return the allow-list: (module, name) → the safe object the unpickler hands out."""
    allowed: dict[tuple[str, str], Any] = {}
    for module, names in _MODULE_CLASSES.items():
        for name in names:
            allowed[(module, name)] = type(name, (PickledModule,), {"global_name": f"{module}.{name}"})
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(dtype)
    allowed[("torch._utils", "_rebuild_tensor_v2")] = _rebuild_tensor
    allowed[("torch._utils", "_rebuild_parameter")] = _rebuild_parameter
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    allowed[("__builtin__", "set")] = set
    allowed[("builtins", "set")] = set
    allowed[("_codecs", "encode")] = _encode_text
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct_array
        allowed[(module, "scalar")] = _np_multiarray.scalar
    return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler resolving only allow-listed globals and reading storages from the checkpoint zip."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str, path: Path):
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._root = root
        self._path = path
        self._storages: dict[str, torch.Tensor] = {}
        self._bytes_left = path.stat().st_size  # storages may not claim more bytes than the file holds

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise FaceyoloError(
                f"{self._path}: refusing to load: pickle global '{module}.{name}' is not on the allow-list"
            ) from None

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ValueError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if int(numel) < 0:
            raise ValueError(f"storage {key} has a negative size")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = self._read_storage(key, storage_type.dtype, int(numel))
        return self._storages[key]

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.Tensor:
        """Return the 1-D tensor (numel,) of `dtype` stored in the zip member <root>/data/<key>."""
        nbytes = numel * torch.empty((), dtype=dtype).element_size()
        self._bytes_left -= nbytes
        if self._bytes_left < 0:
            raise FaceyoloError(f"{self._path}: its storages claim more bytes than the file holds")
        raw = _read_member(self._archive, f"{self._root}/data/{key}", nbytes)
        if len(raw) < nbytes:
            raise ValueError(f"storage {key} holds {len(raw)} bytes, expected {nbytes}")
        if nbytes == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(raw), dtype=dtype)


def _read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """Return at most `limit` bytes of zip member `name`, so that a compressed member cannot unpack more."""
    with archive.open(name) as member:
        return member.read(limit)


def _archive_root(archive: zipfile.ZipFile, path: Path) -> str:
    """Return the zip's root folder (the one holding data.pkl; torch names it after the saved file)."""
    roots = [name[: -len("/data.pkl")] for name in archive.namelist() if name.endswith("/data.pkl")]
    if len(roots) != 1 or "/" in roots[0]:
        raise FaceyoloError(f"{path}: not a PyTorch checkpoint (no single <root>/data.pkl in the zip)")
    return roots[0]


def read_torch_pickle(path: str | Path) -> Any:
    """Return the object graph pickled in a `torch.save` zip, module objects as `PickledModule` stand-ins.

    Tensors come back as CPU tensors of their stored dtype. Never executes pickled code.
    """
    path = Path(path)
    if not path.is_file():
        raise FaceyoloError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise FaceyoloError(
            f"{path}: not a zip archive (truncated, or not a PyTorch >= 1.6 checkpoint)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            root = _archive_root(archive, path)
            if f"{root}/byteorder" in archive.namelist():
                if archive.read(f"{root}/byteorder").decode(errors="replace").strip() != "little":
                    raise FaceyoloError(f"{path}: big-endian checkpoints are not supported")
            data = _read_member(archive, f"{root}/data.pkl", path.stat().st_size)
            return _RestrictedUnpickler(data, archive, root, path).load()
    except FaceyoloError:
        raise
    except Exception as err:  # untrusted bytes: any failure to parse is a bad file, reported plainly
        raise FaceyoloError(f"{path}: corrupt checkpoint ({type(err).__name__}: {err})") from err

"""Static INT8 quantisation of an exported ONNX model for the CPU (ONNX Runtime's quantisation tools).

Weights become int8 per output channel, activations uint8 with ranges calibrated (min/max) on images the
user points to, letterboxed exactly as detection feeds them. Two parts stay float:
- the first layer (the stem): it reads the 3-channel full-resolution image, where int8 convolutions are
  no faster and lose the most (WIDER sample Easy AP of n-0.5: −1.4 points quantised, −0.6 kept float);
- the Detect head's 1x1 convs and the decode (and NMS) after them: their outputs are pixel coordinates and
  landmark offsets, which 8 bits would round to whole pixels (about 2 px per step on the largest anchors).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.files import atomic_write_bytes
from faceyolo.geometry import MAX_IMG_SIZE, MIN_IMG_SIZE, is_input_size, letterbox
from faceyolo.inference.onnx_metadata import read_metadata, write_metadata

# Min/max ranges need enough images: official n-0.5, WIDER sample Easy/Medium/Hard AP change vs fp32 with
# 100 shared train-pool images -1.37/-1.07/-0.64 points, with 300 -0.23/-0.95/-0.78.
DEFAULT_CALIBRATION_IMAGES = 300
FIRST_LAYER_PREFIX = "/model/model.0/"


@dataclass
class CalibrationReport:
    """What a quantisation used: images read, files skipped (name, reason), the int8 file."""

    path: Path
    images: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


class ImageCalibrationReader:
    """onnxruntime CalibrationDataReader over user images: {input: (1, 3, H, W) float32 RGB in [0, 1]}.

    Each image is letterboxed to (H, W) without the modulo-64 shrink, so every sample has the same shape.
    Unreadable files are recorded in `skipped` and passed over; at most `limit` images are used. The first
    sample is read at once, so `empty` tells before calibration whether there is anything to calibrate on.
    """

    def __init__(self, source: str | os.PathLike, input_name: str, input_hw: tuple[int, int], limit: int):
        from faceyolo.inference.sources import Source, SourceError

        self._source_error = SourceError
        self._frames = iter(Source(str(source)))
        self.input_name, self.input_hw, self.limit = input_name, input_hw, limit
        self.used = 0
        self.skipped: list[tuple[str, str]] = []
        self._pending = self._read()

    @property
    def empty(self) -> bool:
        """Return True when no readable image was found."""
        return self.used == 0

    def get_next(self) -> dict | None:
        """Return the next calibration sample, or None when the images (or the limit) are used up."""
        sample, self._pending = self._pending, (self._read() if self._pending is not None else None)
        return sample

    def _read(self) -> dict | None:
        """Return the next readable image as a sample, or None."""
        while self.used < self.limit:
            frame = next(self._frames, None)
            if frame is None:
                return None
            if isinstance(frame, self._source_error):
                self.skipped.append((frame.name, frame.reason))
                continue
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            image = letterbox(rgb, self.input_hw, auto=False)[0]
            self.used += 1
            return {self.input_name: image.transpose(2, 0, 1)[None].astype(np.float32) / 255}
        return None


def float_nodes(proto, levels: int) -> list[str]:
    """Return the names of the nodes that stay float: the first layer's, and all from the Detect head on.

    The first layer's nodes are named "/model/model.0/…" by the exporter (ExportModule.model.model[0]).
    The head's convs are the last `levels` Conv nodes of the (topologically ordered) graph; everything after
    the first of them is decode and NMS.
    """
    names = [node.name for node in proto.graph.node]
    convs = [i for i, node in enumerate(proto.graph.node) if node.op_type == "Conv"]
    if len(convs) < levels:
        raise FaceyoloError(f"the graph has {len(convs)} convolutions, fewer than its {levels} Detect levels")
    return [name for name in names if name.startswith(FIRST_LAYER_PREFIX)] + names[convs[-levels]:]


def _input_size(metadata: dict, path) -> tuple[int, int]:
    """Return the (height, width) an export's metadata names, refused unless both are sane input sizes."""
    size = metadata.get("img_size")
    if not (isinstance(size, list) and len(size) == 2 and all(is_input_size(v) for v in size)):
        raise FaceyoloError(f"{path}: metadata img_size {str(size)[:40]!r} is not [height, width], each "
                            f"{MIN_IMG_SIZE} to {MAX_IMG_SIZE}")
    return size[0], size[1]


def quantize_int8(
    fp32_path: str | os.PathLike,
    int8_path: str | os.PathLike,
    calibration: str | os.PathLike,
    max_images: int = DEFAULT_CALIBRATION_IMAGES,
) -> CalibrationReport:
    """Return a CalibrationReport after writing the static INT8 version of the faceyolo export `fp32_path`.

    `calibration` is an image file, a folder (searched recursively) or a glob; never the images you evaluate
    on. The int8 model keeps the fp32 model's inputs, outputs and metadata (plus an "int8" entry).
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = onnx.load(str(fp32_path))
    metadata = read_metadata(proto)
    if "stride" not in metadata or metadata.get("output") == "raw":
        raise FaceyoloError(f"{fp32_path}: INT8 needs a faceyolo export with decoded or NMS output")
    height, width = _input_size(metadata, fp32_path)
    reader = ImageCalibrationReader(calibration, proto.graph.input[0].name, (height, width), max_images)
    if reader.empty:
        raise FaceyoloError(f"{calibration}: no readable calibration images")
    with tempfile.TemporaryDirectory(prefix="faceyolo-int8-") as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        # Shape inference and graph clean-up first, as ONNX Runtime recommends; its symbolic shape pass
        # cannot follow the dynamic reshapes of the decode, and the plain ONNX one is enough here.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        keep_float = float_nodes(onnx.load(str(prepared)), len(metadata["stride"]))
        quantize_static(
            str(prepared), str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=keep_float,
        )
        result = onnx.load(str(quantized))
    metadata["int8"] = {"calibration_images": reader.used, "activations": "uint8 min/max",
                        "weights": "int8 per channel", "float": "first layer, Detect convs, decode"}
    write_metadata(result, metadata)
    atomic_write_bytes(int8_path, result.SerializeToString())
    return CalibrationReport(path=Path(int8_path), images=reader.used, skipped=reader.skipped)

"""The PyTorch-free backend of FaceDetector: an ONNX Runtime session mapping input batches to decoded rows.

Imports only NumPy and onnxruntime (never torch), so `FaceDetector.from_file("model.onnx")` and
`faceyolo detect --weights model.onnx` run in the lean install (no `[train]` extra). The detector does
the rest (letterbox, NMS, mapping back) with its own NumPy code, exactly as for the torch backend.

Accepted models: faceyolo exports with decoded output (`pred`) or NMS in the graph (`--nms`), and any ONNX
model with one (B, 3, H, W) input and one (B, N, 15 + nc) decoded output (e.g. the original export.py's).
Fixed-size models are fed by padding each letterboxed batch at the bottom and right (coordinates unchanged).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceyolo.devices import parse_device
from faceyolo.errors import FaceyoloError
from faceyolo.geometry import MAX_IMG_SIZE, PAD_VALUE
from faceyolo.inference.onnx_metadata import decode_metadata

DEFAULT_THREADS = 2
DETECTION_COLUMNS = 16  # [x1, y1, x2, y2, score, 10 landmarks, cls]
PAD_LEVEL = PAD_VALUE[0] / 255  # the letterbox's grey, as the network sees it
OUTPUT_COUNTS = {"decoded": 1, "nms": 2}  # graph outputs of each output kind a faceyolo export names
MAX_CLASSES = 1000  # an NMS model's class count sizes the rows made per image: a file may not name more
MAX_FIXED_BATCH = 256  # a fixed-batch model is fed copies up to its batch: a file may not ask for more


def _providers(device: str) -> list:
    """Return the ONNX Runtime execution providers for "cpu", "cuda", "cuda:N" or a bare GPU index."""
    import onnxruntime as ort

    parsed = parse_device(device)
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if parsed.kind == "cpu" or (parsed.kind == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if not has_cuda:
        raise FaceyoloError(f"device {device!r} requested but this onnxruntime has no CUDA provider; "
                            "use --device cpu or install onnxruntime-gpu")
    return [("CUDAExecutionProvider", {"device_id": parsed.index}), "CPUExecutionProvider"]


def _fixed(dim) -> int | None:
    """Return a static ONNX dimension as an int, or None when it is symbolic."""
    return dim if isinstance(dim, int) and dim > 0 else None


class OnnxBackend:
    """Callable: images (B, 3, H, W) float32 RGB in [0, 1] → decoded (B, N, 15 + nc) float32 array.

    Rows are [cx, cy, w, h, obj, 10 landmarks, cls probs] in input pixels. For an NMS model the final
    detections come back in that layout (obj = score, cls prob = 1), padded with zero rows, so the
    detector's NMS keeps them unchanged.
    """

    def __init__(self, session, path: Path):
        self.session = session
        self.path = path
        self.metadata = decode_metadata(session.get_modelmeta().custom_metadata_map)
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise FaceyoloError(f"{path}: expected one image input (B, 3, H, W), found "
                                f"{[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        batch, _, height, width = (_fixed(d) for d in inputs[0].shape)
        if max(height or 0, width or 0) > MAX_IMG_SIZE or (batch or 0) > MAX_FIXED_BATCH:
            raise FaceyoloError(f"{path}: fixed input {inputs[0].shape} is past what faceyolo feeds "
                                f"(height and width up to {MAX_IMG_SIZE}, batch up to {MAX_FIXED_BATCH})")
        self.fixed_batch = batch
        self.fixed_hw = (height, width) if height and width else None
        self.output = self.metadata.get("output") or self._guess_output(outputs)
        if self.output == "raw":
            raise FaceyoloError(f"{path}: the model outputs raw heads (exported with --raw); "
                                "export it again without --raw to run it here")
        if OUTPUT_COUNTS.get(self.output) != len(outputs):
            raise FaceyoloError(f"{path}: metadata output {repr(self.output)[:40]} but the graph has "
                                f"{len(outputs)} outputs (decoded: 1, nms: 2)")
        self.nc = self._class_count(outputs[0])

    def _class_count(self, first_output) -> int:
        """Return the class count: the metadata's, checked against the output columns and MAX_CLASSES."""
        columns = _fixed(first_output.shape[-1]) if self.output == "decoded" else None
        implied = columns - (DETECTION_COLUMNS - 1) if columns else None
        nc = self.metadata.get("nc", implied or 1)
        valid = isinstance(nc, int) and not isinstance(nc, bool) and 1 <= nc <= MAX_CLASSES
        if not valid or (implied is not None and nc != implied):
            expected = f"{implied} for its {columns} output columns" if implied else f"1 to {MAX_CLASSES}"
            raise FaceyoloError(f"{self.path}: metadata nc {repr(nc)[:40]}, expected {expected}")
        return nc

    def _guess_output(self, outputs) -> str:
        """Return "decoded" for a foreign model with one (B, N, 15 + nc) output; FaceyoloError otherwise."""
        if len(outputs) == 1 and len(outputs[0].shape) == 3:
            columns = _fixed(outputs[0].shape[2])
            if columns is None or columns >= DETECTION_COLUMNS:
                return "decoded"
        if all(len(o.shape) == 5 for o in outputs):
            return "raw"
        found = [(o.name, o.shape) for o in outputs]
        raise FaceyoloError(f"{self.path}: not a face model this backend can run: outputs {found} "
                            "(expected one (B, N, 16) decoded output)")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Return decoded rows (B, N, 15 + nc) for images (B, 3, H, W) float32 RGB in [0, 1]."""
        images = self._pad_to_input(np.ascontiguousarray(images, dtype=np.float32))
        step = self.fixed_batch or len(images)
        chunks = [self._run(images[start : start + step]) for start in range(0, len(images), step)]
        if self.output == "nms":
            return self._pad_rows(chunks)
        return np.concatenate(chunks)

    def _pad_to_input(self, images: np.ndarray) -> np.ndarray:
        """Return images grown to a fixed-size model's (H, W) with letterbox grey at the bottom and right."""
        if self.fixed_hw is None or images.shape[2:] == self.fixed_hw:
            return images
        (height, width), (h, w) = self.fixed_hw, images.shape[2:]
        if h > height or w > width:
            raise FaceyoloError(f"{self.path}: the model takes {height}x{width} inputs, got a {h}x{w} batch; "
                                f"use an image size of at most {max(height, width)} or export with --dynamic")
        padded = np.full((len(images), 3, height, width), PAD_LEVEL, dtype=np.float32)
        padded[:, :, :h, :w] = images
        return padded

    def _run(self, images: np.ndarray):
        """Return one chunk's output: the decoded array, or per-image NMS rows for an NMS model."""
        missing = (self.fixed_batch or len(images)) - len(images)
        if missing:  # a fixed-batch model: fill up with copies of the last image, drop their results
            images = np.concatenate([images, np.repeat(images[-1:], missing, axis=0)])
        outputs = self.session.run(None, {self.input_name: images})
        count = len(images) - missing
        if self.output != "nms":
            return outputs[0][:count]
        detections, batch_index = outputs
        return [detections[batch_index == b] for b in range(count)]

    def _pad_rows(self, chunks: list[list[np.ndarray]]) -> np.ndarray:
        """Return NMS rows per image as decoded-layout rows (B, K, 15 + nc), zero rows filling up."""
        per_image = [dets for chunk in chunks for dets in chunk]
        out = np.zeros((len(per_image), max(1, *(len(d) for d in per_image)), 15 + self.nc), dtype=np.float32)
        for b, dets in enumerate(per_image):
            k = len(dets)
            out[b, :k, 0:2] = (dets[:, 0:2] + dets[:, 2:4]) / 2
            out[b, :k, 2:4] = dets[:, 2:4] - dets[:, 0:2]
            out[b, :k, 4] = dets[:, 4]
            out[b, :k, 5:15] = dets[:, 5:15]
            classes = dets[:, 15].astype(np.int64)
            if k and not (0 <= classes.min() and classes.max() < self.nc):
                raise FaceyoloError(f"{self.path}: the model gave class {classes.max()} of {self.nc}")
            out[b, np.arange(k), 15 + classes] = 1.0
        return out


def create_session(path: str | os.PathLike, device: str = "cpu", threads: int = DEFAULT_THREADS):
    """Return an onnxruntime InferenceSession for `path`: `threads` intra-op threads, all optimisations."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise FaceyoloError(f"{path}: no such ONNX file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: ORT warns about unused initializers of foreign exports
    # Idle workers sleep instead of spinning: on a small shared CPU, spinning workers fight the caller's own
    # pre/post-processing and other processes (2 cores, loaded: 47 ms per n-0.5 forward spinning, 23 not).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=_providers(device))
    except FaceyoloError:
        raise
    except Exception as err:  # onnxruntime's errors (InvalidProtobuf, Fail…) derive from Exception directly
        raise FaceyoloError(f"{path}: not a loadable ONNX model ({err})") from None


def load_backend(
    path: str | os.PathLike, device: str = "cpu", half: bool = False, threads: int = DEFAULT_THREADS
) -> OnnxBackend:
    """Return the ONNX Runtime backend for `path` (FaceDetector.from_file's seam for .onnx files).

    `half` is ignored: an ONNX model's precision was fixed when it was exported.
    """
    return OnnxBackend(create_session(path, device, threads), Path(path))

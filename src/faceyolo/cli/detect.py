"""`faceyolo detect` and `faceyolo demo`: faces in images, folders, videos, webcams."""

from __future__ import annotations


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


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="detect faces in a public-domain photo with the default model (make demo)",
        description="Run `detect` with the packaged default model on the public-domain portrait of Grace "
        "Hopper that matplotlib ships (or on PHOTO), write the annotated image and its JSON under PROJECT, "
        "and print the faces found.",
    )
    p.add_argument("photo", metavar="PHOTO", nargs="?",
                   help="photo to use instead (needed by the lean install, which has no matplotlib)")
    p.add_argument("--weights", default=None, help="weights to use instead of the packaged default model")
    p.add_argument("--project", default="runs/demo", help="parent folder of the run (default runs/demo)")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from faceyolo.demo import describe, run_demo

    record = run_demo(project=args.project, weights=args.weights, photo=args.photo)
    print(describe(record))
    return 0 if record["faces"] else 1


def add_commands(sub) -> None:
    """Register this group's commands on the top-level sub-command table."""
    _add_detect(sub)
    _add_demo(sub)

"""`faceyolo eval widerface`: the official WIDER FACE protocol."""

from __future__ import annotations

from faceyolo.cli.parsing import command_group, needs_train_extra


def _add_eval(sub) -> None:
    benchmarks = command_group(sub, "eval", "benchmark",
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
    w.add_argument("--device", default="", help="cpu, cuda, cuda:N (default: cuda when available, else cpu)")
    w.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    w.add_argument("--json", help="also write {easy, medium, hard, images} here (APs as fractions)")
    w.add_argument("--project", default="runs/eval", help="parent folder of the run (default runs/eval)")
    w.add_argument("--name", default="widerface", help="run folder name, never reused (default widerface)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.set_defaults(func=_run_eval_widerface)


@needs_train_extra
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


def add_commands(sub) -> None:
    """Register this group's commands on the top-level sub-command table."""
    _add_eval(sub)

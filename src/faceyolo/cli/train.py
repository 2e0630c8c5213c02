"""`faceyolo train` and `faceyolo val`: training and validation on a YOLO-face dataset."""

from __future__ import annotations

from faceyolo.cli.parsing import needs_train_extra


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


@needs_train_extra
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
    p.add_argument("--device", default="", help="cpu, cuda, cuda:N (default: cuda when available, else cpu)")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes (default 0)")
    p.add_argument("--plots", action="store_true", help="save PR, F1, P and R curves as PNG")
    p.add_argument("--project", default="runs/val", help="parent folder of the run (default runs/val)")
    p.add_argument("--name", default="exp", help="run folder name, never reused (default exp)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_val)


@needs_train_extra
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


def add_commands(sub) -> None:
    """Register this group's commands on the top-level sub-command table."""
    _add_train(sub)
    _add_val(sub)

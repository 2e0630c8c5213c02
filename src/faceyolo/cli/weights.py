"""`faceyolo convert-weights` and `faceyolo info`: weights files and model summaries."""

from __future__ import annotations

from faceyolo.cli.parsing import needs_train_extra


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


@needs_train_extra
def _run_convert_weights(args) -> int:
    from faceyolo.weights import convert_weights

    summary = convert_weights(args.source, args.destination)
    print(f"variant {summary['variant'] or 'custom'}, {summary['num_params']:,} parameters")
    print(f"wrote {summary['path']} ({summary['bytes']:,} bytes)")
    return 0


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


@needs_train_extra
def _run_info(args) -> int:
    from faceyolo.models.summary import format_summary, summarize
    from faceyolo.weights import load_model_or_variant

    print(format_summary(summarize(load_model_or_variant(args.model), args.img_size)))
    return 0


def add_commands(sub) -> None:
    """Register this group's commands on the top-level sub-command table."""
    _add_convert_weights(sub)
    _add_info(sub)

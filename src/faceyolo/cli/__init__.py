"""The `faceyolo` command line: one subcommand per task. Thin: parse, call a library function, print.

Each command group's module has an `add_commands(subparsers)` that builds its parsers and sets `func`,
and `_run_<name>(args)` functions that import what they need lazily (so the ONNX path never imports torch).
"""

from __future__ import annotations

import argparse
import sys

from faceyolo import __version__
from faceyolo.cli import data, detect, evaluate, export, train, weights
from faceyolo.errors import FaceyoloError

COMMAND_GROUPS = (detect, data, train, evaluate, export, weights)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="faceyolo",
        description="Face detection with five landmarks (YOLOv5-Face family).",
    )
    parser.add_argument("--version", action="version", version=f"faceyolo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


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

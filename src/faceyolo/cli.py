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

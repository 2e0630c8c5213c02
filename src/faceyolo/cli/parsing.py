"""Parser helpers shared by the command groups."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

from faceyolo.extras import require_train_extra


def command_group(sub, name: str, dest: str, help: str, description: str) -> argparse._SubParsersAction:
    """Return the sub-command table of a new command `name` that needs one of its sub-commands (in `dest`)."""
    group = sub.add_parser(name, help=help, description=description).add_subparsers(
        dest=dest, metavar=dest.upper())
    group.required = True
    return group


def needs_train_extra(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Return `run` preceded by the `[train]` extra check: one line and exit 2, before anything is written."""

    @functools.wraps(run)
    def checked(args: argparse.Namespace) -> int:
        require_train_extra(f"faceyolo {args.command}")
        return run(args)

    return checked

"""Parser helpers shared by the command groups."""

from __future__ import annotations

import argparse


def command_group(sub, name: str, dest: str, help: str, description: str) -> argparse._SubParsersAction:
    """Return the sub-command table of a new command `name` that needs one of its sub-commands (in `dest`)."""
    group = sub.add_parser(name, help=help, description=description).add_subparsers(
        dest=dest, metavar=dest.upper())
    group.required = True
    return group

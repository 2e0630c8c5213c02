"""The command line's shared behaviour."""

import argparse
import subprocess
import sys

from faceyolo.cli import build_parser


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """Yield (command path, its parser, its one-line summary) for every command and nested command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                yield f"{prefix}{name}", subparser, summaries.get(name)
                yield from _commands(subparser, f"{prefix}{name} ")


def test_every_command_and_option_explains_itself():
    commands = list(_commands(build_parser()))
    assert {"detect", "train", "eval widerface", "export"} <= {path for path, _, _ in commands}
    for path, parser, summary in commands:
        assert summary and summary.strip(), f"{path}: no summary line in its parent's help"
        undocumented = [action.option_strings or [action.dest] for action in parser._actions
                        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
                        and not (action.help or "").strip()]
        assert not undocumented, f"{path}: options without help text: {undocumented}"


def test_python_dash_m_prints_version():
    out = subprocess.run([sys.executable, "-m", "faceyolo", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("faceyolo ")

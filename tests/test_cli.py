"""The command line's shared behaviour."""

import subprocess
import sys

from faceyolo.cli import build_parser


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, subparser in sub.choices.items():
        assert subparser.format_help().strip(), name


def test_python_dash_m_prints_version():
    out = subprocess.run([sys.executable, "-m", "faceyolo", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("faceyolo ")

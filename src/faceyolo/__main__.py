"""`python -m faceyolo` runs the command-line interface."""

from faceyolo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

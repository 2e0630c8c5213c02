"""Shared test fixtures: where ../shared lies, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# FACEYOLO_SHARED points elsewhere (e.g. a missing folder, to run the suite as a clone without ../shared would).
SHARED = Path(os.environ.get("FACEYOLO_SHARED") or REPO.parent / "shared")


@pytest.fixture(scope="session")
def shared() -> Path:
    """Return the ../shared folder beside the checkout, or skip the test when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"needs ../shared (not found at {SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def official_pt(shared: Path) -> Path:
    """Return the official yolov5n-0.5.pt test reference (GPL: tests only)."""
    path = shared / "weights" / "yolov5n-0.5.pt"
    if not path.is_file():
        pytest.skip(f"needs {path}")
    return path

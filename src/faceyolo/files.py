"""File helpers shared by every command: atomic writes and fresh run folders."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Return `path` after `write(tmp)` filled a temp file beside it that was then renamed onto it.

    A reader never sees a half-written file, and a crash leaves the old file (if any) intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; a result file gets the usual permissions
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Return `path` after writing `data` to it atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Return `path` after writing `text` (UTF-8) to it atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Return `path` after writing `obj` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def new_run_dir(project: str | os.PathLike, name: str) -> Path:
    """Return a new, empty folder `project/name`, or `project/name2`, `name3`… if taken.

    Results of an earlier run are never overwritten.
    """
    project = Path(project)
    project.mkdir(parents=True, exist_ok=True)
    candidate, k = project / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            k += 1
            candidate = project / f"{name}{k}"

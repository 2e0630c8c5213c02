"""Data yaml (SPEC §1.7): where the train / val / test images are, and the class names.

Each of `train`, `val` and `test` is a folder (searched recursively for images), a text file listing image
paths (relative entries resolve against the list file's folder), or a list of either. Relative entries in the
yaml resolve against `path:` when given (itself relative to the yaml), else against the yaml's folder.
A `download:` key is ignored: nothing is ever downloaded or executed (the original ran a shell script).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from faceyolo.errors import FaceyoloError
from faceyolo.images import is_image_file

_KNOWN_KEYS = {"path", "train", "val", "test", "nc", "names", "download"}


@dataclass
class DataConfig:
    """A resolved data yaml: absolute image sources per split, and the classes.

    train, val, test: absolute folders, list files or image files (expand with `image_files`).
    """

    train: list[Path]
    val: list[Path]
    nc: int
    names: list[str]
    root: Path
    test: list[Path] = field(default_factory=list)


def load_data_config(yaml_path: str | os.PathLike) -> DataConfig:
    """Return the DataConfig of a data yaml; FaceyoloError names the file and key when something is wrong."""
    yaml_path = Path(yaml_path)
    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except OSError as err:
        raise FaceyoloError(f"{yaml_path}: cannot read data config ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise FaceyoloError(f"{yaml_path}: not valid yaml ({err})") from None
    if not isinstance(data, dict):
        raise FaceyoloError(f"{yaml_path}: expected a mapping with train, val, nc and names")
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        raise FaceyoloError(f"{yaml_path}: unknown key(s) {', '.join(map(str, unknown))}")
    root = (yaml_path.parent / str(data.get("path") or ".")).resolve()
    splits = {}
    for key in ("train", "val", "test"):
        if key in ("train", "val") and not data.get(key):
            raise FaceyoloError(f"{yaml_path}: missing '{key}'")
        splits[key] = [_resolve_source(root, entry, yaml_path, key) for entry in _as_list(data.get(key))]
    names = data.get("names", ["face"])
    if isinstance(names, dict):  # {0: face} form
        names = [names[k] for k in sorted(names)]
    nc = int(data.get("nc", len(names)))
    if nc != len(names):
        raise FaceyoloError(f"{yaml_path}: nc is {nc} but {len(names)} names are given")
    return DataConfig(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        nc=nc,
        names=[str(n) for n in names],
        root=root,
    )


def image_files(sources: str | os.PathLike | list) -> list[Path]:
    """Return the sorted, de-duplicated image files of folders, list files and image files.

    Raises FaceyoloError when a source does not exist or no image is found at all.
    """
    found: set[Path] = set()
    for source in _as_list(sources):
        source = Path(source)
        if source.is_dir():
            found.update(p for p in source.rglob("*") if is_image_file(p))
        elif source.is_file() and is_image_file(source):
            found.add(source)
        elif source.is_file():
            found.update(_read_list_file(source))
        else:
            raise FaceyoloError(f"{source}: image source not found")
    if not found:
        raise FaceyoloError(f"no images found in {', '.join(str(s) for s in _as_list(sources))}")
    return sorted(found)


def _read_list_file(path: Path) -> list[Path]:
    """Return the image paths of a list file; relative lines resolve against the list file's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise FaceyoloError(f"{path}: cannot read image list ({err})") from None
    entries = []
    for line in lines:
        entry = line.strip()
        if entry and is_image_file(entry):
            entry_path = Path(entry)
            entries.append(entry_path if entry_path.is_absolute() else (path.parent / entry_path))
    return [Path(os.path.normpath(p)) for p in entries]


def _resolve_source(root: Path, entry, yaml_path: Path, key: str) -> Path:
    path = Path(str(entry)).expanduser()
    path = path if path.is_absolute() else root / path
    if not path.exists():
        raise FaceyoloError(f"{yaml_path}: {key} source {entry} not found (looked at {path})")
    return path


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]

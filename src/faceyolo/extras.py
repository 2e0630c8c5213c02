"""The two installs: the lean one (detection with ONNX Runtime) and the `[train]` extra (PyTorch and more)."""

from __future__ import annotations

import importlib.util

from faceyolo.errors import FaceyoloError

# What `pip install 'faceyolo[train]'` adds: training, evaluation, export and the PyTorch weights formats.
TRAIN_EXTRA = ("torch", "safetensors", "scipy", "matplotlib", "onnx")
TRAIN_INSTALL = "pip install 'faceyolo[train]'"


def is_installed(module: str) -> bool:
    """Return True when the top-level `module` can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # an import hook that refuses the name
        return False


def require_train_extra(what: str, modules: tuple[str, ...] = TRAIN_EXTRA) -> None:
    """Return None when `modules` can be imported; else raise a one-line FaceyoloError naming the extra.

    Looks the modules up without importing them, so a command can check before it writes anything.
    """
    missing = [name for name in modules if not is_installed(name)]
    if missing:
        raise FaceyoloError(f"{what} needs {', '.join(missing)}, which the lean install leaves out: "
                            f"{TRAIN_INSTALL}")

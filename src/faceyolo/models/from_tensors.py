"""A FaceModel built from an untrusted layer table and the tensors meant for it, taking only their memory.

A weights file says how to build its network (layer table, nc, activation); nothing it says may make us
allocate or build more than its own tensors. So the table is checked before anything is built: its rows,
repeats and multipliers, and its block count against the number of tensors; then the model is assembled
on the meta device (no memory), every parameter and buffer shape is compared with the tensors', and only
then is real memory taken — exactly the tensors' — and the strides probed under an activation limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from faceyolo.errors import FaceyoloError
from faceyolo.models.build import (
    SPEC_KEYS,
    FaceModel,
    assemble_model,
    probe_strides,
    resolved_repeats,
    set_batchnorm_defaults,
)
from faceyolo.models.detect import NUM_LANDMARKS

MAX_MULTIPLE = 16.0  # depth/width multiples past this are no YOLOv5-Face variant (they run 0.33 to 1.33)
DETECT_FIELDS = 5 + 2 * NUM_LANDMARKS  # per anchor: box, objectness, landmarks; then one per class


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_class_count(nc, tensors: Mapping[str, torch.Tensor]) -> int:
    """Return nc when it is a class count the tensors can hold (a Detect conv has ≥ 15 + nc outputs)."""
    widest = max((t.shape[0] for t in tensors.values() if t.dim()), default=0)
    if not _is_int(nc) or not 1 <= nc <= widest - DETECT_FIELDS:
        raise FaceyoloError(f"nc {nc!r} is not a class count these tensors can hold "
                            f"(1 to {max(widest - DETECT_FIELDS, 0)})")
    return nc


def _check_table(table, tensors: Mapping[str, torch.Tensor]) -> None:
    """Refuse a layer table that is malformed or asks for more blocks than there are tensors."""
    if not isinstance(table, dict):
        raise FaceyoloError(f"the layer table is a {type(table).__name__}, not a mapping")
    missing = [k for k in SPEC_KEYS if k not in table]
    if missing:
        raise FaceyoloError(f"the layer table lacks {', '.join(missing)}")
    for key in ("depth_multiple", "width_multiple"):
        value = table[key]
        if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                and 0 < value <= MAX_MULTIPLE):
            raise FaceyoloError(f"layer table {key} {value!r} is not a number in (0, {MAX_MULTIPLE:g}]")
    rows = table["backbone"], table["head"]
    if not all(isinstance(part, list) for part in rows):
        raise FaceyoloError("the layer table's backbone and head must be lists of rows")
    blocks = 0
    for i, row in enumerate(rows[0] + rows[1]):
        if not (isinstance(row, list) and len(row) == 4 and _is_int(row[1]) and row[1] >= 1):
            raise FaceyoloError(f"layer table row {i} {str(row)[:80]}: not [from, number, module, args] "
                                "with a positive number")
        blocks += resolved_repeats(row[1], table["depth_multiple"])
        if blocks > len(tensors):
            raise FaceyoloError(f"the layer table asks for more blocks (over {blocks:,} by row {i}) "
                                f"than the file has tensors ({len(tensors):,})")


def _named(err: Exception) -> str:
    """Return "Type: message" of an exception, cut to one short line."""
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


def _summarise(items: list[str], limit: int = 5) -> str:
    """Return the first `limit` items joined, with a count of the rest."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _fit_problems(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Return what keeps `tensors` from loading into `model`: missing, unexpected and misshapen entries."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    misshapen = [f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in tensors and tensors[k].shape != v.shape]
    return [f"{label}: {_summarise(items)}" for label, items in
            (("missing", missing), ("unexpected", unexpected), ("shape mismatch", misshapen)) if items]


def build_from_tensors(spec, nc, activation, tensors: Mapping[str, torch.Tensor]) -> FaceModel:
    """Return the FaceModel (train mode, CPU, fp32) of layer table `spec` holding `tensors`.

    Raises FaceyoloError, before any real memory is taken, when the table is malformed or asks for other
    tensors than the ones given.
    """
    check_class_count(nc, tensors)
    _check_table(spec, tensors)
    try:
        with torch.device("meta"):
            model = assemble_model(spec, nc=nc, activation=activation)
    except FaceyoloError:
        raise
    except Exception as err:  # an untrusted table: any failure to assemble it is a bad table, said plainly
        raise FaceyoloError(f"cannot build the model from its layer table ({_named(err)})") from None
    problems = _fit_problems(model, tensors)
    if problems:
        raise FaceyoloError("the tensors do not fit the model its layer table describes; "
                            + "; ".join(problems))
    model = model.to_empty(device="cpu")
    try:  # before loading: the train-mode probe moves the BatchNorm statistics
        probe_strides(model)
    except FaceyoloError:
        raise
    except Exception as err:  # e.g. a layer whose input it cannot take
        raise FaceyoloError(f"the model of the layer table does not run ({_named(err)})") from None
    model.load_state_dict({k: t.float() if t.is_floating_point() else t for k, t in tensors.items()})
    set_batchnorm_defaults(model)
    return model

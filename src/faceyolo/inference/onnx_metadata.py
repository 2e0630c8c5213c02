"""The metadata of faceyolo ONNX files: `metadata_props`, one JSON value per key (no torch)."""

from __future__ import annotations

import json


def decode_metadata(raw: dict[str, str]) -> dict:
    """Return ONNX custom metadata (key → text) with JSON values decoded (non-JSON values kept as text)."""
    out = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def read_metadata(proto) -> dict:
    """Return the `metadata_props` of an ONNX ModelProto as a dict, JSON values decoded."""
    return decode_metadata({entry.key: entry.value for entry in proto.metadata_props})


def write_metadata(proto, metadata: dict) -> None:
    """Replace the `metadata_props` of the ONNX ModelProto `proto` by `metadata`, each value as JSON."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)

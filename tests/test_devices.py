"""One `--device` parser for the torch and ONNX backends and for training."""

import pytest

from faceyolo.devices import Device, parse_device
from faceyolo.errors import FaceyoloError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", Device("auto")), (None, Device("auto")), ("CPU", Device("cpu")), ("cuda", Device("cuda", 0)),
     ("cuda:3", Device("cuda", 3)), ("2", Device("cuda", 2)), ("1,0", Device("cuda", 1))],
)
def test_device_strings_parse_to_kind_and_index(text, expected):
    assert parse_device(text) == expected


@pytest.mark.parametrize("text", ["tpu7", "cuda:x", "gpu"])
def test_unknown_device_names_the_string(text):
    with pytest.raises(FaceyoloError, match=f"unknown device '{text}'"):
        parse_device(text)

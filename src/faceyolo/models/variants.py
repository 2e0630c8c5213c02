"""Layer tables of the 11 YOLOv5-Face variants, as plain data in the original yaml schema (SPEC §2.5).

Each variant is a dict with `nc`, `depth_multiple`, `width_multiple`, `anchors` (one flat list of
2·na pixel numbers per level) and `backbone` / `head`: rows `[from, number, module, args]`.
In `args`, the strings "nc" and "anchors" and the value None are resolved by `build_model`.
"""

from __future__ import annotations

import copy

from faceyolo.errors import FaceyoloError

UPSAMPLE = [-1, 1, "nn.Upsample", [None, 2, "nearest"]]

ANCHORS_P5 = [[4, 5, 8, 10, 13, 16], [23, 29, 43, 55, 73, 105], [146, 217, 231, 300, 335, 433]]
ANCHORS_P6 = [
    [6, 7, 9, 11, 13, 16],
    [18, 23, 26, 33, 37, 47],
    [54, 67, 77, 104, 112, 154],
    [174, 238, 258, 355, 445, 568],
]
ANCHORS_BLAZE = [[5, 6, 10, 13, 21, 26], [55, 72, 225, 304, 438, 553]]

CSP_P5_BACKBONE = [
    [-1, 1, "StemBlock", [64, 3, 2]],  # 0 stride 4
    [-1, 3, "C3", [128]],
    [-1, 1, "Conv", [256, 3, 2]],  # 2 P3/8
    [-1, 9, "C3", [256]],
    [-1, 1, "Conv", [512, 3, 2]],  # 4 P4/16
    [-1, 9, "C3", [512]],
    [-1, 1, "Conv", [1024, 3, 2]],  # 6 P5/32
    [-1, 1, "SPP", [1024, [3, 5, 7]]],
    [-1, 3, "C3", [1024, False]],  # 8
]
CSP_P5_HEAD = [
    [-1, 1, "Conv", [512, 1, 1]],  # 9
    UPSAMPLE,
    [[-1, 5], 1, "Concat", [1]],
    [-1, 3, "C3", [512, False]],  # 12
    [-1, 1, "Conv", [256, 1, 1]],
    UPSAMPLE,
    [[-1, 3], 1, "Concat", [1]],
    [-1, 3, "C3", [256, False]],  # 16 -> P3
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 13], 1, "Concat", [1]],
    [-1, 3, "C3", [512, False]],  # 19 -> P4
    [-1, 1, "Conv", [512, 3, 2]],
    [[-1, 9], 1, "Concat", [1]],
    [-1, 3, "C3", [1024, False]],  # 22 -> P5
    [[16, 19, 22], 1, "Detect", ["nc", "anchors"]],
]

CSP_P6_BACKBONE = [
    [-1, 1, "StemBlock", [64, 3, 2]],  # 0 stride 4
    [-1, 3, "C3", [128]],
    [-1, 1, "Conv", [256, 3, 2]],  # 2 P3/8
    [-1, 9, "C3", [256]],
    [-1, 1, "Conv", [512, 3, 2]],  # 4 P4/16
    [-1, 9, "C3", [512]],
    [-1, 1, "Conv", [768, 3, 2]],  # 6 P5/32
    [-1, 3, "C3", [768]],
    [-1, 1, "Conv", [1024, 3, 2]],  # 8 P6/64
    [-1, 1, "SPP", [1024, [3, 5, 7]]],
    [-1, 3, "C3", [1024, False]],  # 10
]
CSP_P6_HEAD = [
    [-1, 1, "Conv", [768, 1, 1]],  # 11
    UPSAMPLE,
    [[-1, 7], 1, "Concat", [1]],
    [-1, 3, "C3", [768, False]],  # 14
    [-1, 1, "Conv", [512, 1, 1]],  # 15
    UPSAMPLE,
    [[-1, 5], 1, "Concat", [1]],
    [-1, 3, "C3", [512, False]],  # 18
    [-1, 1, "Conv", [256, 1, 1]],  # 19
    UPSAMPLE,
    [[-1, 3], 1, "Concat", [1]],
    [-1, 3, "C3", [256, False]],  # 22 -> P3
    [-1, 1, "Conv", [256, 3, 2]],
    [[-1, 19], 1, "Concat", [1]],
    [-1, 3, "C3", [512, False]],  # 25 -> P4
    [-1, 1, "Conv", [512, 3, 2]],
    [[-1, 15], 1, "Concat", [1]],
    [-1, 3, "C3", [768, False]],  # 28 -> P5
    [-1, 1, "Conv", [768, 3, 2]],
    [[-1, 11], 1, "Concat", [1]],
    [-1, 3, "C3", [1024, False]],  # 31 -> P6
    [[22, 25, 28, 31], 1, "Detect", ["nc", "anchors"]],
]

SHUFFLE_P5_BACKBONE = [
    [-1, 1, "StemBlock", [32, 3, 2]],  # 0 stride 4
    [-1, 1, "ShuffleV2Block", [128, 2]],  # 1 P3/8
    [-1, 3, "ShuffleV2Block", [128, 1]],  # 2
    [-1, 1, "ShuffleV2Block", [256, 2]],  # 3 P4/16
    [-1, 7, "ShuffleV2Block", [256, 1]],  # 4
    [-1, 1, "ShuffleV2Block", [512, 2]],  # 5 P5/32
    [-1, 3, "ShuffleV2Block", [512, 1]],  # 6
]
SHUFFLE_P5_HEAD = [
    [-1, 1, "Conv", [128, 1, 1]],  # 7
    UPSAMPLE,
    [[-1, 4], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 10
    [-1, 1, "Conv", [128, 1, 1]],  # 11
    UPSAMPLE,
    [[-1, 2], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 14 -> P3
    [-1, 1, "Conv", [128, 3, 2]],
    [[-1, 11], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 17 -> P4
    [-1, 1, "Conv", [128, 3, 2]],
    [[-1, 7], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 20 -> P5
    [[14, 17, 20], 1, "Detect", ["nc", "anchors"]],
]

SHUFFLE_P6_BACKBONE = [
    [-1, 1, "StemBlock", [32, 3, 2]],  # 0 stride 4
    [-1, 1, "ShuffleV2Block", [128, 2]],  # 1 P3/8
    [-1, 3, "ShuffleV2Block", [128, 1]],  # 2
    [-1, 1, "ShuffleV2Block", [256, 2]],  # 3 P4/16
    [-1, 7, "ShuffleV2Block", [256, 1]],  # 4
    [-1, 1, "ShuffleV2Block", [384, 2]],  # 5 P5/32
    [-1, 3, "ShuffleV2Block", [384, 1]],  # 6
    [-1, 1, "ShuffleV2Block", [512, 2]],  # 7 P6/64
    [-1, 3, "ShuffleV2Block", [512, 1]],  # 8
]
SHUFFLE_P6_HEAD = [
    [-1, 1, "Conv", [128, 1, 1]],  # 9
    UPSAMPLE,
    [[-1, 6], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 12
    [-1, 1, "Conv", [128, 1, 1]],  # 13
    UPSAMPLE,
    [[-1, 4], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 16
    [-1, 1, "Conv", [128, 1, 1]],  # 17
    UPSAMPLE,
    [[-1, 2], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 20 -> P3
    [-1, 1, "Conv", [128, 3, 2]],
    [[-1, 17], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 23 -> P4
    [-1, 1, "Conv", [128, 3, 2]],
    [[-1, 13], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 26 -> P5
    [-1, 1, "Conv", [128, 3, 2]],
    [[-1, 9], 1, "Concat", [1]],
    [-1, 1, "C3", [128, False]],  # 29 -> P6
    [[20, 23, 26, 29], 1, "Detect", ["nc", "anchors"]],
]

BLAZE_BACKBONE = [
    [-1, 1, "Conv", [24, 3, 2]],  # 0 stride 2
    [-1, 2, "BlazeBlock", [24]],
    [-1, 1, "BlazeBlock", [48, None, 2]],  # 2 stride 4
    [-1, 2, "BlazeBlock", [48]],
    [-1, 1, "DoubleBlazeBlock", [96, 24, 2]],  # 4 P3/8
    [-1, 2, "DoubleBlazeBlock", [96, 24]],  # 5
    [-1, 1, "DoubleBlazeBlock", [96, 24, 2]],  # 6 P4/16
    [-1, 2, "DoubleBlazeBlock", [96, 24]],  # 7
]
BLAZE_HEAD = [
    [-1, 1, "Conv", [64, 1, 1]],  # 8 -> P4
    UPSAMPLE,
    [[-1, 5], 1, "Concat", [1]],
    [-1, 1, "Conv", [64, 1, 1]],  # 11 -> P3
    [[11, 8], 1, "Detect", ["nc", "anchors"]],
]
BLAZE_FPN_HEAD = [
    [-1, 1, "Conv", [48, 1, 1]],  # 8
    UPSAMPLE,
    [[-1, 5], 1, "Concat", [1]],
    [-1, 1, "Conv", [48, 1, 1]],  # 11 -> P3
    [-1, 1, "nn.MaxPool2d", [3, 2, 1]],
    [[-1, 7], 1, "Concat", [1]],
    [-1, 1, "Conv", [48, 1, 1]],  # 14 -> P4
    [[11, 14], 1, "Detect", ["nc", "anchors"]],
]


def _table(depth: float, width: float, anchors: list, backbone: list, head: list) -> dict:
    """Return one variant's layer table as a fresh plain dict."""
    return copy.deepcopy({
        "nc": 1, "depth_multiple": depth, "width_multiple": width,
        "anchors": anchors, "backbone": backbone, "head": head,
    })


VARIANTS: dict[str, dict] = {
    "yolov5n-0.5": _table(1.0, 0.5, ANCHORS_P5, SHUFFLE_P5_BACKBONE, SHUFFLE_P5_HEAD),
    "yolov5n": _table(1.0, 1.0, ANCHORS_P5, SHUFFLE_P5_BACKBONE, SHUFFLE_P5_HEAD),
    "yolov5s": _table(0.33, 0.5, ANCHORS_P5, CSP_P5_BACKBONE, CSP_P5_HEAD),
    "yolov5m": _table(0.67, 0.75, ANCHORS_P5, CSP_P5_BACKBONE, CSP_P5_HEAD),
    "yolov5l": _table(1.0, 1.0, ANCHORS_P5, CSP_P5_BACKBONE, CSP_P5_HEAD),
    "yolov5n6": _table(1.0, 1.0, ANCHORS_P6, SHUFFLE_P6_BACKBONE, SHUFFLE_P6_HEAD),
    "yolov5s6": _table(0.33, 0.5, ANCHORS_P6, CSP_P6_BACKBONE, CSP_P6_HEAD),
    "yolov5m6": _table(0.67, 0.75, ANCHORS_P6, CSP_P6_BACKBONE, CSP_P6_HEAD),
    "yolov5l6": _table(1.0, 1.0, ANCHORS_P6, CSP_P6_BACKBONE, CSP_P6_HEAD),
    "blazeface": _table(1.0, 1.0, ANCHORS_BLAZE, BLAZE_BACKBONE, BLAZE_HEAD),
    "blazeface_fpn": _table(1.0, 1.0, ANCHORS_BLAZE, BLAZE_BACKBONE, BLAZE_FPN_HEAD),
}


def variant_names() -> list[str]:
    """Return the known variant names, in table order."""
    return list(VARIANTS)


def get_variant(name: str) -> dict:
    """Return a deep copy of the named variant's layer table; FaceyoloError lists valid names if unknown."""
    if name not in VARIANTS:
        raise FaceyoloError(f"unknown model variant {name!r}; valid names: {', '.join(VARIANTS)}")
    return copy.deepcopy(VARIANTS[name])

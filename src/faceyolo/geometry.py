"""Geometry written once for training, evaluation, detection and export: letterbox, its inverse, boxes.

NumPy and OpenCV only (never torch), so the ONNX path and the data loader can use it freely. The box
conversions are duck-typed and accept torch tensors as well as arrays; `letterbox`, the mappings back and
`box_iou` take NumPy arrays.

The letterbox is the one of the original test and inference scripts (SPEC §5.3): scale so the image fits
the target (long side = target for a square target), resize with INTER_LINEAR, then pad with 114; with
`auto=True` each padding is reduced modulo 64, so each side becomes the next multiple of 64.
"""

from __future__ import annotations

import cv2
import numpy as np

PAD_VALUE = (114, 114, 114)
LETTERBOX_STRIDE = 64
MIN_IMG_SIZE, MAX_IMG_SIZE = 32, 8192  # network input sizes a weights file may name (the original: 640–1280)


def is_input_size(value) -> bool:
    """Return True for an int (not a bool) network input size from MIN_IMG_SIZE to MAX_IMG_SIZE pixels."""
    return isinstance(value, int) and not isinstance(value, bool) and MIN_IMG_SIZE <= value <= MAX_IMG_SIZE


def _target_hw(new_shape: int | tuple[int, int]) -> tuple[int, int]:
    """Return the target (height, width); an int means a square."""
    if isinstance(new_shape, int):
        return new_shape, new_shape
    return int(new_shape[0]), int(new_shape[1])


def letterbox_plan(
    image_hw: tuple[int, int],
    new_shape: int | tuple[int, int] = 640,
    auto: bool = True,
    scaleup: bool = True,
    stride: int = LETTERBOX_STRIDE,
) -> tuple[float, tuple[int, int], tuple[int, int, int, int]]:
    """Return (ratio, resized (w, h), padding (top, bottom, left, right)) the letterbox applies to a shape.

    Splitting the pad as round(d/2 - 0.1), round(d/2 + 0.1) puts an odd pixel at the bottom/right.
    """
    h, w = image_hw
    target_h, target_w = _target_hw(new_shape)
    ratio = min(target_h / h, target_w / w)
    if not scaleup:
        ratio = min(ratio, 1.0)
    new_w, new_h = int(round(w * ratio)), int(round(h * ratio))
    dw, dh = target_w - new_w, target_h - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    half_w, half_h = dw / 2, dh / 2
    top, bottom = int(round(half_h - 0.1)), int(round(half_h + 0.1))
    left, right = int(round(half_w - 0.1)), int(round(half_w + 0.1))
    return ratio, (new_w, new_h), (top, bottom, left, right)


def letterbox_shape(
    image_hw: tuple[int, int],
    new_shape: int | tuple[int, int] = 640,
    auto: bool = True,
    scaleup: bool = True,
    stride: int = LETTERBOX_STRIDE,
) -> tuple[int, int]:
    """Return the (height, width) that `letterbox` gives an image of shape `image_hw`, without resizing."""
    _, (new_w, new_h), (top, bottom, left, right) = letterbox_plan(image_hw, new_shape, auto, scaleup, stride)
    return new_h + top + bottom, new_w + left + right


def letterbox(
    image: np.ndarray,
    new_shape: int | tuple[int, int] = 640,
    auto: bool = True,
    scaleup: bool = True,
    stride: int = LETTERBOX_STRIDE,
    color: tuple[int, int, int] = PAD_VALUE,
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Return (letterboxed image (H, W, C) uint8, ratio (r, r), padding (dw/2, dh/2) unrounded halves).

    `image` is (h, w, C) in any channel order (the resize is per channel). See the module docstring.
    """
    h, w = image.shape[:2]
    ratio, (new_w, new_h), pads = letterbox_plan((h, w), new_shape, auto, scaleup, stride)
    top, bottom, left, right = pads
    if (w, h) != (new_w, new_h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if top or bottom or left or right:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)
    return image, (ratio, ratio), ((left + right) / 2, (top + bottom) / 2)


def _gain_and_pad(
    input_hw: tuple[int, int],
    orig_hw: tuple[int, int],
    ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None,
) -> tuple[float, tuple[float, float]]:
    """Return (gain, (pad_x, pad_y)) of the input → original mapping.

    Without `ratio_pad` the padding is recomputed from the shapes, as the original does; this differs from
    the letterbox's integer padding by up to ~0.6 px (SPEC §6.3, §9.5), and matching it is what makes the
    results equal the original's.
    """
    if ratio_pad is not None:
        return ratio_pad[0][0], (ratio_pad[1][0], ratio_pad[1][1])
    gain = min(input_hw[0] / orig_hw[0], input_hw[1] / orig_hw[1])
    return gain, ((input_hw[1] - orig_hw[1] * gain) / 2, (input_hw[0] - orig_hw[0] * gain) / 2)


def scale_boxes(
    input_hw: tuple[int, int],
    boxes_xyxy: np.ndarray,
    orig_hw: tuple[int, int],
    ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None = None,
    clip: bool = True,
) -> np.ndarray:
    """Return boxes_xyxy (N, 4) mapped from letterboxed-input pixels to original-image pixels, clipped.

    `ratio_pad` = ((r, r), (pad_w, pad_h)) from `letterbox` uses the actual padding instead of recomputing it.
    The input is not modified; the dtype is kept (float32 in, float32 out, like the original).
    """
    gain, (pad_x, pad_y) = _gain_and_pad(input_hw, orig_hw, ratio_pad)
    boxes = np.array(boxes_xyxy, copy=True)
    boxes[:, [0, 2]] -= pad_x
    boxes[:, [1, 3]] -= pad_y
    boxes[:, :4] /= gain
    if clip:
        clip_boxes(boxes, orig_hw)
    return boxes


def scale_landmarks(
    input_hw: tuple[int, int],
    landmarks: np.ndarray,
    orig_hw: tuple[int, int],
    ratio_pad: tuple[tuple[float, float], tuple[float, float]] | None = None,
    clip: bool = True,
) -> np.ndarray:
    """Return landmarks (N, 10) x0,y0..x4,y4 or (N, 5, 2) mapped to original-image pixels, each clamped.

    Same mapping as `scale_boxes`; x is clamped to [0, w0] and y to [0, h0]. The shape is kept.
    """
    gain, (pad_x, pad_y) = _gain_and_pad(input_hw, orig_hw, ratio_pad)
    points = np.array(landmarks, copy=True)
    pairs = points.reshape(-1, 2)  # a view: x, y per row
    pairs[:, 0] -= pad_x
    pairs[:, 1] -= pad_y
    pairs /= gain
    if clip:
        np.clip(pairs[:, 0], 0, orig_hw[1], out=pairs[:, 0])
        np.clip(pairs[:, 1], 0, orig_hw[0], out=pairs[:, 1])
    return points


def clip_boxes(boxes_xyxy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Return boxes_xyxy (N, 4) clipped in place to [0, w] × [0, h]."""
    boxes_xyxy[:, [0, 2]] = boxes_xyxy[:, [0, 2]].clip(0, image_hw[1])
    boxes_xyxy[:, [1, 3]] = boxes_xyxy[:, [1, 3]].clip(0, image_hw[0])
    return boxes_xyxy


def _copy(boxes):
    """Return a copy of an array or tensor (duck-typed: tensors have `clone`)."""
    return boxes.clone() if hasattr(boxes, "clone") else np.array(boxes, copy=True)


def xywh_to_xyxy(boxes):
    """Return boxes (..., 4) centre-size [cx, cy, w, h] converted to corners [x1, y1, x2, y2]."""
    out = _copy(boxes)
    out[..., 0] = boxes[..., 0] - boxes[..., 2] / 2
    out[..., 1] = boxes[..., 1] - boxes[..., 3] / 2
    out[..., 2] = boxes[..., 0] + boxes[..., 2] / 2
    out[..., 3] = boxes[..., 1] + boxes[..., 3] / 2
    return out


def xyxy_to_xywh(boxes):
    """Return boxes (..., 4) corners [x1, y1, x2, y2] converted to centre-size [cx, cy, w, h]."""
    out = _copy(boxes)
    out[..., 0] = (boxes[..., 0] + boxes[..., 2]) / 2
    out[..., 1] = (boxes[..., 1] + boxes[..., 3]) / 2
    out[..., 2] = boxes[..., 2] - boxes[..., 0]
    out[..., 3] = boxes[..., 3] - boxes[..., 1]
    return out


def box_area(boxes_xyxy: np.ndarray) -> np.ndarray:
    """Return the areas (N,) of boxes_xyxy (N, 4)."""
    return (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * (boxes_xyxy[:, 3] - boxes_xyxy[:, 1])


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Return the IoU matrix (N, M) of boxes_a (N, 4) and boxes_b (M, 4), xyxy.

    IoU = inter / (area_a + area_b − inter), no +1 on sizes; computed in the inputs' dtype (float32 in gives
    the same bits as the original's float32 NMS).
    """
    ax1, ay1, ax2, ay2 = (boxes_a[:, k, None] for k in range(4))
    bx1, by1, bx2, by2 = boxes_b.T
    inter_w = (np.minimum(ax2, bx2) - np.maximum(ax1, bx1)).clip(0)
    inter_h = (np.minimum(ay2, by2) - np.maximum(ay1, by1)).clip(0)
    inter = inter_w * inter_h
    union = box_area(boxes_a)[:, None] + box_area(boxes_b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0).astype(inter.dtype, copy=False)

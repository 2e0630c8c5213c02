"""NMS inside an exported graph: the decoded `pred` output becomes final detections (ONNX NonMaxSuppression).

Same semantics as `faceyolo.inference.nms.nms_faces` (SPEC §6.2): score = obj × class probability, rows with
score > conf survive (which implies obj > conf), greedy suppression of IoU > iou with plain IoU, classes never
suppress each other, at most `max_det` rows per image and class.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DETECTIONS_NAME = "detections"
BATCH_INDEX_NAME = "batch_index"


@dataclass(frozen=True)
class NmsSettings:
    """Thresholds baked into an NMS graph: score > conf, suppress IoU > iou, at most max_det per image."""

    conf: float = 0.5
    iou: float = 0.5
    max_det: int = 1000

    def as_dict(self) -> dict:
        """Return the settings as a plain dict (for metadata)."""
        return asdict(self)


def append_nms(proto, nc: int, settings: NmsSettings, pred_name: str = "pred"):
    """Return `proto` with its (B, N, 15+nc) decoded output replaced by final detections.

    New outputs: `detections` (K, 16) float32 [x1, y1, x2, y2, score, 10 landmarks, cls] and `batch_index`
    (K,) int64, ordered by image, then class, then descending score (nc = 1: descending score per image).
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    nodes = []

    def const(name: str, values, dtype) -> str:
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=dtype), f"nms/{name}"))
        return f"nms/{name}"

    def node(op: str, inputs: list[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [f"nms/{name}"], name=f"nms/{name}", **attrs))
        return f"nms/{name}"

    def columns(start: int, end: int, name: str) -> str:  # pred[..., start:end]
        first, stop = const(f"{name}_start", [start], np.int64), const(f"{name}_end", [end], np.int64)
        return node("Slice", [pred_name, first, stop, const(f"{name}_axis", [2], np.int64)], name)

    centre, size = columns(0, 2, "centre"), columns(2, 4, "size")
    half = node("Mul", [size, const("half", 0.5, np.float32)], "half_size")
    corners = [node("Sub", [centre, half], "top_left"), node("Add", [centre, half], "bottom_right")]
    boxes = node("Concat", corners, "boxes_xyxy", axis=2)
    scores = node("Mul", [columns(4, 5, "obj"), columns(15, 15 + nc, "cls")], "scores")  # (B, N, nc)
    selected = node("NonMaxSuppression", [
        boxes, node("Transpose", [scores], "scores_bcn", perm=[0, 2, 1]),
        const("max_det", [settings.max_det], np.int64), const("iou", [settings.iou], np.float32),
        const("conf", [settings.conf], np.float32)], "selected")  # (K, 3) [image, class, anchor row]
    image_row = node("Gather", [selected, const("image_row_cols", [0, 2], np.int64)], "image_row", axis=1)
    image_row_class = node("Gather", [selected, const("image_row_class_cols", [0, 2, 1], np.int64)],
                           "image_row_class", axis=1)
    picked_score = node("GatherND", [scores, image_row_class], "picked_score")
    picked_class = node("Gather", [selected, const("class_col", [1], np.int64)], "picked_class", axis=1)
    nodes.append(helper.make_node("Concat", [
        node("GatherND", [boxes, image_row], "picked_boxes"),
        node("Unsqueeze", [picked_score, const("unsqueeze_axis", [1], np.int64)], "picked_score_column"),
        node("GatherND", [columns(5, 15, "landmarks"), image_row], "picked_landmarks"),
        node("Cast", [picked_class], "picked_class_float", to=TensorProto.FLOAT),
    ], [DETECTIONS_NAME], name="nms/detections", axis=1))
    nodes.append(helper.make_node("Gather", [selected, const("image_col", 0, np.int64)], [BATCH_INDEX_NAME],
                                  name="nms/batch_index", axis=1))
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.extend([
        helper.make_tensor_value_info(DETECTIONS_NAME, TensorProto.FLOAT, ["detections", 16]),
        helper.make_tensor_value_info(BATCH_INDEX_NAME, TensorProto.INT64, ["detections"]),
    ])
    return proto

"""The `Face` result type and its construction from NMS rows (NumPy only, no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceyolo.geometry import scale_boxes, scale_landmarks

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")  # as seen in the image


@dataclass(eq=False)  # array fields: compare faces by their values, not with ==
class Face:
    """One detected face in original-image pixels (floats, not rounded).

    box (4,) float32 [x1, y1, x2, y2]; score: obj × class probability; landmarks (5, 2) float32 (x, y) in
    the order of LANDMARK_NAMES; track_id: the face's track across video frames (None when not tracked).
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    track_id: int | None = None

    def to_dict(self, decimals: int = 3) -> dict:
        """Return the JSON form {"box": [x1, y1, x2, y2], "score", "landmarks": [[x, y] × 5]} (and
        "track_id" when tracked)."""
        record = {
            "box": [round(float(v), decimals) for v in self.box],
            "score": round(self.score, 5),
            "landmarks": [[round(float(x), decimals), round(float(y), decimals)] for x, y in self.landmarks],
        }
        if self.track_id is not None:
            record["track_id"] = self.track_id
        return record


def faces_from_detections(
    dets: np.ndarray,
    input_hw: tuple[int, int] | None = None,
    orig_hw: tuple[int, int] | None = None,
) -> list[Face]:
    """Return one Face per NMS row of dets (K, 16) [x1, y1, x2, y2, score, 10 landmarks, cls].

    With `input_hw` (the letterboxed network input) and `orig_hw` the rows are mapped back to the original
    image exactly as the original scripts do (padding recomputed from the shapes, clipped); without them
    they are taken as already in image pixels.
    """
    dets = np.asarray(dets, dtype=np.float32)
    boxes, landmarks = dets[:, :4], dets[:, 5:15]
    if input_hw is not None and orig_hw is not None:
        boxes = scale_boxes(input_hw, boxes, orig_hw)
        landmarks = scale_landmarks(input_hw, landmarks, orig_hw)
    landmarks = landmarks.reshape(-1, 5, 2)
    scores = dets[:, 4].tolist()
    return [Face(box=box.copy(), score=score, landmarks=points.copy())
            for box, score, points in zip(boxes, scores, landmarks, strict=True)]

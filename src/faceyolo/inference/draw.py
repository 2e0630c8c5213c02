"""Drawing detections: box, score and the five landmarks in distinct colours."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from faceyolo.inference.face import Face

BOX_COLOR = (0, 255, 0)  # BGR
# BGR, in LANDMARK_NAMES order: left eye blue, right eye red, nose green, left mouth magenta, right mouth cyan
LANDMARK_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 255), (255, 255, 0))


def draw_faces(image_bgr: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """Return a copy of image_bgr (H, W, 3) uint8 with each face's box, score and landmarks drawn.

    Line widths and text size grow with the image, so drawings stay visible on large photos; a tracked
    face's label starts with its track ID ("#3 0.91"); the label is left out for faces much narrower than it.
    """
    canvas = image_bgr.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    font_scale = thickness / 2.5
    for face in faces:
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOR, thickness, cv2.LINE_AA)
        radius = max(1, min(thickness + 1, (x2 - x1) // 12))  # small faces: dots must not cover them
        for point, color in zip(face.landmarks, LANDMARK_COLORS, strict=True):
            centre = (int(round(float(point[0]))), int(round(float(point[1]))))
            cv2.circle(canvas, centre, radius, color, -1, cv2.LINE_AA)
        label = f"{face.score:.2f}" if face.track_id is None else f"#{face.track_id} {face.score:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        if text_w > 1.5 * (x2 - x1):  # in crowds the labels of tiny faces would hide the faces
            continue
        top = max(y1 - text_h - baseline, 0)
        cv2.rectangle(canvas, (x1, top), (x1 + text_w, top + text_h + baseline), BOX_COLOR, -1)
        cv2.putText(canvas, label, (x1, top + text_h), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return canvas

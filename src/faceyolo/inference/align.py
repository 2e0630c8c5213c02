"""Face alignment: warp a face so its five landmarks land on the standard ArcFace 112×112 template."""

from __future__ import annotations

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError

ALIGNED_SIZE = 112
# The 5-point template used by ArcFace / InsightFace recognisers for 112×112 chips, (x, y) pixels:
# left eye, right eye, nose tip, left and right mouth corners (as seen in the image).
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def alignment_matrix(landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Return the (2, 3) similarity transform (rotation, uniform scale, shift) from image to chip pixels.

    landmarks (5, 2) image pixels. Least squares over all five points: a huge RANSAC threshold makes every
    point an inlier, and OpenCV refines on them. The template is scaled by size / 112.
    """
    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    points = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(points, template, method=cv2.RANSAC, ransacReprojThreshold=1e6)
    if matrix is None or not np.isfinite(matrix).all():
        raise FaceyoloError(f"cannot align a face with degenerate landmarks {points.tolist()}")
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """Return the aligned chip (size, size, C) of `image` (H, W, C) for landmarks (5, 2), same channels."""
    matrix = alignment_matrix(landmarks, size)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)

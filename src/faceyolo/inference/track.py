"""FaceTracker: stable track IDs for faces across video frames, from boxes and scores alone (no model).

Each frame step (ByteTrack-style two-stage association):
1. every live track moves one step with its constant-velocity Kalman filter (`kalman`);
2. detections scoring at least `high_score` are matched to all live tracks by IoU (`matching`, Hungarian);
3. detections between `low_score` and `high_score` — a face blurred by motion or half turned, whose score
   dropped — are matched to the tracks that were seen in the previous step and are still unmatched, with a
   stricter IoU;
4. a matched track takes the detection (filter updated); an unmatched high-score detection starts a new
   track at once; a track missed in more than `max_misses` steps, or predicted wholly outside the picture,
   ends. Unmatched low-score detections are dropped.
A step without detections (`step(None)`, frames skipped by a stride) only moves the tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from faceyolo.geometry import xywh_to_xyxy, xyxy_to_xywh
from faceyolo.inference import kalman
from faceyolo.inference.face import Face
from faceyolo.inference.matching import match_by_iou

DEFAULT_LOW_SCORE = 0.1
DEFAULT_MATCH_IOU = 0.2
DEFAULT_LOW_MATCH_IOU = 0.5
DEFAULT_MAX_MISSES = 30  # frame steps a track survives unseen (1 s at 30 fps)


@dataclass
class TrackedFrame:
    """The faces of one frame step: `faces` were detected in it (each with its track_id); `predicted` are the
    live tracks it missed, at their predicted boxes grown by two standard deviations of the prediction
    (score: the track's last detection score)."""

    faces: list[Face] = field(default_factory=list)
    predicted: list[Face] = field(default_factory=list)

    @property
    def all_faces(self) -> list[Face]:
        """Return every face the tracker places in this frame, detected or predicted."""
        return self.faces + self.predicted


@dataclass
class _Track:
    track_id: int
    state: kalman.KalmanState
    face: Face  # the last detection, with track_id set
    misses: int = 0  # detection steps since it was last matched

    def box_xyxy(self) -> np.ndarray:
        return xywh_to_xyxy(self.state.box_xywh)

    def reach_xyxy(self) -> np.ndarray:
        """Return the predicted box grown by two standard deviations of its centre's uncertainty: where the
        unseen face can be, wider the longer it has been missed."""
        cx, cy, w, h = self.state.box_xywh
        grow_x, grow_y = 2 * np.sqrt(np.diag(self.state.covariance)[:2])
        return np.array([cx - w / 2 - grow_x, cy - h / 2 - grow_y, cx + w / 2 + grow_x, cy + h / 2 + grow_y])


def _face_at(face: Face, box_xyxy: np.ndarray) -> Face:
    """Return `face` moved to box_xyxy (4,), its landmarks mapped with the box."""
    old_xy, old_wh = face.box[:2], np.maximum(face.box[2:] - face.box[:2], 1e-6)
    new_xy, new_wh = box_xyxy[:2], box_xyxy[2:] - box_xyxy[:2]
    landmarks = (face.landmarks - old_xy) / old_wh * new_wh + new_xy
    return replace(face, box=box_xyxy.astype(np.float32), landmarks=landmarks.astype(np.float32))


class FaceTracker:
    """Gives faces track IDs across frame steps: `step(faces)` → TrackedFrame. IDs count up from 1."""

    def __init__(
        self,
        high_score: float = 0.5,
        low_score: float = DEFAULT_LOW_SCORE,
        match_iou: float = DEFAULT_MATCH_IOU,
        low_match_iou: float = DEFAULT_LOW_MATCH_IOU,
        max_misses: int = DEFAULT_MAX_MISSES,
    ):
        self.high_score, self.low_score = high_score, low_score
        self.match_iou, self.low_match_iou = match_iou, low_match_iou
        self.max_misses = max_misses
        self.tracks: list[_Track] = []
        self._next_id = 1

    def step(self, faces: list[Face] | None, image_hw: tuple[int, int] | None = None) -> TrackedFrame:
        """Return this frame's tracked faces after moving the tracks one step and matching `faces` to them.

        `faces` None: no detection ran on this frame (the tracks move, no miss is counted). `image_hw` ends
        tracks predicted wholly outside an image of that size.
        """
        for track in self.tracks:
            if track.misses:  # an unseen face keeps its size: a shrinking guess would uncover it
                track.state.mean[6:8] = 0
            track.state = kalman.predict(track.state)
        if image_hw is not None:
            self.tracks = [t for t in self.tracks if _overlaps_image(t.box_xyxy(), image_hw)]
        if faces is None:
            return TrackedFrame(predicted=[_face_at(t.face, t.reach_xyxy()) for t in self.tracks])

        high = [f for f in faces if f.score >= self.high_score]
        low = [f for f in faces if self.low_score <= f.score < self.high_score]
        detected: dict[int, Face] = {}  # track index → its face in this frame
        unmatched, new_faces = self._associate(list(range(len(self.tracks))), high, self.match_iou, detected)
        recent = [t for t in unmatched if self.tracks[t].misses == 0]
        self._associate(recent, low, self.low_match_iou, detected)

        result = TrackedFrame()
        for index, track in enumerate(self.tracks):
            if index in detected:
                result.faces.append(detected[index])
            else:
                track.misses += 1
                if track.misses <= self.max_misses:
                    result.predicted.append(_face_at(track.face, track.reach_xyxy()))
        self.tracks = [t for t in self.tracks if t.misses <= self.max_misses]
        result.faces.extend(self._start_track(face) for face in new_faces)
        return result

    def _associate(self, track_indices: list[int], faces: list[Face], min_iou: float,
                   detected: dict[int, Face]) -> tuple[list[int], list[Face]]:
        """Return (unmatched track indices, unmatched faces) after matching the tracks to `faces`.

        Each match updates its track's filter and is put in `detected` (track index → face with track_id).
        """
        track_boxes = np.array([self.tracks[t].box_xyxy() for t in track_indices]).reshape(-1, 4)
        face_boxes = np.array([f.box for f in faces]).reshape(-1, 4)
        matches, unmatched, unmatched_faces = match_by_iou(track_boxes, face_boxes, min_iou)
        for t, d in matches:
            track = self.tracks[track_indices[t]]
            track.state = kalman.update(track.state, xyxy_to_xywh(faces[d].box.astype(np.float64)))
            track.face = replace(faces[d], track_id=track.track_id)
            track.misses = 0
            detected[track_indices[t]] = track.face
        return [track_indices[t] for t in unmatched], [faces[d] for d in unmatched_faces]

    def _start_track(self, face: Face) -> Face:
        """Return `face` with the ID of a new track started at its box."""
        face = replace(face, track_id=self._next_id)
        state = kalman.initiate(xyxy_to_xywh(face.box.astype(np.float64)))
        self.tracks.append(_Track(self._next_id, state, face))
        self._next_id += 1
        return face


def _overlaps_image(box_xyxy: np.ndarray, image_hw: tuple[int, int]) -> bool:
    """Return True when box_xyxy (4,) has some area inside an image of size image_hw."""
    h, w = image_hw
    return box_xyxy[0] < w and box_xyxy[1] < h and box_xyxy[2] > 0 and box_xyxy[3] > 0

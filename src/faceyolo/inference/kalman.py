"""A constant-velocity Kalman filter over one face box, in centre-size form [cx, cy, w, h] (pixels).

State (8,): [cx, cy, w, h, vcx, vcy, vw, vh], velocities in pixels per frame step. The noise of every
coordinate is proportional to the box's own width or height, so small and large faces are filtered alike:
position noise 1/20 of the size, velocity noise 1/160 (the proportions SORT-family trackers use).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POSITION_NOISE = 1 / 20
VELOCITY_NOISE = 1 / 160
_TRANSITION = np.block([[np.eye(4), np.eye(4)], [np.zeros((4, 4)), np.eye(4)]])  # x += v each step
_OBSERVE = np.hstack([np.eye(4), np.zeros((4, 4))])  # the box is observed, its velocity is not


@dataclass
class KalmanState:
    """Estimate of one box: mean (8,) [cx, cy, w, h, vcx, vcy, vw, vh] and its covariance (8, 8)."""

    mean: np.ndarray
    covariance: np.ndarray

    @property
    def box_xywh(self) -> np.ndarray:
        """Return the estimated box (4,) [cx, cy, w, h]."""
        return self.mean[:4].copy()


def _size_scale(box_xywh: np.ndarray) -> np.ndarray:
    """Return (4,) [w, h, w, h] of a box, the scale of each coordinate's noise (at least 1 pixel)."""
    w, h = max(float(box_xywh[2]), 1.0), max(float(box_xywh[3]), 1.0)
    return np.array([w, h, w, h])


def initiate(box_xywh: np.ndarray) -> KalmanState:
    """Return the state of a new track at box_xywh (4,), at rest and with a wide velocity uncertainty."""
    scale = _size_scale(box_xywh)
    std = np.concatenate([2 * POSITION_NOISE * scale, 10 * VELOCITY_NOISE * scale])
    mean = np.concatenate([np.asarray(box_xywh, dtype=np.float64), np.zeros(4)])
    return KalmanState(mean, np.diag(std**2))


def predict(state: KalmanState) -> KalmanState:
    """Return the state one frame step later (constant velocity, process noise added)."""
    scale = _size_scale(state.mean[:4])
    noise = np.diag(np.concatenate([POSITION_NOISE * scale, VELOCITY_NOISE * scale]) ** 2)
    mean = _TRANSITION @ state.mean
    covariance = _TRANSITION @ state.covariance @ _TRANSITION.T + noise
    return KalmanState(mean, covariance)


def update(state: KalmanState, box_xywh: np.ndarray) -> KalmanState:
    """Return the state corrected by a measured box_xywh (4,)."""
    measurement_noise = np.diag((POSITION_NOISE * _size_scale(state.mean[:4])) ** 2)
    projected_cov = _OBSERVE @ state.covariance @ _OBSERVE.T + measurement_noise
    gain = np.linalg.solve(projected_cov, _OBSERVE @ state.covariance).T  # P Hᵀ S⁻¹ (S symmetric)
    innovation = np.asarray(box_xywh, dtype=np.float64) - _OBSERVE @ state.mean
    mean = state.mean + gain @ innovation
    covariance = state.covariance - gain @ projected_cov @ gain.T
    return KalmanState(mean, covariance)

"""Pose cues from COCO keypoints (normalised x, y, confidence).

The concealment cue: a wrist brought in front of the torso at waist level (inside the line
of the hips, between the lower chest and just below the hips), or into a bag. Hands hanging
at the sides are outside the hip line and do not count.
"""

from __future__ import annotations

from collections.abc import Sequence

from flows.behaviour.frames import Box, Keypoints

L_SHOULDER, R_SHOULDER, L_WRIST, R_WRIST, L_HIP, R_HIP = 5, 6, 9, 10, 11, 12
MIN_CONF = 0.4


def _seen(points: Keypoints, *indexes: int) -> bool:
    return all(points[i][2] >= MIN_CONF for i in indexes)


def wrist_at_waist_front(points: Keypoints) -> bool:
    """True when a visible wrist is inside the hip line at waist height."""
    if len(points) != 17 or not _seen(points, L_SHOULDER, R_SHOULDER, L_HIP, R_HIP):
        return False
    hip_left, hip_right = sorted((points[L_HIP][0], points[R_HIP][0]))
    shoulder_y = (points[L_SHOULDER][1] + points[R_SHOULDER][1]) / 2
    hip_y = (points[L_HIP][1] + points[R_HIP][1]) / 2
    torso = hip_y - shoulder_y
    if torso <= 0:
        return False
    # Inside the hips' span (a little narrower, so that hands at the sides never count).
    margin = 0.1 * (hip_right - hip_left)
    left, right = hip_left + margin, hip_right - margin
    top, bottom = shoulder_y + 0.5 * torso, hip_y + 0.25 * torso
    for wrist in (L_WRIST, R_WRIST):
        if points[wrist][2] < MIN_CONF:
            continue
        x, y, _ = points[wrist]
        if left <= x <= right and top <= y <= bottom:
            return True
    return False


def wrist_in_bag(points: Keypoints, bags: Sequence[Box]) -> bool:
    """True when a visible wrist is inside one of the bags' boxes."""
    if len(points) != 17:
        return False
    for wrist in (L_WRIST, R_WRIST):
        if points[wrist][2] < MIN_CONF:
            continue
        x, y, _ = points[wrist]
        if any(x1 <= x <= x2 and y1 <= y <= y2 for x1, y1, x2, y2 in bags):
            return True
    return False


def concealment_cue(points: Keypoints | None, bags: Sequence[Box] = ()) -> bool:
    """The cue for one frame (False without keypoints)."""
    return points is not None and (wrist_at_waist_front(points) or wrist_in_bag(points, bags))

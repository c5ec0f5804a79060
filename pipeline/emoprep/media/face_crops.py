"""A region's frames in, the speaker's face crops out: detection every few frames, the track, the cut.

The orchestration of the face stage, which extract calls once per utterance: the
detector (emoprep.media.faces) looks at every DETECT_EVERY-th frame, the track
(emoprep.media.face_track) follows the speaker's face between them and smooths it,
and each frame is cut around its centre to FACE_SIZE. Without a detector, or when
it finds no face, the crop is the fixed box.
"""

from __future__ import annotations

import numpy as np

from emoprep.media.face_track import (
    PAPER_FACE_SCALE, CropPolicy, FaceTrack, crop_origins, cut_crops, fixed_centre, follow_speaker, sample_frames,
    track_centres, track_side,
)
from emoprep.media.faces import FaceDetector
from emoprep.media.video import FACE_SIZE, HalfGeometry

# A recipe's `crop`: "paper" keeps the seed paper's fixed source side; "face" scales the crop to
# the followed face, so near and far faces (full frames of any size) are framed alike.
CROP_POLICIES = {"paper": CropPolicy(), "face": CropPolicy(face_scale=PAPER_FACE_SCALE)}
# Detect on every 10th frame (2.5 a second); the track interpolates and smooths between. On real talking
# heads this kept every face and centred crop that every 5th frame gave (test_real_faces,
# benchmarks/faces.py) and halves the CNN's cost: extraction 2.8x the decode floor, not 4.4x.
DETECT_EVERY = 10
SMOOTH_SIGMA = 2.5  # frames (0.1 s): removes detector jitter, keeps real head motion


def face_crops(frames: np.ndarray, detector: FaceDetector | None, half: HalfGeometry, side: str,
               crop: str) -> tuple[np.ndarray, FaceTrack]:
    """(T, FACE_SIZE, FACE_SIZE, 3) crops of the scaled region's frames, and the track they were cut along.

    `crop` is a key of CROP_POLICIES.
    """
    track = locate_faces(frames, detector, half, side, CROP_POLICIES[crop])
    origins = crop_origins(track.centres, track.side, half.scaled_width, half.scaled_height)
    return cut_crops(frames, origins, track.side, FACE_SIZE), track


def locate_faces(
    frames: np.ndarray, detector: FaceDetector | None, half: HalfGeometry, side: str,
    policy: CropPolicy = CropPolicy(),
) -> FaceTrack:
    """Where to crop each frame of the scaled region: the speaker's face followed over time, or the fixed box."""
    fixed_side = min(FACE_SIZE, half.scaled_width, half.scaled_height)
    fixed = np.tile(fixed_centre(side, half.scaled_width, half.scaled_height), (len(frames), 1))
    if detector is None:
        return FaceTrack(fixed, fixed_side, 0.0, 0)
    sampled = sample_frames(len(frames), DETECT_EVERY)
    detections = detector.detect(frames[sampled])
    followed = follow_speaker(detections)
    centres = track_centres(followed, sampled, len(frames), SMOOTH_SIGMA)
    most_faces = max((len(boxes) for boxes in detections), default=0)
    side_px = track_side(followed, policy, fixed_side, half.scaled_width, half.scaled_height)
    if centres is None:
        return FaceTrack(fixed, fixed_side, 0.0, most_faces)
    return FaceTrack(centres, side_px, sum(box is not None for box in followed) / len(sampled), most_faces)

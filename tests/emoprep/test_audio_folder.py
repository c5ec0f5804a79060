"""The audio-folder recipe: a labels CSV over any folder of recordings -> audio-only clips, folds by speaker,
and every kind of bad input recorded with its reason (the rest goes on)."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep.cli import main
from emoprep.corpus import read_clips
from emoprep.corpus.base import CorpusError, RecipeOptions, path_id

EMOTIONS = ("angry", "happy", "neutral", "sad", "fear")


def write_folder(root: Path, speakers: dict[str, str], rows: list[list[str]] = (), rate: int = 16000) -> Path:
    """speaker -> gender: each says every emotion once (0.2 s of noise); `rows` are added to the CSV as they are."""
    table = [["file", "emotion", "speaker", "gender"]]
    rng = np.random.default_rng(0)
    for speaker, gender in speakers.items():
        for emotion in EMOTIONS:
            relative = f"{speaker}/{emotion}.wav"
            (root / speaker).mkdir(parents=True, exist_ok=True)
            sf.write(root / relative, (rng.normal(0, 0.1, int(0.2 * rate)) * 32767).astype(np.int16), rate)
            table.append([relative, emotion, speaker, gender])
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(table + list(rows))
    return root


def test_a_labelled_folder_becomes_audio_only_clips_with_speaker_folds(tmp_path):
    speakers = {f"s{n}": "F" if n % 2 else "M" for n in range(1, 11)}
    corpus = read_clips("audio-folder", write_folder(tmp_path, speakers))
    assert corpus.problems == () and len(corpus.clips) == 50
    assert corpus.classes == ("ang", "hap", "neu", "sad")
    assert Counter(c.emotion for c in corpus.kept) == {"ang": 10, "hap": 10, "neu": 10, "sad": 10}
    fear = next(c for c in corpus.clips if c.extra["file"] == "s1/fear.wav")
    assert fear.emotion is None and fear.video_path is None and fear.end == 0.2
    assert fear.audio_path == str(tmp_path / "s1" / "fear.wav") and fear.clip_id == path_id("s1/fear.wav")
    assert [s.name for s in corpus.splits] == [f"fold-{k}" for k in range(1, 6)]
    for split in corpus.splits:
        assert Counter(speakers[s] for s in split.test) == {"M": 1, "F": 1}
        assert not split.test & split.val and split.train == set(speakers) - split.test - split.val
    every = read_clips("audio-folder", tmp_path, RecipeOptions(classes="all", settings={"folds": "10"}))
    assert every.classes == ("ang", "fea", "hap", "neu", "sad") and len(every.kept) == 50
    assert len(every.splits) == 10 and all(len(s.test) == 1 for s in every.splits)


def test_bad_input_is_recorded_and_never_stands_in(tmp_path):
    odd = "rec 'one'; ünï.wav"  # names are data: spaces, quotes, ';' and non-ASCII pass through untouched
    rows = [[odd, "Anger", "x 1", "female"],
            ["missing.wav", "sad", "a", "M"],
            ["a/angry.wav", "sad", "a", "M"],  # listed twice
            ["odd.wav", "contemplative", "a", "M"],
            ["../outside.wav", "sad", "a", "M"],
            ["zero.wav", "sad", "a", "M"], ["text.wav", "sad", "a", "M"], ["cut.wav", "sad", "a", "M"],
            ["long.wav", "sad", "b", "F"], ["low.wav", "sad", "b", "F"], ["high.wav", "sad", "b", "F"],
            ["nobody.wav", "sad", "", "F"], ["other.wav", "sad", "c", "F"]]  # c is M above
    root = write_folder(tmp_path, {"a": "M", "b": "F", "c": "M"}, rows)
    sf.write(root / odd, np.zeros(1600, np.int16), 16000)
    (root / "zero.wav").write_bytes(b"")
    (root / "text.wav").write_text("not audio\n")
    whole = (root / "a" / "sad.wav").read_bytes()
    (root / "cut.wav").write_bytes(whole[:len(whole) // 2])
    sf.write(root / "long.wav", np.zeros(300 * 8000, np.int16), 8000)  # a 5-minute file
    sf.write(root / "low.wav", np.zeros(8000, np.int16), 8000)  # 8 kHz: fine, resampled later
    sf.write(root / "high.wav", np.zeros((96000, 2), np.int16), 96000)  # 96 kHz stereo: fine
    for name in ("nobody.wav", "other.wav", "stray.flac"):
        sf.write(root / name, np.zeros(1600, np.int16), 16000, format="FLAC" if name.endswith("flac") else "WAV")
    corpus = read_clips("audio-folder", root)
    problems = [str(p) for p in corpus.problems]
    labels = re.escape(str(root / "labels.csv"))
    patterns = [rf"{labels}:19: -: 'a/angry.wav' is listed again \(first at line 2\)",
                rf"{labels}:20: -: odd.wav: unknown emotion 'contemplative'",
                rf"{labels}:21: -: file '\.\./outside.wav' is not a path inside",
                rf"{labels}:28: -: nobody.wav: no speaker",
                r"speaker 'c' is given two genders \(F at line 29; M at lines 12, 13, 14, 15, 16\)",
                rf"{labels}:18: missing_wav-\w+: names .*missing.wav, which is missing: row left out",
                r"zero.wav: zero_wav-\w+: empty audio: .*zero-length file: left out",
                r"text.wav: text_wav-\w+: not audio: ", r"cut.wav: cut_wav-\w+: truncated audio: ",
                r"long.wav: long_wav-\w+: 300.0 s long, more than the 6 s a sample holds: kept, cut to its first 6 s",
                r"stray.flac: -: not listed in labels.csv: ignored"]
    assert len(problems) == len(patterns), "\n".join(problems)
    for pattern in patterns:
        assert any(re.search(pattern, p) for p in problems), pattern
    by_file = {c.extra["file"]: c for c in corpus.clips}
    assert set(by_file) == {*(f"{s}/{e}.wav" for s in "abc" for e in EMOTIONS), odd, "long.wav", "low.wav",
                            "high.wav", "other.wav"}
    assert by_file["a/angry.wav"].emotion == "ang"  # the first row counts, not the later "sad"
    assert by_file[odd].audio_path == str(root / odd) and by_file[odd].emotion == "ang"
    assert by_file[odd].gender == "F" and re.fullmatch(r"x1[0-9a-f]{6}", by_file[odd].speaker)
    assert by_file["long.wav"].end == 6.0 and by_file["low.wav"].end == 1.0 and by_file["high.wav"].end == 1.0
    assert {c.gender for c in corpus.clips if c.speaker == "c"} == {None}


def test_unusable_roots_and_settings(tmp_path):
    with pytest.raises(CorpusError, match="no such folder"):
        read_clips("audio-folder", tmp_path / "absent")
    with pytest.raises(CorpusError, match="labels.csv: no labels CSV"):
        read_clips("audio-folder", tmp_path)
    (tmp_path / "labels.csv").write_text("path,label\na.wav,sad\n")
    with pytest.raises(CorpusError, match="no column file, emotion, speaker, gender"):
        read_clips("audio-folder", tmp_path)
    with pytest.raises(ValueError, match="setting folds='1'"):
        read_clips("audio-folder", tmp_path, RecipeOptions(settings={"folds": "1"}))
    write_folder(tmp_path / "other", {"a": "M", "b": "F"})
    (tmp_path / "other" / "labels.csv").rename(tmp_path / "other" / "my labels.csv")
    corpus = read_clips("audio-folder", tmp_path / "other", RecipeOptions(settings={"labels": "my labels.csv"}))
    assert len(corpus.clips) == 10 and corpus.splits == ()  # two speakers: no speaker-independent split


def test_cli_labels_an_audio_folder(tmp_path):
    root = write_folder(tmp_path / "corpus", {"a": "M", "b": "F", "c": "F"})
    result = CliRunner().invoke(main, ["labels", "--corpus", "audio-folder", "--root", str(root),
                                       "--out", str(tmp_path / "labels.parquet"), "--set", "folds=3"])
    assert result.exit_code == 0, result.output
    assert "15 utterances of audio-folder, 12 kept" in result.output


def test_a_speakers_gender_fills_their_empty_cells(tmp_path):
    root = write_folder(tmp_path, {"a": "male", "b": ""}, [["extra.wav", "sad", "a", ""]])
    sf.write(root / "extra.wav", np.zeros(1600, np.int16), 16000)
    corpus = read_clips("audio-folder", root)
    assert corpus.problems == ()
    assert {c.speaker: c.gender for c in corpus.clips} == {"a": "M", "b": None}

"""RAVDESS: the recipe (file-name fields, the audio-video files only, song and calm settings, folds, bad
input) and its synthetic twin (names, codecs, sizes, rates, faces, determinism).

The recipe never opens a file, so its tests lay out empty files with real names.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep.cli import main
from emoprep.corpus import read_clips
from emoprep.corpus.base import CorpusError, RecipeOptions
from emoprep.corpus.ravdess import parse_name
from emoprep.synth.ravdess import RavdessParams, generate_ravdess, plan_ravdess, write_trial
from tests.emoprep.media_check import decoded_audio, haar_faces, middle_frame, streams


def trial_names(modality: str, channel: str, actor: int) -> list[str]:
    """Every trial of one actor, as the corpus has them: neutral at normal intensity only; song without 07, 08."""
    emotions = range(1, 9) if channel == "01" else range(1, 7)
    return [f"{modality}-{channel}-{e:02d}-{i:02d}-{s:02d}-{r:02d}-{actor:02d}"
            for e in emotions for i in (1, 2) for s in (1, 2) for r in (1, 2) if not (e == 1 and i == 2)]


def lay_out(root: Path, actors: range, song: bool = True) -> Path:
    """Actor_NN/ folders with every audio-video file, plus the video-only and audio-only copies of speech."""
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        names = [(n, ".mp4") for n in trial_names("01", "01", actor)]
        names += [(n, ".mp4") for n in trial_names("02", "01", actor)]
        names += [(n, ".wav") for n in trial_names("03", "01", actor)]
        if song:
            names += [(n, ".mp4") for n in trial_names("01", "02", actor)]
        for name, suffix in names:
            (folder / f"{name}{suffix}").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def full_layout(tmp_path_factory) -> Path:
    """All 24 actors' names (empty files): the published counts without the 25 GB."""
    return lay_out(tmp_path_factory.mktemp("ravdess"), range(1, 25))


def test_parse_name_fields_and_errors():
    trial = parse_name("01-01-05-02-01-02-07")
    assert (trial.modality, trial.channel, trial.emotion, trial.intensity) == ("01", "speech", "angry", "strong")
    assert (trial.statement, trial.repetition, trial.actor, trial.gender, trial.speaker) == (1, 2, 7, "M", "actor07")
    assert parse_name("01-02-01-01-02-01-24").gender == "F"
    for bad, reason in (("01-01-05-02-01-02", "seven two-digit fields"), ("04-01-05-02-01-02-07", "modality 04"),
                        ("01-01-09-01-01-01-07", "emotion 09"), ("01-01-01-02-01-01-07", "neutral at strong"),
                        ("01-01-05-01-03-01-07", "statement 03"), ("01-01-05-01-01-01-25", "actor 25")):
        with pytest.raises(ValueError, match=reason):
            parse_name(bad)


def test_full_layout_gives_the_published_counts(full_layout):
    corpus = read_clips("ravdess", full_layout)
    assert corpus.problems == ()
    assert len(corpus.clips) == 1440  # 60 speech trials x 24 actors; the 02- and 03- copies are not counted
    assert {c.clip_id[:6] for c in corpus.clips} == {"01-01-"}
    assert Counter(c.gender for c in corpus.clips) == {"M": 720, "F": 720}
    assert Counter(c.corpus_label for c in corpus.clips) == {
        "neutral": 96, "calm": 192, "happy": 192, "sad": 192, "angry": 192, "fearful": 192, "disgust": 192,
        "surprised": 192}
    assert corpus.classes == ("ang", "hap", "neu", "sad")
    assert Counter(c.emotion for c in corpus.kept) == {"ang": 192, "hap": 192, "sad": 192, "neu": 96}
    clip = corpus.clips[0]
    assert clip.audio_path == clip.video_path and clip.video_path.endswith(".mp4") and clip.audio_window is None
    assert (clip.start, clip.end, clip.region, clip.crop, clip.group) == (0.0, None, "full", "face", "speech")
    assert clip.speaker == "actor01" and clip.extra == {"intensity": "normal", "statement": 1, "repetition": 1}


def test_song_and_calm_settings(full_layout):
    with_song = read_clips("ravdess", full_layout, RecipeOptions(settings={"song": "1"}))
    assert Counter(c.group for c in with_song.clips) == {"speech": 1440, "song": 24 * 44}
    merged = read_clips("ravdess", full_layout, RecipeOptions(settings={"merge_calm": "1"}))
    assert Counter(c.emotion for c in merged.kept)["neu"] == 96 + 192
    assert {c.corpus_label for c in merged.clips if c.emotion == "neu"} == {"neutral", "calm"}
    every = read_clips("ravdess", full_layout, RecipeOptions(classes="all"))
    assert every.classes == ("ang", "cal", "dis", "fea", "hap", "neu", "sad", "sur") and len(every.kept) == 1440
    merged_all = read_clips("ravdess", full_layout, RecipeOptions(classes="all", settings={"merge_calm": "yes"}))
    assert "cal" not in merged_all.classes and len(merged_all.classes) == 7 and len(merged_all.kept) == 1440
    assert merged_all.label_policy == {"name": "intended", "source": merged_all.label_policy["source"],
                                       "song": False, "merge_calm": True}


def test_six_folds_of_four_actors_two_of_each_gender(full_layout):
    corpus = read_clips("ravdess", full_layout)
    assert [s.name for s in corpus.splits] == [f"actor-{k}" for k in range(1, 7)]
    assert sorted(corpus.splits[0].test) == ["actor01", "actor02", "actor03", "actor04"]
    for index, split in enumerate(corpus.splits):
        numbers = [int(a[-2:]) for a in split.test]
        assert len(numbers) == 4 and sum(n % 2 for n in numbers) == 2
        assert split.val == corpus.splits[(index + 1) % 6].test
        assert len(split.train) == 16 and not split.train & (split.val | split.test)


def test_bad_names_and_misplaced_files_are_problems(tmp_path):
    root = lay_out(tmp_path / "speech", range(1, 4), song=False)
    folder = root / "Actor_01"
    for name in ("01-01-05-01-01-01-02.mp4", "01-01-99-01-01-01-01.mp4", "notes.txt", "._01-01-05-01-01-01-01.mp4",
                 "03-01-05-01-01-01-01.mp4", "IMG_0001.mp4"):
        (folder / name).write_bytes(b"")
    corpus = read_clips("ravdess", tmp_path)  # one level down (speech/Actor_NN) is found too
    problems = sorted(str(p) for p in corpus.problems)
    patterns = [r"01-01-05-01-01-01-02\.mp4: .*actor 02 in the name but inside Actor_01: ignored",
                r"01-01-99-01-01-01-01\.mp4: -: emotion 99",
                r"03-01-05-01-01-01-01\.mp4: .*modality 03 should be a \.wav file",
                r"IMG_0001\.mp4: -: not a RAVDESS name"]
    assert len(problems) == len(patterns), problems
    for pattern, problem in zip(patterns, problems):
        assert re.search(pattern, problem), (pattern, problem)
    assert len(corpus.clips) == 3 * 60
    assert len(corpus.splits) == 3  # fewer actors than folds: one fold per actor


def test_unusable_roots_and_options_are_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such folder"):
        read_clips("ravdess", tmp_path / "absent")
    with pytest.raises(CorpusError, match="no Actor_NN folders"):
        read_clips("ravdess", tmp_path)
    lay_out(tmp_path, range(1, 2))
    with pytest.raises(ValueError, match="no setting merge_excited"):
        read_clips("ravdess", tmp_path, RecipeOptions(settings={"merge_excited": "1"}))
    with pytest.raises(ValueError, match="no label policy 'perceived'"):
        read_clips("ravdess", tmp_path, RecipeOptions(label_policy="perceived"))
    assert read_clips("ravdess", tmp_path).splits == ()  # one actor: no speaker-independent split


# --- the synthetic twin (emoprep synth --corpus ravdess) ---------------------------------------------

TWIN = RavdessParams(actors=3, intensities=1)  # 8 speech trials per actor (normal intensity), 24 mp4s


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ravdess-twin")
    generate_ravdess(out, TWIN)
    return out / "RAVDESS"


def test_twin_reads_without_problems_and_extra_copies_are_not_counted(twin):
    copies = sorted(p.name for p in (twin / "Actor_01").iterdir() if not p.name.startswith("01-"))
    assert copies == ["02-01-01-01-01-01-01.mp4", "02-01-02-01-01-01-01.mp4",
                      "03-01-01-01-01-01-01.wav", "03-01-02-01-01-01-01.wav"]
    corpus = read_clips("ravdess", twin.parent)
    assert corpus.problems == ()
    assert len(corpus.clips) == 24 and {c.clip_id[:2] for c in corpus.clips} == {"01"}
    assert Counter(c.gender for c in corpus.clips) == {"M": 16, "F": 8}
    assert Counter(c.emotion for c in corpus.kept) == {"ang": 3, "hap": 3, "neu": 3, "sad": 3}
    assert [sorted(s.test) for s in corpus.splits] == [["actor01"], ["actor03"], ["actor02"]]


def test_twin_media_codecs_sizes_and_rates(twin):
    for mp4 in sorted(twin.glob("Actor_*/01-*.mp4")):
        found = streams(mp4)
        assert re.match(r"h264 .*\b1280x720\b.*\b29\.97 fps", found["Video"]), found
        assert re.match(r"aac .*\b48000 Hz, stereo", found["Audio"]), found
    for video_only in twin.glob("Actor_01/02-*.mp4"):
        assert set(streams(video_only)) == {"Video"}
    for audio_only in twin.glob("Actor_01/03-*.wav"):
        info = sf.info(audio_only)
        assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")
        # The audio-video file's sound is the same trial's: compare loudness contours at 16 kHz.
        mp4 = audio_only.with_name("01" + audio_only.name[2:]).with_suffix(".mp4")
        reference, ours = decoded_audio(audio_only, 16000), decoded_audio(mp4, 16000)
        windows = len(reference) // 160
        contours = [np.sqrt((x[:windows * 160].reshape(windows, 160) ** 2).mean(1)) for x in (reference, ours)]
        best = max(np.corrcoef(contours[0][:-8], contours[1][lag:windows - 8 + lag])[0, 1] for lag in range(8))
        assert best > 0.9


def test_twin_face_fills_a_realistic_share_of_the_full_frame(twin):
    for mp4 in sorted(twin.glob("Actor_0[12]/01-*.mp4"))[::4]:
        frame = middle_frame(mp4)
        assert frame.shape == (720, 1280, 3)
        faces = haar_faces(frame)
        assert len(faces) == 1, (mp4.name, faces)
        x, y, w, h = faces[0]
        assert 0.2 < h / 720 < 0.5 and 320 < x + w / 2 < 960


def test_twin_is_deterministic_and_resumes(twin, tmp_path):
    trials = plan_ravdess(TWIN)[:2]  # Actor_01's first trials: with their 02- and 03- copies
    for trial in trials:
        write_trial(tmp_path, trial)
    ours = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert len(ours) == 6 and not list(tmp_path.rglob(".*"))  # no leftover source wav
    assert all((tmp_path / p).read_bytes() == (twin / p).read_bytes() for p in ours)
    assert generate_ravdess(twin.parent, TWIN).written == 0


def test_twin_plan_song_and_sizes():
    assert len(plan_ravdess(RavdessParams())) == 4 * 15
    full = plan_ravdess(RavdessParams(actors=24, statements=2, repetitions=2, song=True))
    assert Counter(t.name[3:5] for t in full) == {"01": 1440, "02": 23 * 44}  # no song for Actor_18
    assert not [t for t in full if t.actor == 18 and t.name[3:5] == "02"]
    assert {parse_name(t.name).gender for t in full if t.actor % 2} == {"M"}
    with pytest.raises(ValueError, match="choose 1 to 24"):
        RavdessParams(actors=25)


def test_cli_writes_a_ravdess_twin_and_checks_its_options(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--corpus", "ravdess", "--out", str(tmp_path), "--actors", "1",
                                       "--intensities", "1", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert re.search(r"clips\s+8 \(0 already complete\)", result.output) and "wall time" in result.output
    assert len(read_clips("ravdess", tmp_path).clips) == 8
    result = CliRunner().invoke(main, ["synth", "--corpus", "ravdess", "--out", str(tmp_path / "b"), "--actors", "25"])
    assert result.exit_code != 0 and "RAVDESS has 24 actors" in result.output
    result = CliRunner().invoke(main, ["synth", "--corpus", "ravdess", "--out", str(tmp_path / "b"), "--sentences", "3"])
    assert result.exit_code != 0 and "--sentences is for --corpus crema-d, not ravdess" in result.output


def test_twin_signal_is_learnable_from_face_colour_and_voice_loudness(twin):
    """Nearest centroid on crude features (face tint, voice RMS) over the 8 emotions, leave one actor out.

    Checks the face at 1280x720 and the voice through AAC at 48 kHz still carry the emotion.
    """
    rows = []
    for mp4 in sorted(twin.glob("Actor_*/01-*.mp4")):
        frame = middle_frame(mp4).astype(float)
        centre = frame[240:480, 520:760].reshape(-1, 3)
        audio = decoded_audio(mp4, 16000)
        loudness = 40 * np.log10(np.sqrt((audio ** 2).mean()))
        rows.append((mp4.parent.name, mp4.name[6:8], np.array([*(centre.mean(0) - centre.mean()), loudness])))
    correct = 0
    for actor in {a for a, _, _ in rows}:
        train = [(e, f) for a, e, f in rows if a != actor]
        centroids = {e: np.mean([f for e2, f in train if e2 == e], axis=0) for e, _ in train}
        for a, emotion, features in rows:
            if a == actor:
                correct += min(centroids, key=lambda e: np.linalg.norm(centroids[e] - features)) == emotion
    assert correct / len(rows) >= 0.6  # chance is 1/8; 0.79 measured (calm and neutral look and sound alike)

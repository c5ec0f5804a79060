"""EmoDB: the recipe (names, speaker table, classes, leave-one-speaker-out folds, bad input, any rate and
length) and its synthetic twin (layout, rates, determinism, a voice that carries the label)."""

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
from emoprep.corpus.emodb import parse_name
from emoprep.synth.emodb import EmodbParams, generate_emodb, plan_emodb


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("emodb")
    generate_emodb(out, EmodbParams())
    return out / "EmoDB"


def test_parse_name_fields_and_errors():
    assert parse_name("03a01Fa") == ("03", "a01", "F", "a")
    for bad, reason in (("03a01F", "not an EmoDB name"), ("04a01Fa", "speaker 04"), ("03a03Fa", "text a03"),
                        ("03a01Xa", "emotion X")):
        with pytest.raises(ValueError, match=reason):
            parse_name(bad)


def test_twin_gives_every_speaker_and_class_without_problems(twin):
    corpus = read_clips("emodb", twin, RecipeOptions(classes="all"))
    assert corpus.problems == () and len(corpus.clips) == 70 and corpus.root == str(twin)
    assert corpus.classes == ("ang", "bor", "dis", "fea", "hap", "neu", "sad")
    assert Counter(c.gender for c in corpus.clips) == {"M": 35, "F": 35}
    assert Counter(c.speaker for c in corpus.clips)["spk03"] == 7
    assert {c.corpus_label for c in corpus.clips if c.emotion == "ang"} == {"Ärger"}
    clip = next(c for c in corpus.clips if c.clip_id == "08a01Wa")
    assert (clip.speaker, clip.gender, clip.emotion, clip.video_path, clip.audio_window) == (
        "spk08", "F", "ang", None, None)
    assert clip.audio_path == str(twin / "wav" / "08a01Wa.wav") and 1.0 < clip.end < 3.5
    shared = read_clips("emodb", twin / "wav")  # the wav folder itself is a root too
    assert shared.classes == ("ang", "hap", "neu", "sad") and len(shared.kept) == 40


def test_leave_one_speaker_out_folds(twin):
    splits = read_clips("emodb", twin).splits
    assert [s.name for s in splits] == [f"loso-{k}" for k in range(1, 11)]
    assert [next(iter(s.test)) for s in splits] == [f"spk{n}" for n in
                                                    ("03", "10", "11", "12", "15", "08", "09", "13", "14", "16")]
    for index, split in enumerate(splits):
        assert len(split.test) == len(split.val) == 1 and len(split.train) == 8
        assert split.val == splits[(index + 1) % 10].test


def test_any_rate_and_length_and_bad_files(tmp_path):
    out = tmp_path / "resampled"
    generate_emodb(out, EmodbParams(speakers=3, sample_rate=22050))
    wav = out / "EmoDB" / "wav"
    assert sf.info(wav / "03a01Wa.wav").samplerate == 22050
    sf.write(wav / "03a02Wa.wav", np.zeros(7 * 22050, np.int16), 22050)  # longer than a sample holds
    (wav / "03a04Wa.wav").write_bytes(b"")
    (wav / "03a05Wa.wav").write_text("not audio\n")
    whole = (wav / "03a01Fa.wav").read_bytes()
    (wav / "03a07Fa.wav").write_bytes(whole[:len(whole) // 2])
    for name in ("04a01Wa.wav", "03a01Xa.wav", "notes.wav"):
        (wav / name).write_bytes(whole)
    (wav / "._03a01Wa.wav").write_bytes(b"\0")  # archive debris: skipped
    corpus = read_clips("emodb", out / "EmoDB")
    problems = [str(p) for p in corpus.problems]
    patterns = [r"03a02Wa\.wav: 03a02Wa: 7\.0 s long, more than the 6 s .*kept, cut to its first 6 s",
                r"03a04Wa\.wav: 03a04Wa: empty audio: .*zero-length file: left out",
                r"03a05Wa\.wav: 03a05Wa: not audio: ", r"03a07Fa\.wav: 03a07Fa: truncated audio: ",
                r"03a01Xa\.wav: -: emotion X: expected .*: file ignored", r"04a01Wa\.wav: -: speaker 04",
                r"notes\.wav: -: not an EmoDB"]
    assert len(problems) == len(patterns), problems
    for pattern in patterns:
        assert any(re.search(pattern, p) for p in problems), pattern
    ids = {c.clip_id for c in corpus.clips}
    assert len(ids) == 21 + 1 and "03a02Wa" in ids and not ids & {"03a04Wa", "03a05Wa", "03a07Fa"}
    assert next(c for c in corpus.clips if c.clip_id == "03a02Wa").end == 6.0


def test_unusable_roots(tmp_path):
    with pytest.raises(CorpusError, match="no such folder"):
        read_clips("emodb", tmp_path / "absent")
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "hello.wav").write_bytes(b"")
    with pytest.raises(CorpusError, match="no EmoDB wavs"):
        read_clips("emodb", tmp_path)
    with pytest.raises(ValueError, match="emodb has no setting song"):
        read_clips("emodb", tmp_path, RecipeOptions(settings={"song": "1"}))


def test_twin_is_deterministic_resumes_and_carries_the_label(twin, tmp_path):
    generate_emodb(tmp_path, EmodbParams(speakers=2))
    for path in sorted((tmp_path / "EmoDB" / "wav").iterdir()):
        assert path.read_bytes() == (twin / "wav" / path.name).read_bytes()
    assert generate_emodb(twin.parent, EmodbParams()).written == 0
    loudness: dict[str, list[float]] = {}
    for path in sorted((twin / "wav").glob("*.wav")):
        audio, rate = sf.read(path)
        assert rate == 16000 and audio.ndim == 1
        loudness.setdefault(path.stem[5], []).append(float(np.sqrt((audio ** 2).mean())))
    mean = {letter: np.mean(values) for letter, values in loudness.items()}
    assert mean["W"] > mean["F"] > mean["N"] > mean["T"]  # anger loudest, sadness quietest


def test_cli_writes_an_emodb_twin_and_checks_its_options(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--corpus", "emodb", "--out", str(tmp_path), "--speakers", "2",
                                       "--texts", "2", "--sample-rate", "22050"])
    assert result.exit_code == 0, result.output
    assert re.search(r"clips\s+28 \(0 already complete\)", result.output)
    assert len(plan_emodb(EmodbParams(speakers=2, texts=2))) == 28
    result = CliRunner().invoke(main, ["synth", "--corpus", "ravdess", "--out", str(tmp_path / "b"), "--texts", "2"])
    assert result.exit_code != 0 and "--texts is for --corpus emodb, not ravdess" in result.output
    result = CliRunner().invoke(main, ["labels", "--corpus", "emodb", "--root", str(tmp_path / "EmoDB"),
                                       "--out", str(tmp_path / "labels.parquet")])
    assert result.exit_code == 0 and "28 utterances of emodb, 16 kept" in result.output


# The published release (../shared/corpora-format.md): 535 utterances by emotion, 233 male and 302 female.
PUBLISHED = {"W": 127, "L": 81, "N": 79, "F": 71, "A": 69, "T": 62, "E": 46}
MALE, FEMALE = ("03", "10", "11", "12", "15"), ("08", "09", "13", "14", "16")
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")


def published_layout(root: Path) -> Path:
    """A wav/ folder with EmoDB's published counts: names dealt out over speakers, texts and takes so that
    each emotion has its count and the men 233 utterances (tiny silent wavs: the recipe reads headers)."""
    wav = root / "EmoDB" / "wav"
    wav.mkdir(parents=True)
    silence = np.zeros(1600, np.int16)
    male_left = 233
    for emotion, count in PUBLISHED.items():
        takes: Counter = Counter()  # this emotion's utterances so far, per speaker
        for n in range(count):
            speakers = MALE if male_left > 0 and n % 2 == 0 else FEMALE
            male_left -= speakers is MALE
            speaker = speakers[(n // 2) % 5]
            k = takes[speaker]
            takes[speaker] += 1
            sf.write(wav / f"{speaker}{TEXTS[k % 10]}{emotion}{'abcdefgh'[k // 10]}.wav", silence, 16_000)
    return root / "EmoDB"


def test_the_published_layout_gives_its_counts_genders_and_the_shared_four(tmp_path):
    root = published_layout(tmp_path)
    corpus = read_clips("emodb", root, RecipeOptions(classes="all"))
    assert corpus.problems == () and len(corpus.clips) == 535
    by_code = {"ang": "W", "bor": "L", "neu": "N", "hap": "F", "fea": "A", "sad": "T", "dis": "E"}
    assert {by_code[e]: n for e, n in Counter(c.emotion for c in corpus.clips).items()} == PUBLISHED
    assert Counter(c.gender for c in corpus.clips) == {"M": 233, "F": 302}
    assert all(c.gender == ("M" if c.speaker[3:] in MALE else "F") for c in corpus.clips)
    assert len(read_clips("emodb", root).kept) == 339  # the shared four: W + F + N + T

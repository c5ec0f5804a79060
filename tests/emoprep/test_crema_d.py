"""CREMA-D: the recipe (the real metadata's published counts, label policies, classes, folds, bad input)
and its synthetic twin (names, CSV quoting, codecs, a learnable signal, determinism).

The real CSVs live outside the repository (../shared/crema-d-metadata, or $EMOAV_SHARED/crema-d-metadata);
those tests skip, saying so, where that folder is absent.
"""

from __future__ import annotations

import os
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
from emoprep.corpus.crema_d import parse_name, perceived_code
from emoprep.synth.crema_d import CremaParams, generate_crema_d
from tests.emoprep.media_check import decoded_audio, first_stream, haar_faces, middle_frame, streams

REPO = Path(__file__).resolve().parents[2]
REAL_METADATA = Path(os.environ.get("EMOAV_SHARED", REPO.parent / "shared")) / "crema-d-metadata"

# ../shared/corpora-format.md: the published counts.
PUBLISHED_MULTIMODAL_VOTES = {"N": 1972, "H": 1219, "D": 1139, "F": 1084, "A": 1019, "S": 589,
                              "N:S": 71, "F:N": 62, "A:D": 60}


@pytest.fixture(scope="module")
def real_root() -> Path:
    if not (REAL_METADATA / "SentenceFilenames.csv").is_file():
        pytest.skip(f"CREMA-D's real metadata is not here ({REAL_METADATA}); set EMOAV_SHARED to the shared folder")
    return REAL_METADATA


# --- the real metadata -----------------------------------------------------------------------------

def test_real_metadata_gives_the_published_counts(real_root):
    corpus = read_clips("crema-d", real_root)
    assert len(corpus.clips) == 7442
    assert Counter(c.gender for c in corpus.clips) == {"M": 3930, "F": 3512}
    assert len({c.speaker for c in corpus.clips}) == 91
    assert Counter(c.corpus_label for c in corpus.clips) == {
        "ANG": 1271, "DIS": 1271, "FEA": 1271, "HAP": 1271, "SAD": 1271, "NEU": 1087}
    assert len(corpus.kept) == 4900
    assert corpus.classes == ("ang", "hap", "neu", "sad")
    # Metadata only: one line per absent media folder, not one per clip.
    assert [Path(p.path).name for p in corpus.problems] == ["AudioWAV", "VideoFlash"]


def test_real_metadata_perceived_votes_match_the_published_counts(real_root):
    corpus = read_clips("crema-d", real_root, RecipeOptions(label_policy="perceived", classes="all"))
    votes = Counter(c.extra["vote"] for c in corpus.clips)
    assert {vote: votes[vote] for vote in PUBLISHED_MULTIMODAL_VOTES} == PUBLISHED_MULTIMODAL_VOTES
    assert sum(votes.values()) == 7442
    tied = sum(count for vote, count in votes.items() if ":" in vote)
    assert sum(c.extra["tie_broken"] for c in corpus.clips) == tied
    assert all(c.emotion is not None for c in corpus.clips)  # six classes: every vote settles on one
    # A clear vote is the label; a tie settles on one of its letters.
    for clip in corpus.clips:
        assert clip.corpus_label[0] in clip.extra["vote"].split(":")
        assert clip.emotion == clip.corpus_label.lower()
    assert corpus.label_policy["name"] == "perceived" and corpus.label_policy["seed"] == 0


def test_real_metadata_folds_are_by_actor_and_balanced_by_gender(real_root):
    corpus = read_clips("crema-d", real_root)
    gender = {c.speaker: c.gender for c in corpus.clips}
    assert [s.name for s in corpus.splits] == [f"actor-{k}" for k in range(1, 6)]
    tests = [s.test for s in corpus.splits]
    assert frozenset().union(*tests) == set(gender) and sum(map(len, tests)) == 91
    for index, split in enumerate(corpus.splits):
        assert split.val == corpus.splits[(index + 1) % 5].test
        assert split.train | split.val | split.test == set(gender)
        assert not (split.train & split.val or split.train & split.test or split.val & split.test)
        males = sum(gender[a] == "M" for a in split.test)
        assert 9 <= males <= 10 and 8 <= len(split.test) - males <= 9
        assert 18 <= len(split.test) <= 19


# --- parsing and policies ------------------------------------------------------------------------

def test_parse_name_fields_and_errors():
    name = parse_name("1001_DFA_ANG_XX")
    assert (name.actor, name.sentence, name.emotion, name.level) == ("1001", "DFA", "ANG", "XX")
    for bad, reason in (("1001_DFA_ANG", "expected <ActorID>"), ("1001_ABC_ANG_XX", "sentence code ABC"),
                        ("1001_DFA_SUR_XX", "emotion code SUR"), ("1001_IEO_HAP_ZZ", "level ZZ")):
        with pytest.raises(ValueError, match=reason):
            parse_name(bad)


def test_perceived_ties_are_seeded_per_clip():
    assert perceived_code("H", 0, "x") == ("HAP", False)
    draws = {perceived_code("N:S", seed, "1001_IEO_NEU_XX") for seed in range(20)}
    assert {code for code, _ in draws} == {"NEU", "SAD"} and all(tie for _, tie in draws)
    assert perceived_code("N:S", 3, "1001_IEO_NEU_XX") == perceived_code("N:S", 3, "1001_IEO_NEU_XX")
    for bad in ("", "X", "N:N", "N;S"):
        with pytest.raises(ValueError, match="MultiModalVote"):
            perceived_code(bad, 0, "x")


# --- a small hand-written checkout -----------------------------------------------------------------

NAMES = ["1001_DFA_ANG_XX", "1001_DFA_DIS_XX", "1001_IEO_HAP_HI", "1002_DFA_NEU_XX", "1002_DFA_SAD_XX",
         "1003_TIE_FEA_XX", "1003_TIE_ANG_XX"]


def write_checkout(root: Path, names: list[str], demographics: str, votes: dict[str, str],
                   media: bool = True) -> Path:
    """A CREMA-D checkout with the real files' quoting; empty media files (the recipe never opens them)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "VideoDemographics.csv").write_text('"ActorID","Age","Sex","Race","Ethnicity"\n' + demographics)
    rows = "".join(f'{i},"{name}"\n' for i, name in enumerate(names, start=1))
    (root / "SentenceFilenames.csv").write_text('"Stimulus_Number","Filename"\n' + rows)
    (root / "processedResults").mkdir(exist_ok=True)
    header = '"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel","MultiModalVote","MultiModalLevel"\n'
    body = "".join(f'"{i}","{name}","N","50","N","50","{vote}","60"\n'
                   for i, (name, vote) in enumerate(votes.items(), start=1))
    (root / "processedResults" / "summaryTable.csv").write_text(header + body)
    if media:
        for folder, suffix in (("AudioWAV", ".wav"), ("VideoFlash", ".flv")):
            (root / folder).mkdir(exist_ok=True)
            for name in names:
                (root / folder / f"{name}{suffix}").write_bytes(b"")
    return root


DEMOGRAPHICS = ('1001,51,"Male","Caucasian","Not Hispanic"\n1002,21,"Female","Caucasian","Not Hispanic"\n'
                '1003,30,"Female","Asian","Not Hispanic"\n')
VOTES = {name: name.split("_")[2][0] for name in NAMES}


def test_records_policies_and_class_sets(tmp_path):
    root = write_checkout(tmp_path / "CREMA-D", NAMES, DEMOGRAPHICS, {**VOTES, "1001_DFA_ANG_XX": "A:N",
                                                                      "1002_DFA_SAD_XX": "H"})
    corpus = read_clips("crema-d", tmp_path)  # the folder holding CREMA-D/ works too
    assert corpus.problems == ()
    clip = {c.clip_id: c for c in corpus.clips}
    first = clip["1001_DFA_ANG_XX"]
    assert (first.speaker, first.gender, first.emotion, first.corpus_label, first.group) == (
        "1001", "M", "ang", "ANG", "all")
    assert first.audio_path == str(root / "AudioWAV" / "1001_DFA_ANG_XX.wav") and first.audio_window is None
    assert first.video_path == str(root / "VideoFlash" / "1001_DFA_ANG_XX.flv")
    assert (first.start, first.end, first.region, first.crop) == (0.0, None, "full", "face")
    assert clip["1001_IEO_HAP_HI"].extra == {"sentence": "IEO", "level": "HI", "intended": "HAP"}
    assert clip["1001_DFA_DIS_XX"].emotion is None and clip["1001_DFA_DIS_XX"].corpus_label == "DIS"
    assert [c.clip_id for c in corpus.clips] == sorted(NAMES)

    full = read_clips("crema-d", root, RecipeOptions(classes="all"))
    assert full.classes == ("ang", "dis", "fea", "hap", "neu", "sad") and len(full.kept) == len(NAMES)

    perceived = {c.clip_id: c for c in read_clips("crema-d", root, RecipeOptions(label_policy="perceived")).clips}
    assert perceived["1002_DFA_SAD_XX"].emotion == "hap"  # the crowd's vote, not the intended sad
    assert perceived["1002_DFA_SAD_XX"].extra["vote"] == "H"
    tied = perceived["1001_DFA_ANG_XX"]
    assert tied.extra["tie_broken"] and tied.emotion in {"ang", "neu"}
    seeds = {read_clips("crema-d", root, RecipeOptions(label_policy="perceived", seed=s)).clips[0].emotion
             for s in range(12)}
    assert seeds == {"ang", "neu"}  # the seed decides ties, and both sides happen


def test_a_flat_copy_of_the_csvs_is_read(tmp_path):
    write_checkout(tmp_path, NAMES, DEMOGRAPHICS, VOTES, media=False)
    (tmp_path / "processedResults" / "summaryTable.csv").rename(tmp_path / "summaryTable.csv")
    corpus = read_clips("crema-d", tmp_path, RecipeOptions(label_policy="perceived"))
    assert len(corpus.clips) == len(NAMES) and len(corpus.problems) == 2  # the two absent media folders


def test_tiny_corpus_folds_cover_every_actor(tmp_path):
    corpus = read_clips("crema-d", write_checkout(tmp_path, NAMES, DEMOGRAPHICS, VOTES))
    assert [sorted(s.test) for s in corpus.splits] == [["1001"], ["1002"], ["1003"]]
    assert [sorted(s.val) for s in corpus.splits] == [["1002"], ["1003"], ["1001"]]


def test_bad_input_becomes_problems_and_the_rest_goes_on(tmp_path):
    names = [*NAMES, "1004_DFA_ANG_XX", "1001_DFA_SUR_XX", "garbage", "1002_DFA_NEU_XX"]
    root = write_checkout(tmp_path, names, DEMOGRAPHICS + '1005,40,"Unknown","Asian","Not Hispanic"\n',
                          {**VOTES, "1004_DFA_ANG_XX": "Q"})
    (root / "AudioWAV" / "1002_DFA_SAD_XX.wav").unlink()
    (root / "VideoFlash" / "9999_DFA_ANG_XX.flv").write_bytes(b"")
    (root / "VideoFlash" / "1001_DFA_SUR_XX.flv").unlink()  # unparsed: not listed, so not counted as listed
    (root / "AudioWAV" / "1001_DFA_SUR_XX.wav").unlink()
    (root / "AudioWAV" / "garbage.wav").unlink()
    (root / "VideoFlash" / "garbage.flv").unlink()
    corpus = read_clips("crema-d", root, RecipeOptions(label_policy="perceived"))
    problems = [str(p) for p in corpus.problems]
    expected = [
        r'VideoDemographics\.csv:5: -: actor 1005: Sex .Unknown. is neither Male nor Female',
        r"SentenceFilenames\.csv:10: 1001_DFA_SUR_XX: unknown emotion code SUR.*clip left out",
        r"SentenceFilenames\.csv:11: garbage: not a clip name",
        r"SentenceFilenames\.csv:12: 1002_DFA_NEU_XX: listed again \(first at line 5\): ignored",
        r"summaryTable\.csv:9: 1004_DFA_ANG_XX: MultiModalVote 'Q'.*no perceived label",
        r"SentenceFilenames\.csv:9: -: actor 1004 is not in VideoDemographics\.csv",
        r"AudioWAV/1002_DFA_SAD_XX\.wav: 1002_DFA_SAD_XX: listed in the metadata but missing",
        r"VideoFlash/9999_DFA_ANG_XX\.flv: 9999_DFA_ANG_XX: not listed in SentenceFilenames\.csv: ignored",
    ]
    assert len(problems) == len(expected), problems
    for pattern, problem in zip(expected, problems):
        assert re.search(pattern, problem), (pattern, problem)
    clip = {c.clip_id: c for c in corpus.clips}
    assert len(clip) == len(NAMES) + 1  # the unknown actor's clip stays, without gender or perceived label
    assert clip["1004_DFA_ANG_XX"].gender is None and clip["1004_DFA_ANG_XX"].emotion is None
    assert clip["1002_DFA_SAD_XX"].emotion == "sad"  # listed without its wav: still a record; extract fails it


def test_unusable_roots_and_options_are_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such folder"):
        read_clips("crema-d", tmp_path / "absent")
    with pytest.raises(CorpusError, match="no SentenceFilenames.csv"):
        read_clips("crema-d", tmp_path)
    root = write_checkout(tmp_path, NAMES, DEMOGRAPHICS, VOTES)
    (root / "processedResults" / "summaryTable.csv").unlink()
    assert len(read_clips("crema-d", root).clips) == len(NAMES)  # intended needs no votes
    with pytest.raises(CorpusError, match="summaryTable.csv: missing"):
        read_clips("crema-d", root, RecipeOptions(label_policy="perceived"))
    with pytest.raises(ValueError, match="no label policy 'paper'"):
        read_clips("crema-d", root, RecipeOptions(label_policy="paper"))
    with pytest.raises(ValueError, match="no setting song"):
        read_clips("crema-d", root, RecipeOptions(settings={"song": "1"}))
    (root / "VideoDemographics.csv").write_text('"ActorID","Age"\n1001,51\n')
    with pytest.raises(CorpusError, match="no column Sex"):
        read_clips("crema-d", root)


# --- the synthetic twin (emoprep synth --corpus crema-d) ---------------------------------------------

TWIN = CremaParams(actors=4, sentences=1, seed=0)  # 24 clips: DFA x 6 emotions x 4 actors, 2 M and 2 F
DEMOGRAPHICS_ROW = re.compile(r'^\d{4},\d+,"(Male|Female)","[A-Za-z ]+","[A-Za-z ]+"$')
SENTENCE_ROW = re.compile(r'^\d+,"\d{4}_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}"$')
# Levels may be space-padded (" 29:100"): two rows of the real table are.
SUMMARY_ROW = re.compile(r'^"\d+","\d{4}_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}"(,"[ADFHNS](:[ADFHNS])*"," *[\d.]+(: *[\d.]+)*"){3}$')


def levels_match_votes(row: str) -> bool:
    """A tied vote ("A:F") has one level per letter ("30.67:51.00"), in the real table and the twin's."""
    fields = row.strip('"').split('","')
    return [vote.count(":") for vote in fields[2::2]] == [level.count(":") for level in fields[3::2]]


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crema-d-twin")
    generate_crema_d(out, TWIN)
    return out / "CREMA-D"


def test_twin_csvs_have_the_real_quoting(twin, real_root_or_none):
    demographics = (twin / "VideoDemographics.csv").read_text()
    sentences = (twin / "SentenceFilenames.csv").read_text()
    summary = (twin / "processedResults" / "summaryTable.csv").read_text()
    assert demographics.splitlines()[0] == '"ActorID","Age","Sex","Race","Ethnicity"'
    assert all(DEMOGRAPHICS_ROW.match(line) for line in demographics.splitlines()[1:]), demographics
    assert sentences.splitlines()[0] == '"Stimulus_Number","Filename"' and not sentences.endswith("\n")
    assert [SENTENCE_ROW.match(line) is not None for line in sentences.splitlines()[1:]] == [True] * 24
    assert summary.splitlines()[0] == ('"","FileName","VoiceVote","VoiceLevel","FaceVote","FaceLevel",'
                                       '"MultiModalVote","MultiModalLevel"')
    assert all(SUMMARY_ROW.match(line) for line in summary.splitlines()[1:]), summary
    assert all(levels_match_votes(row) for row in summary.splitlines()[1:])
    if real_root_or_none is not None:  # and the real files agree with these patterns
        for name, pattern in (("VideoDemographics.csv", DEMOGRAPHICS_ROW), ("SentenceFilenames.csv", SENTENCE_ROW),
                              ("summaryTable.csv", SUMMARY_ROW)):
            lines = (real_root_or_none / name).read_text().splitlines()[1:]
            assert all(pattern.match(line) for line in lines), name
        assert all(levels_match_votes(row) for row in (real_root_or_none / "summaryTable.csv").read_text().splitlines()[1:])


@pytest.fixture(scope="module")
def real_root_or_none() -> Path | None:
    return REAL_METADATA if (REAL_METADATA / "SentenceFilenames.csv").is_file() else None


def test_twin_reads_without_problems_with_ties_and_both_genders(twin):
    corpus = read_clips("crema-d", twin)
    assert corpus.problems == ()
    assert len(corpus.clips) == 24 and Counter(c.gender for c in corpus.clips) == {"M": 12, "F": 12}
    assert Counter(c.corpus_label for c in corpus.clips) == {code: 4 for code in ("ANG", "DIS", "FEA", "HAP",
                                                                                 "NEU", "SAD")}
    perceived = read_clips("crema-d", twin, RecipeOptions(label_policy="perceived"))
    assert perceived.problems == ()
    assert sum(c.extra["tie_broken"] for c in perceived.clips) >= 2
    agree = sum(c.corpus_label == c.extra["intended"] for c in perceived.clips)
    assert 16 <= agree < 24  # the crowd mostly sees the intended emotion, not always
    assert len(corpus.splits) == 4 and all(len(s.test) == 1 for s in corpus.splits)


def envelope(samples: np.ndarray, windows: int) -> np.ndarray:
    """RMS over 10 ms windows (160 samples at 16 kHz)."""
    return np.sqrt((samples[:windows * 160].reshape(windows, 160) ** 2).mean(1))


def test_twin_media_codecs_sizes_and_rates(twin):
    silent = []
    for wav in sorted((twin / "AudioWAV").glob("*.wav")):
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        flv = twin / "VideoFlash" / f"{wav.stem}.flv"
        assert flv.read_bytes()[:4] == b"FLV\x01"
        assert first_stream(flv) == "Data", flv.name  # as in the real files: an onXMPData tag, then audio, video
        found = streams(flv)
        assert re.match(r"flv1 .*\b480x360\b.*\b29\.97 fps", found["Video"]), found
        if "Audio" not in found:
            silent.append(wav.stem)
            continue
        assert re.match(r"mp3\b.*\b44100 Hz, mono", found["Audio"]), found
        # The flv's sound is the wav's (through MP3, which starts ~25 ms late): same loudness contour.
        wav_audio, _ = sf.read(wav, dtype="float64")
        flv_audio = decoded_audio(flv, 16000)
        assert 0 <= len(flv_audio) - len(wav_audio) < 0.08 * 16000
        wav_envelope, flv_envelope = (envelope(x, len(wav_audio) // 160) for x in (wav_audio, flv_audio))
        best = max(np.corrcoef(wav_envelope[:-8], flv_envelope[lag:len(wav_envelope) - 8 + lag])[0, 1]
                   for lag in range(8))
        assert best > 0.9, (wav.stem, best)
    assert len(silent) == 2  # every 17th clip's flv has no audio, as some real ones had until 2020


def test_twin_face_fills_a_realistic_share_of_the_full_frame(twin):
    for flv in sorted((twin / "VideoFlash").glob("100[12]_*.flv"))[::3]:
        frame = middle_frame(flv)
        assert frame.shape == (360, 480, 3)
        faces = haar_faces(frame)
        assert len(faces) == 1, (flv.name, faces)
        x, y, w, h = faces[0]
        assert 0.2 < h / 360 < 0.5 and 120 < x + w / 2 < 360  # a medium close-up, roughly centred


def test_twin_signal_is_learnable_from_face_colour_and_voice_loudness(twin):
    """Nearest centroid on two crude features (face tint, voice RMS) over 6 classes, leave one actor out."""
    rows = []
    for flv in sorted((twin / "VideoFlash").glob("*.flv")):
        frame = middle_frame(flv).astype(float)
        centre = frame[120:240, 180:300].reshape(-1, 3)
        chroma = centre.mean(0) - centre.mean()
        wav, _ = sf.read(twin / "AudioWAV" / f"{flv.stem}.wav", dtype="float64")
        rows.append((flv.stem[:4], flv.stem.split("_")[2], [*chroma, 40 * np.log10(np.sqrt((wav ** 2).mean()))]))
    correct = 0
    for actor in {a for a, _, _ in rows}:
        train = [(e, np.array(f)) for a, e, f in rows if a != actor]
        centroids = {e: np.mean([f for e2, f in train if e2 == e], axis=0) for e, _ in train}
        for a, emotion, features in rows:
            if a == actor:
                guess = min(centroids, key=lambda e: np.linalg.norm(centroids[e] - np.array(features)))
                correct += guess == emotion
    assert correct / len(rows) >= 0.8  # chance is 1/6; 1.0 measured


def test_twin_is_deterministic_resumable_and_the_cli_writes_it(tmp_path):
    tiny = ["--corpus", "crema-d", "--actors", "1", "--sentences", "1", "--seed", "5"]
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "a"), *tiny])
    assert result.exit_code == 0, result.output
    assert re.search(r"clips\s+6 \(0 already complete\)", result.output)
    second = generate_crema_d(tmp_path / "b", CremaParams(actors=1, sentences=1, seed=5), workers=1)

    def contents(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first = contents(tmp_path / "a")
    assert first == contents(tmp_path / "b") and len(first) == 1 + 3 + 6 * 2  # stamp, CSVs, wav + flv per clip
    flv = second.root / "VideoFlash" / "1001_DFA_SAD_XX.flv"
    flv.unlink()
    assert generate_crema_d(tmp_path / "b", CremaParams(actors=1, sentences=1, seed=5)).written == 1
    assert contents(tmp_path / "b") == first
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "b"), "--corpus", "crema-d", "--seed", "6"])
    assert result.exit_code != 0 and "other parameters" in result.output
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "c"), "--corpus", "crema-d", "--sessions", "2"])
    assert result.exit_code != 0 and "--sessions is for --corpus iemocap, not crema-d" in result.output

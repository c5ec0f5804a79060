"""emoprep synth: the synthetic corpus, checked with independent readers.

Files are read with soundfile, OpenCV and the ffmpeg binary, and the text with
regular expressions written here, not with emoprep's own reader (whose
agreement is tested separately at the end).
"""

from __future__ import annotations

import io
import re
import subprocess
from collections import Counter
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from emoprep.cli import main
from emoprep.synth import (
    LEFT_BACKGROUND,
    RIGHT_BACKGROUND,
    SynthError,
    SynthParams,
    generate_corpus,
    plan_corpus,
)
from emoprep.synth.face import face_rgb
from emoprep.synth.plan import dialog_names
from emoprep.synth.voice import render_voice
from tests.conftest import SYNTH_FIXTURE

KEPT = ("ang", "hap", "neu", "sad")
WORDS = {"neutral": "neu", "neutral state": "neu", "happiness": "hap", "excited": "exc", "sadness": "sad",
         "anger": "ang", "frustration": "fru", "surprise": "sur", "fear": "fea", "disgust": "dis", "other": "oth"}
HEADER = re.compile(r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(\S+)\t([a-z]{3})\t\[\d\.\d{4}, \d\.\d{4}, \d\.\d{4}\]$")
CATEGORICAL = re.compile(r"^C-([EFM]\d):\t((?:[A-Za-z: ]+; )*[A-Za-z: ]+;)\t\(([^)]*)\)$")
DIMENSIONAL = re.compile(r"^A-([EFM]\d):\tval [1-5]; act [1-5]; dom  [1-5];\t\(\)$")
TRANSCRIPT = re.compile(r"^(\S+) \[(\d{3}\.\d{4})-(\d{3}\.\d{4})\]: (.+)$")
TINY = {"sessions": 1, "dialogs_per_session": 2, "utterances_per_dialog": 4}


# --- independent readers -------------------------------------------------------------------------

def corpus_root(out: Path) -> Path:
    return out / "IEMOCAP_full_release"


def dialogs_in(out: Path) -> dict[str, Path]:
    """Dialog name -> its session folder, from the EmoEvaluation files on disk."""
    return {p.stem: p.parents[2] for p in corpus_root(out).glob("Session*/dialog/EmoEvaluation/*.txt")}


def read_blocks(path: Path) -> list[dict]:
    """An EmoEvaluation file -> one dict per block; asserts the layout on the way."""
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("\n\n")
    assert head.startswith("%") and "\n" not in head
    blocks = []
    for chunk in rest.strip("\n").split("\n\n"):
        lines = chunk.split("\n")
        match = HEADER.match(lines[0])
        assert match, lines[0]
        external, own = [], []
        for line in lines[1:]:
            if line.startswith("A-"):
                assert DIMENSIONAL.match(line), line
                continue
            categorical = CATEGORICAL.match(line)
            assert categorical, line
            codes = {WORDS.get(w.strip().split(":")[0].lower(), "oth") for w in categorical[2].split(";") if w.strip()}
            (external if categorical[1].startswith("E") else own).append(codes)
        blocks.append({"start": float(match[1]), "end": float(match[2]), "id": match[3], "label": match[4],
                       "external": external, "self": own, "lines": lines})
    return blocks


def votes(evaluations: list[set[str]]) -> Counter:
    return Counter(code for codes in evaluations for code in codes)


def majority(evaluations: list[set[str]]) -> str:
    """The one category chosen by more than half of the evaluators, else xxx."""
    (category, top), *rest = votes(evaluations).most_common()
    return category if top * 2 > len(evaluations) and not (rest and rest[0][1] == top) else "xxx"


def speaker_channel(utterance_id: str) -> int:
    """0 (left) when the speaker letter equals the session letter, else 1: written out here on purpose."""
    return 0 if utterance_id.split("_")[0][-1] == utterance_id.rsplit("_", 1)[1][0] else 1


def all_blocks(out: Path) -> list[dict]:
    return [b for name, session in sorted(dialogs_in(out).items())
            for b in read_blocks(session / "dialog" / "EmoEvaluation" / f"{name}.txt")]


def ffmpeg_audio(avi: Path) -> tuple[np.ndarray, int]:
    """The AVI's audio track, decoded by the ffmpeg binary into a WAV read by soundfile."""
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(avi), "-vn", "-f", "wav", "pipe:1"],
        capture_output=True, check=True)
    samples, rate = sf.read(io.BytesIO(result.stdout), dtype="int16", always_2d=True)
    return samples, rate


def frame_at(avi: Path, seconds: float) -> np.ndarray:
    capture = cv2.VideoCapture(str(avi))
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(seconds * 30000 / 1001))
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


def haar() -> cv2.CascadeClassifier:
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def faces_in(detector: cv2.CascadeClassifier, bgr: np.ndarray) -> np.ndarray:
    return detector.detectMultiScale(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))


def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray) -> float:
    """Train on even rows, test on odd ones, standardised features."""
    train = np.arange(len(labels)) % 2 == 0
    mean, std = features[train].mean(0), features[train].std(0) + 1e-9
    z = (features - mean) / std
    classes = sorted(set(labels[train]))
    centroids = np.stack([z[train][labels[train] == c].mean(0) for c in classes])
    predicted = np.array(classes)[np.argmin(((z[~train][:, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    return float((predicted == labels[~train]).mean())


# --- the plan (no media) -------------------------------------------------------------------------

def test_dialog_names_pair_letters_kinds_and_irregular_names():
    names = [name for session in range(1, 6) for name, _ in dialog_names(session, 4)]
    assert len(set(names)) == len(names) == 20
    for session in range(1, 6):
        letters = {name[5] for name in names if name.startswith(f"Ses0{session}")}
        assert letters == {"F", "M"}
    assert any("_impro" in n for n in names) and any("_script" in n for n in names)
    assert any(re.search(r"_impro\d\da$", n) for n in names)
    assert any(re.search(r"_script\d\d_\db$", n) for n in names)
    fixture = [name for session in (1, 2) for name, _ in dialog_names(session, 2)]
    assert fixture == ["Ses01F_impro01", "Ses01M_impro01", "Ses02F_script01_1", "Ses02M_script01_1b"]


def test_default_plan_size_and_timing():
    dialogs = plan_corpus(SynthParams())
    utterances = [u for d in dialogs for u in d.utterances]
    assert len(utterances) == 260
    assert 190 <= sum(u.released_label in KEPT for u in utterances) <= 230
    for dialog in dialogs:
        ids = [u.utterance_id for u in dialog.utterances]
        for gender in "FM":
            numbers = [int(i[-3:]) for i in ids if i.rsplit("_", 1)[1][0] == gender]
            assert numbers == list(range(len(numbers))) and numbers, (dialog.name, gender)
        ends = [u.end_sample for u in dialog.utterances]
        starts = [u.start_sample for u in dialog.utterances]
        assert all(e <= s for e, s in zip(ends, starts[1:])) and ends[-1] <= dialog.n_samples
        durations = [u.end - u.start for u in dialog.utterances]
        assert max(durations) > 6.0 and max(durations) <= 8.0 and min(durations) < 1.0
    mean = np.mean([u.end - u.start for u in utterances])
    assert 2.0 <= mean <= 3.0


def test_default_plan_has_every_annotation_feature():
    utterances = [u for d in plan_corpus(SynthParams()) for u in d.utterances]
    words = [w for u in utterances for j in u.external for w in j.words]
    assert "Neutral state" in words and any(w.startswith("Other:") for w in words)
    assert any(len(j.words) > 1 for u in utterances for j in u.external)
    assert {len(u.external) for u in utterances} == {3, 4}
    assert {"fru", "exc", "sur", "xxx"} <= {u.released_label for u in utterances}
    ties = [u for u in utterances if u.released_label == "xxx"]
    tie_shapes = {tuple(sorted(votes([_codes(j.words) for j in u.external]).values())) for u in ties}
    assert (1, 1, 1) in tie_shapes and (2, 2) in tie_shapes
    # Self-evaluations that disagree, and enough of them that counting them changes results.
    disagree = [u for u in utterances for j in u.self_evaluations if u.emotion not in _codes(j.words)]
    assert len(disagree) > 30
    flipped = [u for u in utterances
               if majority([_codes(j.words) for j in u.external + u.self_evaluations])
               != majority([_codes(j.words) for j in u.external])]
    assert len(flipped) > 15


def _codes(words: tuple[str, ...]) -> set[str]:
    return {WORDS.get(w.split(":")[0].lower(), "oth") for w in words}


def test_released_label_is_the_external_majority_and_emotion_agrees():
    for u in (u for d in plan_corpus(SynthParams(seed=5)) for u in d.utterances):
        external = [_codes(j.words) for j in u.external]
        assert u.released_label == majority(external), u.utterance_id
        if u.released_label == "xxx":
            top = max(votes(external).values())
            assert votes(external)[u.emotion] == top  # a tied category
        else:
            assert u.emotion == u.released_label


def test_every_dialog_is_drawn_afresh():
    # Names that share their first 8 characters (Ses02M_impro01a, Ses02M_impro02) once shared a
    # seed, so the same utterances turned up in train and test under different names.
    dialogs = plan_corpus(SynthParams(sessions=2, dialogs_per_session=4, utterances_per_dialog=6))
    assert len({d.name[:8] for d in dialogs}) < len(dialogs)
    faces = [u.face for d in dialogs for u in d.utterances]
    voices = [u.voice.seed for d in dialogs for u in d.utterances]
    assert len(set(faces)) == len(faces) and len(set(voices)) == len(voices)


def test_params_are_checked():
    for bad in ({"sessions": 0}, {"sessions": 6}, {"dialogs_per_session": 0}, {"utterances_per_dialog": 3}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SynthParams(**bad)


def test_voice_carries_emotion_and_gender():
    """Simple features of the rendered voices: level, pitch, pitch slope, syllable rate."""

    def pitch(x: np.ndarray) -> float:
        x = x - x.mean()
        autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)
        low, high = 16000 // 450, 16000 // 70
        return 16000 / (low + np.argmax(autocorrelation[low:high]))

    def features(x: np.ndarray) -> list[float]:
        envelope = np.abs(x[: len(x) // 160 * 160]).reshape(-1, 160).mean(1)  # 100 Hz
        spectrum = np.abs(np.fft.rfft((envelope - envelope.mean()) * np.hanning(len(envelope)), 1024))
        frequencies = np.fft.rfftfreq(1024, 0.01)
        band = (frequencies > 1.2) & (frequencies < 9)
        first, second = pitch(x[: len(x) // 2]), pitch(x[len(x) // 2:])
        return [np.log(np.percentile(envelope, 95)), np.log(first * second) / 2, np.log(second / first),
                frequencies[band][np.argmax(spectrum[band])]]

    utterances = [u for d in plan_corpus(SynthParams(sessions=2, seed=1)) for u in d.utterances if u.emotion in KEPT]
    x = np.array([features(render_voice(u.voice, u.end_sample - u.start_sample)) for u in utterances])
    emotions = np.array([u.emotion for u in utterances])
    genders = np.array([u.gender for u in utterances])
    assert nearest_centroid_accuracy(x, emotions) >= 0.85
    assert nearest_centroid_accuracy(x[:, 1:2], genders) >= 0.95
    for emotion in KEPT:  # varied within a class, not a constant per class
        assert x[emotions == emotion].std(0).min() > 0.005


def test_face_carries_emotion_and_gender_through_96px_jpeg():
    utterances = [u for d in plan_corpus(SynthParams(sessions=2, seed=2)) for u in d.utterances if u.emotion in KEPT]

    def features(rgb: np.ndarray) -> list[float]:
        small = cv2.resize(rgb[30:190, 20:160], (96, 96), interpolation=cv2.INTER_AREA)
        ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
        pixels = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED).reshape(-1, 3).astype(float)
        return [*(pixels.mean(0) / pixels.mean()), pixels.mean()]

    x = np.array([features(face_rgb(u.face, u.gender)) for u in utterances])
    emotions = np.array([u.emotion for u in utterances])
    assert nearest_centroid_accuracy(x[:, :3], emotions) >= 0.95
    assert nearest_centroid_accuracy(x[:, 3:], np.array([u.gender for u in utterances])) >= 0.95
    assert x[emotions == "hap", 0].std() > 0.005


# --- the written corpus (the shared fixture) -----------------------------------------------------

def test_layout_every_file_of_every_dialog(synth_corpus, synth_plan):
    root = corpus_root(synth_corpus)
    assert "SYNTHETIC" in (root / "Documentation" / "README.txt").read_text()
    assert sorted(dialogs_in(synth_corpus)) == sorted(d.name for d in synth_plan)
    expected = set()
    for dialog in synth_plan:
        session = f"Session{dialog.session}"
        expected |= {f"{session}/dialog/avi/DivX/{dialog.name}.avi", f"{session}/dialog/wav/{dialog.name}.wav",
                     f"{session}/dialog/EmoEvaluation/{dialog.name}.txt",
                     f"{session}/dialog/transcriptions/{dialog.name}.txt"}
        expected |= {f"{session}/sentences/wav/{dialog.name}/{u.utterance_id}.wav" for u in dialog.utterances}
    found = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {"Documentation/README.txt"}
    assert found == expected  # nothing missing, and no temporary leftovers


def test_annotation_text_and_majorities(synth_corpus):
    blocks = all_blocks(synth_corpus)
    assert len(blocks) == SYNTH_FIXTURE["sessions"] * SYNTH_FIXTURE["dialogs_per_session"] * 7
    for block in blocks:
        assert block["label"] == majority(block["external"]), block["id"]
        assert len(block["external"]) in (3, 4)
        assert block["end"] > block["start"]
    labels = Counter(b["label"] for b in blocks)
    assert labels["xxx"] >= 1 and set(labels) - set(KEPT) - {"xxx"}
    durations = [b["end"] - b["start"] for b in blocks]
    assert max(durations) > 6 and min(durations) < 1
    assert any(r"_script01_1b" in b["id"] for b in blocks)


def test_transcriptions_list_every_utterance_and_unlabelled_ids(synth_corpus):
    for name, session in dialogs_in(synth_corpus).items():
        blocks = {b["id"]: b for b in read_blocks(session / "dialog" / "EmoEvaluation" / f"{name}.txt")}
        lines = (session / "dialog" / "transcriptions" / f"{name}.txt").read_text().splitlines()
        matches = [TRANSCRIPT.match(line) for line in lines]
        assert all(matches), lines
        ids = {m[1]: (float(m[2]), float(m[3])) for m in matches}
        assert {i for i in ids if "XX" not in i} == set(blocks)
        assert any(re.search(r"_[FM]XX\d$", i) for i in ids)
        for uid, block in blocks.items():
            assert ids[uid] == (block["start"], block["end"])


def test_wavs_are_16k_pcm16_and_sentences_are_the_speakers_samples(synth_corpus):
    for name, session in dialogs_in(synth_corpus).items():
        dialog_wav = session / "dialog" / "wav" / f"{name}.wav"
        info = sf.info(dialog_wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 2, "PCM_16")
        dialog_audio, _ = sf.read(dialog_wav, dtype="int16")
        for block in read_blocks(session / "dialog" / "EmoEvaluation" / f"{name}.txt"):
            path = session / "sentences" / "wav" / name / f"{block['id']}.wav"
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            start, end = round(block["start"] * 16000), round(block["end"] * 16000)
            sentence, _ = sf.read(path, dtype="int16")
            channel = speaker_channel(block["id"])
            np.testing.assert_array_equal(sentence, dialog_audio[start:end, channel])
            listener = dialog_audio[start:end, 1 - channel].astype(float)
            assert np.sqrt(np.mean(sentence.astype(float) ** 2)) > 5 * np.sqrt(np.mean(listener ** 2))


def test_avi_is_divx_720x480_at_29_97_with_the_dialog_audio(synth_corpus):
    for name, session in dialogs_in(synth_corpus).items():
        avi = session / "dialog" / "avi" / "DivX" / f"{name}.avi"
        assert b"DIVX" in avi.read_bytes()[:512]  # the fourcc in the AVI stream header
        capture = cv2.VideoCapture(str(avi))
        width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        fps, frames = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().upper()
        capture.release()
        assert (width, height) == (720, 480) and abs(fps - 29.97) < 0.01
        assert fourcc in {"DIVX", "FMP4", "MP4V", "XVID", "DX50"}
        wav_audio, _ = sf.read(session / "dialog" / "wav" / f"{name}.wav", dtype="int16")
        assert abs(frames - len(wav_audio) / 16000 * 30000 / 1001) <= 2
        audio, rate = ffmpeg_audio(avi)
        assert rate == 16000 and audio.shape[1] == 2
        np.testing.assert_array_equal(audio, wav_audio)


def test_speaker_face_is_found_on_the_speaker_side(synth_corpus):
    detector = haar()
    backgrounds = {0: np.array(LEFT_BACKGROUND[::-1]), 1: np.array(RIGHT_BACKGROUND[::-1])}  # BGR
    checked = 0
    for name, session in dialogs_in(synth_corpus).items():
        avi = session / "dialog" / "avi" / "DivX" / f"{name}.avi"
        for block in read_blocks(session / "dialog" / "EmoEvaluation" / f"{name}.txt")[:3]:
            frame = frame_at(avi, (block["start"] + block["end"]) / 2)
            side = speaker_channel(block["id"])
            half = frame[:, side * 360:(side + 1) * 360]
            found = faces_in(detector, half)
            assert len(found) == 1, (block["id"], found)
            x, y, w, h = found[0]
            margin = half[max(y - 30, 0):y + h + 30, max(x - 40, 0):x + w + 40]
            corner = margin[:8, :8].reshape(-1, 3).mean(0)
            distances = {s: np.abs(corner - colour).sum() for s, colour in backgrounds.items()}
            assert min(distances, key=distances.get) == side and distances[side] < 20
            checked += 1
    assert checked == 12


def test_haar_finds_both_faces_on_most_frames(synth_corpus):
    avi = next(corpus_root(synth_corpus).glob("Session1/dialog/avi/DivX/Ses01M_*.avi"))
    detector = haar()
    capture = cv2.VideoCapture(str(avi))
    hits, tried, index = Counter(), 0, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 15 == 0:
            tried += 1
            for side in (0, 1):
                hits[side] += len(faces_in(detector, frame[:, side * 360:(side + 1) * 360])) == 1
        index += 1
    capture.release()
    assert tried > 30 and min(hits.values()) >= 0.9 * tried


def test_the_project_reader_agrees(synth_corpus, synth_plan):
    from emoprep.corpus.iemocap import read_corpus
    from emoprep.corpus.iemocap import LabelPolicy, assign_labels

    corpus = read_corpus(synth_corpus)
    assert corpus.problems == ()
    planned = {u.utterance_id: u for d in synth_plan for u in d.utterances}
    assert [u.utterance_id for u in corpus.utterances] == sorted(planned)
    for labelled in assign_labels(corpus, LabelPolicy(name="paper")):
        intended = planned[labelled.utterance.utterance_id]
        assert labelled.utterance.released_label == intended.released_label
        assert labelled.utterance.speaker_side == intended.side
        assert labelled.tie_broken == (intended.released_label == "xxx")
        if not labelled.tie_broken:
            expected = intended.emotion if intended.emotion in KEPT else None
            assert labelled.emotion == expected, intended.utterance_id


# --- runs: CLI, determinism, resuming, refusing --------------------------------------------------

def test_cli_then_same_seed_is_byte_identical_and_other_seed_differs(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "a"), "--sessions", "1",
                                       "--dialogs-per-session", "2", "--utterances-per-dialog", "4", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert re.search(r"dialogs\s+2 ", result.output) and re.search(r"utterances\s+8 ", result.output)
    assert "wall time" in result.output
    generate_corpus(tmp_path / "b", **TINY, seed=7, workers=1)
    generate_corpus(tmp_path / "c", **TINY, seed=8)

    def contents(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(corpus_root(out).rglob("*")) if p.is_file()}

    a, b, c = contents(tmp_path / "a"), contents(tmp_path / "b"), contents(tmp_path / "c")
    assert a == b  # AVIs included: bit-exact single-threaded encoding
    shared = set(a) & set(c)
    text_and_wav = [k for k in shared if k.endswith((".wav", ".txt")) and "Documentation" not in k]
    assert text_and_wav and all(a[k] != c[k] for k in text_and_wav)


def test_rerun_resumes_an_interrupted_corpus_and_refuses_a_different_one(tmp_path):
    first = generate_corpus(tmp_path, **TINY, seed=3)
    root = corpus_root(tmp_path)
    avi = next(root.glob("Session1/dialog/avi/DivX/Ses01M_*.avi"))
    sentence = next(root.glob("Session1/sentences/wav/Ses01M_*/*.wav"))
    avi_bytes, sentence_bytes = avi.read_bytes(), sentence.read_bytes()
    avi.unlink()  # as if killed while encoding that dialog
    avi.with_name(f".{avi.name}.99999.tmp").write_bytes(b"half an AVI")
    sentence.write_bytes(b"partial")
    again = generate_corpus(tmp_path, **TINY, seed=3)
    assert (first.written, again.written) == (2, 1)
    assert avi.read_bytes() == avi_bytes and sentence.read_bytes() == sentence_bytes
    assert not list(root.rglob(".*.tmp"))
    with pytest.raises(SynthError, match="other parameters"):
        generate_corpus(tmp_path, **TINY, seed=4)
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path), "--sessions", "1", "--seed", "4"])
    assert result.exit_code != 0 and "other parameters" in result.output


def test_refuses_to_write_into_a_corpus_it_did_not_make(tmp_path):
    (tmp_path / "IEMOCAP_full_release" / "Session1").mkdir(parents=True)
    with pytest.raises(SynthError, match="not written by emoprep synth"):
        generate_corpus(tmp_path, **TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["IEMOCAP_full_release"]


def test_an_encoder_failure_names_the_dialog_and_leaves_it_to_redo(tmp_path, monkeypatch):
    import emoprep.synth.output as output

    monkeypatch.setattr(output, "ffmpeg_exe", lambda: "false")  # exits 1 at once, reading nothing
    with pytest.raises(SynthError, match=r"Ses01F_impro01: ffmpeg could not encode Ses01F_impro01\.avi"):
        generate_corpus(tmp_path, **TINY, workers=1)
    root = corpus_root(tmp_path)
    assert not list(root.rglob("*.avi")) and not list(root.rglob(".*.tmp"))
    monkeypatch.undo()
    assert generate_corpus(tmp_path, **TINY).written == 2

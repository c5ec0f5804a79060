"""Audio-only samples end to end, through the CLIs: real RAVDESS speech, the EmoDB twin, a folder of sound files.

(a) The two real RAVDESS actors of ../shared/real-speech/ravdess: labels -> extract -> shard ->
    verify -> inspect, no frame anywhere, every extracted FLAC against a reference resampling of
    its wav (tests/emoprep/media_check: soundfile + scipy's polyphase filter, computed here).
(b) The EmoDB twin (10 speakers, one text, 22.05 kHz as circulating copies are): a one-epoch
    audio-only fit on loso-1, evaluate, the UM-dynamic-A experiment on loso-1 and loso-2 (loso-1
    is the fit's run, reused), and `fit --modality av` refused in one line.
(c) What `make predict` chains, on real wavs, a real ogg and a text file named .wav, with (b)'s run.

Small on purpose: it checks what the stages hand each other, not what the model learns.
The parts that read ../shared (or $EMOAV_SHARED) skip, saying why, where it is absent.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from emoprep.cli import main as emoprep
from emoprep.failed_inputs import SOME_FAILED, main as failed_inputs
from emotrain.cli import main as emotrain
from tests.emoprep.media_check import agreement, resampled_16k

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOAV_SHARED", REPO.parent / "shared"))
RAVDESS = SHARED / "real-speech" / "ravdess"
OGG = SHARED / "real-media" / "librosa_198-209-0000.hq.ogg"  # 13.9 s, 16 kHz: three windows
TRAIN = ["--model", "small", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--lr", "3e-3",
         "--device", "cpu"]
EMOTIONS = ("ang", "hap", "neu", "sad")


def invoke(cli, *args: object, status: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == status, f"{args[0]} exited {result.exit_code}, not {status}:\n{result.output}"
    return result


def real_ravdess() -> Path:
    if not (RAVDESS / "Actor_01").is_dir():
        pytest.skip(f"the real RAVDESS speech is not here ({RAVDESS}); set EMOAV_SHARED to the shared folder")
    return RAVDESS


def test_real_ravdess_speech_becomes_audio_only_shards_true_to_the_wavs(tmp_path: Path):
    root = real_ravdess()
    invoke(emoprep, "labels", "--corpus", "ravdess", "--root", root, "--out", tmp_path / "labels.parquet")
    work, shards = tmp_path / "work", tmp_path / "shards"
    extracted = invoke(emoprep, "extract", "--corpus", "ravdess", "--root", root, "--out", work, "--workers", "1")
    # Two actors, the shared four classes: neutral 4 + happy, sad, angry 8 each, per actor.
    assert "56 utterances: 56 ok, 0 failed" in extracted.output
    rows = pq.read_table(work / "manifest.parquet").to_pylist()
    assert len(rows) == 56 and {row["status"] for row in rows} == {"ok"}
    assert all(row["video_file"] is None and row["frames_path"] is None and row["n_frames"] == 0 for row in rows)
    assert not (work / "frames").exists() and not list(work.rglob("*.npy"))

    for row in rows:
        extracted_audio, rate = sf.read(work / row["audio_path"], dtype="float64")
        reference = resampled_16k(Path(row["audio_file"]))
        check = agreement(extracted_audio, reference)
        assert rate == 16_000 and len(extracted_audio) == row["n_samples"]
        assert check.correlation > 0.999 and check.max_abs <= 4 / 32768, (row["utterance_id"], check)
        assert abs(check.length_difference) <= 16_000 // 25, (row["utterance_id"], check)  # within one frame

    invoke(emoprep, "shard", "--work", work, "--out", shards)
    members = [name for tar in sorted(shards.glob("*.tar")) for name in tarfile.open(tar).getnames()]
    assert len(members) == 2 * 56 and {Path(name).suffix for name in members} == {".json", ".flac"}
    report = invoke(emoprep, "verify", shards).output.splitlines()
    assert report[-1] == "OK" and "2 shards, 56 samples" in "\n".join(report)
    sheet = tmp_path / "sheet.png"
    assert "(6 ang, 6 hap, 6 neu, 6 sad)" in invoke(emoprep, "inspect", shards, "--out", sheet).output
    assert sheet.stat().st_size > 0


@pytest.fixture(scope="module")
def emodb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The EmoDB twin's shards: 10 speakers x 1 text x the shared four = 40 audio-only samples, loso-1..10."""
    base = tmp_path_factory.mktemp("emodb")
    invoke(emoprep, "synth", "--corpus", "emodb", "--out", base, "--texts", "1", "--sample-rate", "22050")
    root, work, shards = base / "EmoDB", base / "work", base / "shards"
    invoke(emoprep, "labels", "--corpus", "emodb", "--root", root, "--out", base / "labels.parquet")
    assert "40 utterances: 40 ok" in invoke(emoprep, "extract", "--corpus", "emodb", "--root", root,
                                             "--out", work, "--workers", "1").output
    invoke(emoprep, "shard", "--work", work, "--out", shards)
    return shards


@pytest.fixture(scope="module")
def experiment(emodb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An experiment folder whose loso-1 UM-dynamic-A run was trained by `emotrain fit` itself."""
    out = tmp_path_factory.mktemp("runs") / "experiment"
    invoke(emotrain, "fit", "--shards", emodb, "--split", "loso-1", "--modality", "a",
           "--out", out / "loso-1" / "UM-dynamic-A" / "seed-0", *TRAIN)
    return out


def test_the_emodb_twin_trains_evaluates_and_runs_an_audio_experiment(emodb: Path, experiment: Path):
    run = experiment / "loso-1" / "UM-dynamic-A" / "seed-0"
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["modality"] == "a" and config["train"]["emotions"] == list(EMOTIONS)
    invoke(emotrain, "evaluate", "--run", run, "--split", "loso-1", "--part", "test", "--workers", "0",
           "--out", run / "test.json")
    scores = json.loads((run / "test.json").read_text())
    # loso-1 tests speaker 03: one clip of each shared class.
    assert (scores["samples"], scores["skipped"], scores["emotions"]) == (4, 0, list(EMOTIONS))
    assert sum(map(sum, scores["confusion"])) == 4

    result = invoke(emotrain, "experiment", "--shards", emodb, "--out", experiment, "--split", "loso",
                    "--folds", "1,2", "--configs", "UM-dynamic-A", *TRAIN)
    assert "loso-1 UM-dynamic-A seed 0: reused" in result.output  # the fit above: same options, same run
    assert "loso-2 UM-dynamic-A seed 0: trained" in result.output
    table = json.loads((experiment / "table.json").read_text())
    assert "UM-dynamic-A" in json.dumps(table) and (experiment / "table.md").is_file()


def test_an_audio_visual_fit_on_audio_only_shards_is_refused_in_one_line(emodb: Path, tmp_path: Path):
    result = invoke(emotrain, "fit", "--shards", emodb, "--split", "loso-1", "--modality", "av",
                    "--out", tmp_path / "av", *TRAIN, status=1)
    [line] = result.output.strip().splitlines()
    assert "holds audio only" in line and "use --modality a" in line, line
    assert not (tmp_path / "av" / "last.pt").exists()


def test_a_folder_of_sound_files_is_predicted_with_the_audio_only_run(experiment: Path, tmp_path: Path):
    """`make predict`'s chain: every window a row, the text file named .wav a failed row with its reason."""
    root = real_ravdess()
    if not OGG.is_file():
        pytest.skip(f"the real ogg file is not here ({OGG}); set EMOAV_SHARED to the shared folder")
    folder = tmp_path / "sounds"
    folder.mkdir()
    wavs = sorted((root / "Actor_01").glob("03-01-0[1-5]-01-01-01-01.wav"))  # one take each of five emotions
    for wav in wavs:
        shutil.copy(wav, folder / wav.name)
    shutil.copy(OGG, folder / "talk.ogg")
    (folder / "notes.wav").write_text("a text file named .wav\n")

    labels = invoke(emoprep, "labels", "--corpus", "clips", "--root", folder, "--out", tmp_path / "labels.parquet")
    assert "notes.wav: -: unreadable audio" in labels.output
    work, shards, failed = tmp_path / "work", tmp_path / "shards", tmp_path / "failed-inputs.csv"
    invoke(emoprep, "extract", "--corpus", "clips", "--root", folder, "--out", work, "--workers", "1",
           "--max-failures", "100%")
    assert failed_inputs([str(work), str(failed)]) == SOME_FAILED
    invoke(emoprep, "shard", "--work", work, "--out", shards)
    out = tmp_path / "predictions.csv"
    run = experiment / "loso-1" / "UM-dynamic-A" / "seed-0"
    invoke(emotrain, "predict", "--run", run, "--shards", shards, "--out", out, "--device", "cpu",
           "--failed-inputs", failed, status=SOME_FAILED)

    with out.open(newline="") as file:
        windows = list(csv.DictReader(file))
    ok = [row for row in windows if row["status"] == "ok"]
    # Five whole wavs (2.9-5.3 s) and the ogg's 0-6, 6-12 and 12-13.9 s.
    assert sorted((row["source"], float(row["start"])) for row in ok) == sorted(
        [(wav.name, 0.0) for wav in wavs] + [("talk.ogg", 0.0), ("talk.ogg", 6.0), ("talk.ogg", 12.0)])
    for row in ok:
        assert row["modalities"] == "audio"
        assert sum(float(row[f"p_{e}"]) for e in EMOTIONS) == pytest.approx(1, abs=1e-6)
    assert [row["source"] for row in windows if row["status"] == "failed"] == ["notes.wav"]

    with out.with_name("predictions-videos.csv").open(newline="") as file:
        files = {row["source"]: row for row in csv.DictReader(file)}
    assert set(files) == {wav.name for wav in wavs} | {"talk.ogg", "notes.wav"}
    assert files["talk.ogg"]["windows"] == "3" and files["talk.ogg"]["emotion"] in EMOTIONS
    bad = files["notes.wav"]
    assert (bad["windows"], bad["emotion"]) == ("0", "")
    assert bad["reason"].startswith("unreadable audio: ") and "notes.wav" in bad["reason"], bad

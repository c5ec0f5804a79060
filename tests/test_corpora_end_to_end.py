"""CREMA-D's and RAVDESS's synthetic twins through the CLIs: synth -> extract -> shard -> verify -> fit -> evaluate,
and a run of one corpus scored on the other's shards (cross-corpus, the four shared classes).

Tiny on purpose (3 actors, 4 kept clips each, 1 epoch): it checks what the stages hand each
other (folds, counts, the class list in splits.json, index.json and the run's config.json, the
evaluation's sample counts), not what the model learns; test_end_to_end.py checks learning.

The folds are written out by hand from corpus/folds.py's rules, not recomputed: 3 actors give
3 folds of one actor each; men (odd ids) fill the first folds, women the last.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emoprep.cli import main as emoprep
from emotrain.cli import main as emotrain

SHARED = ["ang", "hap", "neu", "sad"]
CREMA_ALL = ["ang", "dis", "fea", "hap", "neu", "sad"]
TRAIN = ["--model", "small", "--epochs", "1", "--batch-size", "4", "--workers", "0", "--lr", "3e-3"]
EXTRACT = ["--face-detector", "haar", "--workers", "1"]

# split -> part -> the one actor in it (train = the actor in neither val nor test)
CREMA_FOLDS = {
    "actor-1": {"test": "1001", "val": "1003", "train": "1002"},
    "actor-2": {"test": "1003", "val": "1002", "train": "1001"},
    "actor-3": {"test": "1002", "val": "1001", "train": "1003"},
}
RAVDESS_FOLDS = {
    "actor-1": {"test": "actor01", "val": "actor03", "train": "actor02"},
    "actor-2": {"test": "actor03", "val": "actor02", "train": "actor01"},
    "actor-3": {"test": "actor02", "val": "actor01", "train": "actor03"},
    # EmoBox's fold 5 tests actor 02; its validation actor is the first man of the next folds' lists (01).
    # The other folds' test actors (01, 03) leave no training actor among three: not made.
    "emobox-5": {"test": "actor02", "val": "actor01", "train": "actor03"},
}
GENDER = {"1001": "M", "1002": "F", "1003": "M", "actor01": "M", "actor02": "F", "actor03": "M"}

def invoke(cli, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, f"{' '.join(args[:1])} failed:\n{result.output}"
    return result.output


def extract_and_shard(corpus: str, root: Path, work: Path, out: Path, classes: str) -> Path:
    invoke(emoprep, "extract", "--corpus", corpus, "--root", str(root), "--out", str(work), "--classes", classes,
           *EXTRACT)
    invoke(emoprep, "shard", "--work", str(work), "--out", str(out))
    report = invoke(emoprep, "verify", str(out)).splitlines()
    assert report[-1] == "OK" and "PROBLEM" not in "\n".join(report), report
    return out


@pytest.fixture(scope="module")
def crema_d(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One sentence (DFA) by 3 actors: 6 clips each, 4 of them in the shared classes."""
    root = tmp_path_factory.mktemp("crema_d")
    invoke(emoprep, "synth", "--corpus", "crema-d", "--out", str(root), "--actors", "3", "--sentences", "1")
    work = root / "work"
    # One WORK for both class sets: a clip's waveform and crops do not depend on its label, so the
    # second extract finds every shared clip done and only rewrites the manifest.
    every = extract_and_shard("crema-d", root, work, root / "shards-all", "all")
    shared = extract_and_shard("crema-d", root, work, root / "shards", "shared")
    return {"shared": shared, "all": every}


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One statement, repetition and intensity by 3 actors: 8 trials each, 4 in the shared classes (calm not)."""
    root = tmp_path_factory.mktemp("ravdess")
    invoke(emoprep, "synth", "--corpus", "ravdess", "--out", str(root), "--actors", "3", "--statements", "1",
           "--repetitions", "1", "--intensities", "1")
    return extract_and_shard("ravdess", root, root / "work", root / "shards", "shared")


@pytest.fixture(scope="module")
def crema_run(crema_d: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "crema-d"
    invoke(emotrain, "fit", "--shards", str(crema_d["shared"]), "--split", "actor-1", "--out", str(run), *TRAIN)
    return run


def check_shard_set(shards: Path, classes: list[str], folds: dict, group: str, per_actor: int) -> None:
    """splits.json and index.json: the class list, every fold's actors, sample and class x gender counts."""
    splits = json.loads((shards / "splits.json").read_text())
    index = json.loads((shards / "index.json").read_text())
    assert splits["format_version"] == index["format_version"] == 2
    assert splits["classes"] == index["classes"] == {"emotion": classes, "gender": ["F", "M"]}
    assert splits["omitted"] == {}
    assert sorted(splits["splits"]) == sorted(folds)
    assert sorted(entry["file"] for entry in index["shards"]) == sorted(
        f"{actor}-{group}-0000.tar" for actor in GENDER if actor in folds["actor-1"].values())
    assert all(entry["samples"] == per_actor for entry in index["shards"])
    for name, parts in folds.items():
        for part, actor in parts.items():
            entry = splits["splits"][name][part]
            assert entry["shards"] == [f"{actor}-{group}-0000.tar"], (name, part)
            assert entry["samples"] == per_actor
            other = "F" if GENDER[actor] == "M" else "M"
            assert sorted(entry["counts"]) == sorted(classes)
            # The twins act every class once per actor: one clip per class, all of the actor's gender.
            assert all(entry["counts"][c] == {GENDER[actor]: 1, other: 0} for c in classes), (name, part)


def test_crema_d_shards_hold_the_actor_folds_in_either_class_set(crema_d: dict[str, Path]):
    check_shard_set(crema_d["shared"], SHARED, CREMA_FOLDS, "all", per_actor=4)
    check_shard_set(crema_d["all"], CREMA_ALL, CREMA_FOLDS, "all", per_actor=6)


def evaluate(run: Path, shards: Path, out: Path, split: str = "actor-1", part: str = "test") -> dict:
    invoke(emotrain, "evaluate", "--run", str(run), "--shards", str(shards), "--split", split, "--part", part,
           "--workers", "0", "--out", str(out))
    return json.loads(out.read_text())


def check_run(run: Path, classes: list[str]) -> None:
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["emotions"] == config["model"]["emotions"] == classes
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 1]


def check_scores(metrics: dict, classes: list[str], samples: int) -> None:
    assert metrics["emotions"] == classes
    assert metrics["samples"] == samples and metrics["skipped"] == 0
    assert len(metrics["confusion"]) == len(classes)
    assert sum(map(sum, metrics["confusion"])) == samples
    assert 0.0 <= metrics["emotion_ua"] <= 1.0 and 0.0 <= metrics["gender_acc"] <= 1.0


def test_crema_d_fits_and_evaluates_on_its_own_test_actor(crema_run: Path, crema_d: dict[str, Path]):
    check_run(crema_run, SHARED)
    check_scores(evaluate(crema_run, crema_d["shared"], crema_run / "own.json"), SHARED, samples=4)


def test_crema_d_all_six_classes_travel_into_the_run(crema_d: dict[str, Path], tmp_path: Path):
    run = tmp_path / "crema-d-all"
    invoke(emotrain, "fit", "--shards", str(crema_d["all"]), "--split", "actor-2", "--out", str(run), *TRAIN)
    check_run(run, CREMA_ALL)
    check_scores(evaluate(run, crema_d["all"], run / "own.json", split="actor-2"), CREMA_ALL, samples=6)
    # Shards of another class set are refused, naming both lists.
    result = CliRunner().invoke(emotrain, ["evaluate", "--run", str(run), "--shards", str(crema_d["shared"]),
                                           "--split", "actor-2", "--workers", "0"])
    assert result.exit_code != 0
    assert "ang, hap, neu, sad" in result.output and "ang, dis, fea, hap, neu, sad" in result.output


def test_ravdess_shards_hold_the_actor_folds(ravdess: Path):
    check_shard_set(ravdess, SHARED, RAVDESS_FOLDS, "speech", per_actor=4)


def test_ravdess_fits_and_each_corpus_scores_the_other(ravdess: Path, crema_run: Path, crema_d: dict[str, Path],
                                                      tmp_path: Path):
    run = tmp_path / "ravdess"
    invoke(emotrain, "fit", "--shards", str(ravdess), "--split", "actor-1", "--out", str(run), *TRAIN)
    check_run(run, SHARED)
    check_scores(evaluate(run, ravdess, run / "own.json"), SHARED, samples=4)
    # Cross-corpus, both ways: RAVDESS's run on CREMA-D's test actor, and CREMA-D's run on every
    # part of a RAVDESS fold, so on all of that corpus (3 actors, 4 clips each).
    check_scores(evaluate(run, crema_d["shared"], run / "crema-d.json"), SHARED, samples=4)
    for part in ("train", "val", "test"):
        check_scores(evaluate(crema_run, ravdess, crema_run / f"ravdess-{part}.json", part=part), SHARED, samples=4)

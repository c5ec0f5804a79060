"""emotrain experiment: one split's six rows; a family of five folds with paired tests; spread then collect."""

import json

import pytest
from click.testing import CliRunner

from emotrain.cli import main
from emotrain.config import ConfigError
from emotrain.data import ShardsError
from emotrain.experiment import resolve_folds
from emotrain.experiment_plan import CONFIGURATIONS
from emotrain.experiment_report import table_markdown
from tests.emotrain.shard_factory import make_shards

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--model", "small", "--epochs", "1", "--workers", "0", "--batch-size", "4", "--lr", "1e-3"]


def run(shards, out, *extra):
    return CliRunner().invoke(main, ["experiment", "--shards", str(shards), "--out", str(out), *TINY, *extra])


def make_folds(root, folds=5, family="loso"):
    """Tiny shards of `folds` + 1 speakers and splits family-1 .. family-N: fold k tests speaker k."""
    speakers = [f"s{k}" for k in range(folds + 1)]
    made = make_shards(root, {speaker: [4] for speaker in speakers})
    splits = json.loads((root / "splits.json").read_text())
    counts = splits["splits"]["paper"]

    def part(names):
        return {"shards": [made.shards[n][0] for n in names], "samples": 4 * len(names),
                "counts": counts[names[0]]["counts"]}

    splits["splits"] = {}
    for k in range(1, folds + 1):
        test, val = speakers[k - 1], speakers[k]
        train = [s for s in speakers if s not in (test, val)]
        splits["splits"][f"{family}-{k}"] = {"description": f"fold {k}", "train": part(train), "val": part([val]),
                                             "test": part([test])}
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def test_one_split_writes_six_rows_and_figures_then_reuses_runs(tmp_path):
    shards = make_shards(tmp_path / "shards", {"train": [4, 4], "val": [3], "test": [3]}).root
    out = tmp_path / "exp"
    first = run(shards, out)
    assert first.exit_code == 0, first.output

    table = json.loads((out / "table.json").read_text())
    rows = table["rows"]
    assert [row["name"] for row in rows] == [c.name for c in CONFIGURATIONS]
    for row in rows:
        assert abs(row["w_emotion"] + row["w_gender"] - 1) < 1e-6, row["name"]
        for key in ("val_emotion_ua", "test_emotion_wa", "test_emotion_ua", "test_emotion_f1", "test_gender_acc"):
            assert 0.0 <= row[key] <= 1.0, (row["name"], key)
        assert row["val_nll_weighted_sum"] > 0 and row["val_unweighted_nll"] > 0 and row["test_unweighted_nll"] > 0
        assert row["seeds"] == [0] and row["runs"] == 1
    static = next(row for row in rows if row["name"] == "MM-static")
    assert (static["w_emotion"], static["w_gender"]) == (0.5, 0.5)
    for name, matrix in table["pooled_test_confusion"].items():
        assert sum(map(sum, matrix)) == 3, name  # the 3 test utterances, once each
    markdown = (out / "table.md").read_text()
    assert "split `paper`" in markdown and "±" not in markdown  # one run each: means only
    assert "nothing can be tested" in markdown  # one pair per comparison
    assert "Ranking by the paper's weighted NLL" in (out / "README.md").read_text()
    for figure in ("fig2.png", "folds.png", "weights.png", "confusion-MM-dynamic.png"):
        assert (out / figure).read_bytes()[:8] == PNG_MAGIC, figure
    assert (out / "MM-dynamic" / "seed-0" / "metrics.jsonl").is_file()  # an ordinary fit run folder

    checkpoints = {c.name: (out / c.name / "seed-0" / "last.pt").stat().st_mtime_ns for c in CONFIGURATIONS}
    second = run(shards, out)
    assert second.exit_code == 0, second.output
    assert second.output.count(": reused;") == len(CONFIGURATIONS)
    assert checkpoints == {c.name: (out / c.name / "seed-0" / "last.pt").stat().st_mtime_ns
                           for c in CONFIGURATIONS}
    assert json.loads((out / "table.json").read_text())["rows"] == rows


def test_a_family_of_five_folds_gives_a_cross_validated_table_with_paired_tests(tmp_path):
    shards = make_folds(tmp_path / "shards")
    out = tmp_path / "cv"
    result = run(shards, out, "--split", "loso", "--configs", "UM-dynamic-A", "--configs", "MM-static")
    assert result.exit_code == 0, result.output
    assert result.output.count(": trained;") == 10

    table = json.loads((out / "table.json").read_text())
    assert table["protocol"]["folds"] == [f"loso-{k}" for k in range(1, 6)]
    assert [(row["name"], row["runs"], len(row["folds"])) for row in table["rows"]] == [
        ("UM-dynamic-A", 5, 5), ("MM-static", 5, 5)]
    for row in table["rows"]:
        values = [r["test_emotion_ua"] for r in table["runs"] if r["configuration"] == row["name"]]
        assert row["test_emotion_ua"] == pytest.approx(sum(values) / 5)
    ua = next(c for c in table["comparisons"] if c["figure"] == "test_emotion_ua")
    assert (ua["a"], ua["b"], ua["n"], ua["folds"]) == ("UM-dynamic-A", "MM-static", 5, 5)
    differences = [b["test_emotion_ua"] - a["test_emotion_ua"]
                   for a in table["runs"] if a["configuration"] == "UM-dynamic-A"
                   for b in table["runs"] if b["configuration"] == "MM-static" and b["fold"] == a["fold"]]
    assert ua["mean_difference"] == pytest.approx(sum(differences) / 5)
    assert ua["ci_low"] <= ua["mean_difference"] <= ua["ci_high"]
    assert ua["p"] >= 0.0625 and ua["holds"] is False  # five pairs cannot reach p < 0.05
    assert "exact paired permutation (sign-flip) test" in ua["test"]
    for matrix in table["pooled_test_confusion"].values():
        assert sum(map(sum, matrix)) == 5 * 4  # every fold's 4 test utterances once

    markdown = (out / "table.md").read_text()
    assert "cross-validated" in markdown and "5 folds: loso-1, loso-2, loso-3, loso-4, loso-5" in markdown
    assert "## Paired comparisons: test emotion UA" in markdown
    assert "smallest attainable p is 0.0625" in markdown
    assert "- test emotion UA: no difference holds among the 1 comparison(s)" in markdown
    assert (out / "loso-3" / "MM-static" / "seed-0" / "best.pt").is_file()
    for figure in ("fig2.png", "folds.png", "weights.png", "confusion-MM-static.png"):
        assert (out / figure).read_bytes()[:8] == PNG_MAGIC, figure

    provenance = [json.loads(line) for line in (out / "provenance.jsonl").read_text().splitlines()]
    assert len(provenance) == 1
    assert "--split loso" in provenance[0]["command"] and "--configs UM-dynamic-A" in provenance[0]["command"]
    assert provenance[0]["environment"]["packages"]["torch"]
    assert provenance[0]["environment"]["device"]["configured"] == "auto"
    assert provenance[0]["command"] in (out / "README.md").read_text()


def test_runs_spread_over_processes_then_collected(tmp_path):
    shards = make_folds(tmp_path / "shards", folds=3, family="actor")
    out = tmp_path / "cv"
    only = ("--split", "actor", "--configs", "UM-dynamic-A")
    spread = run(shards, out, *only, "--folds", "1,actor-3", "--mode", "train")
    assert spread.exit_code == 0, spread.output
    assert spread.output.count(": trained;") == 2 and not (out / "table.md").exists()
    assert not (out / "actor-2").exists()

    partial = run(shards, out, *only, "--mode", "collect")
    assert partial.exit_code == 0, partial.output
    assert "missing: actor-2 UM-dynamic-A seed 0" in partial.output
    assert "**Incomplete**: 1 run(s)" in (out / "table.md").read_text()
    assert json.loads((out / "table.json").read_text())["rows"][0]["runs"] == 2

    run(shards, out, *only, "--folds", "2", "--mode", "train")
    last = (out / "actor-1" / "UM-dynamic-A" / "seed-0" / "last.pt").stat().st_mtime_ns
    complete = run(shards, out, *only, "--mode", "collect")
    assert complete.exit_code == 0, complete.output
    assert complete.output.count(": collected;") == 3 and "missing" not in complete.output
    assert (out / "actor-1" / "UM-dynamic-A" / "seed-0" / "last.pt").stat().st_mtime_ns == last
    assert "Incomplete" not in (out / "table.md").read_text()
    assert len((out / "provenance.jsonl").read_text().splitlines()) == 4

    other = run(shards, out, *only, "--mode", "collect", "--lr", "0.5")
    assert other.exit_code != 0 and "lr: saved 0.001, now 0.5" in other.output


def test_split_names_and_families_are_resolved_or_refused(tmp_path):
    shards = make_folds(tmp_path / "shards", folds=3, family="actor")
    assert resolve_folds(shards, "actor").splits == ("actor-1", "actor-2", "actor-3")
    assert resolve_folds(shards, "actor-2").family is None
    assert resolve_folds(shards, "actor", ("3", "actor-1")).splits == ("actor-1", "actor-3")
    with pytest.raises(ShardsError, match="no split 'loso'.*families: actor"):
        resolve_folds(shards, "loso")
    with pytest.raises(ConfigError, match="--folds 4: 'actor' has the folds actor-1, actor-2, actor-3"):
        resolve_folds(shards, "actor", ("4",))
    with pytest.raises(ConfigError, match="single split"):
        resolve_folds(shards, "actor-2", ("1",))
    refused = run(shards, tmp_path / "out", "--split", "actor", "--mode", "both")
    assert refused.exit_code != 0 and "Invalid value for '--mode'" in refused.output


def test_table_shows_the_spread_over_runs():
    row = {"name": "MM-dynamic", "modalities": "audio + video", "runs": 10}
    for column in ("w_emotion", "val_nll_weighted_sum", "val_unweighted_nll", "test_unweighted_nll",
                   "test_emotion_wa", "test_emotion_ua", "test_emotion_f1", "test_gender_acc", "best_epoch"):
        row[column], row[f"{column}_std"] = 0.25, 0.05
    document = {"protocol": {"split": "loso", "family": "loso", "folds": ["loso-1", "loso-2"],
                             "emotions": ["ang", "hap", "neu", "sad"], "model": "small",
                             "epochs": 3, "batch_size": 4, "lr": 1e-3, "lr_step": 10, "seeds": [0, 1],
                             "select": "unweighted_nll"},
                "rows": [row], "missing": [], "pooled_test_confusion": {},
                "comparisons": [{"figure": "test_emotion_ua", "higher_is_better": True, "a": "MM-static",
                                 "b": "MM-dynamic", "n": 10, "folds": 5, "mean_difference": -0.1, "ci_low": -0.15,
                                 "ci_high": -0.05, "p": 0.002, "p_holm": 0.002, "p_fold": 0.0625, "holds": True,
                                 "test": "exact paired permutation (sign-flip) test, two-sided", "smallest_p": 0.002}]}
    markdown = table_markdown(document)
    assert "| MM-static | MM-dynamic | 10 | -10.0 | -15.0 to -5.0 | 0.002 | 0.002 | 0.0625 | yes |" in markdown
    assert ("- test emotion UA: holds: MM-static over MM-dynamic by 10.0 points (B - A = MM-dynamic - MM-static: "
            "95 % CI -15.0 to -5.0, Holm p 0.002; but fold by fold p = 0.0625, not below 0.05 (with 5 folds it "
            "cannot be: the smallest attainable is 0.0625): the folds do not confirm it).") in markdown
    assert "- test macro-F1: not tested" in markdown
    assert "| MM-dynamic | audio + video | 10 | 0.250 ± 0.050 | 0.25 ± 0.05 | 0.25 ± 0.05 | 0.25 ± 0.05 " \
           "| 25.0 ± 5.0 | 25.0 ± 5.0 |" in markdown
    assert "seeds [0, 1]" in markdown

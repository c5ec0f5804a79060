"""emotrain experiment: the six rows, sane values, a valid figure, and reuse of finished runs."""

import json

from click.testing import CliRunner

from emotrain.cli import main
from emotrain.config import TrainConfig
from emotrain.experiment import COLUMNS, CONFIGURATIONS, table_markdown
from tests.emotrain.shard_factory import make_shards

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(shards, out):
    return CliRunner().invoke(main, [
        "experiment", "--shards", str(shards), "--out", str(out), "--model", "small", "--epochs", "1",
        "--workers", "0", "--batch-size", "4", "--lr", "1e-3"])


def test_experiment_writes_table_and_figure_then_reuses_runs(tmp_path):
    shards = make_shards(tmp_path / "shards", {"train": [4, 4], "val": [3], "test": [3]}).root
    out = tmp_path / "exp"
    first = run(shards, out)
    assert first.exit_code == 0, first.output

    table = json.loads((out / "table1.json").read_text())
    assert [row["name"] for row in table] == [c.name for c in CONFIGURATIONS]
    for row in table:
        assert abs(row["w_emotion"] + row["w_gender"] - 1) < 1e-6, row["name"]
        for key in ("val_emotion_ua", "test_emotion_wa", "test_emotion_ua", "test_emotion_f1", "test_gender_acc"):
            assert 0.0 <= row[key] <= 1.0, (row["name"], key)
        assert row["val_nll_weighted_sum"] > 0 and row["val_unweighted_nll"] > 0
        assert row["seeds"] == [0]
    static = next(row for row in table if row["name"] == "MM-static")
    assert (static["w_emotion"], static["w_gender"]) == (0.5, 0.5)
    assert "MM-dynamic" in (out / "table1.md").read_text()
    assert "±" not in (out / "table1.md").read_text()  # one seed: means only
    assert "Ranking by the paper's weighted NLL" in (out / "README.md").read_text()
    assert (out / "fig2.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "MM-dynamic" / "seed-0" / "metrics.jsonl").is_file()  # an ordinary fit run folder

    checkpoints = {c.name: (out / c.name / "seed-0" / "last.pt").stat().st_mtime_ns for c in CONFIGURATIONS}
    second = run(shards, out)
    assert second.exit_code == 0, second.output
    assert second.output.count(": reused;") == len(CONFIGURATIONS)
    assert checkpoints == {c.name: (out / c.name / "seed-0" / "last.pt").stat().st_mtime_ns
                           for c in CONFIGURATIONS}
    assert json.loads((out / "table1.json").read_text()) == table


def test_table_shows_the_spread_over_several_seeds():
    row = {"name": "MM-dynamic", "modalities": "audio + video", "seeds": [0, 1], "best_epoch": 4.5,
           **{c: 0.25 for c in COLUMNS}, **{f"{c}_std": 0.05 for c in COLUMNS}}
    markdown = table_markdown([row], TrainConfig(shards="s", split="paper", out="o", model="small", epochs=3))
    assert "(mean ± std)" in markdown
    assert "| 0.250 ± 0.050 | 0.250 ± 0.050 | 0.25 ± 0.05 | 0.25 ± 0.05 | 25.0 ± 5.0 |" in markdown

"""emoprep.inspection and `emoprep inspect`: the counts table and the contact sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from emoprep.cli import main
from emoprep.inspection import Candidate, candidates, counts_table, pick, select_shards
from emoprep.verify import load_splits
from tests.emoprep.work_factory import make_shards, make_work


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    work = make_work(tmp_path_factory.mktemp("work"))
    return make_shards(work, tmp_path_factory.mktemp("shards"))


def inspect(*args: str):
    return CliRunner().invoke(main, ["inspect", *args])


def test_counts_table_has_a_row_per_split_part_with_the_declared_numbers(shards):
    splits = load_splits(shards).splits
    lines = counts_table(shards).splitlines()
    assert lines[0].split() == ["split", "part", "shards", "samples", "ang", "F/M", "hap", "F/M", "neu", "F/M",
                                "sad", "F/M", "F", "M"]
    assert len(lines) == 1 + 3 * len(splits)
    for line in lines[1:]:
        split, part, n_shards, samples, *cells = line.split()
        content = splits[split][part]
        assert (int(n_shards), int(samples)) == (len(content.shards), content.samples)
        assert cells[:4] == [f"{content.counts[e]['F']}/{content.counts[e]['M']}" for e in ("ang", "hap", "neu", "sad")]
    only_paper = counts_table(shards, "paper").splitlines()
    assert [line.split()[:2] for line in only_paper[1:]] == [["paper", "train"], ["paper", "val"], ["paper", "test"]]


def test_pick_spreads_over_the_sorted_pool():
    found = [Candidate(f"Ses0{s}F_impro01_F{i:03d}", "x.tar", "ang", "F") for s in (1, 2, 3) for i in range(10)]
    chosen = pick(found, per_class=3, emotions=("ang", "hap", "neu", "sad"))
    assert [c.key for c in chosen["ang"]] == ["Ses01F_impro01_F000", "Ses02F_impro01_F004", "Ses03F_impro01_F009"]
    assert chosen["sad"] == []


def test_candidates_read_every_sample_of_the_selected_split(shards):
    paper = select_shards(shards, "paper")
    splits = load_splits(shards)
    assert len(candidates(shards, paper, splits.emotions)) == sum(splits.splits["paper"][p].samples
                                                                  for p in ("train", "val", "test"))


def test_command_prints_counts_and_writes_a_readable_sheet(shards, tmp_path):
    out = tmp_path / "sheet.png"
    result = inspect(str(shards), "--out", str(out), "--per-class", "3")
    assert result.exit_code == 0, result.output
    assert "paper   train" in result.output and "loso-3  test" in result.output
    assert f"contact sheet: {out} (3 ang, 3 hap, 3 neu, 3 sad)" in result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 600
        pixels = np.asarray(image.convert("RGB"), np.float32)
    assert pixels.std() > 20  # faces drawn, not a blank canvas
    assert not list(tmp_path.glob(".*.tmp"))


def test_split_option_restricts_the_sheet_and_unknown_splits_are_usage_errors(shards, tmp_path):
    result = inspect(str(shards), "--split", "loso-1", "--out", str(tmp_path / "l1.png"), "--per-class", "2")
    assert result.exit_code == 0, result.output
    assert "paper" not in result.output.split("contact sheet")[0]
    result = inspect(str(shards), "--split", "loso-9", "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 2
    assert "no split 'loso-9'; it has paper, loso-1, loso-2, loso-3" in result.output


def test_a_folder_that_is_not_a_shard_set_is_a_clear_error(tmp_path):
    result = inspect(str(tmp_path), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    assert "splits.json: missing" in result.output


def test_a_damaged_shard_is_named(shards, tmp_path):
    import shutil

    copy = Path(shutil.copytree(shards, tmp_path / "copy"))
    name = sorted(copy.glob("*.tar"))[0]
    name.write_bytes(b"\0" * 100)
    result = inspect(str(copy), "--out", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    assert name.name in result.output and "run emoprep verify" in result.output

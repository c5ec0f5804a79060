"""What a recipe declares (RecipeSpec) and how the command line passes and lists it: one check for every recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from emoprep.cli import main
from emoprep.corpus import RECIPES, recipe_spec
from emoprep.corpus.base import FLAG, Choice, RecipeOptions, RecipeSpec, Setting

SPEC = RecipeSpec(
    name="demo",
    summary="a recipe for this test",
    policies=(Choice("first", "the default"), Choice("second", "the other")),
    settings=(Setting("loud", "a flag", "0", FLAG), Setting("size", "one of three", "m", ("s", "m", "l")),
              Setting("list", "any text", "labels.csv")),
)


def test_check_fills_defaults_and_normalises_flags():
    options = SPEC.check(RecipeOptions(settings={"loud": "Yes"}, seed=3))
    assert options.label_policy == "first" and options.seed == 3
    assert dict(options.settings) == {"loud": "1", "size": "m", "list": "labels.csv"}
    assert SPEC.check(RecipeOptions(label_policy="second", settings={"loud": "false", "list": "x y.csv"})).settings \
        == {"loud": "0", "size": "m", "list": "x y.csv"}


@pytest.mark.parametrize(("options", "message"), [
    (RecipeOptions(label_policy="third"), "demo has no label policy 'third': choose one of first, second"),
    (RecipeOptions(classes="some"), "demo has no class set 'some'"),
    (RecipeOptions(settings={"quiet": "1"}), r"demo has no setting quiet \(its settings: loud, size, list\)"),
    (RecipeOptions(settings={"size": "xl"}), "setting size='xl': choose one of s, m, l"),
    (RecipeOptions(settings={"loud": "maybe"}), "setting loud='maybe': choose one of 0, 1"),
])
def test_check_rejects_what_is_not_declared(options, message):
    with pytest.raises(ValueError, match=message):
        SPEC.check(options)


def test_every_recipe_declares_its_options():
    for name in RECIPES:
        spec = recipe_spec(name)
        assert spec.name == name and spec.policies


def test_corpora_lists_each_recipes_settings():
    result = CliRunner().invoke(main, ["corpora", "iemocap", "ravdess"])
    assert result.exit_code == 0, result.output
    assert "iemocap:" in result.output and "merge_excited=0 | 1 (default 0)" in result.output
    assert "song=0 | 1 (default 0)" in result.output
    assert "copies=auto | audio-video | audio-only (default auto)" in result.output
    assert "crema-d" not in result.output
    clips = CliRunner().invoke(main, ["corpora", "clips"])
    assert "labels.csv: the emotion column" in clips.output
    assert "window=text (default 6)" in clips.output and "hop=text (default 6)" in clips.output


def test_cli_set_is_checked_against_the_recipe(tmp_path: Path):
    (tmp_path / "Actor_01").mkdir()
    (tmp_path / "Actor_01" / "01-01-05-01-01-01-01.mp4").write_bytes(b"")
    out = str(tmp_path / "labels.parquet")
    run = CliRunner().invoke
    bad = run(main, ["labels", "--corpus", "ravdess", "--root", str(tmp_path), "--out", out, "--set", "improvised_only=1"])
    assert bad.exit_code == 2 and "ravdess has no setting improvised_only" in bad.output
    assert "emoprep corpora" in bad.output
    malformed = run(main, ["labels", "--corpus", "ravdess", "--root", str(tmp_path), "--out", out, "--set", "song"])
    assert malformed.exit_code == 2 and "'song' is not NAME=VALUE" in malformed.output
    good = run(main, ["labels", "--corpus", "ravdess", "--root", str(tmp_path), "--out", out, "--set", "song=1"])
    assert good.exit_code == 0, good.output


def test_seed_help_says_what_it_seeds():
    text = " ".join(CliRunner().invoke(main, ["labels", "--help"]).output.split())
    assert "breaks ties between votes" in text and "random split is drawn by `emoprep shard --seed`" in text
    assert "--merge-excited" not in text and "--improvised-only" not in text  # IEMOCAP's: --set NAME=VALUE now

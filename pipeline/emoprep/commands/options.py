"""Options shared by several verbs, defined once: which corpus, and how its recipe labels it."""

from __future__ import annotations

from pathlib import Path

import click

from emoprep.corpus import RECIPES, read_clips
from emoprep.corpus.base import CLASS_SETS, CorpusClips, CorpusError, RecipeOptions


def corpus_options(command):
    """--corpus NAME --root PATH, or --iemocap PATH (short for --corpus iemocap --root PATH)."""
    command = click.option(
        "--iemocap", type=click.Path(exists=True, file_okay=False),
        help="Short for --corpus iemocap --root PATH: the IEMOCAP_full_release folder or one that contains it.",
    )(command)
    command = click.option("--root", type=click.Path(exists=True, file_okay=False),
                           help="The corpus folder (its layout: docs/corpora/<corpus>.md).")(command)
    command = click.option("--corpus", type=click.Choice(RECIPES), help="Which corpus recipe reads --root.")(command)
    return command


def label_options(command):
    """--label-policy, --classes, --seed, the IEMOCAP flags, and --setting KEY=VALUE for any recipe."""
    command = click.option("--setting", "settings", multiple=True, metavar="KEY=VALUE",
                           help="A recipe's own setting, repeatable (e.g. song=1 for RAVDESS, window=6 for clips; "
                                "docs/corpora/).")(command)
    command = click.option("--seed", type=int, default=0, show_default=True,
                           help="Seeds tie-breaking (per utterance id) and random splits.")(command)
    command = click.option("--improvised-only", is_flag=True,
                           help="IEMOCAP: keep improvised dialogs only (the seed paper's protocol).")(command)
    command = click.option("--merge-excited", is_flag=True,
                           help="IEMOCAP: map exc to hap before labelling.")(command)
    command = click.option("--classes", type=click.Choice(CLASS_SETS), default="shared", show_default=True,
                           help="shared: ang, hap, neu, sad (comparable across corpora); all: the corpus's own set.")(command)
    command = click.option("--label-policy",
                           help="The recipe's label policy (IEMOCAP: paper | released; CREMA-D: intended | "
                                "perceived); default: the recipe's.")(command)
    return command


def read_corpus_clips(corpus: str | None, root: str | None, iemocap: str | None, label_policy: str | None,
                      classes: str, seed: int, merge_excited: bool, improvised_only: bool,
                      settings: tuple[str, ...]) -> CorpusClips:
    """The options above -> the recipe's clips; click errors (exit 2) for a bad combination or root."""
    root_option = "--root" if iemocap is None else "--iemocap"
    if iemocap is not None:
        if corpus not in (None, "iemocap") or root is not None:
            raise click.UsageError("--iemocap PATH is short for --corpus iemocap --root PATH: give one form")
        corpus, root = "iemocap", iemocap
    if corpus is None or root is None:
        raise click.UsageError("say which corpus: --corpus NAME --root PATH (or --iemocap PATH)")
    values = dict(_setting(text) for text in settings)
    for flag, name in ((merge_excited, "merge_excited"), (improvised_only, "improvised_only")):
        if flag:
            values[name] = "1"
    options = RecipeOptions(label_policy=label_policy, classes=classes, seed=seed, settings=values)
    try:
        return read_clips(corpus, Path(root), options)
    except CorpusError as error:
        raise click.BadParameter(str(error), param_hint=root_option) from None
    except ValueError as error:  # a policy, class set or setting the recipe does not know
        raise click.UsageError(str(error)) from None


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--setting")
    return key.strip(), value.strip()

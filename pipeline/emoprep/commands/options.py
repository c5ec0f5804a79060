"""Options shared by several verbs, defined once: which corpus, and how its recipe labels it.

No corpus is named here: a recipe declares its label policies, class sets and settings
(`SPEC` in its module, emoprep.corpus.base.RecipeSpec) and `emoprep corpora` lists them.
"""

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
    command = click.option("--corpus", type=click.Choice(RECIPES),
                           help="Which corpus recipe reads --root (`emoprep corpora` lists each one's options).",
                           )(command)
    return command


def label_options(command):
    """--label-policy, --classes, --seed and --set NAME=VALUE: what every recipe is asked, checked by its SPEC."""
    command = click.option("--set", "--setting", "settings", multiple=True, metavar="NAME=VALUE",
                           help="One of the recipe's own settings, repeatable (e.g. --set improvised_only=1); "
                                "`emoprep corpora` lists them.")(command)
    command = click.option("--seed", type=int, default=0, show_default=True,
                           help="Seeds the draw that breaks ties between votes (per utterance id). "
                                "A random split is drawn by `emoprep shard --seed`.")(command)
    command = click.option("--classes", type=click.Choice(CLASS_SETS), default="shared", show_default=True,
                           help="shared: ang, hap, neu, sad (comparable across corpora); all: the corpus's own set.")(command)
    command = click.option("--label-policy",
                           help="One of the recipe's label policies (`emoprep corpora` lists them); "
                                "default: the recipe's first.")(command)
    return command


def read_corpus_clips(corpus: str | None, root: str | None, iemocap: str | None, label_policy: str | None,
                      classes: str, seed: int, settings: tuple[str, ...]) -> CorpusClips:
    """The options above -> the recipe's clips; click errors (exit 2) for a bad combination or root."""
    root_option = "--root" if iemocap is None else "--iemocap"
    if iemocap is not None:
        if corpus not in (None, "iemocap") or root is not None:
            raise click.UsageError("--iemocap PATH is short for --corpus iemocap --root PATH: give one form")
        corpus, root = "iemocap", iemocap
    if corpus is None or root is None:
        raise click.UsageError("say which corpus: --corpus NAME --root PATH (or --iemocap PATH)")
    options = RecipeOptions(label_policy=label_policy, classes=classes, seed=seed,
                            settings=dict(_setting(text) for text in settings))
    try:
        return read_clips(corpus, Path(root), options)
    except CorpusError as error:
        raise click.BadParameter(str(error), param_hint=root_option) from None
    except ValueError as error:  # a policy, class set or setting the recipe does not declare
        raise click.UsageError(f"{error} (`emoprep corpora` lists each recipe's options)") from None


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="--set")
    return name.strip(), value.strip()

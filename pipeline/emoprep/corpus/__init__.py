"""Corpus recipes: each turns one corpus's files into typed clip records (see base.py).

A recipe is imported only when it is asked for, so `emoprep --help` stays quick and a
recipe's optional needs never weigh on the others.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from emoprep.corpus.base import CorpusClips, RecipeOptions, RecipeSpec

RECIPES = ("iemocap", "crema-d", "ravdess", "emodb", "audio-folder", "clips")


def _recipe(corpus: str) -> ModuleType:
    if corpus not in RECIPES:
        raise ValueError(f"unknown corpus {corpus!r}: choose one of {', '.join(RECIPES)}")
    return importlib.import_module(f"emoprep.corpus.{corpus.replace('-', '_')}")


def read_clips(corpus: str, root: str | Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """The clips of `corpus` under `root`: its recipe module's `read_clips`. Raises CorpusError on a bad root."""
    return _recipe(corpus).read_clips(Path(root), options)


def recipe_spec(corpus: str) -> RecipeSpec:
    """The options `corpus` declares (its module's SPEC)."""
    return _recipe(corpus).SPEC

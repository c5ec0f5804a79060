"""Corpus recipes: each turns one corpus's files into typed clip records (see base.py).

A recipe is imported only when it is asked for, so `emoprep --help` stays quick and a
recipe's optional needs never weigh on the others.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from emoprep.corpus.base import CorpusClips, RecipeOptions

RECIPES = ("iemocap", "crema-d", "ravdess", "clips")


def read_clips(corpus: str, root: str | Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """The clips of `corpus` under `root`: its recipe module's `read_clips`. Raises CorpusError on a bad root."""
    if corpus not in RECIPES:
        raise ValueError(f"unknown corpus {corpus!r}: choose one of {', '.join(RECIPES)}")
    module = importlib.import_module(f"emoprep.corpus.{corpus.replace('-', '_')}")
    return module.read_clips(Path(root), options)

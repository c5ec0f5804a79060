"""Speaker-independent folds by actor, balanced by gender: the split every acted corpus here uses.

CREMA-D and RAVDESS have no official split; the literature uses k folds of
actors with both genders in each. The folds are dealt from the actors sorted
by id, not drawn at random, so a fold's actors can be listed in the docs and
never change with a seed: each gender's sorted actors are cut into `count`
contiguous runs of near-equal size, the larger runs going to the first folds
for men and to the last folds for women (and unknown gender after them), so
fold sizes differ by at most one or two actors.
"""

from __future__ import annotations

from collections.abc import Mapping

from emoprep.corpus.base import SpeakerSplit

MINIMUM_SPEAKERS = 3  # test, val and train each need at least one actor


def _runs(items: list[str], count: int, larger_first: bool) -> list[list[str]]:
    """`items` cut into `count` contiguous runs whose sizes differ by at most one."""
    base, extra = divmod(len(items), count)
    sizes = [base + (index < extra if larger_first else index >= count - extra) for index in range(count)]
    runs, position = [], 0
    for size in sizes:
        runs.append(items[position:position + size])
        position += size
    return runs


def actor_folds(genders: Mapping[str, str | None], count: int) -> list[frozenset[str]]:
    """The speakers of each fold: `count` folds, or one per speaker when there are fewer."""
    count = min(count, len(genders))
    folds: list[set[str]] = [set() for _ in range(count)]
    for gender, larger_first in (("M", True), ("F", False), (None, False)):
        speakers = sorted(s for s, g in genders.items() if g == gender)
        for fold, run in zip(folds, _runs(speakers, count, larger_first)):
            fold.update(run)
    return [frozenset(fold) for fold in folds]


def actor_fold_splits(genders: Mapping[str, str | None], count: int, corpus: str,
                      groups: frozenset[str] | None = None) -> tuple[SpeakerSplit, ...]:
    """`actor-1..K`: fold k's actors are the test set, fold k+1's (cyclically) the validation set, the rest train.

    No splits when the corpus has fewer than MINIMUM_SPEAKERS actors (a tiny synthetic one).
    """
    if len(genders) < MINIMUM_SPEAKERS:
        return ()
    folds = actor_folds(genders, count)
    everyone = frozenset(genders)
    splits = []
    for index, test in enumerate(folds):
        val = folds[(index + 1) % len(folds)]
        splits.append(SpeakerSplit(
            name=f"actor-{index + 1}",
            description=(f"{corpus}, speaker-independent fold {index + 1} of {len(folds)} by actor, "
                         f"balanced by gender: test = fold {index + 1}, val = fold {(index + 1) % len(folds) + 1}, "
                         "train = the other folds"),
            train=everyone - test - val,
            val=val,
            test=test,
            groups=groups,
        ))
    return tuple(splits)

"""Speaker-independent folds by speaker: dealt by gender (actor_fold_splits), or a benchmark's (listed_test_splits).

CREMA-D and RAVDESS have no official split; the literature uses k folds of
actors with both genders in each. The folds are dealt from the actors sorted
by id, not drawn at random, so a fold's actors can be listed in the docs and
never change with a seed: each gender's sorted actors are cut into `count`
contiguous runs of near-equal size, the larger runs going to the first folds
for men and to the last folds for women (and unknown gender after them), so
fold sizes differ by at most one or two actors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
                      groups: frozenset[str] | None = None, prefix: str = "actor") -> tuple[SpeakerSplit, ...]:
    """`<prefix>-1..K`: fold k's actors are the test set, fold k+1's (cyclically) the validation set, the rest train.

    No splits when the corpus has fewer than MINIMUM_SPEAKERS actors (a tiny synthetic one).
    With `count` = the number of speakers this is leave one speaker out (men first, then women).
    """
    if len(genders) < MINIMUM_SPEAKERS:
        return ()
    folds = actor_folds(genders, count)
    everyone = frozenset(genders)
    splits = []
    for index, test in enumerate(folds):
        val = folds[(index + 1) % len(folds)]
        splits.append(SpeakerSplit(
            name=f"{prefix}-{index + 1}",
            description=(f"{corpus}, speaker-independent fold {index + 1} of {len(folds)} by speaker, "
                         f"dealt by gender: test = fold {index + 1}, val = fold {(index + 1) % len(folds) + 1}, "
                         "train = the other folds"),
            train=everyone - test - val,
            val=val,
            test=test,
            groups=groups,
        ))
    return tuple(splits)


def listed_test_splits(genders: Mapping[str, str | None], tests: Sequence[Sequence[str]], prefix: str,
                       source: str, groups: frozenset[str] | None = None) -> tuple[SpeakerSplit, ...]:
    """`<prefix>-1..K`: a benchmark's folds, which list only the test speakers of each fold.

    Such a benchmark trains on every other speaker and has no validation part, so one is
    taken from the training speakers, the same way every time: one man and one woman,
    the first of each gender in the test lists of the folds after this one (k+1, k+2, ...,
    cyclically, in the order listed), then among unlisted speakers by id. Only the speakers
    present count; a fold left without test, validation or training speakers is not made.
    """
    splits = []
    for index, listed in enumerate(tests):
        test = frozenset(s for s in listed if s in genders)
        following = [s for fold in (*tests[index + 1:], *tests[:index]) for s in fold]
        candidates = [s for s in (*following, *sorted(genders)) if s in genders and s not in test]
        val = set()
        for gender in ("M", "F"):
            val.update(next(([s] for s in candidates if genders[s] == gender), []))
        if not val and candidates:
            val.add(candidates[0])  # no gender known: still one speaker to validate on
        train = frozenset(genders) - test - val
        if not (test and val and train):
            continue
        splits.append(SpeakerSplit(
            name=f"{prefix}-{index + 1}",
            description=(f"{source} fold {index + 1}: test = {', '.join(sorted(test))} (as published); "
                         f"val = {', '.join(sorted(val))} (taken from its training speakers: one per gender, "
                         "the first in the next folds' test lists); train = the others"),
            train=train,
            val=frozenset(val),
            test=test,
            groups=groups,
        ))
    return tuple(splits)

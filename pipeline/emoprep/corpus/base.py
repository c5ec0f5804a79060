"""What every corpus recipe gives the rest of emoprep: typed clip records, problems, classes and splits.

A recipe (`emoprep.corpus.<name>`) is one module with one public entry point,
`read_clips(root: Path, options: RecipeOptions) -> CorpusClips`, that reads the
corpus's metadata (never its samples or frames; a sound file's header at most) and
returns plain records, and one declaration, `SPEC: RecipeSpec`, of the label
policies, class sets and settings it takes. Everything after it
(labels table, extract, shard, splits, training) sees only these records, so no
corpus's names or quirks travel past its recipe (lhotse's recipes are the model).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# SHARED_EMOTIONS, the four classes every corpus maps to by default (so that a model trained on
# one corpus can be scored on another), and GENDERS are the shard format's: defined there once.
from shardformat import GENDERS, SHARED_EMOTIONS  # noqa: F401 (re-exported to the recipes)

# Emotion words as people write them in a labels file -> the three-letter class codes the recipes use.
EMOTION_WORDS = {
    **dict.fromkeys(("ang", "anger", "angry", "mad"), "ang"),
    **dict.fromkeys(("hap", "happy", "happiness", "joy", "joyful"), "hap"),
    **dict.fromkeys(("neu", "neutral"), "neu"),
    **dict.fromkeys(("sad", "sadness"), "sad"),
    **dict.fromkeys(("fea", "fear", "fearful", "afraid", "scared"), "fea"),
    **dict.fromkeys(("dis", "disgust", "disgusted"), "dis"),
    **dict.fromkeys(("sur", "surprise", "surprised"), "sur"),
    **dict.fromkeys(("cal", "calm"), "cal"),
    **dict.fromkeys(("bor", "boredom", "bored"), "bor"),
    **dict.fromkeys(("con", "contempt"), "con"),
    **dict.fromkeys(("exc", "excited", "excitement"), "exc"),
    **dict.fromkeys(("fru", "frustrated", "frustration"), "fru"),
}
GENDER_WORDS = {"f": "F", "female": "F", "woman": "F", "m": "M", "male": "M", "man": "M"}
CLASS_SETS = ("shared", "all")  # `--classes`: the shared four, or the corpus's full set
REGIONS = ("left", "right", "full")  # the part of the frame that shows the speaker
CROP_POLICIES = ("paper", "face")  # crop side: the seed paper's 224 source pixels, or from the face's size


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # what a clip id may not hold (it names files and shard keys)


def short_digest(text: str) -> str:
    """6 hex digits of the text's sha256: keeps apart names that read alike once cleaned, the same in every run."""
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def path_id(relative: str) -> str:
    """The id of a file by its path under a corpus root, for recipes that read any folder (clips, audio-folder).

    Every run of characters other than [A-Za-z0-9_-] becomes '_', then the path's short_digest
    follows: file-name safe, unique (`a/b.wav` and `a_b.wav` stay apart) and stable (adding a
    file never renames another's clips).
    """
    return f"{_UNSAFE.sub('_', relative).strip('_') or 'file'}-{short_digest(relative)}"


class CorpusError(Exception):
    """The corpus root itself is unusable (missing, not this corpus's layout, no metadata)."""


@dataclass(frozen=True)
class Problem:
    """A piece of bad input that was left out: where, and why."""

    path: str
    line: int | None
    utterance_id: str | None
    reason: str

    def __str__(self) -> str:
        """`path:line: utterance: reason`, the form compilers use, so editors can jump to it."""
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.utterance_id or '-'}: {self.reason}"


@dataclass(frozen=True)
class ClipRecord:
    """One utterance (or window of a video) of a corpus, as every stage after the recipe sees it.

    `emotion` is already mapped to the chosen class set (None: not kept, or unlabelled);
    `corpus_label` is the corpus's own label, kept for the record.
    """

    clip_id: str  # unique within the corpus; the shard key: no '.', '/' or whitespace
    corpus: str  # the recipe's name: "iemocap", "crema-d", "ravdess", "emodb", "clips", ...
    speaker: str  # unique within the corpus, file-name safe ([A-Za-z0-9]+): shards are per speaker
    gender: str | None  # "F" | "M" | None (unknown)
    emotion: str | None  # one of CorpusClips.classes, or None
    corpus_label: str | None  # e.g. "ANG", "angry", "neu"; None when unlabelled
    group: str  # a recipe-defined subset splits select by ("impro", "script", "speech", "all", ...)
    audio_path: str  # a wav holding the utterance, or a video whose audio stream holds it
    audio_window: tuple[float, float] | None  # seconds in audio_path; None: the whole file is the utterance
    video_path: str | None  # None: no video (audio-only clip)
    start: float  # the utterance's window in video_path (and in audio_path when audio_window is None), seconds
    end: float | None  # None: to the end of the file (a whole-file clip whose length the metadata does not say)
    region: str  # one of REGIONS
    crop: str  # one of CROP_POLICIES
    extra: Mapping[str, Any] = field(default_factory=dict)  # corpus-specific metadata, JSON-able

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True)
class SpeakerSplit:
    """A speaker-independent split: which speakers form each part (train, val, test).

    `groups` limits every part to those groups (None: all groups).
    """

    name: str  # "loso-1", "actor-3": a family of folds shares the prefix before the last '-'
    description: str
    train: frozenset[str]
    val: frozenset[str]
    test: frozenset[str]
    groups: frozenset[str] | None = None


@dataclass(frozen=True)
class RandomSplit:
    """A random split of utterances (speakers appear in every part), drawn per clip id from a seed.

    A shard set holds at most one: its parts are baked into the shards' grouping.
    """

    name: str  # "paper"
    description: str
    groups: frozenset[str]  # the groups drawn from; other groups are not in this split
    val_share: float = 0.2
    test_share: float = 0.2


SplitSpec = SpeakerSplit | RandomSplit


_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")  # what a flag setting accepts
FLAG = ("0", "1")  # a Setting's choices when it is on or off


@dataclass(frozen=True)
class RecipeOptions:
    """The choices a recipe makes while reading: label policy, class set, seed, its own settings."""

    label_policy: str | None = None  # None: the recipe's default
    classes: str = "shared"  # one of CLASS_SETS
    seed: int = 0  # ties between votes
    settings: Mapping[str, str] = field(default_factory=dict)  # recipe-specific, e.g. {"improvised_only": "1"}

    def flag(self, name: str) -> bool:
        return self.settings.get(name, "0").lower() in _TRUE


@dataclass(frozen=True)
class Choice:
    """A named value a recipe declares (a label policy, a setting's value) and what it means."""

    name: str
    help: str


@dataclass(frozen=True)
class Setting:
    """One of a recipe's own settings (`--set NAME=VALUE`): its values and its default."""

    name: str
    help: str
    default: str
    choices: tuple[str, ...] | None = None  # None: any text the recipe itself checks (a file name)

    def normalise(self, value: str) -> str:
        """The value as the recipe reads it; ValueError naming the setting and its choices otherwise."""
        value = value.strip()
        if self.choices == FLAG and value.lower() in _TRUE + _FALSE:
            return "1" if value.lower() in _TRUE else "0"
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"setting {self.name}={value!r}: choose one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class RecipeSpec:
    """What a recipe module declares as `SPEC`: its label policies, class sets and settings.

    The command line lists it (`emoprep corpora`), and the recipe's `read_clips` begins with
    `options = SPEC.check(options)`, so every recipe rejects a bad option alike (whoever calls
    it) and reads its settings with their defaults filled in.
    """

    name: str  # the --corpus name
    summary: str
    policies: tuple[Choice, ...]  # the first is the default
    settings: tuple[Setting, ...] = ()
    class_sets: tuple[str, ...] = CLASS_SETS

    def check(self, options: RecipeOptions) -> RecipeOptions:
        """`options` with the policy and every setting resolved; ValueError for anything not declared."""
        policies = [policy.name for policy in self.policies]
        policy = options.label_policy or policies[0]
        if policy not in policies:
            raise ValueError(f"{self.name} has no label policy {policy!r}: choose one of {', '.join(policies)}")
        if options.classes not in self.class_sets:
            raise ValueError(f"{self.name} has no class set {options.classes!r}: choose one of "
                             f"{', '.join(self.class_sets)}")
        declared = {setting.name: setting for setting in self.settings}
        unknown = sorted(set(options.settings) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise ValueError(f"{self.name} has no setting {', '.join(unknown)} (its settings: {known})")
        settings = {name: setting.normalise(options.settings.get(name, setting.default))
                    for name, setting in declared.items()}
        return RecipeOptions(label_policy=policy, classes=options.classes, seed=options.seed, settings=settings)

    def describe(self) -> str:
        """The recipe's options as `emoprep corpora` prints them."""
        lines = [f"{self.name}: {self.summary}",
                 f"  --classes {' | '.join(self.class_sets)}",
                 "  --label-policy (default first):"]
        lines += [f"    {policy.name}: {policy.help}" for policy in self.policies]
        if self.settings:
            lines.append("  --set NAME=VALUE:")
        for setting in self.settings:
            values = " | ".join(setting.choices) if setting.choices else "text"
            lines.append(f"    {setting.name}={values} (default {setting.default}): {setting.help}")
        return "\n".join(lines)


@dataclass(frozen=True)
class CorpusClips:
    """What a recipe returns: every clip it read (kept or not), what it left out, and how to split."""

    corpus: str
    root: str
    clips: tuple[ClipRecord, ...]  # sorted by clip_id
    problems: tuple[Problem, ...]
    classes: tuple[str, ...]  # the emotion classes, in integer label order
    label_policy: Mapping[str, Any]  # JSON-able: the policy's name and every parameter
    splits: tuple[SplitSpec, ...]
    labelled: bool = True  # False: a set to predict (no labels at all): every clip is kept

    @property
    def kept(self) -> tuple[ClipRecord, ...]:
        """What extract works on: the clips with a class, or every clip of an unlabelled set."""
        return tuple(clip for clip in self.clips if clip.emotion is not None or not self.labelled)


def tie_rng(seed: int, clip_id: str) -> random.Random:
    """A generator that depends only on (seed, clip id): hashlib, since hash() is salted per process.

    Every recipe breaks ties between votes with it, so a label never depends on file
    order, worker count or the Python process.
    """
    digest = hashlib.sha256(f"{seed}\x00{clip_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def plurality(votes: Mapping[str, int], seed: int, clip_id: str) -> tuple[str | None, bool]:
    """The most voted label (None without votes) and whether a tie was broken by the seeded draw."""
    if not votes:
        return None, False
    top = max(votes.values())
    tied = sorted(label for label, count in votes.items() if count == top)
    if len(tied) == 1:
        return tied[0], False
    return tie_rng(seed, clip_id).choice(tied), True

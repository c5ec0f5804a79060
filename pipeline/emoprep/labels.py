"""Label policy: which of the four emotions (if any) each utterance gets, and the labels table.

Two policies:
- `paper` (default): the plurality of the external evaluators' categorical
  votes (the actors' self-evaluations never count); a tie is broken by a draw
  seeded from (seed, utterance id) alone, so the result does not depend on file
  order, worker count or Python's hash randomisation.
- `released`: IEMOCAP's own consensus label.
Either way an utterance is kept when its label is ang, hap, neu or sad.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from emoprep.atomic import atomic_path

from emoprep.corpus.iemocap import KEPT_EMOTIONS, Corpus, Utterance

POLICIES = ("paper", "released")
NOT_KEPT = "not kept"
# Parquet schema metadata key holding the whole policy (merge, filter, seed), not just its name.
POLICY_METADATA_KEY = b"emoav.label_policy"


@dataclass(frozen=True)
class LabelPolicy:
    name: str = "paper"  # "paper" | "released"
    merge_excited: bool = False  # exc -> hap before counting (and for the released label)
    improvised_only: bool = False  # keep improvised dialogs only (the seed paper's protocol)
    seed: int = 0  # seeds tie-breaking

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown label policy {self.name!r}: choose one of {', '.join(POLICIES)}")


@dataclass(frozen=True)
class LabelledUtterance:
    utterance: Utterance
    emotion: str | None  # ang/hap/neu/sad, or None when not kept
    votes: tuple[tuple[str, int], ...]  # category -> external evaluators' votes (after any merge), by category
    tie_broken: bool  # the plurality was a tie settled by the seeded draw


def _merged(category: str, policy: LabelPolicy) -> str:
    return "hap" if policy.merge_excited and category == "exc" else category


def vote_counts(utterance: Utterance, policy: LabelPolicy) -> tuple[tuple[str, int], ...]:
    """Votes per category over the external evaluators, sorted by category.

    An evaluator gives one vote to each category they list, at most once each
    (after merging, `Happiness; Excited` is one hap vote, not two).
    """
    counts: Counter[str] = Counter()
    for evaluation in utterance.external:
        counts.update({_merged(category, policy) for category in evaluation.categories})
    return tuple(sorted(counts.items()))


def tie_rng(seed: int, utterance_id: str) -> random.Random:
    """A generator that depends only on (seed, utterance id): hashlib, since hash() is salted per process."""
    digest = hashlib.sha256(f"{seed}\x00{utterance_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _majority(votes: tuple[tuple[str, int], ...], seed: int, utterance_id: str) -> tuple[str | None, bool]:
    """The plurality category (None without votes) and whether a tie had to be broken."""
    if not votes:
        return None, False
    top = max(count for _, count in votes)
    tied = sorted(category for category, count in votes if count == top)
    if len(tied) == 1:
        return tied[0], False
    return tie_rng(seed, utterance_id).choice(tied), True


def label_utterance(utterance: Utterance, policy: LabelPolicy) -> LabelledUtterance:
    votes = vote_counts(utterance, policy)
    if policy.name == "paper":
        label, tie_broken = _majority(votes, policy.seed, utterance.utterance_id)
    else:
        label, tie_broken = _merged(utterance.released_label, policy), False
    emotion = label if label in KEPT_EMOTIONS else None
    return LabelledUtterance(utterance=utterance, emotion=emotion, votes=votes, tie_broken=tie_broken)


def assign_labels(corpus: Corpus, policy: LabelPolicy) -> list[LabelledUtterance]:
    """Every utterance of the corpus (improvised dialogs only, if the policy says so), by utterance id."""
    utterances = sorted(corpus.utterances, key=lambda u: u.utterance_id)
    return [
        label_utterance(utterance, policy)
        for utterance in utterances
        if utterance.improvised or not policy.improvised_only
    ]


LABELS_SCHEMA = pa.schema([
    ("utterance_id", pa.string()),
    ("session", pa.int32()),
    ("dialog", pa.string()),
    ("improvised", pa.bool_()),
    ("gender", pa.string()),
    ("start", pa.float64()),
    ("end", pa.float64()),
    ("released_label", pa.string()),
    ("emotion", pa.string()),
    ("votes", pa.string()),
    ("tie_broken", pa.bool_()),
    ("speaker_side", pa.string()),
    ("label_policy", pa.string()),
])


def labels_table(labelled: Sequence[LabelledUtterance], policy: LabelPolicy) -> pa.Table:
    """One row per utterance, sorted by id; the full policy rides along in the schema metadata."""
    rows = sorted(labelled, key=lambda item: item.utterance.utterance_id)
    columns = {
        "utterance_id": [r.utterance.utterance_id for r in rows],
        "session": [r.utterance.session for r in rows],
        "dialog": [r.utterance.dialog for r in rows],
        "improvised": [r.utterance.improvised for r in rows],
        "gender": [r.utterance.gender for r in rows],
        "start": [r.utterance.start for r in rows],
        "end": [r.utterance.end for r in rows],
        "released_label": [r.utterance.released_label for r in rows],
        "emotion": [r.emotion for r in rows],
        "votes": [json.dumps(dict(r.votes), sort_keys=True) for r in rows],
        "tie_broken": [r.tie_broken for r in rows],
        "speaker_side": [r.utterance.speaker_side for r in rows],
        "label_policy": [policy.name] * len(rows),
    }
    schema = LABELS_SCHEMA.with_metadata({POLICY_METADATA_KEY: json.dumps(asdict(policy), sort_keys=True)})
    return pa.table(columns, schema=schema)


def policy_of(table: pa.Table) -> LabelPolicy:
    """The policy a labels table was made with (read back from its schema metadata)."""
    metadata = table.schema.metadata or {}
    if POLICY_METADATA_KEY not in metadata:
        raise ValueError("labels table has no label policy metadata: was it written by `emoprep labels`?")
    return LabelPolicy(**json.loads(metadata[POLICY_METADATA_KEY]))


def write_labels(table: pa.Table, path: str | Path) -> Path:
    """Write the table as Parquet atomically: a temporary file beside it, then os.replace."""
    path = Path(path)
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)
    return path


def count_table(labelled: Sequence[LabelledUtterance]) -> str:
    """Class x gender counts as aligned text: the four emotions, their total, the rest, and all."""
    counts: Counter[tuple[str, str]] = Counter(
        (item.emotion or NOT_KEPT, item.utterance.gender) for item in labelled
    )

    def row(name: str, classes: Sequence[str]) -> list[str]:
        female = sum(counts[(c, "F")] for c in classes)
        male = sum(counts[(c, "M")] for c in classes)
        return [name, str(female), str(male), str(female + male)]

    rows = [["emotion", "F", "M", "total"]]
    rows += [row(emotion, [emotion]) for emotion in KEPT_EMOTIONS]
    rows.append(row("kept", KEPT_EMOTIONS))
    rows.append(row(NOT_KEPT, [NOT_KEPT]))
    rows.append(row("all", [*KEPT_EMOTIONS, NOT_KEPT]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(
        "  ".join([r[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(r[1:], widths[1:])])
        for r in rows
    )

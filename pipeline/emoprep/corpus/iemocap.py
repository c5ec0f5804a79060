"""IEMOCAP on disk -> typed records. No media is opened here.

See ../shared/iemocap-format.md (copied into README) for the format facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Three-letter category codes, as in the released labels.
CATEGORIES = ("neu", "hap", "sad", "ang", "exc", "fru", "sur", "fea", "dis", "oth")
KEPT_EMOTIONS = ("ang", "hap", "neu", "sad")


class CorpusError(Exception):
    """The corpus root itself is unusable (missing, no Session* folders)."""


@dataclass(frozen=True)
class Evaluation:
    """One evaluator's categorical judgement of one utterance (a `C-...` line)."""

    evaluator: str  # "E1", "E2", ... for external evaluators; "F1", "M1" for self-evaluations
    categories: tuple[str, ...]  # three-letter codes from CATEGORIES, in the order written


@dataclass(frozen=True)
class Utterance:
    utterance_id: str  # "Ses01F_impro01_F000"
    session: int  # 1..5
    dialog: str  # "Ses01F_impro01"
    improvised: bool
    gender: str  # "F" or "M": the speaker's, from the id's last segment
    start: float  # seconds from the dialog start
    end: float
    released_label: str  # "neu", ..., or "xxx"
    external: tuple[Evaluation, ...]  # C-E* lines: the only votes a majority counts
    self_evaluations: tuple[Evaluation, ...]  # C-F* / C-M* lines: never counted
    speaker_side: str  # "left" or "right": the speaker's half of the dialog video

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Problem:
    """A piece of bad input that was skipped: where, and why."""

    path: str
    line: int | None
    utterance_id: str | None
    reason: str


@dataclass(frozen=True)
class Corpus:
    root: Path  # the IEMOCAP_full_release folder
    utterances: tuple[Utterance, ...]  # sorted by utterance_id
    problems: tuple[Problem, ...]

    def dialog_avi(self, dialog: str) -> Path:
        return self.root / f"Session{session_of(dialog)}" / "dialog" / "avi" / "DivX" / f"{dialog}.avi"

    def sentence_wav(self, utterance: Utterance) -> Path:
        return (
            self.root / f"Session{utterance.session}" / "sentences" / "wav"
            / utterance.dialog / f"{utterance.utterance_id}.wav"
        )


_SESSION = re.compile(r"^Ses(\d{2})([FM])_")
_UTTERANCE_SPEAKER = re.compile(r"^([FM])\d{3}$")


def _session_match(name: str) -> re.Match:
    match = _SESSION.match(name)
    if match is None:
        raise ValueError(f"not an IEMOCAP dialog or utterance id: {name!r}")
    return match


def session_of(dialog_or_utterance_id: str) -> int:
    """`Ses03M_impro05a` -> 3."""
    return int(_session_match(dialog_or_utterance_id).group(1))


def dialog_of(utterance_id: str) -> str:
    """`Ses05M_script01_1b_M013` -> `Ses05M_script01_1b` (never by fixed positions)."""
    dialog, _, speaker = utterance_id.rpartition("_")
    if not dialog or _UTTERANCE_SPEAKER.match(speaker) is None:
        raise ValueError(f"not an IEMOCAP utterance id: {utterance_id!r}")
    _session_match(dialog)
    return dialog


def gender_of(utterance_id: str) -> str:
    """The speaker's gender: the first letter of the id's last `_` segment.

    Not the session letter, which names the actor wearing motion-capture markers
    (using it mislabels about 300 utterances).
    """
    dialog_of(utterance_id)  # validates the id
    return utterance_id.rpartition("_")[2][0]


def speaker_side(utterance_id: str) -> str:
    """Which half of the dialog video shows the speaker: "left" or "right".

    The marker wearer (the session letter, `Ses01F` -> F) sits on the left, so
    the speaker is on the left when their gender equals the session letter.
    Three independent preprocessing projects agree on this; the seed paper's
    code used fixed per-gender crops instead, which disagrees for `Ses0?M`.
    """
    marker_wearer = _session_match(utterance_id).group(2)
    return "left" if gender_of(utterance_id) == marker_wearer else "right"


def is_improvised(dialog: str) -> bool:
    return "_impro" in dialog


def find_root(path: str | Path) -> Path:
    """Accept the IEMOCAP_full_release folder or a folder that contains it."""
    path = Path(path)
    if not path.is_dir():
        raise CorpusError(f"{path}: no such folder")
    for candidate in (path, path / "IEMOCAP_full_release"):
        if any(candidate.glob("Session[0-9]*")):
            return candidate
    raise CorpusError(
        f"{path}: no Session* folders here or in {path / 'IEMOCAP_full_release'}; "
        "point --iemocap at IEMOCAP_full_release or the folder that contains it"
    )


def read_corpus(path: str | Path) -> Corpus:
    """Parse every EmoEvaluation file under the root; bad blocks become Problems."""
    raise NotImplementedError

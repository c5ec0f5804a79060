"""The IEMOCAP recipe: annotation files -> utterances -> labelled clip records. No media is opened.

Everything IEMOCAP-specific lives here: the annotation block format, the label
policies (`paper`: the plurality of the external evaluators' votes, ties broken by
a draw seeded per utterance id; `released`: the corpus's consensus label), the
speaker's half of the split-screen video, and the splits (`paper`: the seed paper's
random 60/20/20 of improvised utterances; `loso-1..5`: session k held out, its
female speaker validation and its male speaker test). See docs/corpora/iemocap.md.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from emoprep.corpus.base import (
    FLAG,
    SHARED_EMOTIONS,
    Choice,
    ClipRecord,
    CorpusClips,
    CorpusError,
    Problem,
    RandomSplit,
    RecipeOptions,
    RecipeSpec,
    Setting,
    SpeakerSplit,
    plurality,
)

# Three-letter category codes, as in the released labels.
CATEGORIES = ("neu", "hap", "sad", "ang", "exc", "fru", "sur", "fea", "dis", "oth")
KEPT_EMOTIONS = SHARED_EMOTIONS
CORPUS = "iemocap"
SPEC = RecipeSpec(
    name=CORPUS,
    summary="IEMOCAP_full_release: five sessions of dyadic dialogs, split-screen video (docs/corpora/iemocap.md)",
    policies=(Choice("paper", "the plurality of the external evaluators' votes, ties drawn per utterance id"),
              Choice("released", "the corpus's consensus label")),
    settings=(Setting("merge_excited", "map exc to hap before labelling", "0", FLAG),
              Setting("improvised_only", "keep improvised dialogs only (the seed paper's protocol)", "0", FLAG)),
    # IEMOCAP's other categories are too rare (fea 40, dis 2, sur 107) for a class each.
    class_sets=("shared",),
)
POLICIES = tuple(policy.name for policy in SPEC.policies)


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
        if _session_dirs(candidate):
            return candidate
    raise CorpusError(
        f"{path}: no Session* folders here or in {path / 'IEMOCAP_full_release'}; "
        "point --iemocap at IEMOCAP_full_release or the folder that contains it"
    )


NO_MAJORITY = "xxx"  # the released label when the evaluators reached no majority

_SESSION_DIR = re.compile(r"^Session(\d+)$")


def _session_dirs(root: Path) -> list[tuple[int, Path]]:
    """The `Session<n>` folders directly under root, by number; [] when there are none."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _SESSION_DIR.match(child.name)
        if match is not None and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


# The category words evaluators wrote, lower-cased, with free text after a colon dropped.
_CATEGORY_WORDS = {
    "neutral": "neu",
    "neutral state": "neu",
    "happiness": "hap",
    "excited": "exc",
    "sadness": "sad",
    "anger": "ang",
    "frustration": "fru",
    "surprise": "sur",
    "fear": "fea",
    "disgust": "dis",
    "other": "oth",
}


def category_code(word: str) -> str:
    """An evaluator's category word -> its three-letter code.

    Case and spacing do not matter, `Other:amused` is `oth`, and any word not
    in the documented list is `oth` too: evaluators' spelling must not stop a run.
    """
    key = " ".join(word.split(":", 1)[0].lower().split())
    return _CATEGORY_WORDS.get(key, "oth")


def _categories(rest: str) -> tuple[str, ...]:
    """The part of a `C-...:` line after the colon -> category codes in the order written.

    The categories come before the first TAB (or, in hand-edited files, before
    the parenthesised comment); the comment may itself contain `;`.
    """
    text = rest.strip().split("\t", 1)[0].split("(", 1)[0]
    return tuple(category_code(word) for word in text.split(";") if word.strip())


_HEADER = re.compile(
    r"^\[(?P<start>[^\]-]*)-(?P<end>[^\]]*)\]\s+(?P<id>\S+)\s+(?P<label>\S+)\s+\[(?P<vad>[^\]]*)\]$"
)
_SECONDS = re.compile(r"^\d+(\.\d+)?$")
_CATEGORICAL = re.compile(r"^C-(?P<who>[^:\s]*):(?P<rest>.*)$")
_EVALUATOR = re.compile(r"^([EFM])\d+$")  # E: external evaluator; F, M: the actors themselves
_DIMENSIONAL = re.compile(r"^A-[^:\s]*:")


_UTTERANCE_ID = re.compile(r"\bSes\d{2}[FM]_\S+_[FM]\d{3}\b")


def _utterance_id_in(line: str) -> str | None:
    """The utterance id somewhere in a line too broken to parse, to name it in the problem."""
    found = _UTTERANCE_ID.search(line)
    return found.group(0) if found else None


class _BadBlock(Exception):
    def __init__(self, line: int, utterance_id: str | None, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.utterance_id = utterance_id
        self.reason = reason


def _seconds(text: str) -> float | None:
    text = text.strip()
    return float(text) if _SECONDS.match(text) else None


def _parse_block(
    header_line: int, header: str, body: list[tuple[int, str]], dialog: str, session: int
) -> Utterance:
    """One utterance block -> its record; raises _BadBlock naming the offending line."""
    match = _HEADER.match(header)
    if match is None:
        raise _BadBlock(header_line, _utterance_id_in(header),
                        "bad block header: expected '[START - END]<TAB>UTTERANCE_ID<TAB>LABEL<TAB>[V, A, D]'")
    utterance_id = match["id"]
    start, end = _seconds(match["start"]), _seconds(match["end"])
    if start is None or end is None:
        raise _BadBlock(header_line, utterance_id,
                        f"bad times [{match['start'].strip()} - {match['end'].strip()}]: "
                        "expected seconds such as [6.2901 - 8.2357]")
    if end <= start:
        raise _BadBlock(header_line, utterance_id, f"ends at {end} s, not after its start at {start} s")
    try:
        id_dialog = dialog_of(utterance_id)
    except ValueError:
        raise _BadBlock(header_line, utterance_id,
                        "not an utterance id: expected <dialog>_<F|M><3 digits>") from None
    if id_dialog != dialog:
        raise _BadBlock(header_line, utterance_id,
                        f"id belongs to dialog {id_dialog}, not to this file's dialog {dialog}")
    label = match["label"].lower()
    if label not in CATEGORIES and label != NO_MAJORITY:
        raise _BadBlock(header_line, utterance_id,
                        f"unknown released label {match['label']!r}: expected one of {', '.join(CATEGORIES)} or xxx")

    external: list[Evaluation] = []
    self_evaluations: list[Evaluation] = []
    seen: set[str] = set()
    for number, line in body:
        categorical = _CATEGORICAL.match(line)
        if categorical is None:
            if _DIMENSIONAL.match(line):
                continue  # dimensional ratings: not used by any label policy
            raise _BadBlock(number, utterance_id,
                            f"unexpected line {line[:60]!r} in a block: expected C-... or A-... evaluations")
        who = categorical["who"]
        evaluator = _EVALUATOR.match(who)
        if evaluator is None:
            raise _BadBlock(number, utterance_id,
                            f"unknown evaluator C-{who}: expected C-E<n> (external) or C-F<n>/C-M<n> (self)")
        if who in seen:
            raise _BadBlock(number, utterance_id, f"evaluator C-{who} appears twice in one block")
        seen.add(who)
        evaluation = Evaluation(who, _categories(categorical["rest"]))
        (external if evaluator.group(1) == "E" else self_evaluations).append(evaluation)

    return Utterance(
        utterance_id=utterance_id,
        session=session,
        dialog=dialog,
        improvised=is_improvised(dialog),
        gender=gender_of(utterance_id),
        start=start,
        end=end,
        released_label=label,
        external=tuple(external),
        self_evaluations=tuple(self_evaluations),
        speaker_side=speaker_side(utterance_id),
    )


def read_evaluation_file(path: Path, session: int) -> tuple[list[Utterance], list[Problem]]:
    """One `EmoEvaluation/<dialog>.txt` -> its good utterances and the problems that kept others out.

    Blocks start at a `[` line and run to the next one, so a stray blank line
    inside a block cannot orphan its evaluations.
    """
    where = str(path)
    dialog = path.stem
    if _SESSION.match(dialog) is None:
        return [], [Problem(where, None, None, "not named after a dialog (Ses<NN><F|M>_...): file skipped")]
    if session_of(dialog) != session:
        return [], [Problem(where, None, None,
                            f"dialog of session {session_of(dialog)} inside Session{session}: file skipped; "
                            "move it to its session's folder")]
    try:
        # Comments are free text; a stray byte in one must not lose the file.
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return [], [Problem(where, None, None, f"cannot read: {error.strerror or error}")]

    problems: list[Problem] = []
    blocks: list[tuple[int, str, list[tuple[int, str]]]] = []
    after_blank = True
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            after_blank = True
            continue
        evaluation = _CATEGORICAL.match(line) or _DIMENSIONAL.match(line)
        if line.startswith("%") and not blocks:
            pass  # the file's column header
        elif line.startswith("[") or (after_blank and blocks and not evaluation):
            blocks.append((number, line, []))  # a mangled header opens a (bad) block of its own
        elif blocks:
            blocks[-1][2].append((number, line))
        else:
            problems.append(Problem(where, number, _utterance_id_in(line),
                                    f"text before the first utterance block: {line[:60]!r}"))
        after_blank = False

    parsed: dict[str, tuple[int, Utterance]] = {}
    duplicated: set[str] = set()
    for header_line, header, body in blocks:
        try:
            utterance = _parse_block(header_line, header, body, dialog, session)
        except _BadBlock as bad:
            problems.append(Problem(where, bad.line, bad.utterance_id, bad.reason + "; utterance left out"))
            continue
        uid = utterance.utterance_id
        if uid in parsed:
            # Which copy is right cannot be told, so neither is used.
            problems.append(Problem(where, header_line, uid,
                                    f"duplicate utterance id (first at line {parsed[uid][0]}); both left out"))
            duplicated.add(uid)
            continue
        parsed[uid] = (header_line, utterance)
    return [u for uid, (_, u) in parsed.items() if uid not in duplicated], problems


def read_corpus(path: str | Path) -> Corpus:
    """Parse every `Session*/dialog/EmoEvaluation/<dialog>.txt`; bad blocks become Problems.

    Only the annotation files are read (no media), so this is fast and works
    on a corpus copy without the large AVI and WAV folders.
    """
    root = find_root(path)
    utterances: list[Utterance] = []
    problems: list[Problem] = []
    for session, session_dir in _session_dirs(root):
        evaluation_dir = session_dir / "dialog" / "EmoEvaluation"
        if not evaluation_dir.is_dir():
            problems.append(Problem(str(evaluation_dir), None, None, "missing: this session has no labels"))
            continue
        # Only the files directly here: Categorical/, Attribute/, Self-evaluation/ hold per-evaluator copies.
        # Dot files are archive-tool debris (macOS `._*`), not annotations.
        files = sorted(p for p in evaluation_dir.glob("*.txt") if p.is_file() and not p.name.startswith("."))
        for file in files:
            file_utterances, file_problems = read_evaluation_file(file, session)
            utterances.extend(file_utterances)
            problems.extend(file_problems)
    return Corpus(
        root=root,
        utterances=tuple(sorted(utterances, key=lambda u: u.utterance_id)),
        problems=tuple(problems),
    )


# ---------------------------------------------------------------- labels (the policies)


@dataclass(frozen=True)
class LabelPolicy:
    name: str = "paper"  # "paper" | "released"
    merge_excited: bool = False  # exc -> hap before counting (and for the released label)
    improvised_only: bool = False  # keep improvised dialogs only (the seed paper's protocol)
    seed: int = 0  # seeds tie-breaking

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise ValueError(f"unknown label policy {self.name!r} for IEMOCAP: choose one of {', '.join(POLICIES)}")


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


def label_utterance(utterance: Utterance, policy: LabelPolicy) -> LabelledUtterance:
    votes = vote_counts(utterance, policy)
    if policy.name == "paper":
        label, tie_broken = plurality(dict(votes), policy.seed, utterance.utterance_id)
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


# ---------------------------------------------------------------- the recipe


def policy_from(options: RecipeOptions) -> LabelPolicy:
    options = SPEC.check(options)
    return LabelPolicy(options.label_policy, options.flag("merge_excited"), options.flag("improvised_only"),
                       options.seed)


def speaker_of(session: int, gender: str) -> str:
    """`ses1F`: IEMOCAP has one female and one male actor per session."""
    return f"ses{session}{gender}"


def clip_record(item: LabelledUtterance, corpus: Corpus, policy: LabelPolicy) -> ClipRecord:
    u = item.utterance
    return ClipRecord(
        clip_id=u.utterance_id, corpus=CORPUS, speaker=speaker_of(u.session, u.gender), gender=u.gender,
        emotion=item.emotion, corpus_label=u.released_label, group="impro" if u.improvised else "script",
        audio_path=str(corpus.sentence_wav(u)), audio_window=None,
        video_path=str(corpus.dialog_avi(u.dialog)), start=u.start, end=u.end,
        region=u.speaker_side, crop="paper",
        extra={"session": u.session, "dialog": u.dialog, "improvised": u.improvised,
               "released_label": u.released_label, "votes": dict(item.votes), "tie_broken": item.tie_broken,
               "speaker_side": u.speaker_side},
    )


def splits(sessions: list[int]) -> tuple[RandomSplit | SpeakerSplit, ...]:
    """The seed paper's random split, and one leave-one-session-out fold per session present."""
    paper = RandomSplit(
        "paper",
        "The seed paper's protocol: improvised dialogs only, a random 60/20/20 split of utterances "
        "(drawn by `emoprep shard --seed`). Speakers appear in every part: not speaker independent.",
        groups=frozenset({"impro"}),
    )
    folds = []
    for k in range(1, 6):
        others = [s for s in sessions if s != k]
        folds.append(SpeakerSplit(
            f"loso-{k}",
            f"Session {k} held out: validate on ses{k}F, test on ses{k}M (all their dialogs); "
            f"train on sessions {', '.join(map(str, others))} (improvised and scripted). Speaker independent.",
            train=frozenset(speaker_of(s, g) for s in others for g in "FM"),
            val=frozenset({speaker_of(k, "F")}), test=frozenset({speaker_of(k, "M")}),
        ))
    return (paper, *folds)


def read_clips(root: Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """The recipe's entry point: every utterance as a clip record (kept or not), problems, splits."""
    policy = policy_from(options)
    corpus = read_corpus(root)
    labelled = assign_labels(corpus, policy)
    return CorpusClips(
        corpus=CORPUS, root=str(corpus.root),
        clips=tuple(clip_record(item, corpus, policy) for item in labelled),
        problems=corpus.problems, classes=KEPT_EMOTIONS,
        label_policy={"name": policy.name, "merge_excited": policy.merge_excited,
                      "improvised_only": policy.improvised_only, "seed": policy.seed},
        splits=splits(sorted({u.session for u in corpus.utterances})),
    )

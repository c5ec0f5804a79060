"""CREMA-D on disk -> clip records. Reads the CSV metadata only; no media file is opened.

Format facts: docs/corpora/crema-d.md (from ../shared/corpora-format.md and the
corpus's own CSVs). One clip per name in SentenceFilenames.csv,
`<ActorID>_<Sentence>_<Emotion>_<Level>` (`1001_DFA_ANG_XX`); its audio is
AudioWAV/<name>.wav (16 kHz mono, used sample for sample) and its video
VideoFlash/<name>.flv (480x360, the face in the whole frame).

Label policies:
- `intended` (default): the emotion the actor was asked to show, from the file name;
  what most CREMA-D papers report.
- `perceived`: the crowd's audio-visual majority (summaryTable.csv, MultiModalVote),
  the analogue of IEMOCAP's evaluator majority; a tie (`N:S`) is broken by the
  seeded draw every recipe uses (base.plurality), per clip id.

Settings: none (SPEC).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from emoprep.corpus.base import (
    SHARED_EMOTIONS,
    Choice,
    ClipRecord,
    CorpusClips,
    CorpusError,
    Problem,
    RecipeOptions,
    RecipeSpec,
    plurality,
)
from emoprep.corpus.folds import actor_fold_splits

CORPUS = "crema-d"
CORPUS_FOLDER = "CREMA-D"  # the repository's name: a checkout is CREMA-D/
SPEC = RecipeSpec(
    name=CORPUS,
    summary="CREMA-D: 91 actors, 7,442 clips, AudioWAV/ and VideoFlash/ with CSVs (docs/corpora/crema-d.md)",
    policies=(Choice("intended", "the emotion the actor was asked to show (the file name)"),
              Choice("perceived", "the crowd's audio-visual majority (summaryTable.csv), ties drawn per clip id")),
)
# The corpus's six emotion codes, in the order of their vote letters (A D F H N S): also
# alphabetical, like the shared four, so `--classes all` extends their order.
CODES = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
ALL_CLASSES = tuple(code.lower() for code in CODES)  # ang, dis, fea, hap, neu, sad
VOTE_LETTERS = {code[0]: code for code in CODES}  # "A" -> "ANG", as summaryTable.csv writes votes
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
LEVELS = ("LO", "MD", "HI", "XX")  # XX: unspecified
FOLDS = 5

DEMOGRAPHICS = "VideoDemographics.csv"
SENTENCE_LIST = "SentenceFilenames.csv"
SUMMARY = "summaryTable.csv"  # processedResults/ in a checkout; beside the others in a flat copy
AUDIO_FOLDER = "AudioWAV"
VIDEO_FOLDER = "VideoFlash"

_NAME = re.compile(r"^(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<level>[A-Z]{2})$")
_SEXES = {"male": "M", "female": "F"}


@dataclass(frozen=True)
class ClipName:
    """The four fields of a CREMA-D clip name."""

    actor: str  # "1001"
    sentence: str  # "DFA"
    emotion: str  # "ANG": the intended emotion
    level: str  # "LO", "MD", "HI", "XX"


def parse_name(name: str) -> ClipName:
    """`1001_DFA_ANG_XX` -> its fields; ValueError saying what is wrong otherwise."""
    match = _NAME.match(name)
    if match is None:
        raise ValueError("not a clip name: expected <ActorID>_<Sentence>_<Emotion>_<Level> such as 1001_DFA_ANG_XX")
    fields = ClipName(**match.groupdict())
    if fields.sentence not in SENTENCES:
        raise ValueError(f"unknown sentence code {fields.sentence}: expected one of {', '.join(SENTENCES)}")
    if fields.emotion not in CODES:
        raise ValueError(f"unknown emotion code {fields.emotion}: expected one of {', '.join(CODES)}")
    if fields.level not in LEVELS:
        raise ValueError(f"unknown level {fields.level}: expected one of {', '.join(LEVELS)}")
    return fields


@dataclass(frozen=True)
class MetadataFiles:
    root: Path  # the CREMA-D folder: AudioWAV/ and VideoFlash/ are here
    demographics: Path
    sentences: Path
    summary: Path  # may not exist: only the perceived policy needs it


def find_metadata(path: Path) -> MetadataFiles:
    """The CREMA-D folder (or the folder that holds it) and its metadata files.

    Accepts a checkout (`processedResults/summaryTable.csv`) and a flat copy of the CSVs.
    """
    if not path.is_dir():
        raise CorpusError(f"{path}: no such folder")
    for root in (path, path / CORPUS_FOLDER):
        if (root / SENTENCE_LIST).is_file():
            summary = root / "processedResults" / SUMMARY
            return MetadataFiles(root, root / DEMOGRAPHICS, root / SENTENCE_LIST,
                                 summary if summary.is_file() else root / SUMMARY)
    raise CorpusError(
        f"{path}: no {SENTENCE_LIST} here or in {path / CORPUS_FOLDER}; point --root at the CREMA-D "
        "checkout (the folder with VideoDemographics.csv, SentenceFilenames.csv and AudioWAV/)"
    )


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV whose header has `columns`; CorpusError when the file or a column is missing."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise CorpusError(f"{path}: no column {', '.join(missing)} in the header "
                                  f"(found {', '.join(reader.fieldnames or ()) or 'nothing'})")
            for row in reader:
                yield reader.line_num, row
    except OSError as error:
        raise CorpusError(f"{path}: cannot read: {error.strerror or error}") from error


def read_demographics(path: Path) -> tuple[dict[str, str | None], list[Problem]]:
    """ActorID -> "F" / "M" (None for a Sex that is neither), and the rows that could not be used."""
    genders: dict[str, str | None] = {}
    problems = []
    for line, row in _rows(path, ("ActorID", "Sex")):
        actor, sex = (row["ActorID"] or "").strip(), (row["Sex"] or "").strip()
        if not re.fullmatch(r"\d{4}", actor):
            problems.append(Problem(str(path), line, None, f"bad ActorID {actor!r}: row skipped"))
            continue
        gender = _SEXES.get(sex.lower())
        if gender is None:
            problems.append(Problem(str(path), line, None,
                                    f"actor {actor}: Sex {sex!r} is neither Male nor Female: gender unknown"))
        genders[actor] = gender
    return genders, problems


def read_sentence_list(path: Path) -> tuple[list[tuple[int, str, ClipName]], list[Problem]]:
    """(line, name, fields) per clip listed, first listing kept; names that do not parse are problems."""
    clips: list[tuple[int, str, ClipName]] = []
    problems = []
    seen: dict[str, int] = {}
    for line, row in _rows(path, ("Filename",)):
        name = (row["Filename"] or "").strip()
        try:
            fields = parse_name(name)
        except ValueError as error:
            problems.append(Problem(str(path), line, name or None, f"{error}: clip left out"))
            continue
        if name in seen:
            problems.append(Problem(str(path), line, name, f"listed again (first at line {seen[name]}): ignored"))
            continue
        seen[name] = line
        clips.append((line, name, fields))
    return clips, problems


def read_votes(path: Path) -> tuple[dict[str, tuple[int, str]], list[Problem]]:
    """FileName -> (line, MultiModalVote as written, e.g. "N" or "N:S")."""
    if not path.is_file():
        raise CorpusError(f"{path}: missing; the perceived policy reads the crowd's votes from "
                          f"processedResults/{SUMMARY}")
    votes: dict[str, tuple[int, str]] = {}
    problems = []
    for line, row in _rows(path, ("FileName", "MultiModalVote")):
        name, vote = (row["FileName"] or "").strip(), (row["MultiModalVote"] or "").strip()
        if name in votes:
            problems.append(Problem(str(path), line, name, f"second row (first at line {votes[name][0]}): ignored"))
            continue
        votes[name] = (line, vote)
    return votes, problems


def perceived_code(vote: str, seed: int, clip_id: str) -> tuple[str, bool]:
    """A MultiModalVote ("H", "N:S") -> the emotion code it settles on and whether a tie was broken."""
    letters = vote.split(":")
    if not vote or any(letter not in VOTE_LETTERS for letter in letters) or len(set(letters)) != len(letters):
        raise ValueError(f"MultiModalVote {vote!r}: expected letters of {''.join(VOTE_LETTERS)} joined by ':'")
    letter, tie_broken = plurality({letter: 1 for letter in letters}, seed, clip_id)
    return VOTE_LETTERS[letter], tie_broken


def _media_names(folder: Path, suffix: str) -> set[str] | None:
    """The clip names with a file in `folder` (one listing, no per-clip stat); None when the folder is absent."""
    if not folder.is_dir():
        return None
    return {p.stem for p in folder.iterdir() if p.suffix == suffix and not p.name.startswith(".")}


def _media_problems(root: Path, names: list[str]) -> list[Problem]:
    """Listed clips without their wav or flv, media not listed, and an absent media folder (metadata only)."""
    problems = []
    listed = set(names)
    for folder, suffix in ((root / AUDIO_FOLDER, ".wav"), (root / VIDEO_FOLDER, ".flv")):
        present = _media_names(folder, suffix)
        if present is None:
            problems.append(Problem(str(folder), None, None,
                                    f"missing: metadata only, extract will fail every clip's {suffix} file"))
            continue
        problems += [Problem(str(folder / f"{name}{suffix}"), None, name, "listed in the metadata but missing")
                     for name in names if name not in present]
        problems += [Problem(str(folder / f"{name}{suffix}"), None, name,
                             f"not listed in {SENTENCE_LIST}: ignored")
                     for name in sorted(present - listed)]
    return problems


def read_clips(root: Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """Every clip listed in SentenceFilenames.csv as a record; bad rows and missing files become Problems.

    A clip listed without media stays a record (extract fails it, naming the file), so the labels
    table of a metadata-only copy still has every clip.
    """
    options = SPEC.check(options)
    policy = options.label_policy
    files = find_metadata(Path(root))
    genders, problems = read_demographics(files.demographics)
    listed, list_problems = read_sentence_list(files.sentences)
    problems += list_problems
    votes: dict[str, tuple[int, str]] = {}
    if policy == "perceived":
        votes, vote_problems = read_votes(files.summary)
        problems += vote_problems
        names = {name for _, name, _ in listed}
        problems += [Problem(str(files.summary), line, name, f"not listed in {SENTENCE_LIST}: ignored")
                     for name, (line, _) in sorted(votes.items()) if name not in names]
    classes = SHARED_EMOTIONS if options.classes == "shared" else ALL_CLASSES

    clips = []
    unknown_actors: dict[str, int] = {}
    for line, name, fields in listed:
        if fields.actor not in genders:
            unknown_actors.setdefault(fields.actor, line)
        extra: dict[str, object] = {"sentence": fields.sentence, "level": fields.level, "intended": fields.emotion}
        code: str | None = fields.emotion
        if policy == "perceived":
            code = None
            if name not in votes:
                problems.append(Problem(str(files.summary), None, name, "no MultiModalVote row: no perceived label"))
            else:
                vote_line, vote = votes[name]
                try:
                    code, tie_broken = perceived_code(vote, options.seed, name)
                    extra.update(vote=vote, tie_broken=tie_broken)
                except ValueError as error:
                    problems.append(Problem(str(files.summary), vote_line, name, f"{error}: no perceived label"))
        emotion = code.lower() if code is not None else None
        clips.append(ClipRecord(
            clip_id=name,
            corpus=CORPUS,
            speaker=fields.actor,
            gender=genders.get(fields.actor),
            emotion=emotion if emotion in classes else None,
            corpus_label=code,
            group="all",
            audio_path=str(files.root / AUDIO_FOLDER / f"{name}.wav"),
            audio_window=None,
            video_path=str(files.root / VIDEO_FOLDER / f"{name}.flv"),
            start=0.0,
            end=None,
            region="full",
            crop="face",
            extra=extra,
        ))
    problems += [Problem(str(files.sentences), line, None,
                         f"actor {actor} is not in {DEMOGRAPHICS}: gender unknown for their clips")
                 for actor, line in sorted(unknown_actors.items())]
    problems += _media_problems(files.root, [name for _, name, _ in listed])

    speakers = {clip.speaker: clip.gender for clip in clips}
    return CorpusClips(
        corpus=CORPUS,
        root=str(files.root),
        clips=tuple(sorted(clips, key=lambda clip: clip.clip_id)),
        problems=tuple(problems),
        classes=classes,
        label_policy=_policy_description(policy, options.seed),
        splits=actor_fold_splits(speakers, FOLDS, CORPUS),
    )


def _policy_description(policy: str, seed: int) -> dict[str, object]:
    if policy == "intended":
        return {"name": "intended", "source": "file name (the emotion the actor was asked to show)"}
    return {"name": "perceived", "source": f"processedResults/{SUMMARY} MultiModalVote (audio-visual crowd majority)",
            "ties": "seeded draw per clip id", "seed": seed}

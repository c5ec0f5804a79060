"""Any folder of labelled speech recordings -> audio-only clip records, without code of its own.

For a speech corpus that has no recipe: the user writes one CSV (ROOT/labels.csv, or the
file the `labels` setting names, relative to ROOT) with a header and one row per file:

  file,emotion,speaker,gender
  spk1/happy_01.wav,happy,spk1,F

`file` is relative to ROOT (`/` or `\\`), any format soundfile reads, any rate; `emotion`
a word of base.EMOTION_WORDS (anger, angry, ang, ...); `speaker` any text; `gender` F/M
(female, male, ...) or empty. Each file's header is read (corpus/audio_files.py): a bad
or missing file is a Problem and left out; one over 6 s is kept with its first 6 s.
A speaker given two genders gets none (a Problem says where). Audio files under ROOT that
the CSV does not list are Problems too (not clips): a label without media is an error,
media without a label a warning.

Splits: `fold-1..K` (setting `folds`, default 5): speaker-independent, dealt by gender
from the speakers sorted by id (folds.actor_fold_splits); none with fewer than 3 speakers.
Clip ids: base.path_id, the relative path made file-name safe, then 6 hex digits of the
path's sha256 (two paths that read alike stay apart).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from emoprep.corpus.audio_files import audio_clip, clip_end
from emoprep.corpus.base import (
    EMOTION_WORDS,
    GENDER_WORDS,
    SHARED_EMOTIONS,
    Choice,
    ClipRecord,
    CorpusClips,
    CorpusError,
    Problem,
    RecipeOptions,
    RecipeSpec,
    Setting,
    path_id,
    short_digest,
)
from emoprep.corpus.folds import actor_fold_splits

CORPUS = "audio-folder"
COLUMNS = ("file", "emotion", "speaker", "gender")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
SPEC = RecipeSpec(
    name=CORPUS,
    summary="any folder of speech recordings with a labels CSV (file, emotion, speaker, gender): "
            "docs/corpora/audio-folder.md",
    policies=(Choice("labels-file", "the emotion column of the labels CSV"),),
    settings=(Setting("labels", "the labels CSV, relative to --root", "labels.csv"),
              Setting("folds", "speaker-independent folds fold-1..K", "5", tuple(str(k) for k in range(2, 11)))),
)

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class Row:
    line: int
    relative: str  # POSIX path under the root
    emotion: str  # the word as written
    code: str  # its class code
    speaker: str  # as written
    gender: str | None


def speaker_id(written: str) -> str:
    """[A-Za-z0-9]+ as shards need; a name that had to be cleaned gets its digest, so two never merge."""
    cleaned = _NOT_ALNUM.sub("", written)
    return cleaned if cleaned == written else f"{cleaned}{short_digest(written)}"


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row with lower-case column names); CorpusError when the file or a column is missing."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [column for column in COLUMNS if column not in reader.fieldnames]
            if missing:
                raise CorpusError(f"{path}: no column {', '.join(missing)} in the header (expected "
                                  f"{','.join(COLUMNS)}; found {','.join(reader.fieldnames) or 'nothing'})")
            for row in reader:
                yield reader.line_num, {key: (value or "").strip() for key, value in row.items() if key}
    except FileNotFoundError:
        raise CorpusError(f"{path}: no labels CSV; write one with the columns {','.join(COLUMNS)} "
                          "(docs/corpora/audio-folder.md) or name it with --set labels=FILE") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"{path}: unreadable ({error})") from error


def read_rows(path: Path, root: Path, problems: list[Problem]) -> tuple[list[Row], set[str]]:
    """The CSV's usable rows (first listing of a file kept) and every path it names; other rows are Problems."""
    rows: list[Row] = []
    seen: dict[str, int] = {}
    named: set[str] = set()
    for line, row in _csv_rows(path):
        def bad(reason: str) -> None:
            problems.append(Problem(str(path), line, None, reason))

        relative = row["file"].replace("\\", "/")
        parts = PurePosixPath(relative).parts
        if not relative or relative.startswith("/") or ".." in parts:
            bad(f"file {row['file']!r} is not a path inside {root}: row left out")
            continue
        relative = PurePosixPath(*parts).as_posix()  # drops "./" and doubled slashes
        named.add(relative)
        if relative in seen:
            bad(f"{relative!r} is listed again (first at line {seen[relative]}): row ignored")
            continue
        code = EMOTION_WORDS.get(row["emotion"].lower())
        if code is None:
            bad(f"{relative}: unknown emotion {row['emotion']!r} (known: {', '.join(sorted(EMOTION_WORDS))}): "
                "row left out")
            continue
        if not _NOT_ALNUM.sub("", row["speaker"]):
            bad(f"{relative}: no speaker (speaker-independent folds need one; letters or digits): row left out")
            continue
        gender = GENDER_WORDS.get(row["gender"].lower()) if row["gender"] else None
        if row["gender"] and gender is None:
            bad(f"{relative}: gender {row['gender']!r} is neither F nor M: left unknown")
        seen[relative] = line
        rows.append(Row(line, relative, row["emotion"], code, row["speaker"], gender))
    return rows, named


def speaker_genders(rows: list[Row], path: Path, problems: list[Problem]) -> dict[str, str | None]:
    """Speaker -> gender; a speaker given both genders gets None, with a Problem naming the lines."""
    given: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        if row.gender is not None:
            given.setdefault(row.speaker, {}).setdefault(row.gender, []).append(row.line)
    genders: dict[str, str | None] = {row.speaker: None for row in rows}
    for speaker, lines in sorted(given.items()):
        if len(lines) == 1:
            genders[speaker] = next(iter(lines))
            continue
        where = "; ".join(f"{gender} at line{'s' * (len(at) > 1)} {', '.join(map(str, at))}"
                          for gender, at in sorted(lines.items()))
        problems.append(Problem(str(path), None, None, f"speaker {speaker!r} is given two genders ({where}): "
                                                       "gender unknown for all their files"))
    return genders


def _unlisted(root: Path, named: set[str], labels: Path) -> list[Problem]:
    """Audio files under root that the CSV does not name (hidden files and folders skipped)."""
    problems = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts) or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if relative.as_posix() not in named and path.is_file():
            problems.append(Problem(str(path), None, None, f"not listed in {labels.name}: ignored"))
    return problems


def read_clips(root: Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """Every usable row of the labels CSV as a record; bad rows, files and genders become Problems."""
    options = SPEC.check(options)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    labels = root / options.settings["labels"]
    problems: list[Problem] = []
    rows, named = read_rows(labels, root, problems)
    genders = speaker_genders(rows, labels, problems)
    everything = sorted({row.code for row in rows})
    classes = SHARED_EMOTIONS if options.classes == "shared" else tuple(everything)
    clips: list[ClipRecord] = []
    for row in rows:
        path = root / row.relative
        identifier = path_id(row.relative)
        if not path.is_file():
            problems.append(Problem(str(labels), row.line, identifier, f"names {path}, which is missing: row left out"))
            continue
        end = clip_end(path, identifier, problems)
        if end is None:
            continue
        clips.append(audio_clip(identifier, CORPUS, speaker_id(row.speaker), genders[row.speaker],
                                row.code if row.code in classes else None, row.emotion, path, end,
                                {"file": row.relative, "speaker": row.speaker}))
    problems += _unlisted(root, named, labels)
    speakers = {clip.speaker: clip.gender for clip in clips}
    return CorpusClips(
        corpus=CORPUS,
        root=str(root),
        clips=tuple(sorted(clips, key=lambda clip: clip.clip_id)),
        problems=tuple(problems),
        classes=classes,
        label_policy={"name": "labels-file", "source": str(labels)},
        splits=actor_fold_splits(speakers, int(options.settings["folds"]), CORPUS, prefix="fold"),
    )

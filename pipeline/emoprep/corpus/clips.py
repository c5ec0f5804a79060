"""The `clips` recipe: anyone's folder of videos or sound files, cut into windows of at most 6 s, for prediction.

Every video and every sound file (wav, flac, mp3, ogg) under the root (searched
recursively; hidden files and folders are left alone) becomes windows of `window`
seconds every `hop` seconds (settings "window" and "hop", default 6 and 6: a 17.9 s
video gives 0-6, 6-12, 12-17.9), one ClipRecord each. A video's window has its own
soundtrack over the window and the full picture (region "full"), cropped around the
face found there (crop "face"); a sound file's window is an audio-only clip (no video).

Unlike the metadata-only recipes this one opens every file's header (one `ffmpeg -i`
per video, emoprep.media.video.probe; soundfile's or ffmpeg's for a sound file,
emoprep.media.audio.audio_duration), since a window needs the file's duration. A file
that is not a video or sound file, has no picture (a video) or no sound (a sound file),
is cut short where its header can tell (a wav) or is shorter than one frame becomes a
Problem naming it; what only decoding can find (no audio stream, no face, a video cut
short after its header) is extract's to report, window by window.

An optional `labels.csv` at the root (header `path,emotion,gender,speaker`, path relative
to the root; any column but path may be empty) makes the folder a small labelled test
set: every window of a listed video takes its row's labels (emotion words mapped to class
codes by base.EMOTION_WORDS, anger/angry -> ang, happiness/happy/joy -> hap, ...; with the
shared classes anything outside ang, hap, neu, sad is kept as corpus_label only; gender
words by base.GENDER_WORDS), and one split, "labelled", puts every speaker in its test
part. Without it the set is unlabelled (emotion and gender None, no splits) and each video
is its own speaker. Settings (SPEC, `emoprep corpora clips`): window and hop.

Clip ids: the file's base.path_id (its relative path made file-name safe, then 6 hex digits
of the path's sha256: two paths that read alike after cleaning stay apart, and adding a
file never renames another's windows), then the window: `talks_monday_mp4-1a2b3c-w002`.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from emoprep.corpus.base import (
    EMOTION_WORDS,
    GENDER_WORDS,
    GENDERS,
    SHARED_EMOTIONS,
    Choice,
    ClipRecord,
    CorpusClips,
    CorpusError,
    Problem,
    RecipeOptions,
    RecipeSpec,
    Setting,
    SpeakerSplit,
    path_id,
    short_digest,
)
from emoprep.media.audio import audio_duration
from emoprep.media.bad_input import BadInput
from emoprep.media.video import FPS, probe

CORPUS = "clips"
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")  # audio-only windows
LABELS_FILE = "labels.csv"
LABEL_COLUMNS = ("path", "emotion", "gender", "speaker")
MAX_WINDOW = 6.0  # seconds: the shard format's and the model's cap
LABELLED_SPLIT = "labelled"
SPEC = RecipeSpec(
    name=CORPUS,
    summary="any folder of videos or sound files, cut into windows, for prediction; an optional "
            f"{LABELS_FILE} (path,emotion,gender,speaker) makes it a test set: docs/prediction.md",
    policies=(Choice(LABELS_FILE, f"the emotion column of ROOT/{LABELS_FILE} when it exists (else unlabelled)"),),
    settings=(Setting("window", f"seconds per window, at most {MAX_WINDOW:g}", "6"),
              Setting("hop", "seconds between window starts (less than window: overlapping windows)", "6")),
)

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


@dataclass(frozen=True)
class Windowing:
    window: float  # seconds, at most MAX_WINDOW
    hop: float  # seconds between window starts

    def windows(self, seconds: float) -> list[tuple[float, float]]:
        """[start, end) windows covering a video of `seconds`: stop at the first that reaches the end.

        A last window shorter than one frame is dropped (it holds no frame to look at),
        unless it would be the only one.
        """
        spans = []
        start = 0.0
        while True:
            end = min(start + self.window, seconds)
            spans.append((round(start, 6), round(end, 6)))
            if start + self.window >= seconds:
                break
            start += self.hop
        if len(spans) > 1 and spans[-1][1] - spans[-1][0] < 1 / FPS:
            spans.pop()
        return spans


@dataclass(frozen=True)
class VideoLabels:
    emotion: str | None
    corpus_label: str | None
    gender: str | None
    speaker: str | None


def read_clips(root: Path, options: RecipeOptions) -> CorpusClips:
    """The windows of every video and sound file under `root`. Raises CorpusError when root is not a folder or holds neither."""
    options = SPEC.check(options)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    windowing = windowing_from(options.settings)
    videos = find_media(root)
    if not videos:
        raise CorpusError(f"{root}: no videos or sound files here or below "
                          f"({', '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)}); point --root at the folder that holds them")
    problems: list[Problem] = []
    labels_path = root / LABELS_FILE
    labels = read_labels(labels_path, videos, options.classes, problems) if labels_path.is_file() else None

    clips: list[ClipRecord] = []
    for relative in videos:
        path = root / relative
        audio_only = path.suffix.lower() in AUDIO_SUFFIXES
        try:
            seconds = audio_duration(path) if audio_only else probe(str(path)).duration
        except BadInput as error:
            problems.append(Problem(str(path), None, None, str(error)))
            continue
        if seconds is None:
            problems.append(Problem(str(path), None, None, "its header gives no duration"))
            continue
        if seconds < 1 / FPS:
            problems.append(Problem(str(path), None, None,
                                    f"shorter than one frame ({seconds:.3f} s, a frame is {1 / FPS:.3f} s)"))
            continue
        video_labels = labels.get(relative) if labels is not None else None
        clips += video_windows(path, relative, seconds, windowing, video_labels, audio_only)
    classes = SHARED_EMOTIONS if options.classes == "shared" else tuple(sorted(
        {clip.emotion for clip in clips if clip.emotion is not None}))
    return CorpusClips(
        corpus=CORPUS,
        root=str(root),
        clips=tuple(sorted(clips, key=lambda clip: clip.clip_id)),
        problems=tuple(problems),
        classes=classes,
        label_policy={"name": LABELS_FILE if labels is not None else "none",
                      "window": windowing.window, "hop": windowing.hop},
        splits=labelled_split(clips) if labels is not None else (),
        labelled=labels is not None,
    )


def windowing_from(settings: Mapping[str, str]) -> Windowing:
    """The window and hop settings (SPEC.check filled in their defaults) as seconds; CorpusError for bad ones."""
    values = {}
    for name in ("window", "hop"):
        text = settings[name]
        try:
            values[name] = float(text)
        except ValueError:
            raise CorpusError(f"clips: {name} {text!r} is not a number of seconds") from None
        if not math.isfinite(values[name]) or values[name] <= 0:
            raise CorpusError(f"clips: {name} must be a positive number of seconds, got {text!r}")
    if values["window"] > MAX_WINDOW:
        raise CorpusError(f"clips: window {values['window']:g} s is longer than {MAX_WINDOW:g} s, "
                          "the longest sample a shard holds")
    return Windowing(window=values["window"], hop=values["hop"])


def find_media(root: Path) -> list[str]:
    """Relative POSIX paths of the video and sound files under root, sorted; hidden files and folders skipped."""
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # .git, .DS_Store, macOS "._name.mp4" resource forks: never the user's videos
        if path.suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES and path.is_file():
            found.append(relative.as_posix())
    return sorted(found)


def read_labels(path: Path, videos: list[str], classes: str,
                problems: list[Problem]) -> dict[str, VideoLabels]:
    """labels.csv -> relative video path -> labels; a bad row is a Problem naming its line."""
    known = set(videos)
    labels: dict[str, VideoLabels] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            columns = [name.strip().lower() for name in reader.fieldnames or []]
            if "path" not in columns:
                raise CorpusError(f"{path}: no 'path' column in its header (expected {','.join(LABEL_COLUMNS)})")
            reader.fieldnames = columns
            for row in reader:
                line = reader.line_num
                relative = (row.get("path") or "").strip().replace("\\", "/").removeprefix("./")
                if relative not in known:
                    problems.append(Problem(str(path), line, None,
                                            f"{relative!r} is not a video or sound file under {path.parent}"))
                    continue
                if relative in labels:
                    problems.append(Problem(str(path), line, None, f"{relative!r} is listed twice; the first row counts"))
                    continue
                labels[relative] = row_labels(row, classes, str(path), line, problems)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CorpusError(f"{path}: unreadable ({error})") from error
    return labels


def row_labels(row: dict[str, str], classes: str, path: str, line: int, problems: list[Problem]) -> VideoLabels:
    written = (row.get("emotion") or "").strip()
    gender_text = (row.get("gender") or "").strip()
    gender = GENDER_WORDS.get(gender_text.lower())
    if gender_text and gender is None:
        problems.append(Problem(path, line, None, f"gender {gender_text!r} is not one of {', '.join(GENDERS)}; "
                                                  "left unknown"))
    code = EMOTION_WORDS.get(written.lower())
    if classes == "shared":
        emotion = code if code in SHARED_EMOTIONS else None
    else:
        emotion = code or written.lower() or None
    speaker = _NOT_ALNUM.sub("", row.get("speaker") or "") or None
    return VideoLabels(emotion=emotion, corpus_label=written or None, gender=gender, speaker=speaker)


def video_speaker(relative: str) -> str:
    """One speaker per video when labels.csv does not say: [A-Za-z0-9]+, readable, unique by the digest."""
    return f"{_NOT_ALNUM.sub('', Path(relative).stem)[:24]}{short_digest(relative)}"


def video_windows(path: Path, relative: str, seconds: float, windowing: Windowing,
                  labels: VideoLabels | None, audio_only: bool = False) -> list[ClipRecord]:
    """The file's windows; a sound file's (audio_only) have no video."""
    spans = windowing.windows(seconds)
    stem = path_id(relative)
    return [
        ClipRecord(
            clip_id=f"{stem}-w{index:03d}",
            corpus=CORPUS,
            speaker=(labels.speaker if labels and labels.speaker else video_speaker(relative)),
            gender=labels.gender if labels else None,
            emotion=labels.emotion if labels else None,
            corpus_label=labels.corpus_label if labels else None,
            group="all",
            audio_path=str(path),
            audio_window=(start, end),
            video_path=None if audio_only else str(path),
            start=start,
            end=end,
            region="full",
            crop="face",
            extra={"source": relative, "window": index, "windows": len(spans),
                   "audio_seconds" if audio_only else "video_seconds": seconds},
        )
        for index, (start, end) in enumerate(spans)
    ]


def labelled_split(clips: list[ClipRecord]) -> tuple[SpeakerSplit, ...]:
    """One split whose test part is every speaker with a labelled window: the folder is a test set."""
    speakers = frozenset(clip.speaker for clip in clips if clip.emotion is not None)
    if not speakers:
        return ()
    return (SpeakerSplit(name=LABELLED_SPLIT, description=f"every labelled window of {LABELS_FILE}, as a test set",
                         train=frozenset(), val=frozenset(), test=speakers),)

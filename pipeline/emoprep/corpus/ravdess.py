"""RAVDESS on disk -> clip records, from the file names alone; no media file is opened.

Format facts: docs/corpora/ravdess.md. Every file is named
`<MM>-<VV>-<EE>-<II>-<SS>-<RR>-<AA>.<ext>` inside `Actor_<AA>/`. Only the
audio-video files (modality 01, `.mp4`) are clips: they hold both streams, so
the audio comes from the mp4 itself (extract resamples it to 16 kHz). The
video-only (02) and audio-only (03) copies of the same trials are never
counted as more utterances. Gender is the actor's parity (odd: male).

Label policy: `intended` only (the emotion the actor was asked to show, from the name).
Settings (SPEC):
- `song=1`: the sung clips too (group "song"; speech is group "speech"). Default: speech only.
- `merge_calm=1`: calm counts as neutral (corpus label kept as "calm"). Default: calm is its
  own class, outside the shared four, so it is not kept under `--classes shared`.
"""

from __future__ import annotations

import re
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
    RecipeOptions,
    RecipeSpec,
    Setting,
)
from emoprep.corpus.folds import actor_fold_splits

CORPUS = "ravdess"
SPEC = RecipeSpec(
    name=CORPUS,
    summary="RAVDESS: Actor_NN/ folders of the video zips (docs/corpora/ravdess.md)",
    policies=(Choice("intended", "the emotion the actor was asked to show (the file name)"),),
    settings=(
        Setting("song", "the sung trials too (group song; speech is group speech)", "0", FLAG),
        Setting("merge_calm", "calm counts as neutral (else calm is a class of its own, outside the shared four)",
                "0", FLAG),
    ),
)
FOLDS = 6  # of 4 actors each, 2 male and 2 female, on the full corpus

AUDIO_VIDEO, VIDEO_ONLY, AUDIO_ONLY = "01", "02", "03"
MODALITY_SUFFIX = {AUDIO_VIDEO: ".mp4", VIDEO_ONLY: ".mp4", AUDIO_ONLY: ".wav"}
CHANNELS = {"01": "speech", "02": "song"}
# The emotion field's codes, as the corpus documents them.
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
            "07": "disgust", "08": "surprised"}
INTENSITIES = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
ACTORS = 24
# Each emotion word's three-letter class; `--classes all` lists them alphabetically (as CREMA-D's six).
CLASS_OF = {"neutral": "neu", "calm": "cal", "happy": "hap", "sad": "sad", "angry": "ang", "fearful": "fea",
            "disgust": "dis", "surprised": "sur"}
ALL_CLASSES = tuple(sorted(CLASS_OF.values()))  # ang, cal, dis, fea, hap, neu, sad, sur

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_ACTOR_FOLDER = re.compile(r"^Actor_(\d{2})$")


@dataclass(frozen=True)
class TrialName:
    """The seven fields of a RAVDESS file name, decoded."""

    modality: str  # "01" audio-video, "02" video-only, "03" audio-only
    channel: str  # "speech" | "song"
    emotion: str  # "neutral", "calm", ...
    intensity: str  # "normal" | "strong"
    statement: int  # 1 | 2
    repetition: int  # 1 | 2
    actor: int  # 1..24

    @property
    def gender(self) -> str:
        return "M" if self.actor % 2 else "F"

    @property
    def speaker(self) -> str:
        return f"actor{self.actor:02d}"


def parse_name(stem: str) -> TrialName:
    """`01-01-05-02-01-02-07` -> its fields; ValueError naming the bad field otherwise."""
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("not a RAVDESS name: expected seven two-digit fields such as 01-01-05-02-01-02-07")
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()

    def check(field: str, value: str, allowed) -> None:
        if value not in allowed:
            raise ValueError(f"{field} {value}: expected one of {', '.join(sorted(allowed))}")

    check("modality", modality, MODALITY_SUFFIX)
    check("vocal channel", channel, CHANNELS)
    check("emotion", emotion, EMOTIONS)
    check("intensity", intensity, INTENSITIES)
    check("statement", statement, STATEMENTS)
    check("repetition", repetition, ("01", "02"))
    if not 1 <= int(actor) <= ACTORS:
        raise ValueError(f"actor {actor}: expected 01..{ACTORS}")
    if EMOTIONS[emotion] == "neutral" and INTENSITIES[intensity] == "strong":
        raise ValueError("neutral at strong intensity: RAVDESS has no such trial")
    return TrialName(modality, CHANNELS[channel], EMOTIONS[emotion], INTENSITIES[intensity],
                     int(statement), int(repetition), int(actor))


def _actor_folders(root: Path) -> list[Path]:
    """`Actor_NN` folders directly under root or one level down (the speech and song zips may sit apart)."""
    found = [p for p in root.iterdir() if p.is_dir() and _ACTOR_FOLDER.match(p.name)]
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not _ACTOR_FOLDER.match(p.name)):
        found += [p for p in child.iterdir() if p.is_dir() and _ACTOR_FOLDER.match(p.name)]
    return sorted(found)


def read_clips(root: Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """Every audio-video file under `Actor_NN/` folders as a record; names that do not parse become Problems."""
    options = SPEC.check(options)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    folders = _actor_folders(root)
    if not folders:
        raise CorpusError(f"{root}: no Actor_NN folders here or one level down; point --root at the folder "
                          "the Video_Speech_Actor_NN.zip files were unpacked into")
    song, merge_calm = options.flag("song"), options.flag("merge_calm")
    classes = [c for c in (SHARED_EMOTIONS if options.classes == "shared" else ALL_CLASSES)
               if not (merge_calm and c == "cal")]
    clips: dict[str, ClipRecord] = {}
    problems = []
    for folder in folders:
        folder_actor = int(_ACTOR_FOLDER.match(folder.name).group(1))
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or path.suffix.lower() not in (".mp4", ".wav"):
                continue  # archive debris (macOS `._*`), notes
            try:
                trial = parse_name(path.stem)
            except ValueError as error:
                problems.append(Problem(str(path), None, None, f"{error}: file ignored"))
                continue
            if path.suffix.lower() != MODALITY_SUFFIX[trial.modality]:
                problems.append(Problem(str(path), None, path.stem,
                                        f"modality {trial.modality} should be a {MODALITY_SUFFIX[trial.modality]} "
                                        "file: ignored"))
                continue
            if trial.actor != folder_actor:
                problems.append(Problem(str(path), None, path.stem,
                                        f"actor {trial.actor:02d} in the name but inside {folder.name}: ignored"))
                continue
            if trial.modality != AUDIO_VIDEO or (trial.channel == "song" and not song):
                continue  # another copy of an audio-video trial, or song when it was not asked for
            if path.stem in clips:
                problems.append(Problem(str(path), None, path.stem,
                                        f"a second copy (first: {clips[path.stem].video_path}): ignored"))
                continue
            label = "neu" if merge_calm and trial.emotion == "calm" else CLASS_OF[trial.emotion]
            clips[path.stem] = ClipRecord(
                clip_id=path.stem,
                corpus=CORPUS,
                speaker=trial.speaker,
                gender=trial.gender,
                emotion=label if label in classes else None,
                corpus_label=trial.emotion,
                group=trial.channel,
                audio_path=str(path),
                audio_window=None,
                video_path=str(path),
                start=0.0,
                end=None,
                region="full",
                crop="face",
                extra={"intensity": trial.intensity, "statement": trial.statement, "repetition": trial.repetition},
            )
    speakers = {clip.speaker: clip.gender for clip in clips.values()}
    return CorpusClips(
        corpus=CORPUS,
        root=str(root),
        clips=tuple(clips[key] for key in sorted(clips)),
        problems=tuple(problems),
        classes=tuple(classes),
        label_policy={"name": "intended", "source": "file name (the emotion the actor was asked to show)",
                      "song": song, "merge_calm": merge_calm},
        splits=actor_fold_splits(speakers, FOLDS, CORPUS),
    )

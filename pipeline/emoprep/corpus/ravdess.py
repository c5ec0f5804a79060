"""RAVDESS on disk -> clip records, from the file names and the audio files' headers.

Format facts: docs/corpora/ravdess.md. Every file is named
`<MM>-<VV>-<EE>-<II>-<SS>-<RR>-<AA>.<ext>` inside `Actor_<AA>/`. A trial (the name
without its modality field) is one clip, whichever releases of it are under the root:
- the audio-video file (modality 01, `.mp4`) holds both streams: the audio comes from
  the mp4 itself (extract resamples it to 16 kHz);
- the audio-only file (03, `.wav`, the speech release most speech work downloads)
  gives an audio-only clip (no video), its header probed (rate, channels, length; a
  zero-length, truncated or non-audio wav is a Problem); extract mixes stereo down;
- the video-only file (02) has no sound and is never a clip.
Setting `copies` picks which file stands for a trial (`auto`, the default: the
audio-video file where there is one, else the audio-only wav). With both there, their
lengths must agree (within LENGTH_TOLERANCE, the mp4's `mvhd` box against the wav's
header), or the trial is left out as a Problem: they may not be the same take.
Gender is the actor's parity (odd: male).

Label policy: `intended` only (the emotion the actor was asked to show, from the name).
Splits: `actor-1..6` (folds.actor_fold_splits) and EmoBox's six published folds, `emobox-1..6`
(speech only; validation taken from the training actors by folds.listed_test_splits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
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
from emoprep.corpus.folds import actor_fold_splits, listed_test_splits
from emoprep.media.audio import AudioError
from emoprep.media.headers import mp4_seconds, probe_audio

CORPUS = "ravdess"
COPIES = ("auto", "audio-video", "audio-only")
SPEC = RecipeSpec(
    name=CORPUS,
    summary="RAVDESS: Actor_NN/ folders of the video zips, the audio-only speech zip, or both "
            "(docs/corpora/ravdess.md)",
    policies=(Choice("intended", "the emotion the actor was asked to show (the file name)"),),
    settings=(
        Setting("copies", "which file is a trial's clip: auto = the audio-video mp4 where there is one, else "
                          "the audio-only wav; audio-video or audio-only = those files alone", "auto", COPIES),
        Setting("song", "the sung trials too (group song; speech is group speech)", "0", FLAG),
        Setting("merge_calm", "calm counts as neutral (else calm is a class of its own, outside the shared four)",
                "0", FLAG),
    ),
)
FOLDS = 6  # of 4 actors each, 2 male and 2 female, on the full corpus
# EmoBox's speaker-independent folds: each fold's test actors (../shared/corpora-format.md).
EMOBOX_TEST_ACTORS = ((1, 11, 20, 21), (4, 10, 12, 14), (8, 9, 19, 23), (3, 5, 7, 24), (2, 15, 16, 18),
                      (6, 13, 17, 22))
LENGTH_TOLERANCE = 0.25  # seconds two copies of one take may differ by (container and codec padding)

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
        return self.speaker_of(self.actor)

    @staticmethod
    def speaker_of(actor: int) -> str:
        return f"actor{actor:02d}"


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


@dataclass(frozen=True)
class _Copies:
    """The files of one trial found under the root: its audio-video mp4 and its audio-only wav."""

    trial: TrialName
    audio_video: Path | None = None
    audio_only: Path | None = None


def _find_trials(folders: list[Path], song: bool) -> tuple[dict[str, _Copies], list[Problem]]:
    """Trial key (the name without its modality) -> its copies; bad names and second copies are Problems."""
    trials: dict[str, _Copies] = {}
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
            if trial.modality == VIDEO_ONLY or (trial.channel == "song" and not song):
                continue  # no sound, or song when it was not asked for
            field = "audio_video" if trial.modality == AUDIO_VIDEO else "audio_only"
            key = path.stem[3:]
            copies = trials.get(key, _Copies(trial))
            if getattr(copies, field) is not None:
                problems.append(Problem(str(path), None, path.stem,
                                        f"a second copy (first: {getattr(copies, field)}): ignored"))
                continue
            trials[key] = replace(copies, **{field: path})
    return trials, problems


def _choose(copies: _Copies, mode: str) -> tuple[Path | None, float | None, Problem | None]:
    """The file that stands for the trial (None: none in this mode, or left out), a wav's length, and why not.

    A wav's header is read only when it may be used: as the clip, or to check that it
    is the same take as the mp4 beside it.
    """
    mp4 = copies.audio_video if mode != "audio-only" else None
    wav = copies.audio_only if mode != "audio-video" else None
    if mp4 is not None and wav is None:
        return mp4, None, None
    if wav is None:
        return None, None, None
    video_seconds = None if mp4 is None else mp4_seconds(mp4)
    if mp4 is not None and video_seconds is None:
        return mp4, None, None  # no length to compare with: the audio-video copy, as with no wav
    try:
        seconds = probe_audio(wav).seconds
    except AudioError as error:
        if mp4 is not None:
            return mp4, None, Problem(str(wav), None, wav.stem, f"{error}; the audio-video copy {mp4.name} is used")
        return None, None, Problem(str(wav), None, wav.stem, f"{error}: trial left out")
    if mp4 is None:
        return wav, seconds, None
    if abs(seconds - video_seconds) > LENGTH_TOLERANCE:
        return None, None, Problem(str(wav), None, wav.stem,
                                   f"lasts {seconds:.2f} s but its audio-video copy {mp4} lasts {video_seconds:.2f} s: "
                                   "not the same take? trial left out (set copies=audio-only or audio-video to "
                                   "use one of them)")
    return mp4, None, None


def read_clips(root: Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """One record per trial under `Actor_NN/` folders (see the module docstring); bad input becomes Problems."""
    options = SPEC.check(options)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    folders = _actor_folders(root)
    if not folders:
        raise CorpusError(f"{root}: no Actor_NN folders here or one level down; point --root at the folder "
                          "the Video_Speech_Actor_NN.zip or Audio_Speech_Actors_01-24.zip files were unpacked into")
    song, merge_calm, mode = options.flag("song"), options.flag("merge_calm"), options.settings["copies"]
    classes = [c for c in (SHARED_EMOTIONS if options.classes == "shared" else ALL_CLASSES)
               if not (merge_calm and c == "cal")]
    trials, problems = _find_trials(folders, song)
    clips = []
    for key in sorted(trials):
        trial = trials[key].trial
        path, seconds, problem = _choose(trials[key], mode)
        if problem is not None:
            problems.append(problem)
        if path is None:
            continue
        audio_only = path.suffix.lower() == ".wav"
        label = "neu" if merge_calm and trial.emotion == "calm" else CLASS_OF[trial.emotion]
        clips.append(ClipRecord(
            clip_id=path.stem,
            corpus=CORPUS,
            speaker=trial.speaker,
            gender=trial.gender,
            emotion=label if label in classes else None,
            corpus_label=trial.emotion,
            group=trial.channel,
            audio_path=str(path),
            audio_window=None,
            video_path=None if audio_only else str(path),
            start=0.0,
            end=round(seconds, 6) if audio_only else None,
            region="full",
            crop="face",
            extra={"intensity": trial.intensity, "statement": trial.statement, "repetition": trial.repetition},
        ))
    speakers = {clip.speaker: clip.gender for clip in clips}
    emobox = [[TrialName.speaker_of(actor) for actor in fold] for fold in EMOBOX_TEST_ACTORS]
    return CorpusClips(
        corpus=CORPUS,
        root=str(root),
        clips=tuple(sorted(clips, key=lambda clip: clip.clip_id)),
        problems=tuple(problems),
        classes=tuple(classes),
        label_policy={"name": "intended", "source": "file name (the emotion the actor was asked to show)",
                      "song": song, "merge_calm": merge_calm, "copies": mode},
        splits=(*actor_fold_splits(speakers, FOLDS, CORPUS),
                *listed_test_splits(speakers, emobox, "emobox", "EmoBox's RAVDESS",
                                    groups=frozenset({"speech"}))),
    )

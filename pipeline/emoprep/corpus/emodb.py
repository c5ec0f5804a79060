"""EmoDB (the Berlin Database of Emotional Speech) on disk -> audio-only clip records.

Format facts: docs/corpora/emodb.md. Every utterance is `wav/<SS><TTT><E><V>.wav`:
speaker SS, text TTT, emotion E (the German initial), version V (a, b, ...: takes of
one sentence), e.g. `03a01Fa.wav`. The names and the wavs' headers are all that is
read (corpus/audio_files.py): any sample rate and any length is taken, as copies
circulate resampled (22.05 kHz) and cut or padded to a fixed length; extract converts
to 16 kHz and keeps at most 6 s. Gender is not in the name: it is the corpus's speaker
table (SPEAKERS).

Label policy: `intended` only (the emotion the actor was asked to show, from the name).
Classes: `shared` (ang, hap, neu, sad) or `all` (the seven, by three-letter code).
Splits: leave one speaker out, `loso-1..10` (folds.actor_fold_splits with one speaker a
fold: the five men by id, then the five women; validation is the next fold's speaker).
"""

from __future__ import annotations

import re
from pathlib import Path

from emoprep.corpus.audio_files import audio_clip, clip_end
from emoprep.corpus.base import (
    SHARED_EMOTIONS,
    Choice,
    CorpusClips,
    CorpusError,
    Problem,
    RecipeOptions,
    RecipeSpec,
)
from emoprep.corpus.folds import actor_fold_splits

CORPUS = "emodb"
SPEC = RecipeSpec(
    name=CORPUS,
    summary="EmoDB: 10 German actors, 535 utterances in wav/ (docs/corpora/emodb.md)",
    policies=(Choice("intended", "the emotion the actor was asked to show (the file name)"),),
)
WAV_FOLDER = "wav"
# The corpus's speaker table: gender is not in the names.
SPEAKERS = {"03": "M", "08": "F", "09": "F", "10": "M", "11": "M", "12": "M", "13": "F", "14": "F", "15": "M",
            "16": "F"}
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
# The emotion letter (German initial) -> the corpus's word and the class code.
EMOTIONS = {"W": ("Ärger", "ang"), "L": ("Langeweile", "bor"), "E": ("Ekel", "dis"), "A": ("Angst", "fea"),
            "F": ("Freude", "hap"), "T": ("Trauer", "sad"), "N": ("neutral", "neu")}
ALL_CLASSES = tuple(sorted(code for _, code in EMOTIONS.values()))  # ang, bor, dis, fea, hap, neu, sad

_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[ab]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")


def parse_name(stem: str) -> tuple[str, str, str, str]:
    """`03a01Fa` -> (speaker, text, emotion letter, version); ValueError naming the bad field otherwise."""
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("not an EmoDB name: expected <speaker><text><emotion><version> such as 03a01Fa")
    speaker, text, emotion, version = match.group("speaker", "text", "emotion", "version")
    if speaker not in SPEAKERS:
        raise ValueError(f"speaker {speaker}: expected one of {', '.join(SPEAKERS)}")
    if text not in TEXTS:
        raise ValueError(f"text {text}: expected one of {', '.join(TEXTS)}")
    if emotion not in EMOTIONS:
        raise ValueError(f"emotion {emotion}: expected one of {', '.join(EMOTIONS)}")
    return speaker, text, emotion, version


def find_wavs(root: Path) -> Path:
    """The folder of the utterance wavs: ROOT/wav, or ROOT itself when it is that folder."""
    if not root.is_dir():
        raise CorpusError(f"{root}: no such folder")
    for folder in (root / WAV_FOLDER, root):
        if folder.is_dir() and any(_NAME.match(p.stem) for p in folder.glob("*.wav")):
            return folder
    raise CorpusError(f"{root}: no EmoDB wavs (such as 03a01Fa.wav) in {root / WAV_FOLDER} or here; "
                      "point --root at the unpacked EmoDB folder (the one holding wav/)")


def read_clips(root: Path, options: RecipeOptions = RecipeOptions()) -> CorpusClips:
    """Every `wav/*.wav` with an EmoDB name as a record; bad names and unusable wavs become Problems."""
    options = SPEC.check(options)
    folder = find_wavs(Path(root))
    classes = SHARED_EMOTIONS if options.classes == "shared" else ALL_CLASSES
    clips = []
    problems: list[Problem] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() != ".wav":
            continue  # archive debris (macOS `._*`), the label folders' files
        try:
            speaker, text, emotion, version = parse_name(path.stem)
        except ValueError as error:
            problems.append(Problem(str(path), None, None, f"{error}: file ignored"))
            continue
        end = clip_end(path, path.stem, problems)
        if end is None:
            continue
        word, code = EMOTIONS[emotion]
        clips.append(audio_clip(path.stem, CORPUS, f"spk{speaker}", SPEAKERS[speaker],
                                code if code in classes else None, word, path, end,
                                {"text": text, "version": version}))
    return CorpusClips(
        corpus=CORPUS,
        root=str(folder.parent if folder == Path(root) / WAV_FOLDER else folder),
        clips=tuple(clips),
        problems=tuple(problems),
        classes=classes,
        label_policy={"name": "intended", "source": "file name (the emotion the actor was asked to show)"},
        splits=actor_fold_splits({clip.speaker: clip.gender for clip in clips}, len(SPEAKERS), CORPUS, prefix="loso"),
    )

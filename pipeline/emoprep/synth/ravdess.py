"""A synthetic RAVDESS: the real folder and file names and codecs, with a learnable signal.

Layout (the Video_Speech_Actor_NN.zip files unpacked side by side):

  RAVDESS/Actor_NN/01-<VV>-<EE>-<II>-<SS>-<RR>-<NN>.mp4   1280x720 29.97 fps H.264 + AAC 48 kHz stereo

plus, in Actor_01 only, a video-only (02-) mp4 and an audio-only (03-) wav
(48 kHz, 16-bit) of its first two trials: present so that tests can show they
are never counted as more utterances. Defaults are small (4 actors, one
statement and repetition, both intensities: 15 speech clips per actor) so
tests stay fast; `song` adds the sung trials (none for Actor_18, as in the
real corpus). The voice and face carry the file name's emotion; a clip is
drawn per (seed, actor, trial), whatever order or thread writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from emoprep.corpus.ravdess import CLASS_OF, EMOTIONS
from emoprep.synth.face import FRAME_RATE
from emoprep.synth.full_frame import ActedClip, Framing, clip_audio, clip_frames
from emoprep.synth.output import (
    BITEXACT,
    TwinSummary,
    encode_video,
    generate_twin,
    remove_leftovers,
    write_wav,
)
from emoprep.synth.plan import GRID, SAMPLE_RATE
from emoprep.synth.signal import draw_face, draw_voice

CORPUS_FOLDER = "RAVDESS"
GENERATOR_VERSION = 1
FRAMING = Framing(1280, 720, (245, 245, 245))  # RAVDESS's white backdrop
AUDIO_RATE = 48_000
SONG_EMOTIONS = ("01", "02", "03", "04", "05", "06")  # no disgust or surprise in song
NO_SONG_ACTOR = 18
EXTRA_COPIES = 2  # Actor_01's first trials also get a video-only and an audio-only file
README = """A SYNTHETIC corpus in RAVDESS's file-name and media format, made by `emoprep synth --corpus ravdess`.
Voices and faces are generated; they carry the emotion in each file's name by construction.
Parameters: {parameters}
"""


@dataclass(frozen=True)
class RavdessParams:
    actors: int = 4  # Actor_01.., odd male, even female
    statements: int = 1
    repetitions: int = 1
    intensities: int = 2  # 1: normal only
    song: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.actors <= 24:
            raise ValueError(f"actors={self.actors}: RAVDESS has 24 actors, choose 1 to 24")
        for name in ("statements", "repetitions", "intensities"):
            if getattr(self, name) not in (1, 2):
                raise ValueError(f"{name}={getattr(self, name)}: RAVDESS has 2, choose 1 or 2")


@dataclass(frozen=True)
class TwinTrial:
    name: str  # "01-01-05-02-01-02-07" (modality 01); the 02-/03- copies share the other fields
    actor: int
    emotion: str  # "angry"
    acted: ActedClip
    copies: bool  # also written as a video-only mp4 and an audio-only wav

    def path(self, root: Path, modality: str = "01") -> Path:
        suffix = ".wav" if modality == "03" else ".mp4"
        return root / f"Actor_{self.actor:02d}" / f"{modality}{self.name[2:]}{suffix}"


def plan_ravdess(params: RavdessParams) -> tuple[TwinTrial, ...]:
    trials = []
    for actor in range(1, params.actors + 1):
        gender = "M" if actor % 2 else "F"
        pitch_rng = np.random.default_rng([params.seed, 0x7AD, actor])
        pitch = float(pitch_rng.uniform(90, 125) if gender == "M" else pitch_rng.uniform(200, 250))
        channels = [("01", tuple(EMOTIONS))]
        if params.song and actor != NO_SONG_ACTOR:
            channels.append(("02", SONG_EMOTIONS))
        fields = [(channel, emotion, intensity, statement, repetition)
                  for channel, emotions in channels for emotion in emotions
                  for intensity in range(1, params.intensities + 1) if not (emotion == "01" and intensity == 2)
                  for statement in range(1, params.statements + 1)
                  for repetition in range(1, params.repetitions + 1)]
        for channel, emotion, intensity, statement, repetition in fields:
            name = f"01-{channel}-{emotion}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}"
            rng = np.random.default_rng([params.seed, 0x7AD, actor, int(name.replace("-", ""))])
            style = CLASS_OF[EMOTIONS[emotion]]
            trials.append(TwinTrial(
                name=name,
                actor=actor,
                emotion=EMOTIONS[emotion],
                acted=ActedClip(
                    gender=gender,
                    lead_samples=int(rng.integers(6, 12)) * GRID,  # the clips start and end with silence
                    voice_samples=int(rng.integers(22, 38)) * GRID,  # 1.4 .. 2.3 s
                    tail_samples=int(rng.integers(6, 12)) * GRID,
                    voice=draw_voice(rng, style, pitch * (1.15 if channel == "02" else 1.0)),
                    face=draw_face(rng, style, gender),
                    noise_seed=int(rng.integers(2**62)),
                ),
                copies=actor == 1 and len(trials) < EXTRA_COPIES,
            ))
    return tuple(trials)


def write_trial(root: Path, trial: TwinTrial) -> None:
    """The trial's copies first, then its audio-video mp4 (whose presence marks the trial complete)."""
    mp4, video_only, audio_only = (trial.path(root, m) for m in ("01", "02", "03"))
    # The 16 kHz voice as the encoder's input (resampled to 48 kHz stereo AAC): a hidden name, removed after.
    source = mp4.with_name(f".{mp4.stem}.source.wav")
    remove_leftovers([mp4, video_only, audio_only, source])
    audio = clip_audio(trial.acted)
    size = (FRAMING.width, FRAMING.height)
    video = {"format": "mp4", "vcodec": "libx264", "preset": "ultrafast", "crf": 23, "pix_fmt": "yuv420p",
             "movflags": "+faststart", **BITEXACT}
    if trial.copies:
        write_wav(audio_only, resample_poly(audio.astype(np.float64), AUDIO_RATE // SAMPLE_RATE, 1)
                  .round().clip(-32768, 32767).astype(np.int16), AUDIO_RATE)
        encode_video(video_only, clip_frames(FRAMING, trial.acted), size, FRAME_RATE, None, trial.name, **video)
    try:
        write_wav(source, audio, SAMPLE_RATE)
        encode_video(mp4, clip_frames(FRAMING, trial.acted), size, FRAME_RATE, source, trial.name,
                     acodec="aac", ar=AUDIO_RATE, ac=2, **{"b:a": "128k"}, **video)
    finally:
        source.unlink(missing_ok=True)


def generate_ravdess(out: str | Path, params: RavdessParams = RavdessParams(), workers: int = 2,
                     progress: Callable[[TwinTrial], None] | None = None) -> TwinSummary:
    """Write a synthetic RAVDESS to `out`/RAVDESS; resume one left unfinished."""
    stamp = {"generator": "emoprep synth", "corpus": "ravdess", "version": GENERATOR_VERSION, **asdict(params)}
    return generate_twin(Path(out), CORPUS_FOLDER, stamp, {"README.txt": README.format(parameters=asdict(params))},
                         plan_ravdess(params), lambda root, trial: trial.path(root), write_trial, workers, progress)

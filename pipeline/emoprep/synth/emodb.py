"""A synthetic EmoDB: the real folder and file names, 16-bit mono wavs, a learnable voice.

Layout (the unpacked download, label folders left out):

  EmoDB/wav/<SS><TTT><E><V>.wav   16 kHz mono 16-bit (the original release; `sample_rate` writes a
                                  resampled copy, as circulate at 22.05 kHz)
  EmoDB/README.txt                says it is synthetic

Speakers come in the corpus's table order (03 M, 08 F, 09 F, 10 M, ...), so the default
ten have its five men and five women; each says `texts` texts in all seven emotions,
`versions` takes each (a, b, ...). The voice carries the name's emotion and the
speaker's gender (pitch) by construction; an utterance is drawn per (seed, name),
whatever order or thread writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from emoprep.corpus.emodb import EMOTIONS, SPEAKERS, TEXTS
from emoprep.synth.full_frame import ActedClip, clip_audio
from emoprep.synth.output import TwinSummary, generate_twin, remove_leftovers, write_wav
from emoprep.synth.plan import GRID, SAMPLE_RATE
from emoprep.synth.signal import draw_voice

CORPUS_FOLDER = "EmoDB"
GENERATOR_VERSION = 1
RATES = (8000, 16000, 22050, 44100, 48000)
README = """A SYNTHETIC corpus in EmoDB's file-name and audio format, made by `emoprep synth --corpus emodb`.
Voices are generated; they carry the emotion in each file's name by construction.
Parameters: {parameters}
"""


@dataclass(frozen=True)
class EmodbParams:
    speakers: int = 10  # the first N of the corpus's speaker table
    texts: int = 1  # of its ten texts
    versions: int = 1  # takes per text and emotion: a, b, ...
    sample_rate: int = 16_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.speakers <= len(SPEAKERS):
            raise ValueError(f"speakers={self.speakers}: EmoDB has {len(SPEAKERS)}, choose 1 to {len(SPEAKERS)}")
        if not 1 <= self.texts <= len(TEXTS):
            raise ValueError(f"texts={self.texts}: EmoDB has {len(TEXTS)}, choose 1 to {len(TEXTS)}")
        if not 1 <= self.versions <= 3:
            raise ValueError(f"versions={self.versions}: choose 1 to 3")
        if self.sample_rate not in RATES:
            raise ValueError(f"sample_rate={self.sample_rate}: choose one of {', '.join(map(str, RATES))}")


@dataclass(frozen=True)
class TwinUtterance:
    name: str  # "03a01Fa"
    emotion: str  # the class code, "hap"
    acted: ActedClip  # no face: EmoDB has no video

    def path(self, root: Path) -> Path:
        return root / "wav" / f"{self.name}.wav"


def plan_emodb(params: EmodbParams) -> tuple[TwinUtterance, ...]:
    utterances = []
    for speaker in list(SPEAKERS)[:params.speakers]:
        gender = SPEAKERS[speaker]
        pitch_rng = np.random.default_rng([params.seed, 0xE30D, int(speaker)])
        pitch = float(pitch_rng.uniform(95, 130) if gender == "M" else pitch_rng.uniform(190, 240))
        for text in TEXTS[:params.texts]:
            for letter, (_, code) in EMOTIONS.items():
                for version in "abc"[:params.versions]:
                    name = f"{speaker}{text}{letter}{version}"
                    rng = np.random.default_rng([params.seed, 0xE30D, *name.encode()])
                    utterances.append(TwinUtterance(name, code, ActedClip(
                        gender=gender,
                        lead_samples=int(rng.integers(2, 6)) * GRID,  # cut close to the voice, as EmoDB's are
                        voice_samples=int(rng.integers(20, 40)) * GRID,  # 1.3 .. 2.5 s
                        tail_samples=int(rng.integers(2, 6)) * GRID,
                        voice=draw_voice(rng, code, pitch),
                        face=None,
                        noise_seed=int(rng.integers(2**62)),
                    )))
    return tuple(utterances)


def write_utterance(root: Path, utterance: TwinUtterance, rate: int) -> None:
    path = utterance.path(root)
    remove_leftovers([path])
    audio = clip_audio(utterance.acted)
    if rate != SAMPLE_RATE:
        divisor = gcd(rate, SAMPLE_RATE)
        audio = resample_poly(audio.astype(np.float64), rate // divisor, SAMPLE_RATE // divisor)
        audio = audio.round().clip(-32768, 32767).astype(np.int16)
    write_wav(path, audio, rate)


def generate_emodb(out: str | Path, params: EmodbParams = EmodbParams(), workers: int = 2,
                   progress: Callable[[TwinUtterance], None] | None = None) -> TwinSummary:
    """Write a synthetic EmoDB to `out`/EmoDB; resume one left unfinished."""
    stamp = {"generator": "emoprep synth", "corpus": "emodb", "version": GENERATOR_VERSION, **asdict(params)}
    return generate_twin(Path(out), CORPUS_FOLDER, stamp, {"README.txt": README.format(parameters=asdict(params))},
                         plan_emodb(params), lambda root, utterance: utterance.path(root),
                         lambda root, utterance: write_utterance(root, utterance, params.sample_rate),
                         workers, progress)

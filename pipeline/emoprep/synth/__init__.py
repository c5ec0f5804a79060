"""A synthetic corpus in IEMOCAP's exact on-disk layout, for tests and the demo.

  plan.py         what the corpus holds: dialogs, utterances, evaluations (pure)
  signal.py       how emotion and gender show in voice and face (pure parameters)
  annotations.py  EmoEvaluation and transcription text (pure)
  voice.py        dialog audio as arrays
  face.py         dialog video frames as arrays
  render.py       writing it all to disk (soundfile, ffmpeg), resumably
"""

from emoprep.synth.face import BACKGROUNDS, LEFT_BACKGROUND, RIGHT_BACKGROUND
from emoprep.synth.plan import SynthDialog, SynthParams, SynthUtterance, plan_corpus
from emoprep.synth.output import SynthError
from emoprep.synth.render import CORPUS_FOLDER, SynthSummary, generate_corpus

__all__ = [
    "BACKGROUNDS",
    "CORPUS_FOLDER",
    "LEFT_BACKGROUND",
    "RIGHT_BACKGROUND",
    "SynthDialog",
    "SynthError",
    "SynthParams",
    "SynthSummary",
    "SynthUtterance",
    "generate_corpus",
    "plan_corpus",
]

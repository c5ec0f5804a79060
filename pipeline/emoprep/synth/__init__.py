"""Synthetic corpora in IEMOCAP's, CREMA-D's, RAVDESS's and EmoDB's exact on-disk layouts, for tests and the demo.

  plan.py         IEMOCAP: what the corpus holds: dialogs, utterances, evaluations (pure)
  signal.py       how emotion and gender show in voice and face (pure parameters)
  annotations.py  IEMOCAP: EmoEvaluation and transcription text (pure)
  voice.py        audio as arrays
  face.py         the face sprite; IEMOCAP's two-actor dialog frames as arrays
  full_frame.py   one actor filling the frame (CREMA-D, RAVDESS): frames and audio as arrays
  output.py       writing any of them to disk (soundfile, ffmpeg), resumably
  render.py       IEMOCAP to disk
  crema_d.py      CREMA-D: plan, CSVs, files
  ravdess.py      RAVDESS: plan, files
  emodb.py        EmoDB: plan, wavs (audio only)
"""

from emoprep.synth.face import BACKGROUNDS, LEFT_BACKGROUND, RIGHT_BACKGROUND
from emoprep.synth.output import SynthError
from emoprep.synth.plan import SynthDialog, SynthParams, SynthUtterance, plan_corpus
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

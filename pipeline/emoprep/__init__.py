"""emoprep: turn the IEMOCAP corpus into WebDataset shards for emotrain.

Architecture (one module per idea):
  corpus/iemocap.py  parse a corpus root into typed records (no media I/O)
  labels.py          label policies (paper majority vote, released) -> labels table
  synth/             a synthetic corpus in IEMOCAP's exact on-disk format
  media/             the edges: ffmpeg binary, audio and video readers, face detectors
  extract.py         per-utterance waveform + face crops into WORK, resumable
  shard.py           WORK -> deterministic WebDataset shards + splits.json
  verify.py, inspect.py  check and look at shards
  commands/          thin click commands, one per verb
"""

__version__ = "0.1.0"

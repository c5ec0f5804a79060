"""emoprep: turn an audio-visual emotion corpus (IEMOCAP, CREMA-D, RAVDESS) into WebDataset shards for emotrain.

Architecture (one module per idea):
  corpus/            one recipe per corpus: its metadata -> typed clip records, label policies, splits
                     (no media I/O); the only place that knows a corpus
  labels.py          clip records -> the labels table (Parquet), whatever the corpus
  synth/             synthetic corpora in IEMOCAP's, CREMA-D's and RAVDESS's exact on-disk formats
  media/             the edges: ffmpeg binary, container headers, audio and video readers, face detectors,
                     the face track and the crops cut along it
  work.py            the WORK folder: its layout, the per-utterance record, the manifest's one schema
  utterance.py       one utterance's waveform + face crops (or audio alone) into WORK, then its record
  extract.py         the extract run: every kept clip through a worker pool, locked, resumable
  failed_inputs.py   the files and windows of a WORK folder that gave no sample, for predictions tables
  shard.py           WORK -> deterministic WebDataset shards + splits.json
  verify.py, inspect.py  check and look at shards
  commands/          thin click commands, one per verb
"""

__version__ = "0.1.0"

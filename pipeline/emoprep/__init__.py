"""emoprep: turn an emotion corpus (IEMOCAP, CREMA-D, RAVDESS, EmoDB, any labelled audio folder, any folder of
videos or audio files) into WebDataset shards for emotrain.

Architecture (one module per idea):
  corpus/            one recipe per corpus: its files -> typed clip records, its options (SPEC), label
                     policies and splits; the only place that knows a corpus. Recipes read metadata and
                     media headers (probes, wav headers), never decode media
  labels.py          clip records -> the labels table (Parquet), whatever the corpus
  synth/             synthetic twins in each corpus's exact on-disk layout
  media/             the edges: ffmpeg binary, container and audio headers, audio and video readers, face
                     detectors, the face track and the crops cut along it
  work.py            the WORK folder: its layout, the per-utterance record, the manifest's one schema
  utterance.py       one utterance's waveform + face crops (or audio alone) into WORK, then its record
  extract.py         the extract run: every kept clip through a worker pool, locked, resumable
  failed_inputs.py   the files and windows of a WORK folder that gave no sample, for predictions tables
  shard.py           WORK -> deterministic WebDataset shards + splits.json
  verify.py          re-hash and decode a shard set (through shardformat's one reader)
  inspection.py      counts and a contact sheet of a shard set (`emoprep inspect`)
  commands/          thin click commands, one per verb
"""

__version__ = "0.1.0"

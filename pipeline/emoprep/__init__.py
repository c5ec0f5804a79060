"""emoprep: turn an emotion corpus (IEMOCAP, CREMA-D, RAVDESS, EmoDB, any labelled audio folder, any folder of
videos or audio files) into WebDataset shards for emotrain.

Architecture (one module per idea):
  corpus/            one recipe per corpus: its files -> typed clip records, its options (SPEC), label
                     policies and splits; the only place that knows a corpus. Recipes read metadata and
                     media headers (probes, wav headers), never decode media
  labels.py          clip records -> the labels table (Parquet), whatever the corpus
  synth/             synthetic twins in each corpus's exact on-disk layout
  media/             the edges: ffmpeg binary, audio and video readers, headers, face detectors and tracks
  extract.py         per-utterance waveform + face crops into WORK, resumable
  shard.py           WORK -> deterministic WebDataset shards + splits.json
  verify.py          re-hash and decode a shard set (through shardformat's one reader)
  inspection.py      counts and a contact sheet of a shard set (`emoprep inspect`)
  commands/          thin click commands, one per verb
"""

__version__ = "0.1.0"

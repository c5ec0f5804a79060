"""emotrain: train the paper's audio-visual model on emoprep's shards.

Reads only the shard format (shards/README.md, through `shardformat`'s one reader); imports
nothing from emoprep, face-alignment, OpenCV or ffmpeg.

  sources.py            where shards come from: folders, HTTP, pipe:, s3://, gs:// (bounded waits, retries)
  data.py               splits.json/index.json -> WebDataset stages -> the one Batch (with presence masks)
  model.py              the paper's network (audio CNN + ResNet-50 + LSTM, two heads) and a small twin
  fftconv.py            the long audio convolution as an FFT product (same function as Conv1d)
  weighting.py          joint loss weightings: static, dynamic (the paper's), uncertainty, dwa
  objective.py          model + weighting in one module: every loss term of a batch; the device
  metrics.py            WA, UA, macro-F1, confusion matrices, NLL sums; metrics_log.py: metrics.jsonl
  config.py             a run's configuration (TrainConfig), checked; RUN/config.json
  checkpoint.py         checkpoints written atomically, read weights-only; atomic.py: atomic writes
  train.py              the training loop, top to bottom (fit)
  run_folder.py         a trained run loaded: config.json and a checkpoint, checked together (load_run)
  evaluate.py           a run scored on a part of a split
  predict.py            probabilities for decoded samples and for shards (Predictor, predict_shards);
                        prediction_table.py: the tables and timelines emotrain predict writes
  experiment.py         the paper's Table 1 / Figure 2 over every fold x configuration x seed, in one command;
                        experiment_plan.py: its records; experiment_report.py: tables, paired tests, figures;
                        stats.py: the paired statistics; provenance.py: the commands an experiment folder keeps
  cli.py, commands/     the click verbs: fit, evaluate, experiment, predict
"""

__version__ = "0.1.0"

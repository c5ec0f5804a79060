"""emotrain: train the paper's audio-visual model on emoprep's shards.

Reads only the shard format (shards/README.md); imports nothing from emoprep,
face-alignment, OpenCV or ffmpeg.

  data.py       shard lists -> WebDataset stages -> padded batches
  model.py      the paper's network (audio CNN + ResNet-50 + LSTM, two heads) and a small twin
  fftconv.py    the long audio convolution as an FFT product (same function as Conv1d)
  weighting.py  joint loss weightings: static, dynamic (the paper's), uncertainty, dwa
  metrics.py    WA, UA, macro-F1, confusion matrices, NLL sums
  train.py      the training loop, top to bottom (fit); evaluate.py: evaluate a run
  experiment.py the paper's Table 1 / Figure 2 over every fold x configuration x seed, in one command
  experiment_report.py  its tables, paired tests and figures; stats.py: the paired statistics
  provenance.py the commands and environment an experiment folder keeps
"""

__version__ = "0.1.0"

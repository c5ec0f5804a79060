#!/bin/bash
# The video-alone runs of docs/experiments.md: video only, the demo's settings, one weighting per run.
# Run from the repository root with the synthetic shards in data/shards (see docs/experiments.md).
set -e
fit() {  # NAME WEIGHTING STATIC_WEIGHTS SEED
  OMP_NUM_THREADS=1 nice -n 10 emotrain fit --shards data/shards --split paper --modality v --model small \
    --epochs 8 --lr 3e-3 --lr-step 100 --batch-size 4 --workers 0 \
    --weighting "$2" --static-weights "$3" --seed "$4" --out "data/video/runs/$1/seed-$4"
}
fit dynamic dynamic 0.5,0.5 0
fit static static 0.5,0.5 0
fit emotion-only static 1,0 0
fit uncertainty uncertainty 0.5,0.5 0
fit dwa dwa 0.5,0.5 0
fit dynamic dynamic 0.5,0.5 1
fit static static 0.5,0.5 1
fit emotion-only static 1,0 1
fit dwa dwa 0.5,0.5 1
python docs/video-alone/analyse.py random data/video/runs/{dynamic,static,emotion-only,uncertainty,dwa}/seed-0
python docs/video-alone/plot.py docs/figures/video-alone.png

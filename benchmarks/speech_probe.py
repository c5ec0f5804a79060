"""The audio model on real RAVDESS, outside the shard path: train on one EmoBox fold, score, and look inside.

    python benchmarks/speech_probe.py --wavs /tmp/ravdess-full --fold 1 --validate \
        --model small --set audio_compress=log --lr 1e-3 --epochs 12 --json /tmp/probe.json

What it uses of emotrain is what `emotrain fit` uses: build_model(ModelConfig(modality "a")),
the Objective with its loss weighting, Adam with gradient clipping 1.0, data.normalise_audio on
int16-scaled samples, batches zero-padded to a multiple of 640 samples with `lengths` in
40 ms steps, and emotrain.augment on training batches only. What differs: clips come from the
wavs (benchmarks/ravdess.py), cut to at most 6 s, shuffled by the seed each epoch.

--validate trains on the fold's training actors minus four validation actors and scores those
(settings are chosen there); without it, it trains on all 20 training actors for exactly
--epochs epochs (chosen on validation) and scores the test actors once at the end.

Besides accuracy it measures, per epoch: the dynamic weights, and on the epoch's first batch
the gradient norm each task's weighted loss puts on the shared LSTM. With --probe, after
training, a linear probe (standardised logistic regression, train -> scored split) reads
emotion from each layer's utterance summary (mean and std over valid steps): the audio
branch's per-step features, and the LSTM's output; at initialisation and after training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ravdess
from report import write_json
from emotrain.augment import augment_audio, parse_augment
from emotrain.data import normalise_audio
from emotrain.model import ModelConfig, build_model
from emotrain.objective import Objective
from emotrain.weighting import build_weighting
from shardformat import SAMPLES_PER_FRAME

MAX_SAMPLES = 6 * ravdess.SAMPLE_RATE


def prepared(corpus: ravdess.Corpus) -> list[np.ndarray]:
    """Each clip as training sees it: int16 scale, cut to 6 s and to whole 40 ms steps, normalised."""
    out = []
    for audio in corpus.audio:
        x = audio[:MAX_SAMPLES]
        x = x[: len(x) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME]
        out.append(normalise_audio(x * 32768.0))
    return out


def batch_of(clips: list[np.ndarray], rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    steps = max(len(clips[i]) for i in rows) // SAMPLES_PER_FRAME
    audio = np.zeros((len(rows), steps * SAMPLES_PER_FRAME), dtype=np.float32)
    for row, i in enumerate(rows):
        audio[row, : len(clips[i])] = clips[i]
    lengths = torch.tensor([len(clips[i]) // SAMPLES_PER_FRAME for i in rows], dtype=torch.int64)
    return torch.from_numpy(audio), lengths


def scores(emotion_true: np.ndarray, emotion_pred: np.ndarray, gender_true: np.ndarray, gender_pred: np.ndarray) -> dict:
    return {"emotion8": {"wa": accuracy_score(emotion_true, emotion_pred), "ua": balanced_accuracy_score(emotion_true, emotion_pred),
                         "f1": f1_score(emotion_true, emotion_pred, average="macro")},
            "gender_acc": accuracy_score(gender_true, gender_pred)}


@torch.no_grad()
def evaluate(objective: Objective, clips: list[np.ndarray], corpus: ravdess.Corpus, rows: np.ndarray, batch: int) -> dict:
    objective.eval()
    emotion, gender = [], []
    for start in range(0, len(rows), batch):
        audio, lengths = batch_of(clips, rows[start: start + batch])
        e, g = objective.model(audio, None, lengths)
        emotion.append(e.argmax(1).numpy())
        gender.append(g.argmax(1).numpy())
    return scores(corpus.emotion[rows], np.concatenate(emotion), corpus.gender[rows], np.concatenate(gender))


@torch.no_grad()
def layer_summaries(model, clips: list[np.ndarray], rows: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """Per utterance, mean and std over valid steps of the audio features and of the LSTM's top-layer output,
    and the LSTM's top-layer state at the last valid step (what the paper's heads read)."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {"audio features": [], "lstm output": [], "lstm last state": []}
    for start in range(0, len(rows), batch):
        audio, lengths = batch_of(clips, rows[start: start + batch])
        features = model.audio(audio, lengths)
        packed = torch.nn.utils.rnn.pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = torch.nn.utils.rnn.pad_packed_sequence(model.lstm(packed)[0], batch_first=True,
                                                            total_length=features.shape[1])
        out["lstm last state"].append(outputs[torch.arange(len(lengths)), lengths - 1].numpy())  # = h_n of the top layer
        mask = (torch.arange(features.shape[1])[None, :] < lengths[:, None]).float()[:, :, None]
        for name, x in (("audio features", features), ("lstm output", outputs)):
            mean = (x * mask).sum(1) / mask.sum(1)
            std = (((x - mean[:, None]) * mask) ** 2).sum(1).div(mask.sum(1)).sqrt()
            out[name].append(torch.cat([mean, std], 1).numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def linear_probe(model, clips, corpus: ravdess.Corpus, train: np.ndarray, scored: np.ndarray, batch: int) -> dict[str, float]:
    """Emotion UA of a logistic regression on each layer's summary (fit on `train`, scored on `scored`)."""
    fit_x, score_x = layer_summaries(model, clips, train, batch), layer_summaries(model, clips, scored, batch)
    result = {}
    for name in fit_x:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
        probe.fit(fit_x[name], corpus.emotion[train])
        result[name] = balanced_accuracy_score(corpus.emotion[scored], probe.predict(score_x[name]))
    return result


def task_gradient_norms(objective: Objective, audio: torch.Tensor, lengths: torch.Tensor, emotion: torch.Tensor,
                        gender: torch.Tensor) -> dict[str, float]:
    """|d (w_t L_t) / d LSTM weights| for each task t, with the weights w of the moment."""
    objective.train()
    shared = list(objective.model.lstm.parameters())
    losses = objective(audio, None, lengths, emotion, gender)
    weights = objective.weighting.task_weights()
    norms = {}
    for index, (task, nll) in enumerate((("emotion", losses.emotion_nll), ("gender", losses.gender_nll))):
        grads = torch.autograd.grad(weights[index].detach() * nll.mean(), shared, retain_graph=True)
        norms[task] = float(torch.sqrt(sum((g ** 2).sum() for g in grads)))
    return norms


def parse_overrides(items: list[str]) -> dict:
    overrides = {}
    for item in items:
        key, _, value = item.partition("=")
        overrides[key] = int(value) if value.isdigit() else value
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wavs", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=1, choices=sorted(ravdess.FOLD_TEST_ACTORS))
    parser.add_argument("--validate", action="store_true", help="score validation actors, not the test actors")
    parser.add_argument("--model", default="small")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="ModelConfig override")
    parser.add_argument("--weighting", default="dynamic")
    parser.add_argument("--static-weights", default="0.5,0.5")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-step", type=int, default=10)
    parser.add_argument("--lr-gamma", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--augment", default="none", help='e.g. "speed=0.1,gain=6,noise_snr=10,shift=0.5"')
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", action="store_true", help="linear probes at initialisation and after training")
    parser.add_argument("--name", default=None, help="row name in the results JSON")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = ravdess.load_corpus(args.wavs)
    clips = prepared(corpus)
    parts = ravdess.fold_parts(corpus, args.fold, validate=args.validate)
    scored_name = "val" if args.validate else "test"
    train, scored = parts["train"], parts[scored_name]
    config = ModelConfig(name=args.model, modality="a", emotions=ravdess.EMOTIONS, **parse_overrides(args.set))
    model = build_model(config)
    weights = tuple(float(w) for w in args.static_weights.split(","))
    objective = Objective(model, build_weighting(args.weighting, static_weights=weights))
    optimizer = torch.optim.Adam(objective.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=args.lr_step, gamma=args.lr_gamma)
    augment = parse_augment(args.augment)
    generator = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "model": config.to_dict(), "scored": scored_name,
              "scored_actors": sorted(set(corpus.actor[scored].tolist())), "epochs": []}
    if args.probe:
        record["probe_init"] = linear_probe(model, clips, corpus, train, scored, 16)
        print("probe at init", record["probe_init"], flush=True)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(train)
        objective.train()
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        grad_norms = None
        for first in range(0, len(order), args.batch_size):
            rows = order[first: first + args.batch_size]
            audio, lengths = batch_of(clips, rows)
            audio, lengths = augment_audio(audio, lengths, augment, generator)
            emotion, gender = torch.from_numpy(corpus.emotion[rows]), torch.from_numpy(corpus.gender[rows])
            if grad_norms is None:
                grad_norms = task_gradient_norms(objective, audio, lengths, emotion, gender)
            losses = objective(audio, None, lengths, emotion, gender)
            optimizer.zero_grad(set_to_none=True)
            losses.joint.backward()
            torch.nn.utils.clip_grad_norm_(objective.parameters(), 1.0)
            optimizer.step()
            seen += len(rows)
            loss_sum += float(losses.emotion_nll.detach().sum())
        seconds = time.perf_counter() - start
        scheduler.step()
        row = {"epoch": epoch, "train_emotion_nll": loss_sum / seen, "samples_per_s": seen / seconds,
               "weights": objective.weighting.weights(), "grad_norm_lstm": grad_norms}
        if args.validate or epoch == args.epochs:
            row[scored_name] = evaluate(objective, clips, corpus, scored, 16)
        record["epochs"].append(row)
        shown = row.get(scored_name)
        print(f"epoch {epoch}: train L_e {row['train_emotion_nll']:.3f} | w_e {row['weights']['emotion']:.3f} | "
              f"|g_e| {grad_norms['emotion']:.3f} |g_g| {grad_norms['gender']:.3f} | "
              + (f"{scored_name} UA {shown['emotion8']['ua']:.1%} gender {shown['gender_acc']:.1%} | " if shown else "")
              + f"{row['samples_per_s']:.1f} samples/s", flush=True)
    record["final"] = record["epochs"][-1][scored_name]
    record["train_fit"] = evaluate(objective, clips, corpus, train, 16)
    print("on its training actors:", record["train_fit"])
    if args.probe:
        record["probe_trained"] = linear_probe(model, clips, corpus, train, scored, 16)
        print("probe after training", record["probe_trained"], flush=True)
    write_json(args.json, record)


if __name__ == "__main__":
    main()

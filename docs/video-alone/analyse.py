"""Where the emotion is lost in a video-only run: linear probes on the CNN's and the LSTM's features, and the
gradients of L_e and L_g on the shared layers.

    python docs/video-alone/analyse.py random RUN [RUN ...]   (RUN: a fit run folder of --modality v; best.pt)

For each network: the unweighted accuracy (validation part of split `paper`) of a logistic regression fitted on
the training part to (a) the per-utterance mean of the visual branch's features, (b) the LSTM's last state; and
the norms and cosine of the emotion and gender losses' gradients on the CNN and LSTM parameters (6 training
batches of 8, train mode).
"""

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from emotrain.checkpoint import load_checkpoint
from emotrain.config import TrainConfig
from emotrain.data import eval_loader, read_part
from emotrain.objective import build_objective, load_objective_state

SHARDS = "data/shards"


def load(spec: str) -> torch.nn.Module:
    if spec == "random":
        torch.manual_seed(0)
        return build_objective(TrainConfig(shards=SHARDS, split="paper", out="-", modality="v", model="small")).model
    objective = build_objective(TrainConfig.from_dict(json.load(open(f"{spec}/config.json"))["train"]),
                                from_checkpoint=True)
    load_objective_state(objective, load_checkpoint(f"{spec}/best.pt"), spec)
    return objective.model


def features(model, part):
    """Per utterance: mean CNN features, LSTM last state, emotion, gender."""
    cnn, state, emotion, gender = [], [], [], []
    with torch.no_grad():
        for batch in eval_loader(part, modality="v", batch_size=8):
            steps = model.features(None, batch.frames, batch.lengths)
            valid = (torch.arange(steps.shape[1])[None] < batch.lengths[:, None]).float()[..., None]
            cnn.append(((steps * valid).sum(1) / valid.sum(1)).numpy())
            _, (hidden, _) = model.lstm(pack_padded_sequence(steps, batch.lengths, batch_first=True,
                                                             enforce_sorted=False))
            state.append(hidden[-1].numpy())
            emotion += batch.emotion.tolist()
            gender += batch.gender.tolist()
    return np.concatenate(cnn), np.concatenate(state), np.array(emotion), np.array(gender)


def probe(x_train, y_train, x_test, y_test, classes: int) -> float:
    """UA of an L2-regularised logistic regression on standardised features."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train = torch.tensor((x_train - mean) / std, dtype=torch.float32)
    x_test = torch.tensor((x_test - mean) / std, dtype=torch.float32)
    linear = torch.nn.Linear(x_train.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=200)
    targets = torch.tensor(y_train)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x_train), targets) + 1e-3 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    predicted = linear(x_test).argmax(1).numpy()
    return float(np.mean([np.mean(predicted[y_test == c] == c) for c in np.unique(y_test)]))


def gradients(model, batches) -> str:
    model.train()
    groups = {"cnn": list(model.visual.parameters()), "lstm": list(model.lstm.parameters())}
    grads = {}
    for task in ("emotion", "gender"):
        model.zero_grad()
        for batch in batches:
            emotion_logits, gender_logits = model(None, batch.frames, batch.lengths)
            loss = (F.cross_entropy(emotion_logits, batch.emotion) if task == "emotion"
                    else F.cross_entropy(gender_logits, batch.gender))
            (loss / len(batches)).backward()
        grads[task] = {name: torch.cat([p.grad.flatten() for p in ps]).clone() for name, ps in groups.items()}
    return "; ".join(f"{name}: |g_e| {grads['emotion'][name].norm():.3g} |g_g| {grads['gender'][name].norm():.3g} "
                     f"cos {F.cosine_similarity(grads['emotion'][name], grads['gender'][name], dim=0):.2f}"
                     for name in groups)


def main() -> None:
    torch.set_num_threads(1)
    train, val = read_part(SHARDS, "paper", "train"), read_part(SHARDS, "paper", "val")
    batches = [b for _, b in zip(range(6), eval_loader(train, modality="v", batch_size=8))]
    for spec in sys.argv[1:]:
        model = load(spec).eval()
        (cnn_tr, lstm_tr, e_tr, g_tr), (cnn_va, lstm_va, e_va, g_va) = features(model, train), features(model, val)
        print(f"{spec}: emotion probe UA from CNN mean {probe(cnn_tr, e_tr, cnn_va, e_va, 4):.2f}, "
              f"from LSTM state {probe(lstm_tr, e_tr, lstm_va, e_va, 4):.2f}; gender from CNN "
              f"{probe(cnn_tr, g_tr, cnn_va, g_va, 2):.2f}, from LSTM {probe(lstm_tr, g_tr, lstm_va, g_va, 2):.2f} | "
              f"gradients {gradients(model, batches)}", flush=True)


if __name__ == "__main__":
    main()

"""What a run reports: NLLs, emotion WA / UA / macro-F1 with the confusion matrix, gender accuracy.

Definitions (computed from the confusion matrix, rows = true class, columns = predicted):

- WA (weighted accuracy): correct / all, the plain accuracy.
- UA (unweighted accuracy): the mean of per-class recalls over the classes present in the
  targets (as sklearn's balanced_accuracy_score), so the majority class (neu on IEMOCAP)
  cannot carry it.
- macro-F1: the mean of per-class F1 over the classes present in the targets or the
  predictions (as sklearn's f1_score(average="macro")); a class that is never right scores 0.

`MetricSums` accumulates one part's sums on the device, in float64, and reduces them across
ranks in one all-reduce, so a distributed evaluation gives the same figures as one process.
Plots are drawn with matplotlib's Agg backend, imported only when a plot is made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from emotrain.atomic import atomic_path

# Per-epoch scalar columns of metrics.csv, in order; metrics.jsonl adds confusion and more.
SCALAR_KEYS = (
    "joint_loss", "unweighted_nll", "emotion_nll", "gender_nll", "emotion_nll_sum",
    "gender_nll_sum", "emotion_wa", "emotion_ua", "emotion_f1", "gender_acc",
    "w_emotion", "w_gender", "samples_per_s",
)
# What `--select` may choose the best checkpoint on (always on the validation part), and
# whether larger is better.
SELECTABLE = {
    "joint_loss": False, "unweighted_nll": False, "emotion_nll": False, "gender_nll": False,
    "emotion_wa": True, "emotion_ua": True, "emotion_f1": True, "gender_acc": True,
}


def confusion_matrix(targets: Tensor, predictions: Tensor, n_classes: int) -> Tensor:
    """(n_classes, n_classes) int64 counts, rows = true class, columns = predicted class."""
    flat = targets.long() * n_classes + predictions.long()
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def weighted_accuracy(confusion: np.ndarray) -> float:
    total = confusion.sum()
    return float(np.trace(confusion) / total) if total else math.nan


def unweighted_accuracy(confusion: np.ndarray) -> float:
    support = confusion.sum(axis=1)
    present = support > 0
    if not present.any():
        return math.nan
    return float(np.mean(np.diag(confusion)[present] / support[present]))


def macro_f1(confusion: np.ndarray) -> float:
    true_positive = np.diag(confusion).astype(np.float64)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    seen = (support + predicted) > 0
    if not seen.any():
        return math.nan
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (support + predicted); seen classes have a positive denominator.
    return float(np.mean(2 * true_positive[seen] / (support[seen] + predicted[seen])))


class MetricSums:
    """One part's running sums: add batches, reduce across ranks, then `summary()`."""

    # Layout of the flat float64 vector that is all-reduced in one call.
    _SAMPLES, _JOINT, _EMOTION_NLL, _GENDER_NLL, _GENDER_CORRECT, _SKIPPED, _CONFUSION = range(7)

    def __init__(self, n_emotions: int, device: torch.device | str = "cpu") -> None:
        self.n_emotions = n_emotions
        self.values = torch.zeros(self._CONFUSION + n_emotions * n_emotions, dtype=torch.float64,
                                  device=device)

    def add(self, joint: Tensor, emotion_nll: Tensor, gender_nll: Tensor,
            emotion_logits: Tensor, gender_logits: Tensor, emotion: Tensor, gender: Tensor) -> None:
        """joint: the batch's (mean) joint loss; *_nll: per-sample NLLs (B,); labels (B,)."""
        n = emotion.numel()
        v = self.values
        v[self._SAMPLES] += n
        v[self._JOINT] += joint.detach().double() * n
        v[self._EMOTION_NLL] += emotion_nll.detach().double().sum()
        v[self._GENDER_NLL] += gender_nll.detach().double().sum()
        v[self._GENDER_CORRECT] += (gender_logits.argmax(dim=1) == gender).sum()
        v[self._CONFUSION:] += confusion_matrix(emotion, emotion_logits.argmax(dim=1), self.n_emotions).flatten()

    def add_skipped(self, n: int) -> None:
        self.values[self._SKIPPED] += n

    def all_reduce(self) -> None:
        """Sum over ranks (a no-op outside torch.distributed)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.values, op=dist.ReduceOp.SUM)

    @property
    def samples(self) -> int:
        return int(self.values[self._SAMPLES].item())

    def summary(self, weights: dict[str, float], seconds: float) -> dict:
        """The metric keys of metrics.jsonl for this part (see SCALAR_KEYS), plus samples, skipped, confusion."""
        v = self.values.cpu().numpy()
        n = v[self._SAMPLES]
        confusion = v[self._CONFUSION:].reshape(self.n_emotions, self.n_emotions).round().astype(np.int64)
        mean = (lambda total: float(total / n)) if n else (lambda total: math.nan)
        emotion_nll, gender_nll = mean(v[self._EMOTION_NLL]), mean(v[self._GENDER_NLL])
        return {
            "joint_loss": mean(v[self._JOINT]),
            "unweighted_nll": emotion_nll + gender_nll,
            "emotion_nll": emotion_nll,
            "gender_nll": gender_nll,
            "emotion_nll_sum": float(v[self._EMOTION_NLL]),
            "gender_nll_sum": float(v[self._GENDER_NLL]),
            "emotion_wa": weighted_accuracy(confusion),
            "emotion_ua": unweighted_accuracy(confusion),
            "emotion_f1": macro_f1(confusion),
            "gender_acc": mean(v[self._GENDER_CORRECT]),
            "w_emotion": float(weights["emotion"]),
            "w_gender": float(weights["gender"]),
            "samples_per_s": float(n / seconds) if seconds > 0 else math.nan,
            "samples": int(n),
            "skipped": int(round(v[self._SKIPPED])),
            "confusion": confusion.tolist(),
        }


def is_better(metric: str, value: float, best: float | None) -> bool:
    """Whether `value` of a SELECTABLE metric beats `best` (None: nothing yet; NaN never wins)."""
    if math.isnan(value):
        return False
    if best is None or math.isnan(best):
        return True
    return value > best if SELECTABLE[metric] else value < best


def plot_curves(rows: Sequence[dict], path: Path) -> None:
    """Train and val joint loss, and the task weights, against epochs (PNG)."""
    from matplotlib.figure import Figure  # Agg via Figure.savefig: no pyplot state, no display
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, weight_ax = fig.subplots(1, 2)
    for part, style in (("train", "-o"), ("val", "-s")):
        part_rows = [r for r in rows if r["part"] == part]
        epochs = [r["epoch"] for r in part_rows]
        loss_ax.plot(epochs, [r["joint_loss"] for r in part_rows], style, label=f"{part} joint loss")
        loss_ax.plot(epochs, [r["unweighted_nll"] for r in part_rows], style, alpha=0.4,
                     label=f"{part} L_e + L_g")
    train_rows = [r for r in rows if r["part"] == "train"]
    for task in ("emotion", "gender"):
        weight_ax.plot([r["epoch"] for r in train_rows], [r[f"w_{task}"] for r in train_rows], "-o",
                       label=f"w_{task}")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="losses")
    weight_ax.set(xlabel="epoch", ylabel="weight", title="task weights")
    for ax in (loss_ax, weight_ax):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save_figure(fig, path)


def plot_confusion(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str) -> None:
    """The emotion confusion matrix with counts and row-normalised shading (PNG)."""
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=np.int64)
    recall = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(4.5, 4), layout="constrained")
    ax = fig.subplots()
    ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if recall[i, j] > 0.5 else "black")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted", ylabel="true", title=title)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib Figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)

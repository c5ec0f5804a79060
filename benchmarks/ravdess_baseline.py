"""eGeMAPS + logistic regression on real RAVDESS over EmoBox's six folds, beside emoav's rows and EmoBox's table.

    pip install -e '.[baseline]'     # openSMILE and scikit-learn
    python benchmarks/ravdess_baseline.py --wavs /tmp/ravdess-full \
        --emoav /tmp/test-f1.json --json benchmarks/results/ravdess_baseline.json

Protocol, the same for every row measured here: EmoBox's six speaker-independent folds (test
actors in benchmarks/ravdess.py), train on the other 20 actors, score the 4 test actors;
the figures are per fold and their mean. The baseline: the 88 eGeMAPSv02 functionals
(openSMILE) of the 16 kHz mono clip, standardised on the training actors, and a
multinomial logistic regression whose C is chosen on the fold's validation actors (held out
of its training actors), then refit on all training actors. One classifier for the 8
emotions, one for the shared four (trained and tested on those clips only), one for gender.
WA = accuracy, UA = mean per-class recall, F1 = macro-F1.

EmoBox's published rows (Ma et al. 2024, "EmoBox", Interspeech) are quoted, not measured:
frozen self-supervised features, a small trained head, the same six folds, 8 classes,
UA averaged over the folds; they report no gender figure and no four-class figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ravdess
from report import write_json

EMOBOX_UA = {"Whisper-large-v3": 75.32, "WavLM-large": 72.00, "HuBERT-large": 70.00, "wav2vec2-base": 54.33}
C_GRID = (0.01, 0.1, 1.0, 10.0)


def egemaps(corpus: ravdess.Corpus, cache: Path) -> np.ndarray:
    """(N, 88) eGeMAPSv02 functionals, computed once and cached beside the audio cache."""
    if cache.is_file():
        return np.load(cache)
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals)
    features = np.stack([smile.process_signal(a, ravdess.SAMPLE_RATE).to_numpy()[0] for a in corpus.audio])
    np.save(cache, features)
    return features


def classifier(c: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def fit_chosen(x: np.ndarray, y: np.ndarray, tune: dict[str, np.ndarray], train: np.ndarray):
    """Pick C on the validation split (tune["train"] -> tune["val"], by UA), then fit on `train`."""
    scores = {c: balanced_accuracy_score(y[tune["val"]], classifier(c).fit(x[tune["train"]], y[tune["train"]]).predict(x[tune["val"]]))
              for c in C_GRID}
    best = max(scores, key=scores.get)
    return classifier(best).fit(x[train], y[train]), best


def emotion_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {"wa": accuracy_score(truth, predicted), "ua": balanced_accuracy_score(truth, predicted),
            "f1": f1_score(truth, predicted, average="macro")}


def baseline_fold(corpus: ravdess.Corpus, x: np.ndarray, fold: int) -> dict:
    parts = ravdess.fold_parts(corpus, fold, validate=False)
    tune = ravdess.fold_parts(corpus, fold, validate=True)
    row: dict = {"fold": fold}
    model, row["c_emotion8"] = fit_chosen(x, corpus.emotion, tune, parts["train"])
    row["emotion8"] = emotion_scores(corpus.emotion[parts["test"]], model.predict(x[parts["test"]]))
    four = np.isin(corpus.emotion, [ravdess.EMOTIONS.index(e) for e in ravdess.SHARED_FOUR])
    keep = lambda split: {k: v[four[v]] for k, v in split.items()}  # noqa: E731
    parts4, tune4 = keep(parts), keep(tune)
    model, row["c_emotion4"] = fit_chosen(x, corpus.emotion, tune4, parts4["train"])
    row["emotion4"] = emotion_scores(corpus.emotion[parts4["test"]], model.predict(x[parts4["test"]]))
    model, row["c_gender"] = fit_chosen(x, corpus.gender, tune, parts["train"])
    row["gender_acc"] = accuracy_score(corpus.gender[parts["test"]], model.predict(x[parts["test"]]))
    return row


def emoav_row(run: dict, path: Path) -> tuple[str, dict]:
    """(system name, fold row) of one speech_probe.py run; only runs scored on their fold's test actors."""
    if run.get("scored") != "test":
        raise SystemExit(f"{path}: scored on {run.get('scored')!r} actors; only test-fold runs go in this table")
    final = run["final"]
    return "emoav " + run["args"]["name"], {"fold": int(run["args"]["fold"]), "emotion8": final["emotion8"],
                                            "gender_acc": final["gender_acc"]}


def mean_row(rows: list[dict]) -> dict:
    out: dict = {"fold": "mean"}
    for task in ("emotion8", "emotion4"):
        present = [r[task] for r in rows if task in r]
        if present:
            out[task] = {k: float(np.mean([p[k] for p in present])) for k in ("wa", "ua", "f1")}
    genders = [r["gender_acc"] for r in rows if "gender_acc" in r]
    if genders:
        out["gender_acc"] = float(np.mean(genders))
    return out


def table(systems: dict[str, list[dict]]) -> str:
    """One line per system and fold: 8-class WA/UA/F1, 4-class WA/UA/F1, gender."""
    def cell(row: dict, task: str, key: str) -> str:
        return f"{100 * row[task][key]:5.1f}" if task in row else "    -"

    lines = ["system                          fold |  8: WA    UA    F1  |  4: WA    UA    F1  | gender",
             "-" * 94]
    for name, rows in systems.items():
        for row in rows + [mean_row(rows)]:
            gender = f"{100 * row['gender_acc']:5.1f}" if "gender_acc" in row else "    -"
            lines.append(f"{name:30s} {str(row['fold']):>5s} | {cell(row, 'emotion8', 'wa')} {cell(row, 'emotion8', 'ua')} "
                         f"{cell(row, 'emotion8', 'f1')} | {cell(row, 'emotion4', 'wa')} {cell(row, 'emotion4', 'ua')} "
                         f"{cell(row, 'emotion4', 'f1')} | {gender}")
    lines.append("-" * 94)
    for name, ua in EMOBOX_UA.items():
        lines.append(f"{'EmoBox ' + name:30s}  mean |        {ua:5.1f}       |  (published; frozen features, 8 classes)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wavs", type=Path, required=True, help="folder of Actor_01 .. Actor_24 (the complete speech set)")
    parser.add_argument("--emoav", type=Path, action="append", default=[],
                        help="a test-fold run's JSON from benchmarks/speech_probe.py (repeatable), printed beside the baseline")
    parser.add_argument("--json", type=Path, help="write the per-fold figures here")
    args = parser.parse_args()
    corpus = ravdess.load_corpus(args.wavs)
    x = egemaps(corpus, ravdess.DEFAULT_CACHE.with_name("ravdess16k-egemaps.npy"))
    systems = {"eGeMAPS + LR": [baseline_fold(corpus, x, fold) for fold in ravdess.FOLD_TEST_ACTORS]}
    for path in args.emoav:
        name, row = emoav_row(json.loads(path.read_text()), path)
        systems.setdefault(name, []).append(row)
    print(table(systems))
    if args.json:
        write_json(args.json, {"protocol": "EmoBox RAVDESS folds 1-6, test actors held out; see the docstring",
                               "systems": systems, "emobox_published_ua": EMOBOX_UA})


if __name__ == "__main__":
    main()

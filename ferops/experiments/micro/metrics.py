"""The micro-expression field's metrics: UF1 and UAR over pooled LOSO predictions, 5 classes and 3.

MEGC 2019 ranks by UF1 (unweighted F1: per-class F1 from TP/FP/FN summed over
all folds, then averaged over classes) and UAR (unweighted average recall).
Both are computed once on the predictions pooled over every left-out subject:
a LOSO fold holds 1-20 clips, so per-fold F1 is noise and its mean is biased.
Accuracy is reported beside them because the paper's Table 4 reports it.

The 3-class composite (MEGC 2019): negative (disgust, repression, and anger,
contempt, fear, sadness where kept), positive (happiness), surprise;
"others" clips are left out. Here it is derived from the 5-class models: a
clip's composite prediction is the group of its best-scoring class other than
"others" (softmax probability or SVM decision value alike). MEGC retrains on
3 classes; this costs no extra training, and run.json says so.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

COMPOSITE_CLASSES = ("negative", "positive", "surprise")
COMPOSITE = {"happiness": "positive", "surprise": "surprise", "disgust": "negative", "repression": "negative",
             "anger": "negative", "contempt": "negative", "fear": "negative", "sadness": "negative"}

DEFINITIONS = {
    "uf1": "unweighted F1: mean over classes of F1 from out-of-fold predictions pooled over all LOSO folds "
           "(sklearn f1_score average='macro' over every class of the set)",
    "uar": "unweighted average recall: mean over classes of recall, pooled the same way",
    "accuracy": "share of clips correct, pooled over all LOSO folds",
    "3class": "MEGC 2019 composite (negative/positive/surprise), 'others' clips left out; each clip's prediction is "
              "the group of its best-scoring non-'others' class under the 5-class model (not a 3-class retraining)",
    "chance": "a uniform random guess: accuracy and UAR 1/K, UF1 its expectation sum_k 2 p_k / (K (1 + K p_k))",
    "majority": "always the most frequent class of the scored clips",
}


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """accuracy, UF1, UAR over all `n_classes` (a class never predicted scores F1 0, as MEGC counts it)."""
    labels = list(range(n_classes))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "uf1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "uar": float(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }


def uf1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """MEGC's formula written out: per-class F1 = 2TP / (2TP + FP + FN) from pooled counts, then the mean."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    f1 = []
    for k in range(n_classes):
        tp = np.sum((y_pred == k) & (y_true == k))
        fp_fn = np.sum((y_pred == k) != (y_true == k))
        f1.append(2 * tp / (2 * tp + fp_fn) if tp + fp_fn else 0.0)
    return float(np.mean(f1))


def uar(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Mean over classes of TP / (clips of the class); a class without clips counts 0."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recalls = [np.mean(y_pred[y_true == k] == k) if np.any(y_true == k) else 0.0 for k in range(n_classes)]
    return float(np.mean(recalls))


def baselines(y_true: np.ndarray, n_classes: int) -> dict:
    """Chance level and the majority-class predictor on these labels, for the table's bottom rows."""
    y_true = np.asarray(y_true)
    prior = np.bincount(y_true, minlength=n_classes) / len(y_true)
    k = n_classes
    chance_uf1 = float(np.mean(2 * prior / (k * prior + 1)))  # F1_k = 2 p_k (1/K) / (p_k + 1/K)
    majority = scores(y_true, np.full(len(y_true), int(np.argmax(prior))), n_classes)
    return {"chance": {"accuracy": 1 / k, "uf1": chance_uf1, "uar": 1 / k}, "majority": majority}


def report(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Scores plus per-class recall and the confusion matrix (rows true, columns predicted)."""
    labels = list(range(len(classes)))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {**scores(y_true, y_pred, len(classes)),
            "recall": {name: float(r) for name, r in zip(classes, recall)},
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist()}


def composite(scores_: np.ndarray, y_true: np.ndarray, classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows kept, composite truth, composite prediction) from per-class scores; 'others' rows dropped.

    The prediction is the group of the best-scoring class that has a group: the same rule for
    softmax probabilities and SVM decision values, so both models are mapped alike.
    """
    groups = [COMPOSITE.get(c) for c in classes]
    grouped = [i for i, g in enumerate(groups) if g is not None]
    keep = np.array([groups[k] is not None for k in y_true])
    best = np.asarray(grouped)[np.asarray(scores_)[keep][:, grouped].argmax(axis=1)]
    truth = np.array([COMPOSITE_CLASSES.index(groups[k]) for k in y_true[keep]], np.int64)
    pred = np.array([COMPOSITE_CLASSES.index(groups[k]) for k in best], np.int64)
    return np.flatnonzero(keep), truth, pred

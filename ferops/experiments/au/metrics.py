"""Action Unit metrics: what the paper reports, and what makes it honest.

The paper reports binary accuracy (97.54%) and intensity MSE (0.2045). On sparse
AUs accuracy is inflated: a model that always says "absent" scores 1 - prevalence,
above 90% for most AUs. So every AU row carries that baseline next to the model,
plus F1, precision, recall and AUROC (presence) and ICC(3,1) (intensity), the
field's figures (BP4D, DISFA). Unknown labels (NaN) are left out per AU, never
counted as absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_curve, precision_score, recall_score, roc_auc_score

PRESENCE_DEFINITIONS = {
    "f1_mean": "mean over AUs of each AU's F1 at its own threshold, chosen per fold on the inner validation split "
               "of the training subjects (never the test fold); rows with an unknown label for that AU left out",
    "f1_at_half_mean": "mean over AUs of F1 at the fixed threshold 0.5",
    "accuracy_mean": "mean over AUs of binary accuracy (the paper's figure)",
    "always_absent_accuracy_mean": "mean over AUs of the accuracy of always predicting 'absent' (1 - prevalence)",
    "always_present_f1_mean": "mean over AUs of the F1 of always predicting 'present' (2p / (1 + p)): the F1 a "
                              "threshold chosen for F1 reaches on an AU the model cannot see",
    "auroc_mean": "mean over AUs of AUROC (AUs with one class only in the scored rows left out)",
}
INTENSITY_DEFINITIONS = {
    "mse_mean": "mean over AUs of the mean squared error on the 0..5 scale (the paper's figure)",
    "icc_mean": "mean over AUs of ICC(3,1) between truth and prediction (Shrout & Fleiss; DISFA's figure)",
    "rounded_accuracy_mean": "mean over AUs of the share of predictions that round to the true 0..5 grade",
}


def _known(y_true: np.ndarray, k: int) -> np.ndarray:
    return ~np.isnan(y_true[:, k])


def choose_thresholds(y_val: np.ndarray, prob_val: np.ndarray) -> np.ndarray:
    """Per AU, the decision threshold with the best F1 on validation rows (K,); 0.5 where they hold no positive.

    A model whose scores rank well can still put its positives below 0.5 (sparse AUs, a sparsity prior), so F1
    at a fixed 0.5 understates it. Callers pass the inner validation split of the training subjects only.
    """
    y_val, prob_val = np.asarray(y_val, np.float64), np.asarray(prob_val, np.float64)
    thresholds = np.full(y_val.shape[1], 0.5)
    for k in range(y_val.shape[1]):
        known = _known(y_val, k)
        truth, score = y_val[known, k].astype(int), prob_val[known, k]
        if truth.sum() == 0 or truth.sum() == len(truth):
            continue
        precision, recall, cut = precision_recall_curve(truth, score)
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        thresholds[k] = float(cut[int(np.argmax(f1))])
    return thresholds


def presence_table(y_true: np.ndarray, prob: np.ndarray, labels, threshold=0.5) -> pd.DataFrame:
    """One row per AU: positives, prevalence, F1, precision, recall, AUROC, accuracy, always-absent accuracy.

    `threshold`: one number, one per AU (K,), or one per row and AU (N, K: each test fold its own);
    `f1_at_half` is F1 at 0.5 whatever the threshold.
    """
    y_true, prob = np.asarray(y_true, np.float64), np.asarray(prob, np.float64)
    cut = np.broadcast_to(np.asarray(threshold, np.float64), y_true.shape)
    rows = []
    for k, label in enumerate(labels):
        known = _known(y_true, k)
        truth, score = y_true[known, k].astype(int), prob[known, k]
        pred = (score >= cut[known, k]).astype(int)
        both = len(np.unique(truth)) == 2
        rows.append({
            "au": label,
            "n_known": int(known.sum()),
            "positives": int(truth.sum()),
            "prevalence": float(truth.mean()) if len(truth) else float("nan"),
            "f1": float(f1_score(truth, pred, zero_division=0)),
            "f1_at_half": float(f1_score(truth, (score >= 0.5).astype(int), zero_division=0)),
            "threshold": float(np.mean(cut[known, k])) if len(truth) else float("nan"),
            "precision": float(precision_score(truth, pred, zero_division=0)),
            "recall": float(recall_score(truth, pred, zero_division=0)),
            "auroc": float(roc_auc_score(truth, score)) if both else float("nan"),
            "accuracy": float((pred == truth).mean()) if len(truth) else float("nan"),
            "always_absent_accuracy": float((truth == 0).mean()) if len(truth) else float("nan"),
            "always_present_f1": float(2 * truth.mean() / (1 + truth.mean())) if len(truth) else float("nan"),
        })
    return pd.DataFrame(rows)


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1): two-way mixed, consistency, single rater (Shrout & Fleiss 1979), for n targets x k raters."""
    y = np.asarray(ratings, np.float64)
    n, k = y.shape
    if n < 2 or k < 2:
        return float("nan")
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    ms_rows = ss_rows / (n - 1)
    ms_err = ss_err / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_err
    return float((ms_rows - ms_err) / denominator) if denominator > 0 else float("nan")


def intensity_table(y_true: np.ndarray, pred: np.ndarray, labels) -> pd.DataFrame:
    """One row per AU: MSE, MAE, ICC(3,1) and rounded-grade accuracy on the rows whose intensity is known."""
    y_true, pred = np.asarray(y_true, np.float64), np.asarray(pred, np.float64)
    rows = []
    for k, label in enumerate(labels):
        known = _known(y_true, k)
        truth, guess = y_true[known, k], pred[known, k]
        rows.append({
            "au": label,
            "n_known": int(known.sum()),
            "mse": float(((guess - truth) ** 2).mean()) if len(truth) else float("nan"),
            "mae": float(np.abs(guess - truth).mean()) if len(truth) else float("nan"),
            "icc": icc_3_1(np.stack([truth, guess], axis=1)),
            "rounded_accuracy": float((np.clip(np.rint(guess), 0, 5) == np.rint(truth)).mean())
            if len(truth) else float("nan"),
        })
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame, columns: dict[str, str]) -> dict[str, float]:
    """{"f1_mean": mean of table.f1, ...} for every `<column>_mean` named in `columns` (NaN rows skipped)."""
    return {name: float(np.nanmean(table[name[: -len("_mean")]])) for name in columns}

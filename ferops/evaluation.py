"""Classification metrics and their pictures, computed one way for every stage.

CV folds, the holdout `train` command and `evaluate` all report through
`classification_metrics`, so numbers in MLflow, dvc metrics and the README
mean the same thing everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score  # noqa: E402

from ferops.io import atomic_file  # noqa: E402

# How each reported figure is computed, written next to the numbers (metrics.json, the report).
METRIC_DEFINITIONS = {
    "cv_accuracy_mean": "mean over folds of each test fold's accuracy; cv_accuracy_std: their sample std (ddof=1)",
    "cv_f1_macro": "macro F1 over the classes present in the data, from out-of-fold predictions pooled over all folds",
}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> dict:
    """Accuracy, per-class and macro F1 over the classes present in `y_true`, confusion matrix, report.

    A class the scored data lacks (neutral in CK+48) has no F1 to speak of: averaging a
    forced 0 for it would understate every model, so it is left out and listed instead.
    """
    present = sorted(set(np.asarray(y_true).tolist()))
    f1 = f1_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(np.mean(f1)) if present else 0.0,
        "f1": {classes[k]: float(v) for k, v in zip(present, f1)},
        "absent_classes": [name for k, name in enumerate(classes) if k not in present],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=list(range(len(classes)))).tolist(),
        "classes": list(classes),
        "report": classification_report(
            y_true, y_pred, labels=present, target_names=[classes[k] for k in present], zero_division=0, digits=4
        ),
    }


def write_json(data: dict, path: str | Path) -> Path:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))
    return Path(path)


def write_csv(frame, path: str | Path) -> Path:
    with atomic_file(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


MIN_WIDTH_PX = 800  # every logged PNG: wide enough that its labels read at 100% zoom in the MLflow UI


def reaches_past_canvas(fig) -> bool:
    """Whether anything the figure draws (a title, label, tick or legend) lies past its canvas, so a PNG cuts it."""
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches, over what is drawn
    width, height = fig.get_size_inches()
    slack = 0.01
    return box.x0 < -slack or box.y0 < -slack or box.x1 > width + slack or box.y1 > height + slack


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """A matplotlib figure as a PNG, written atomically, and closed (figures hold memory until then).

    A small figure is drawn at a higher dpi, so it is at least MIN_WIDTH_PX wide and its text grows with it.
    A figure whose labels reach past its canvas is saved to the box that holds them all, so no label is cut.
    """
    fig.canvas.draw()
    extent = {}
    if reaches_past_canvas(fig):
        extent = {"bbox_inches": "tight", "pad_inches": 0.1}
        width_in = fig.get_tightbbox(fig.canvas.get_renderer()).width + 0.2
    else:
        width_in = fig.get_figwidth()
    dpi = max(dpi, math.ceil(MIN_WIDTH_PX / width_in))
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, **extent)
    plt.close(fig)
    return Path(path)


def plot_confusion_matrix(matrix: list[list[int]], classes: tuple[str, ...] | list[str], path: str | Path, title: str) -> Path:
    """Row-normalised confusion matrix with counts, as a PNG."""
    m = np.asarray(matrix, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.8 + 0.7 * len(classes)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    return save_figure(fig, path)

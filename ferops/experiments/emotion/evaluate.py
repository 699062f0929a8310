"""`ferops evaluate`: score a trained model on the rows of the processed dataset it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.data.splits import data_report
from ferops.evaluation import write_json
from ferops.stages import COMMANDS
from ferops.tracking.store import configure


def evaluate(model_uri: str, params: Params, out_dir: Path = COMMANDS["evaluate"].out) -> dict:
    """Score a trained model (registry URI or .keras path) on the rows of the processed dataset it never saw."""
    from ferops.evaluation import classification_metrics, plot_confusion_matrix
    from ferops.predict import load_model, trained_on
    from ferops.train.fit import predict_proba
    from ferops.train.unseen import unseen_rows

    configure(params.tracking)
    model, classes = load_model(model_uri)
    dataset = Dataset.load(params.dataset.processed_dir)
    rows, how = unseen_rows(dataset, trained_on(model_uri), model_uri)
    scored = dataset.subset(rows)
    pred = predict_proba(model, scored.images).argmax(axis=1)
    y_true = np.array([list(classes).index(n) if n in classes else -1 for n in scored.manifest["label_name"]])
    known = y_true >= 0
    metrics = classification_metrics(y_true[known], pred[known], tuple(classes))
    metrics.update({"model": model_uri, "dataset": dataset.name, "scored": how, "n_scored": int(known.sum()),
                    "n_unknown_label": int((~known).sum()), **data_report(dataset)})
    out_dir = Path(out_dir)
    write_json({k: v for k, v in metrics.items() if k != "report"}, out_dir / "metrics.json")
    plot_confusion_matrix(metrics["confusion_matrix"], classes, out_dir / "confusion_matrix.png",
                          f"{model_uri} on {dataset.name} ({how}): acc {metrics['accuracy']:.3f}")
    return metrics

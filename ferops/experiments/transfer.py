"""Train on A, test on B (the paper's Table 3), in three modes, as one tracked experiment.

For every ordered pair of datasets (A, B):
- zero-shot: the emotion CNN trained on all of A scores B, with classes mapped
  through the canonical vocabulary: B's images of a class A lacks are left out
  and listed, and A's prediction is the best of the classes B has;
- frozen: A's conv layers kept, a new dense layer and head trained on B;
- fine-tuned: A's whole network trained further on B (new head, lower learning rate).
The diagonal is within-dataset CV from scratch, the same in all three tables.

Every cell that trains on B does so on B's training folds and is scored on the
fold it never saw (folds grouped by subject; image-level where B has no
subject ids, and the table says so), so a cell's accuracy is pooled over all
of B's rows, each scored once. Each cell is a nested MLflow run with the
lineage (content hashes) of both datasets.
"""

from __future__ import annotations

from pathlib import Path

import keras
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ferops.config import Params, flatten, replace
from ferops.data.dataset import Dataset
from ferops.data.formats._images import stack_images
from ferops.errors import FeropsError
from ferops.evaluation import save_figure, write_csv, write_json
from ferops.models.cnn import CONV_LAYERS, replace_head
from ferops.models.heads import Head
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.lineage import lineage_tags
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import describe_protocol, inner_split, make_folds
from ferops.train.tasks import emotion_task

OUT_DIR = Path("outputs/transfer")
MODES = ("zero_shot", "frozen", "fine_tuned")
WITHIN = "within"  # the diagonal: CV from scratch on B itself


def load_emotion_dataset(path: str | Path, size: int, channels: int) -> Dataset:
    """A processed dataset's emotion-labelled rows at the common input size and channels (gray by default)."""
    dataset = Dataset.load(path)
    task = emotion_task(dataset.classes)
    dataset = dataset.subset(np.flatnonzero(task.labelled(task.targets(dataset))))
    if len(dataset) == 0:
        raise FeropsError(f"{path}: no emotion-labelled images; transfer needs emotion labels")
    if dataset.images.shape[1:] != (size, size, channels):
        images, _, _ = stack_images(list(dataset.images), channels, (size, size))
        dataset = Dataset(images, dataset.manifest, dataset.classes, dataset.name, dataset.extras)
    return dataset


def zero_shot_predictions(probs: np.ndarray, source: tuple[str, ...], target: tuple[str, ...],
                          y_target: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(mask of scorable rows, predicted target indices, target classes the source lacks).

    A source model can only be right about classes it knows, so rows of other
    classes are excluded (and listed), and its prediction is the best-scoring
    class the target has.
    """
    shared = [c for c in target if c in source]
    if not shared:
        raise FeropsError(f"no emotion class in common between {list(source)} and {list(target)}")
    columns = [source.index(c) for c in shared]
    pred = np.array([target.index(shared[j]) for j in probs[:, columns].argmax(axis=1)])
    scorable = np.isin(np.asarray(target)[y_target], shared)
    return scorable, pred, [c for c in target if c not in source]


def plot_matrix(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Heatmap of accuracies, train dataset per row, test dataset per column."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(table.columns), 1.2 + 0.9 * len(table)))
    values = table.to_numpy(dtype=float)
    ax.imshow(values, vmin=0, vmax=1, cmap="viridis")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, "-" if np.isnan(v) else f"{v:.3f}", ha="center", va="center",
                color="white" if v < 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=20, fontsize=8)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    ax.set_xlabel("test on")
    ax.set_ylabel("train on")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


class _Transfer:
    """The state one `run_transfer` call shares between its cells (params, datasets, folds, saved models)."""

    def __init__(self, params: Params, datasets: list[Dataset], paths: list[str], work: Path):
        self.p = replace(params, **{"model.width": params.transfer.width, "train.epochs": params.transfer.epochs})
        self.finetune = replace(self.p, **{"train.learning_rate":
                                           self.p.train.learning_rate * params.transfer.finetune_lr_scale})
        self.datasets, self.paths, self.work = datasets, paths, work
        self.tasks = [emotion_task(d.classes) for d in datasets]
        self.targets = [t.targets(d) for t, d in zip(self.tasks, datasets)]
        self.folds = [make_folds(y, d.subjects, params.transfer.folds, "subject", params.seed)
                      for y, d in zip(self.targets, datasets)]

    def train(self, b: int, rows: np.ndarray, *, params: Params | None = None, model=None, run_name: str,
              seed_offset: int) -> keras.Model:
        """Fit on B's `rows`, validating on an inner split of their subjects (never on a test fold)."""
        d, y = self.datasets[b], self.targets[b]
        fit_rows, val_rows = inner_split(rows, d.subjects, self.p.train.validation_fraction,
                                         self.p.seed + seed_offset)
        with mlflow.start_run(run_name=run_name, nested=True) as run:
            mlflow.set_tags({"ferops.kind": "transfer-fit"})
            mlflow.log_params({"n_fit": len(fit_rows), "n_validation": len(val_rows)})
            result = fit(params or self.p, self.tasks[b], d.images[fit_rows], y[fit_rows], d.images[val_rows],
                         y[val_rows], model=model, callbacks=[EpochLogger(run.info.run_id)], seed_offset=seed_offset)
        return result.model

    def source_model(self, a: int) -> keras.Model:
        """A fresh copy of the model trained on all of A (saved once, reloaded per use: cells must not share weights)."""
        path = self.work / f"source-{a}.keras"
        if not path.exists():
            model = self.train(a, np.arange(len(self.datasets[a])), run_name=f"source-{self.datasets[a].name}",
                               seed_offset=1000 + a)
            model.save(path)
        return keras.models.load_model(path)

    def cell(self, a: int, b: int, mode: str) -> dict:
        """Pooled accuracy of one (train A, test B, mode) cell over all of B's folds."""
        d, y = self.datasets[b], self.targets[b]
        pred, scorable, excluded = np.full(len(y), -1), np.ones(len(y), bool), []
        n_folds = int(self.folds[b].max()) + 1
        if mode == "zero_shot":
            probs = predict_proba(self.source_model(a), d.images)
            scorable, pred, excluded = zero_shot_predictions(probs, self.datasets[a].classes, d.classes, y)
        else:
            for f in range(n_folds):
                test, train = np.flatnonzero(self.folds[b] == f), np.flatnonzero(self.folds[b] != f)
                name = f"fold-{f}"
                if mode == WITHIN:
                    model = self.train(b, train, run_name=name, seed_offset=f)
                else:
                    head = Head(len(d.classes), "softmax")
                    frozen = CONV_LAYERS if mode == "frozen" else ()
                    base = replace_head(self.source_model(a), head, freeze=frozen)
                    model = self.train(b, train, model=base, run_name=name, seed_offset=f,
                                       params=self.finetune if mode == "fine_tuned" else self.p)
                pred[test] = predict_proba(model, d.images[test]).argmax(axis=1)  # the fold, once, after training
                keras.backend.clear_session()
        accuracy = float((pred[scorable] == y[scorable]).mean())
        fold_acc = [float((pred[m] == y[m]).mean()) for f in range(n_folds)
                    if (m := scorable & (self.folds[b] == f)).any()]
        return {"accuracy": accuracy, "fold_accuracy": fold_acc, "n_scored": int(scorable.sum()),
                "excluded_classes": excluded}


def run_transfer(params: Params, out_dir: Path = OUT_DIR) -> dict:
    """The `transfer` stage: N x N accuracy tables for zero-shot, frozen and fine-tuned transfer."""
    t = params.transfer
    if len(t.datasets) < 2:
        raise FeropsError(f"transfer.datasets: needs at least 2 datasets, got {list(t.datasets)}")
    size, channels = params.preprocess.image_size, params.preprocess.channels
    datasets = [load_emotion_dataset(path, size, channels) for path in t.datasets]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise FeropsError(f"transfer.datasets: dataset names must differ, got {names}")
    out_dir = Path(out_dir)
    work = out_dir / ".models"
    work.mkdir(parents=True, exist_ok=True)
    for old in work.glob("*.keras"):
        old.unlink()  # models of an earlier run are not this run's sources
    state = _Transfer(params, datasets, list(t.datasets), work)
    protocols = {d.name: describe_protocol("subject", d.subjects_known) for d in datasets}
    cells = []
    lineage = lineage_tags({f"data.{d.name}": path for d, path in zip(datasets, t.datasets)})

    with mlflow.start_run(run_name="transfer") as parent:
        mlflow.log_params(flatten(state.p))
        mlflow.set_tags({**lineage, "ferops.kind": "transfer", "transfer.datasets": ",".join(names)})
        plan = [(b, b, WITHIN) for b in range(len(datasets))]
        plan += [(a, b, mode) for a in range(len(datasets)) for b in range(len(datasets)) if a != b for mode in MODES]
        for a, b, mode in tqdm(plan, desc="transfer cells", unit="cell"):
            source, target = names[a], names[b]
            with mlflow.start_run(run_name=f"{source}->{target} {mode}", nested=True) as run:
                mlflow.set_tags({**lineage_tags({"source": t.datasets[a], "target": t.datasets[b]}),
                                 "ferops.kind": "transfer-cell", "transfer.mode": mode,
                                 "transfer.source": source, "transfer.target": target,
                                 "cv.protocol_description": protocols[target]})
                result = state.cell(a, b, mode)
                mlflow.log_metrics({"accuracy": result["accuracy"], "n_scored": result["n_scored"]})
                if result["excluded_classes"]:
                    mlflow.set_tag("transfer.excluded_classes", ",".join(result["excluded_classes"]))
            cells.append({"train": source, "test": target, "mode": mode, **result, "run_id": run.info.run_id,
                          "protocol": protocols[target]})

        long = pd.DataFrame(cells)
        long["excluded_classes"] = long["excluded_classes"].map(",".join)
        long["fold_accuracy"] = long["fold_accuracy"].map(lambda v: " ".join(f"{a:.4f}" for a in v))
        write_csv(long, out_dir / "cells.csv")
        mlflow.log_table(long, artifact_file="transfer/cells.json")
        metrics: dict = {}
        for mode in MODES:
            rows = long[long["mode"].isin((mode, WITHIN))]
            table = rows.pivot(index="train", columns="test", values="accuracy").reindex(index=names, columns=names)
            write_csv(table.reset_index(), out_dir / f"{mode}.csv")
            plot_matrix(table, out_dir / f"{mode}.png", f"transfer, {mode.replace('_', ' ')} "
                        "(diagonal: within-dataset CV); rows train, columns test")
            mlflow.log_table(table.reset_index(), artifact_file=f"transfer/{mode}.json")
            mlflow.log_artifact(str(out_dir / f"{mode}.png"), artifact_path="transfer")
            metrics[mode] = {f"{a}->{b}": float(table.loc[a, b]) for a in names for b in names}
            off = [table.loc[a, b] for a in names for b in names if a != b]
            metrics[mode]["off_diagonal_mean"] = float(np.mean(off))
            mlflow.log_metric(f"{mode}_off_diagonal_mean", metrics[mode]["off_diagonal_mean"])
        metrics["within_mean"] = float(long.loc[long["mode"] == WITHIN, "accuracy"].mean())
        mlflow.log_metric("within_mean", metrics["within_mean"])
    for old in work.glob("*.keras"):
        old.unlink()
    work.rmdir()
    write_json(metrics, out_dir / "metrics.json")
    write_json({"run_id": parent.info.run_id, "datasets": names, "protocols": protocols,
                "definitions": {"accuracy": "pooled over the target's folds; each row scored once by a model "
                                "that never saw it; zero-shot leaves out target classes the source lacks"}},
               out_dir / "run.json")
    return {"metrics": metrics, "run_id": parent.info.run_id, "cells": cells}


__all__ = ["MODES", "load_emotion_dataset", "plot_matrix", "run_transfer", "zero_shot_predictions"]

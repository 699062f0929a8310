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

Source models and cells are independent jobs (ferops.experiments.transfer.jobs)
handed to the runner params.yaml's `runner:` names, in two waves: the source
models and the diagonal, then the off-diagonal cells, each given its source
model's bytes. Every runner gives the same tables.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from ferops.config import Params, replace
from ferops.data.dataset import Dataset
from ferops.data.formats._images import stack_images
from ferops.errors import FeropsError
from ferops.evaluation import save_figure, write_csv, write_json
from ferops.experiments.transfer.jobs import (
    MODES,
    WITHIN,
    CellJob,
    Domain,
    SourceJob,
    run_job,
    source_run_name,
    zero_shot_predictions,
)
from ferops.runners import mapper_for
from ferops.tracking.job_runs import current_target, keep_only
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.run_record import describe, log_param_sections, note, sig4
from ferops.tracking.store import configure
from ferops.train.folds import describe_protocol, make_folds
from ferops.train.precision import resolve as resolve_precision
from ferops.train.tasks import emotion_task

OUT_DIR = Path("outputs/transfer")


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


def run_transfer(params: Params, out_dir: Path = OUT_DIR) -> dict:
    """The `transfer` stage: N x N accuracy tables for zero-shot, frozen and fine-tuned transfer."""
    t = params.transfer
    if len(t.datasets) < 2:
        raise FeropsError(f"transfer.datasets: needs at least 2 datasets, got {list(t.datasets)}")
    configure(params.tracking)
    size, channels = params.preprocess.image_size, params.preprocess.channels
    datasets = [load_emotion_dataset(path, size, channels) for path in t.datasets]
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise FeropsError(f"transfer.datasets: dataset names must differ, got {names}")
    out_dir = Path(out_dir)
    p = replace(params, **{"model.width": t.width, "train.epochs": t.epochs})
    finetune = replace(p, **{"train.learning_rate": p.train.learning_rate * t.finetune_lr_scale})
    domains = []
    for d in datasets:
        y = emotion_task(d.classes).targets(d)
        domains.append(Domain(d.name, d.classes, d.images, y, d.subjects,
                              make_folds(y, d.subjects, t.folds, "subject", params.seed)))
    protocols = {d.name: describe_protocol("subject", d.subjects_known) for d in datasets}
    cells = []
    lineage = lineage_tags({f"data.{d.name}": path for d, path in zip(datasets, t.datasets)})

    with mlflow.start_run(run_name="transfer") as parent:
        log_param_sections(p, ("seed", "transfer", "preprocess", "model", "train"))  # the transfer stage's
        mlflow.set_tags({**lineage, "ferops.precision": resolve_precision(params.train.precision),
                         "ferops.kind": "transfer", "transfer.datasets": ",".join(names)})
        target, mapper, n = current_target(), mapper_for(params.runner), len(datasets)

        def cell(a: int, b: int, mode: str, model: bytes | None = None) -> CellJob:
            tags = {**lineage_tags({"source": t.datasets[a], "target": t.datasets[b]}), "ferops.kind": "transfer-cell",
                    "transfer.mode": mode, "transfer.source": names[a], "transfer.target": names[b],
                    "cv.protocol_description": protocols[names[b]]}
            return CellJob(names[a], datasets[a].classes, mode, domains[b], p, finetune, tags, target, model)

        # Wave 1: every source model and the diagonal; wave 2: the off-diagonal cells, given their source's bytes.
        first = mapper(run_job, [SourceJob(a, domains[a], p, target) for a in range(n)]
                       + [cell(b, b, WITHIN) for b in range(n)])
        sources = first[:n]
        off = [(a, b, mode) for a in range(n) for b in range(n) if a != b for mode in MODES]
        plan = [(b, b, WITHIN) for b in range(n)] + off
        results = first[n:] + mapper(run_job, [cell(a, b, mode, sources[a].model) for a, b, mode in off])
        if len(results) != len(plan):  # a runner must return each job once
            raise FeropsError(f"transfer: the runner returned {len(results)} cells, expected {len(plan)}")
        keep_only(target, {source_run_name(names[a]): r.run_id for a, r in enumerate(sources)}
                  | {f"{names[a]}->{names[b]} {mode}": r.run_id for (a, b, mode), r in zip(plan, results)})
        for (a, b, mode), r in zip(plan, results):
            cells.append({"train": names[a], "test": names[b], "mode": mode, **r.metrics, "run_id": r.run_id,
                          "protocol": protocols[names[b]]})

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
        describe(note(f"within-dataset accuracy {sig4(metrics['within_mean'])}; across datasets " + ", ".join(
            f"{mode.replace('_', ' ')} {sig4(metrics[mode]['off_diagonal_mean'])}" for mode in MODES),
            f"train on each dataset, test on every other; {t.folds}-fold subject-independent CV on the diagonal",
            ", ".join(f"`{name}` (DVC hash `{lineage[f'dvc.data.{name}']}`)" for name in names),
            ("per cell: the nested runs; matrices: the `transfer/` artifacts",)))
    write_json(metrics, out_dir / "metrics.json")
    write_json({"run_id": parent.info.run_id, "datasets": names, "protocols": protocols,
                "definitions": {"accuracy": "pooled over the target's folds; each row scored once by a model "
                                "that never saw it; zero-shot leaves out target classes the source lacks"}},
               out_dir / "run.json")
    return {"metrics": metrics, "run_id": parent.info.run_id, "cells": cells}


__all__ = ["MODES", "load_emotion_dataset", "plot_matrix", "run_transfer", "zero_shot_predictions"]

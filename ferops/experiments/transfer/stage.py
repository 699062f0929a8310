"""Train on A, test on B (the paper's Table 3), in three modes, as one tracked experiment.

For every ordered pair of datasets (A, B):
- zero-shot: the emotion CNN trained on all of A scores B, with classes mapped
  through the canonical vocabulary: B's images of a class A lacks are left out
  and listed, and A's prediction is the best of the classes B has;
- frozen: A's conv layers kept fixed, its dense layer and a new head trained on B;
- fine-tuned: A's whole network trained further on B at a lower learning rate,
  its output units carried over for the classes both have (a new unit for the rest).
Models that start from a source train `transfer.finetune_epochs`, models from scratch `transfer.epochs`.
The diagonal is within-dataset CV from scratch, the same in all three tables.

Every cell that trains on B does so on B's training folds and is scored on the
fold it never saw (folds grouped by subject; image-level where B has no
subject ids, and the table says so), so a cell's accuracy is pooled over all
of B's rows, each scored once. Each cell is a nested MLflow run with the
lineage (content hashes) of both datasets.

The learning curve (`transfer.fractions`, `[]` for none) is the view where
transfer matters: on a nested share of each of B's training folds' subjects
(10% inside 25%, at least 2 people), a model from scratch against A's source
model fine-tuned (the fine_tuned cells' recipe), both scored on the same
untouched test folds of B.

Source models, cells and curve points are independent jobs
(ferops.experiments.transfer.jobs) handed to the runner params.yaml's
`runner:` names, in two waves: the source models, the diagonal and the scratch
points, then the off-diagonal cells and fine-tuned points, each given its
source model's bytes. Every runner gives the same tables.
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
from ferops.tracking.run_record import describe, log_param_sections, note, round_table, sig4
from ferops.tracking.store import configure
from ferops.train.folds import describe_protocol, make_folds
from ferops.train.precision import resolve as resolve_precision
from ferops.train.tasks import emotion_task

OUT_DIR = Path("outputs/transfer")
SCRATCH = "scratch"  # the learning curve's source and mode for a model trained on B's subset alone
CURVE_COLUMNS = ["target", "source", "mode", "fraction", "n_subjects", "n_train", "accuracy", "fold_accuracy",
                 "fold_subjects", "run_id"]


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


def plot_curve(curve: pd.DataFrame, full: pd.DataFrame, path: Path) -> Path:
    """Accuracy against the share of the target's training subjects: scratch vs each fine-tuned source, per target.

    `full`: the matrix's cells (all training subjects), drawn as each line's 100% point when the curve stops short.
    """
    targets = list(dict.fromkeys(curve["target"]))
    if not targets:
        fig, ax = plt.subplots(figsize=(5, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, "learning curve off (transfer.fractions: [])", ha="center", va="center", fontsize=11)
        return save_figure(fig, path)
    fig, axes = plt.subplots(1, len(targets), figsize=(4.4 * len(targets), 3.8), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], targets):
        rows = curve[curve["target"] == name]
        xs = sorted(set(rows["fraction"]))
        for source, line in rows.groupby("source", sort=False):
            line = line.sort_values("fraction")
            x, y = list(line["fraction"]), list(line["accuracy"])
            mode = WITHIN if source == SCRATCH else "fine_tuned"
            train = name if source == SCRATCH else source
            cell = full[(full["train"] == train) & (full["test"] == name) & (full["mode"] == mode)]
            if len(cell) and 1.0 not in x:
                x, y = x + [1.0], y + [float(cell["accuracy"].iloc[0])]
            style = {"linestyle": "--", "color": "black", "label": "scratch"} if source == SCRATCH else {
                "linestyle": "-", "label": f"fine-tuned from {source}"}
            ax.plot(x, y, marker="o", **style)
            xs = sorted(set(xs) | set(x))
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:.0%}" for x in xs], fontsize=10)
        ax.minorticks_off()
        ax.tick_params(axis="y", labelsize=10)
        ax.set_ylim(0, 1.03)
        ax.set_title(f"test on {name}", fontsize=12)
        ax.set_xlabel("share of the target's training subjects", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    axes[0][0].set_ylabel("accuracy (untouched test folds)", fontsize=11)
    fig.suptitle("transfer learning curve: fine-tuned from another domain vs scratch (100%: the matrix's cells)",
                 fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def curve_summary(curve: pd.DataFrame) -> dict:
    """{"scratch@f": mean over targets, "fine_tuned@f": mean over targets and sources} for every fraction."""
    return {f"{mode}@{f:g}": float(rows["accuracy"].mean())
            for f in sorted(set(curve["fraction"])) for mode in (SCRATCH, "fine_tuned")
            if len(rows := curve[(curve["fraction"] == f) & (curve["mode"] == mode)])}


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
    if len(set(t.fractions)) != len(t.fractions):
        raise FeropsError(f"transfer.fractions: each share once, got {list(t.fractions)}")
    out_dir = Path(out_dir)
    p = replace(params, **{"model.width": t.width, "train.epochs": t.epochs})
    from_source = replace(p, **{"train.epochs": t.finetune_epochs})  # every model that starts from a source's
    mode_params = {WITHIN: p, "zero_shot": p, "frozen": from_source,
                   "fine_tuned": replace(from_source, **{"train.learning_rate": p.train.learning_rate
                                                         * t.finetune_lr_scale})}
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

        def cell(a: int, b: int, mode: str, fraction: float | None, model: bytes | None = None) -> CellJob:
            tags = {**lineage_tags({"source": t.datasets[a], "target": t.datasets[b]}),
                    "ferops.kind": "transfer-cell" if fraction is None else "transfer-curve",
                    "transfer.mode": mode, "transfer.source": names[a], "transfer.target": names[b],
                    "cv.protocol_description": protocols[names[b]]}
            if fraction is not None:
                tags["transfer.fraction"] = f"{fraction:g}"
            return CellJob(names[a], datasets[a].classes, mode, domains[b], mode_params[mode], tags, target, model,
                           fraction)

        # Wave 1: every source model, the diagonal and the curve's scratch points; wave 2: the off-diagonal cells
        # and the curve's fine-tuned points, given their source's bytes.
        within = [(b, b, WITHIN, None) for b in range(n)]
        scratch = [(b, b, WITHIN, f) for b in range(n) for f in t.fractions]
        off = [(a, b, mode, None) for a in range(n) for b in range(n) if a != b for mode in MODES]
        tuned = [(a, b, "fine_tuned", f) for b in range(n) for a in range(n) if a != b for f in t.fractions]
        first_jobs = [cell(*c) for c in within + scratch]
        first = mapper(run_job, [SourceJob(a, domains[a], p, target) for a in range(n)] + first_jobs)
        sources = first[:n]
        second_jobs = [cell(a, b, mode, f, sources[a].model) for a, b, mode, f in off + tuned]
        plan, jobs = within + scratch + off + tuned, first_jobs + second_jobs
        results = first[n:] + mapper(run_job, second_jobs)
        if len(results) != len(plan):  # a runner must return each job once
            raise FeropsError(f"transfer: the runner returned {len(results)} cells, expected {len(plan)}")
        keep_only(target, {source_run_name(names[a]): r.run_id for a, r in enumerate(sources)}
                  | {job.run_name: r.run_id for job, r in zip(jobs, results)})
        points = []
        for (a, b, mode, fraction), job, r in zip(plan, jobs, results):
            if fraction is None:
                cells.append({"train": names[a], "test": names[b], "mode": mode, **r.metrics, "run_id": r.run_id,
                              "protocol": protocols[names[b]]})
                continue
            trained = [job.train_rows(f) for f in range(int(domains[b].folds.max()) + 1)]  # each fold's fit rows
            people = [len(np.unique(domains[b].subjects[rows])) for rows in trained]
            points.append({"target": names[b], "source": SCRATCH if mode == WITHIN else names[a],
                           "mode": SCRATCH if mode == WITHIN else mode, "fraction": fraction,
                           "n_subjects": float(np.mean(people)), "n_train": float(np.mean([len(x) for x in trained])),
                           "accuracy": r.metrics["accuracy"],
                           "fold_accuracy": " ".join(f"{v:.4f}" for v in r.metrics["fold_accuracy"]),
                           "fold_subjects": " ".join(map(str, people)), "run_id": r.run_id})

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
        diagonal = long[long["mode"] == WITHIN].set_index("test")["accuracy"]
        metrics["within"] = {name: float(diagonal[name]) for name in names}  # each dataset's own CV from scratch
        metrics["within_mean"] = float(diagonal.mean())
        mlflow.log_metric("within_mean", metrics["within_mean"])

        rank = {name: i for i, name in enumerate([SCRATCH, *names])}  # per target and share: scratch, then sources
        curve = pd.DataFrame(points, columns=CURVE_COLUMNS).sort_values(
            ["target", "fraction", "source"], key=lambda c: c if c.name == "fraction" else c.map(rank))
        curve = curve.reset_index(drop=True)
        write_csv(curve, out_dir / "learning_curve.csv")
        plot_curve(curve, long, out_dir / "learning_curve.png")
        mlflow.log_table(round_table(curve), artifact_file="transfer/learning_curve.json")
        mlflow.log_artifact(str(out_dir / "learning_curve.png"), artifact_path="transfer")
        if len(curve):
            metrics["curve"] = curve_summary(curve)
            mlflow.log_metrics({f"curve_{k.replace('@', '_at_')}": v for k, v in metrics["curve"].items()})
        describe(note(f"within-dataset accuracy {sig4(metrics['within_mean'])}; across datasets " + ", ".join(
            f"{mode.replace('_', ' ')} {sig4(metrics[mode]['off_diagonal_mean'])}" for mode in MODES),
            f"train on each dataset, test on every other; {t.folds}-fold subject-independent CV on the diagonal",
            ", ".join(f"`{name}` (DVC hash `{lineage[f'dvc.data.{name}']}`)" for name in names),
            ("per cell: the nested runs; matrices: the `transfer/` artifacts",
             *([f"learning curve on {', '.join(f'{f:.0%}' for f in t.fractions)} of each target fold's training "
                "subjects: " + ", ".join(f"{k} {sig4(v)}" for k, v in metrics["curve"].items())]
               if "curve" in metrics else []))))
    write_json(metrics, out_dir / "metrics.json")
    write_json({"run_id": parent.info.run_id, "datasets": names, "protocols": protocols,
                "definitions": {"accuracy": "pooled over the target's folds; each row scored once by a model "
                                "that never saw it; zero-shot leaves out target classes the source lacks",
                                "learning_curve": "each fold trains on a nested share of its training subjects "
                                "(at least 2), from scratch or fine-tuned from a source; scored on the full test "
                                "fold; n_subjects, n_train: means over folds"}},
               out_dir / "run.json")
    return {"metrics": metrics, "run_id": parent.info.run_id, "cells": cells, "curve": curve}


__all__ = ["MODES", "load_emotion_dataset", "plot_curve", "plot_matrix", "run_transfer", "zero_shot_predictions"]

"""Cross-task transfer: do emotion-trained features make AUs cheaper to learn? Measured, not asserted.

The paper argues its emotion CNN learned FACS-like features. If so, AU heads
on that backbone should beat AU heads trained from scratch, most of all when
AU-labelled data is scarce. So: a learning curve over shares of the AU
training subjects (params cross_task.fractions), three ways at each size:
- scratch: the paper CNN trained on AUs alone;
- frozen: the emotion model's conv layers kept, dense layer and AU head trained;
- fine_tuned: the whole emotion network trained further on AUs (new head, lower rate).
All three are scored on the same held-out AU subjects (mean F1 over AUs, each
AU's threshold chosen on the cell's inner validation subjects), who
are also absent from the emotion model's training data: the AU set is a
separate SynthFACS domain with its own identities.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ferops.config import Params, flatten, replace
from ferops.data.dataset import Dataset
from ferops.errors import FeropsError
from ferops.evaluation import save_figure, write_csv, write_json
from ferops.experiments.au.metrics import presence_table
from ferops.experiments.au.stage import choose_aus, decision_thresholds
from ferops.models.cnn import CONV_LAYERS, rebuilt_from
from ferops.tracking.epoch_logger import EpochLogger
from ferops.tracking.lineage import lineage_tags
from ferops.tracking.store import configure
from ferops.train.fit import fit, predict_proba
from ferops.train.folds import holdout_split, inner_split, subject_subset
from ferops.train.precision import load_keras, resolve as resolve_precision
from ferops.train.tasks import au_presence_task

OUT_DIR = Path("outputs/cross_task")
MODES = ("scratch", "frozen", "fine_tuned")


def subject_subsets(subjects: np.ndarray, rows: np.ndarray, fractions, seed: int) -> dict[float, np.ndarray]:
    """Nested shares of the training subjects: the 10% set is inside the 25% set, and so on."""
    return {fraction: subject_subset(subjects, rows, fraction, seed) for fraction in fractions}


def plot_curve(table: pd.DataFrame, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for mode, rows in table.groupby("mode", sort=False):
        ax.plot(rows["n_subjects"], rows["f1_mean"], marker="o", label=mode.replace("_", " "))
    ax.set_xscale("log")
    ax.set_xlabel("AU training subjects")
    ax.set_ylabel("mean F1 over AUs (held-out subjects)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def run_cross_task(params: Params, emotion_model: str | Path, out_dir: Path = OUT_DIR) -> dict:
    """The `cross_task` stage: AU learning curves from scratch, frozen and fine-tuned emotion backbones."""
    ct, au = params.cross_task, params.au
    emotion_model = Path(emotion_model)
    if not emotion_model.exists():
        raise FeropsError(f"{emotion_model}: no emotion model; run the refit stage first (`dvc repro refit`)")
    configure(params.tracking)
    # The AU recipe (batch, augmentation) at this experiment's epochs; model.width must match the emotion model's.
    p = replace(params, **{"train.epochs": ct.epochs, "train.batch_size": au.batch_size})
    finetune = replace(p, **{"train.learning_rate": p.train.learning_rate * ct.finetune_lr_scale})
    dataset = Dataset.load(au.data)
    labels, _ = choose_aus(dataset, au.min_prevalence)
    task = au_presence_task(labels, au.sparsity.l1, au.sparsity.l2)
    y = task.targets(dataset)
    train_rows, test_rows = holdout_split(dataset.subjects, ct.test_fraction, params.seed)
    subsets = subject_subsets(dataset.subjects, train_rows, ct.fractions, params.seed)
    source = load_keras(emotion_model, params.train.precision)  # in this machine's policy, not the trainer's
    if source.input_shape[1:] != dataset.images.shape[1:]:
        raise FeropsError(f"{emotion_model}: takes {source.input_shape[1:]} images, {au.data} has "
                          f"{dataset.images.shape[1:]}")
    rows_out = []
    with mlflow.start_run(run_name="cross-task") as parent:
        mlflow.log_params(flatten(p) | {"emotion_model": str(emotion_model), "n_test": len(test_rows)})
        mlflow.set_tags({**lineage_tags({"data": au.data, "emotion_model": emotion_model}),
                         "ferops.precision": resolve_precision(params.train.precision),
                         "ferops.kind": "cross-task"})
        plan = [(f, m) for f in ct.fractions for m in MODES]
        for step, (fraction, mode) in enumerate(tqdm(plan, desc="cross-task", unit="fit")):
            rows = subsets[fraction]
            fit_rows, val_rows = inner_split(rows, dataset.subjects, p.train.validation_fraction, params.seed)
            if mode == "scratch":
                model, recipe = None, p
            else:  # the emotion weights in a fresh paper CNN: the kernel's kept compiled model of this mode trains it
                freeze = CONV_LAYERS if mode == "frozen" else ()
                model = partial(rebuilt_from, source, p.model, task.head, dataset.images.shape[1:], freeze)
                recipe = finetune if mode == "fine_tuned" else p
            n_subjects = len(np.unique(dataset.subjects[rows]))
            with mlflow.start_run(run_name=f"{mode}-{fraction:g}", nested=True) as run:
                mlflow.set_tags({"ferops.kind": "cross-task-fit", "cross_task.mode": mode})
                mlflow.log_params({"fraction": fraction, "n_subjects": n_subjects, "n_fit": len(fit_rows)})
                result = fit(recipe, task, dataset.images[fit_rows], y[fit_rows], dataset.images[val_rows],
                             y[val_rows], model=model, callbacks=[EpochLogger(run.info.run_id)], seed_offset=step,
                             augment=au.augment, reuse=True)
                cut = decision_thresholds(result.model, dataset.images, y, val_rows)  # training subjects only
                table = presence_table(y[test_rows], predict_proba(result.model, dataset.images[test_rows]), labels,
                                       cut)
                f1 = float(table["f1"].mean())
                mlflow.log_metrics({"f1_mean": f1, "auroc_mean": float(np.nanmean(table["auroc"]))})
            rows_out.append({"mode": mode, "fraction": fraction, "n_subjects": n_subjects, "n_images": len(rows),
                             "f1_mean": f1, "auroc_mean": float(np.nanmean(table["auroc"])), "run_id": run.info.run_id})
        curve = pd.DataFrame(rows_out)
        out_dir = Path(out_dir)
        write_csv(curve, out_dir / "learning_curve.csv")
        plot_curve(curve, out_dir / "learning_curve.png", "AU detection: emotion backbone vs scratch")
        mlflow.log_table(curve, artifact_file="cross_task/learning_curve.json")
        mlflow.log_artifact(str(out_dir / "learning_curve.png"), artifact_path="cross_task")
        metrics = {f"{m}_f1@{f:g}": float(curve.loc[(curve["mode"] == m) & (curve["fraction"] == f), "f1_mean"].iloc[0])
                   for m in MODES for f in ct.fractions}
        mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})
    write_json(metrics, out_dir / "metrics.json")
    write_json({"run_id": parent.info.run_id, "labels": list(labels), "n_test": int(len(test_rows)),
                "definitions": {"f1": "mean over AUs of F1 on held-out AU subjects, each AU at the threshold with "
                                      "the best F1 on the cell's inner validation subjects"}},
               out_dir / "run.json")
    return {"metrics": metrics, "run_id": parent.info.run_id, "curve": curve}


__all__ = ["MODES", "run_cross_task", "subject_subsets"]

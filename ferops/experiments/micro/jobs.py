"""One left-out subject of the micro stage as an independent job (ferops.runners), in its own nested MLflow run.

A job carries all its fold needs and nothing that exists only on this machine:
the clips, their LBP-TOP features and the pre-trained CNN's weights (numpy
arrays from `pretrain_cnn`, not a .keras path), so a Dask worker elsewhere can
run it. Each process builds the CNN+LSTM once, from params.seed, and reuses it
for every subject it trains (Resettable puts every variable back), so a
subject's scores depend neither on the process that trained it nor on the
subjects it trained before: every runner gives the same pooled metrics.

The leakage guard runs inside the job, before the left-out subject's clips are
scored: a leaky fold raises there and the whole stage fails with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np

from ferops.config import Params
from ferops.data.dataset import Dataset
from ferops.experiments.micro.leakage import check_fold
from ferops.experiments.micro.train import CnnLstm, lbp_svm
from ferops.tracking.job_runs import RunTarget, child_run
from ferops.train import devices
from ferops.train.fit import private_layer_seeds, seed_everything

PROTOCOL = "loso"


@dataclass(frozen=True)
class LosoSetup:
    """What every fold of one stage run shares; `key` (the parent run id) tells a process when to rebuild."""
    key: str
    params: Params
    clips: Dataset
    pretrained: list | None  # [n emotion classes, CNN weights] (pretrain_cnn), or None: from scratch
    lbp: np.ndarray  # LBP-TOP features of every clip: computed per clip, nothing fitted


@dataclass(frozen=True)
class LosoJob:
    fold: int
    setup: LosoSetup
    train: np.ndarray  # clip rows
    test: np.ndarray  # the left-out subject's clip rows
    target: RunTarget


@dataclass(frozen=True)
class LosoResult:
    fold: int
    run_id: str
    proba: np.ndarray  # CNN+LSTM class probabilities of the test clips
    svm_scores: np.ndarray  # LBP-TOP + SVM decision values of the test clips


def fold_run_name(subject: str) -> str:
    return f"loso-{subject}"


_trainer: dict = {}  # this process's CNN+LSTM: {"key": setup.key, "trainer": CnnLstm}


def trainer_for(setup: LosoSetup) -> CnnLstm:
    """This process's CNN+LSTM for `setup`, built once from params.seed: the same start in every process."""
    if _trainer.get("key") != setup.key:
        _trainer.clear()
        params = setup.params
        devices.enable_memory_growth()
        seed_everything(params.seed, params.train.deterministic)
        with private_layer_seeds(params.seed):  # new heads and the LSTM draw their seeds here, not from `random`
            _trainer.update(key=setup.key, trainer=CnnLstm(params, setup.clips, setup.pretrained))
    return _trainer["trainer"]


def release() -> None:
    """Drop this process's CNN+LSTM (the stage is over)."""
    _trainer.clear()


def run_loso_fold(job: LosoJob) -> LosoResult:
    """Train both models without the left-out subject, check for leakage, then score its clips once."""
    setup, i = job.setup, job.fold
    params, clips = setup.params, setup.clips
    mp, y, subjects = params.micro, clips.labels, clips.subjects
    subject = str(subjects[job.test[0]])
    trainer = trainer_for(setup)
    tags = {"ferops.kind": "micro-fold", "ferops.parent_run": job.target.parent_run_id,
            "micro.test_subject": subject, "cv.protocol": PROTOCOL}
    with child_run(job.target, fold_run_name(subject), tags) as run:
        trainer.train(job.train, seed=params.seed + i)
        svm_scores, scaler = lbp_svm(setup.lbp, y, subjects, job.train, job.test, mp.lbp_top.svm_c,
                                     params.seed + i, len(clips.classes), mp.balance)
        # The guard runs before the test clips are scored: a leaky fold produces no number.
        check_fold(f"fold {i} (left-out {subject})", subjects[job.train], subjects[job.test],
                   {**trainer.fitted_on, "LBP-TOP scaler": scaler.subjects_})
        proba = trainer.predict(job.test)
        mlflow.log_params({"fold": i, "test_subject": subject, "n_train": len(job.train), "n_test": len(job.test)})
        mlflow.log_metrics({f"{m}_test_accuracy": float(np.mean(p.argmax(1) == y[job.test]))
                            for m, p in (("cnn_lstm", proba), ("lbp_top", svm_scores))})
    print(f"micro: fold {i} (left-out {subject}) done", flush=True)
    return LosoResult(i, run.info.run_id, np.asarray(proba, np.float32), svm_scores)

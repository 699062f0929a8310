"""Where each stage writes: the one table of output paths and records that everything else reads.

`dvc.yaml` declares each stage's outputs; the CLI's `--out` defaults, `ferops
results` (which reads each stage's metrics) and `ferops reconcile` (which
removes run records the tracking store no longer backs) used to keep their
own copies of those paths, and the copies drifted. They read this table now,
and tests/test_stages.py checks that dvc.yaml agrees with it.

It sits at the bottom of the layer order (ferops/config.py's floor: it imports
nothing of ferops), so the CLI, tracking and results may all read it. Stage
functions take their output folder as an argument and do not import it, so
editing this table reruns no stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StageOutputs:
    """What one `ferops` command writes, when run with its default `--out`."""

    command: str  # the `ferops` subcommand
    out: Path  # what `--out` names: the stage's folder, or its one record file
    stage: str | None = None  # its stage in dvc.yaml; None for interactive commands
    metrics: Path | None = None  # the metrics file `ferops results` reads
    record: Path | None = None  # the run record naming the MLflow run it made
    registration: Path | None = None  # what it registered (ferops.tracking.registration's one shape)


def _stage(command: str, out: str, stage: str | None = None, metrics: str | None = None,
           record: str | None = None, registration: str | None = None) -> StageOutputs:
    return StageOutputs(command, Path(out), stage or command.replace("-", "_"),
                        Path(metrics) if metrics else None, Path(record) if record else None,
                        Path(registration) if registration else None)


# In pipeline order. `record` is uncached in dvc.yaml: removing it is enough for `dvc repro` to rerun the stage.
STAGES: dict[str, StageOutputs] = {s.command: s for s in (
    _stage("validate", "outputs/validation.json"),
    _stage("tune", "outputs/tune", metrics="outputs/tune/metrics.json", record="outputs/tune/run.json"),
    _stage("cv", "outputs/cv", metrics="outputs/cv/metrics.json", record="outputs/cv/run.json"),
    _stage("refit", "outputs/model", record="outputs/model/run.json"),
    _stage("register", "outputs/registry.json", record="outputs/registry.json",
           registration="outputs/registry.json"),
    _stage("au", "outputs/au", metrics="outputs/au/metrics.json", record="outputs/au/run.json",
           registration="outputs/au/registry.json"),
    _stage("package", "outputs/package/run.json", record="outputs/package/run.json",
           registration="outputs/package/registry.json"),
    _stage("transfer", "outputs/transfer", metrics="outputs/transfer/metrics.json",
           record="outputs/transfer/run.json"),
    _stage("cross-task", "outputs/cross_task", metrics="outputs/cross_task/metrics.json",
           record="outputs/cross_task/run.json"),
    _stage("analyze", "outputs/analysis", metrics="outputs/analysis/metrics.json",
           record="outputs/analysis/run.json"),
    _stage("micro", "outputs/micro", metrics="outputs/micro/metrics.json", record="outputs/micro/run.json",
           registration="outputs/micro/registry.json"),
)}

# Interactive commands: not DVC stages (nothing downstream reads them), but their defaults live here too.
COMMANDS: dict[str, StageOutputs] = {s.command: s for s in (
    StageOutputs("train", Path("outputs/train"), metrics=Path("outputs/train/metrics.json")),
    StageOutputs("evaluate", Path("outputs/evaluate"), metrics=Path("outputs/evaluate/metrics.json")),
)}

EMOTION_MODEL = STAGES["refit"].out / "model.keras"  # the refit model that cross-task and analyze start from


def out(command: str) -> Path:
    """The default `--out` of a `ferops` command."""
    return (STAGES | COMMANDS)[command].out

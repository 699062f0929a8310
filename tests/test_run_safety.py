"""Runs end with the truth about their process: KILLED on SIGINT/SIGTERM, FAILED once found orphaned.

The fast tests drive real MLflow runs in a small child process (nested runs,
then a sleep); the slow ones interrupt a real `ferops cv` mid-fold.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from ferops.config import load_params, overlay
from ferops.tracking import run_safety
from ferops.tracking.run_safety import END_TAG, HOST_TAG, NAMESPACE_TAG, NOTE_TAG, PID_TAG, START_TAG
from ferops.tracking.store import configure

from conftest import ROOT, TINY

FEROPS = Path(sys.executable).with_name("ferops")


# A ferops-like process: configure(), a parent run with a nested fold run, then it waits to be stopped.
NESTED_RUNS = textwrap.dedent("""
    import sys, time
    import mlflow
    from ferops.config import TrackingParams
    from ferops.tracking.run_safety import install_interrupt_handlers
    from ferops.tracking.store import configure

    if sys.argv[1] == "handlers":
        install_interrupt_handlers()
    configure(TrackingParams(tracking_uri="unused: MLFLOW_TRACKING_URI is set", artifact_root="mlartifacts",
                             experiment="ferops", model_name="m", promote_metric="cv_accuracy_mean"))
    with mlflow.start_run(run_name="cv-toy") as parent:
        with mlflow.start_run(run_name="fold-00", nested=True) as fold:
            print(parent.info.run_id, fold.info.run_id, flush=True)
            while True:
                time.sleep(0.05)
""")


def _start_nested(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, list[str]]:
    script = tmp_path / "nested_runs.py"
    script.write_text(NESTED_RUNS)
    proc = subprocess.Popen([sys.executable, str(script), mode], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()  # the run ids, once both runs exist
    if not line:
        proc.wait(timeout=30)
        pytest.fail(f"child exited {proc.returncode} before starting its runs:\n{proc.stderr.read()[-3000:]}")
    return proc, line.split()


def _tiny_tracking():
    from conftest import make_params

    return make_params().tracking


def test_every_run_is_tagged_with_its_process(mlflow_store):
    configure(_tiny_tracking())
    with mlflow.start_run() as run:
        with mlflow.start_run(nested=True) as child:
            pass
    me = psutil.Process()
    for run_id in (run.info.run_id, child.info.run_id):
        tags = MlflowClient().get_run(run_id).data.tags
        assert tags[PID_TAG] == str(os.getpid())
        assert tags[HOST_TAG] == socket.gethostname()
        assert tags[NAMESPACE_TAG] == os.readlink("/proc/self/ns/pid")
        assert abs(float(tags[START_TAG]) - me.create_time()) < 0.01


@pytest.mark.slow
def test_orphans_of_a_dead_process_are_failed_with_a_note_and_nothing_else_is(mlflow_store, tmp_path):
    experiment_id = configure(_tiny_tracking())
    proc, run_ids = _start_nested(tmp_path, "plain")
    client = MlflowClient()
    assert {client.get_run(r).info.status for r in run_ids} == {"RUNNING"}
    dead_pid = proc.pid
    proc.kill()
    proc.wait(timeout=30)

    host, mine = socket.gethostname(), run_safety.process_tags()
    elsewhere = client.create_run(experiment_id, run_name="other-host",  # its process cannot be checked from here
                                  tags={PID_TAG: str(dead_pid), HOST_TAG: "another-host", START_TAG: "1.00"})
    container = client.create_run(experiment_id, run_name="other-container",  # same host name, other pid numbers
                                  tags={PID_TAG: str(dead_pid), HOST_TAG: host, NAMESPACE_TAG: "pid:[1]",
                                        START_TAG: "1.00"})
    reused = client.create_run(experiment_id, run_name="reused-pid",  # our pid, but an older process's start time
                               tags={PID_TAG: mine[PID_TAG], HOST_TAG: host,
                                     START_TAG: f"{float(mine[START_TAG]) - 3600:.2f}"})
    untagged = client.create_run(experiment_id, run_name="not-ferops")
    live = mlflow.start_run(run_name="live")  # this process: alive, so left alone

    configure(_tiny_tracking())  # the next tracked step, in another process

    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        assert f"Process {dead_pid} on {host}" in run.data.tags[NOTE_TAG]
        assert run.data.tags[END_TAG] == "process died"
    assert client.get_run(reused.info.run_id).info.status == "FAILED"
    for run in (elsewhere, container, untagged, live):
        assert client.get_run(run.info.run_id).info.status == "RUNNING", run.info.run_name
    mlflow.end_run()


@pytest.mark.slow
def test_orphan_note_keeps_an_existing_description(mlflow_store, tmp_path):
    configure(_tiny_tracking())
    proc, (parent, fold) = _start_nested(tmp_path, "plain")
    MlflowClient().set_tag(fold, NOTE_TAG, "baseline with flips off")
    proc.kill()
    proc.wait(timeout=30)
    configure(_tiny_tracking())
    note = MlflowClient().get_run(fold).data.tags[NOTE_TAG]
    assert note.startswith("baseline with flips off\n\n**FAILED: its process died.**")


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_ends_every_open_run_killed_with_one_line_and_exit_code(mlflow_store, tmp_path, sig, code):
    configure(_tiny_tracking())  # creates the store here, so the child prints nothing of its own
    proc, (parent, fold) = _start_nested(tmp_path, "handlers")
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    name = signal.Signals(sig).name
    last_line = stderr.strip().splitlines()[-1]
    assert last_line == f"ferops: interrupted by {name}, run {parent} marked KILLED with 1 nested run"
    client = MlflowClient()
    for run_id in (parent, fold):
        run = client.get_run(run_id)
        assert run.info.status == "KILLED"
        assert run.data.tags[END_TAG] == name
        assert f"**KILLED** by {name}" in run.data.tags[NOTE_TAG]


def test_handlers_are_not_installed_off_the_main_thread():
    import threading

    result = []
    thread = threading.Thread(target=lambda: result.append(run_safety.install_interrupt_handlers()))
    thread.start()
    thread.join()
    assert result == [False]
    assert signal.getsignal(signal.SIGINT) is not run_safety._on_signal


# --- a real `ferops cv`, interrupted mid-fold ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    """A project dir with a tiny params.yaml (21 sequences, 3 folds, 3 epochs) and its processed dataset."""
    root = tmp_path_factory.mktemp("tiny_project")
    data = overlay(yaml.safe_load((ROOT / "params.yaml").read_text()),
                   overlay(TINY, {"synthfacs": {"n": 21}, "train": {"epochs": 3}, "cv": {"folds": 3}}))
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    load_params(root / "params.yaml")  # fails here, by key, if params.yaml and TINY disagree
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'prep.db'}"}
    for step in (["generate", "--no-track"], ["preprocess"]):
        done = subprocess.run([str(FEROPS), "--params", "params.yaml", *step], cwd=root, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    return root


def _start_cv_and_wait_for_a_fold(root: Path, uri: str) -> tuple[subprocess.Popen, MlflowClient, str]:
    proc = subprocess.Popen([str(FEROPS), "--params", "params.yaml", "cv", "--out", "outputs/cv"], cwd=root,
                            env={**os.environ, "MLFLOW_TRACKING_URI": uri}, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = MlflowClient(tracking_uri=uri)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ferops cv exited {proc.returncode} before a fold ran:\n{proc.stderr.read()[-3000:]}")
        experiment = client.get_experiment_by_name("ferops") if Path(uri.removeprefix("sqlite:///")).exists() else None
        if experiment is not None:
            folds = client.search_runs([experiment.experiment_id],
                                       "tags.`ferops.kind` = 'cv-fold' and attributes.status = 'RUNNING'")
            if folds:
                return proc, client, experiment.experiment_id
        time.sleep(0.5)
    proc.kill()
    pytest.fail("no cv-fold run started within 300 s")


@pytest.mark.slow
def test_sigkilled_ferops_cv_leaves_runs_that_the_next_start_marks_failed(tiny_project, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, client, experiment_id = _start_cv_and_wait_for_a_fold(tiny_project, uri)
    proc.kill()
    proc.wait(timeout=30)
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
    assert {r.data.tags.get("ferops.kind") for r in running} >= {"cross-validation", "cv-fold"}

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tiny_project)
    configure(load_params(tiny_project / "params.yaml").tracking)

    for run in running:
        after = client.get_run(run.info.run_id)
        assert after.info.status == "FAILED", run.info.run_name
        assert f"Process {proc.pid} on {socket.gethostname()}" in after.data.tags[NOTE_TAG]


@pytest.mark.slow
def test_ctrl_c_on_ferops_cv_marks_its_runs_killed_and_exits_130_without_traceback(tiny_project, tmp_path):
    """Needs `install_interrupt_handlers()` at the top of ferops.cli.main."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc, client, experiment_id = _start_cv_and_wait_for_a_fold(tiny_project, uri)
    running = client.search_runs([experiment_id], "attributes.status = 'RUNNING'")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)

    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "marked KILLED" in stderr.strip().splitlines()[-1]
    for run in running:
        assert client.get_run(run.info.run_id).info.status == "KILLED", run.info.run_name

"""End to end: `make deploy`'s deployments run the real dvc.yaml in a temporary git repo (emotion-cv with a
parameter, then the whole `paper` flow); `dvc repro` afterwards has nothing to do; then the MLflow store and registry.

Then the newcomer's view: a `git clone` of that repo (committed dvc.lock, no store, no data) must train,
track and register again rather than trust the lock file.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient

from conftest import _free_port, make_dvc_project, run_checked as _run

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    """`make deploy` (a real Prefect server + every flow served), then two deployment runs, then `dvc repro`."""
    repo = tmp_path_factory.mktemp("project")
    # 21 sequences -> 84 images (last 3 frames + neutral first frame)
    env = make_dvc_project(repo, {"synthfacs": {"n": 21}})
    env = {**env, "PREFECT_API_URL": f"http://127.0.0.1:{_free_port()}/api", "PREFECT_HOME": str(repo / ".prefect")}
    log = open(repo.parent / "serve.log", "w")
    serve = subprocess.Popen([sys.executable, "-m", "flows.deploy"], cwd=repo, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 180
        while "paper/default" not in _run([str(BIN / "prefect"), "deployment", "ls"], repo, env, check=False).stdout:
            assert serve.poll() is None and time.time() < deadline, (repo.parent / "serve.log").read_text()[-3000:]
            time.sleep(2)
        deployment = [str(BIN / "prefect"), "deployment", "run"]
        emotion = _run([*deployment, "emotion-cv/default", "-p", "epochs=1", "--watch"], repo, env)
        first = _run([*deployment, "paper/default", "--watch"], repo, env)
        rerun = _run([*deployment, "paper/default", "--watch"], repo, env)  # everything is current now
        rerun_states = _paper_task_states(env, repo)
    finally:
        for child in psutil.Process(serve.pid).children(recursive=True):  # the Prefect server deploy started
            child.kill()
        serve.kill()
        log.close()
    start = time.perf_counter()
    second = _run(["dvc", "repro"], repo, env)
    return repo, env, emotion, first, second, time.perf_counter() - start, rerun, rerun_states


def _paper_task_states(env, repo) -> dict[str, str]:
    """stage task name -> final state name, of the newest `paper` flow run, from the Prefect server."""
    script = ("import json\nfrom prefect import get_client\nfrom prefect.client.schemas.filters import *\n"
              "from prefect.client.schemas.sorting import FlowRunSort\n"
              "with get_client(sync_client=True) as c:\n"
              "    (run,) = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=['paper'])),"
              " sort=FlowRunSort.START_TIME_DESC, limit=1)\n"
              "    tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))\n"
              "    print(json.dumps({t.name: t.state.name for t in tasks}))\n")
    return json.loads(_run([sys.executable, "-c", script], repo, env).stdout.strip().splitlines()[-1])


STAGES = ("generate", "preprocess", "validate", "tune", "cv", "refit", "register",
          "domain@au", "domain@posed", "domain@wild", "domain@webcam", "au", "transfer", "cross_task", "analyze",
          "micro", "package")


def _client(env):
    return MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])


def test_deployments_ran_every_stage_and_left_dvc_up_to_date(repro):
    repo, env, emotion, first, second, seconds, rerun, rerun_states = repro
    for run in (emotion, first, rerun):
        assert "Flow run finished successfully in 'Completed'" in run.stdout, run.stdout[-2000:]
    # a paper run with everything up to date: every stage's final state says Skipped, the summary still runs
    stages = {name: state for name, state in rerun_states.items() if name in STAGES}
    assert set(stages) == set(STAGES) and set(stages.values()) == {"Skipped"}, rerun_states
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert set(STAGES) <= set(lock)  # every stage recorded by the flows' `dvc commit`
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout.lower()
    assert seconds < 60
    status = _run(["dvc", "status", "dvc.yaml"], repo, env)
    assert "up to date" in status.stdout.lower()
    assert len(_client(env).search_model_versions("name='fer-emotion'")) == 1  # paper skipped the current stages
    summary = (repo / "outputs" / "paper_summary.md").read_text()
    assert "98.62% ± 0.11" in summary and "`models:/fer-emotion@champion`" in summary
    # every MLflow run of the emotion-cv deployment names its Prefect flow run
    runs = _client(env).search_runs([_client(env).get_experiment_by_name("ferops").experiment_id],
                                    "tags.`ferops.kind` = 'cross-validation'")
    assert len(runs) == 1 and len(runs[0].data.tags["prefect.flow_run_id"]) == 36
    # results are DVC outputs, never git files
    tracked = _run(["git", "ls-files", "outputs"], repo, env).stdout.split()
    assert tracked == [] or all(p.endswith(".gitignore") for p in tracked)


def test_a_fresh_clone_trains_and_registers_instead_of_trusting_the_lock(repro, tmp_path_factory):
    repo, env, *_ = repro
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-qm", "results of the first run"], repo, env)
    clone = tmp_path_factory.mktemp("newcomer") / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], clone.parent, env)
    assert not (clone / "outputs").exists() or not any((clone / "outputs").rglob("*.json"))
    clone_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{clone / 'mlflow.db'}"}
    _run([str(BIN / "ferops"), "reconcile"], clone, clone_env)
    # The emotion chain and one experiment stage: the first repro above already ran every stage, and every
    # experiment stage has the same uncached run record (tests/test_stale_records.py), so the rest of the
    # DAG would only make this test minutes longer.
    fresh = _run(["dvc", "repro", "register", "au"], clone, clone_env)
    for stage in (*STAGES[:STAGES.index("register") + 1], "domain@au", "au"):
        assert f"Running stage '{stage}'" in fresh.stdout, stage
    version = _client(clone_env).get_model_version_by_alias("fer-emotion", "champion")
    assert str(version.version) == "1"
    assert str(_client(clone_env).get_model_version_by_alias("fer-au", "champion").version) == "1"
    # the store is lost, the outputs stay: reconcile clears the stale records and the stages rerun
    (clone / "mlflow.db").unlink()
    cleared = _run([str(BIN / "ferops"), "reconcile"], clone, clone_env)
    assert "will rerun" in cleared.stdout
    again = _run(["dvc", "repro", "register"], clone, clone_env)  # (experiment stages: tests/test_stale_records.py)
    for stage in ("cv", "refit", "register"):  # run, not restored from DVC's run cache
        assert f"Running stage '{stage}'" in again.stdout, again.stdout
    assert str(_client(clone_env).get_model_version_by_alias("fer-emotion", "champion").version) == "1"


def test_dvc_metrics_and_plots(repro):
    repo, env, *_ = repro
    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], repo, env).stdout)
    (workspace,) = shown.values()  # keyed "workspace" or "" depending on the DVC version
    metrics = workspace["data"]["outputs/cv/metrics.json"]["data"]
    assert 0 <= metrics["cv_accuracy_mean"] <= 1 and metrics["protocol"] == "subject"
    _run(["dvc", "plots", "show", "-o", str(repo / "plots")], repo, env)
    assert (repo / "plots" / "index.html").exists()
    assert (repo / "data" / "synth" / "synthfacs_posed.contact_sheet.png").exists()


def test_mlflow_store_holds_parent_folds_and_registered_champion(repro):
    repo, env, *_ = repro
    client = _client(env)
    experiment = client.get_experiment_by_name("ferops")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("ferops.kind") == "cross-validation"]
    assert len(parents) == 1
    parent = parents[0]
    head = _run(["git", "rev-list", "--max-parents=0", "HEAD"], repo, env).stdout.strip()  # the commit repro ran on
    assert parent.data.tags["git_commit"] == head
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    processed = next(o for o in lock["stages"]["preprocess"]["outs"])
    assert parent.data.tags["dvc.data"] == processed["md5"]
    assert parent.data.params["train.epochs"] == "1"
    folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
             and r.data.tags.get("ferops.kind") == "cv-fold"]
    assert len(folds) == 3
    assert all({"test_accuracy", "accuracy", "loss"} <= set(r.data.metrics) for r in folds)
    # data-making runs have their own experiment: the results' runs table starts with results
    assert not any(r.data.tags.get("ferops.kind") in ("generate", "validate") for r in runs)
    data_runs = client.search_runs([client.get_experiment_by_name("ferops-data").experiment_id])
    assert {"generate", "validate"} <= {r.data.tags.get("ferops.kind") for r in data_runs}
    top_level = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent in top_level and len(top_level) <= 20  # one screen: headline runs, their jobs nested
    version = client.get_model_version_by_alias("fer-emotion", "champion")
    assert {"candidate", "champion"} <= set(version.aliases)
    refit = client.get_run(version.run_id)
    assert refit.data.tags["ferops.kind"] == "cv-refit" and refit.data.tags["git_commit"] == head
    assert refit.data.tags["mlflow.parentRunId"] == parent.info.run_id
    registry = json.loads((repo / "outputs" / "registry.json").read_text())
    assert registry["version"] == str(version.version) and registry["champion"]


def test_predict_pulls_champion_from_registry(repro):
    repo, env, *_ = repro
    image = next((repo / "data" / "synth" / "synthfacs_posed" / "cohn-kanade-images").rglob("*.png"))
    out = _run([str(BIN / "ferops"), "predict", str(image), "--whole-image", "--model", "models:/fer-emotion@champion"],
               repo, env)
    result = json.loads(out.stdout)
    assert result[0]["image"] == str(image)
    assert abs(sum(result[0]["probabilities"].values()) - 1) < 1e-3
    assert set(result[0]["probabilities"]) == {"neutral", "anger", "contempt", "disgust", "fear", "happiness",
                                               "sadness", "surprise"}

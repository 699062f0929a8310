"""The flow machinery without training: every DVC stage has its task, plans follow dvc.yaml, overrides are checked.

The deployments themselves run end to end in tests/test_pipeline_e2e.py (a real Prefect server).
"""

import dataclasses
import shutil

import pytest
import yaml

from ferops.cli import build_parser
from ferops.config import ParamsError
from flows.deploy import FLOWS, deployments
from flows.stages import all_stages, apply_overrides, plan, stage_command

from conftest import ROOT, make_dvc_project


@pytest.mark.slow
def test_every_dvc_stage_has_a_task_and_plans_follow_dvc_yaml(monkeypatch):
    monkeypatch.chdir(ROOT)
    stages = all_stages()
    for stage in stages:  # a flow runs each stage's own cmd: every one must be a ferops command the CLI accepts
        args = build_parser().parse_args(stage_command(stage))
        assert callable(args.func), stage
    assert stage_command("domain@au") == ["domain", "au"]
    assert plan(["register"]) == ["generate", "preprocess", "validate", "tune", "cv", "refit", "register"]
    for upstream, stage in (("domain@au", "au"), ("preprocess", "micro"), ("refit", "analyze"), ("au", "package"),
                            ("register", "package")):
        assert stages.index(upstream) < stages.index(stage)


def test_deployments_validate_parameters_from_type_hints():
    names = {d.name for d in deployments()}
    assert names == {"default"} and len(deployments()) == len(FLOWS) == 7
    deployment = next(d for d in deployments() if d.flow_name == "emotion-cv")
    assert deployment.enforce_parameter_schema  # the server refuses `-p epochs=two`
    schema = deployment._parameter_openapi_schema.model_dump()
    assert set(schema["properties"]) == {"epochs", "folds", "overrides", "force"}
    assert {"integer", "null"} == {t["type"] for t in schema["properties"]["epochs"]["anyOf"]}


def test_overrides_go_into_params_yaml_only_when_valid(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    before = path.read_text()
    with pytest.raises(ParamsError, match="train.epochs"):
        apply_overrides({"train.epochs": -1}, path)
    assert path.read_text() == before
    params = apply_overrides({"train.epochs": 3, "cv.folds": 4}, path)
    assert (params.train.epochs, params.cv.folds) == (3, 4)
    assert yaml.safe_load(path.read_text())["train"]["epochs"] == 3
    changed = [(a, b) for a, b in zip(before.splitlines(), path.read_text().splitlines()) if a != b]
    assert len(changed) == 2 and all("#" in b for a, b in changed if "#" in a)  # two values; comments and layout kept


@pytest.fixture(scope="module")
def prefect_server():
    """A real Prefect server (Prefect's own test harness: a server process on a temporary database)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _task_states(flow_run_id) -> list[tuple[str, str, str, str]]:
    """(task run name, state type, state name, message) in start order, as the Prefect server recorded them."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    runs = sorted(runs, key=lambda r: r.expected_start_time)
    return [(r.name, r.state.type.value, r.state.name, r.state.message or "") for r in runs]


@pytest.mark.slow
def test_a_stage_that_ran_is_completed_and_a_current_one_skipped_on_a_real_server(prefect_server, tmp_path,
                                                                                   monkeypatch):
    from prefect import flow

    from flows.stages import SKIPPED, run_stage, stage_result

    repo = tmp_path / "project"
    env = make_dvc_project(repo, {"synthfacs": {"n": 3}})
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])

    @flow(name="stage-states")
    def twice() -> list[dict]:
        return [stage_result(run_stage("generate")) for _ in range(2)]  # runs (nothing in dvc.lock), then current

    state = twice(return_state=True)
    first, second = state.result()
    assert (first["ran"], second["ran"]) == (True, False)  # the data of the Skipped state is the task's result
    ran, skipped = _task_states(state.state_details.flow_run_id)
    assert ran[:3] == ("generate", "COMPLETED", "Completed")
    assert skipped[:3] == ("generate", "COMPLETED", SKIPPED) and "up to date (dvc status" in skipped[3]
    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])  # the data-making run has its own experiment
    (generated,) = client.search_runs([client.get_experiment_by_name("ferops-data").experiment_id])
    assert generated.data.tags["ferops.kind"] == "generate" and client.get_experiment_by_name("ferops") is None


def test_paper_summary_links_point_at_the_tracking_servers_ui(mlflow_server, monkeypatch, tmp_path):
    import mlflow

    from ferops.tracking.store import ui_address
    from flows.paper import champions

    from conftest import make_params

    params = make_params().tracking
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    assert ui_address(params) == (mlflow_server, None)
    client = mlflow.MlflowClient()
    name = f"paper-links-{tmp_path.name}"
    mlflow.set_experiment(name)
    client.create_registered_model(name)
    with mlflow.start_run() as run:
        mlflow.log_text("x", "model/MLmodel")
    version = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias(name, "champion", version.version)
    links = champions([name, "fer-nothing"], ui_address(params)[0])
    assert f"({mlflow_server}/#/models/{name}/versions/{version.version}?workflowType=machine_learning)" in links[name]
    assert links["fer-nothing"] == "no champion yet"
    # a local file: the links go where `mlflow ui` serves it, and the note says the store is a file
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    base, note = ui_address(params)
    assert base == "http://127.0.0.1:5000" and "local file" in note and "--port 5000" in note
    base, note = ui_address(dataclasses.replace(params, ui_url="http://team.lab:8080/mlflow/"))
    assert base == "http://team.lab:8080/mlflow" and "--port 8080" in note

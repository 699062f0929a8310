"""The flow machinery without training: every DVC stage has its task, plans follow dvc.yaml, overrides are checked.

The deployments themselves run end to end in tests/test_pipeline_e2e.py (a real Prefect server).
"""

import shutil

import pytest
import yaml

from conftest import ROOT
from ferops.config import ParamsError
from flows.deploy import FLOWS, deployments
from ferops.cli import build_parser
from flows.stages import all_stages, apply_overrides, plan, stage_command


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

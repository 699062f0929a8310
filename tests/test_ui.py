"""The MLflow UI opens ferops' experiment on its training runs, not on the GenAI Traces overview.

MLflow 3.17 decides between its GenAI and model-training pages from the
URL's `workflowType` (else the browser's last choice, GenAI when fresh);
`configure()` also tags the experiment `mlflow.experimentKind =
custom_model_development`, which other MLflow 3 releases use for the same
decision. The browser test renders the link ferops prints in headless
Chromium and reads the page.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import mlflow
import pytest

from ferops.tracking.store import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    RESULTS_VIEW,
    SHARED_VIEW_TAG,
    configure,
    ui_hint,
    ui_url,
)
from infra import ui_screenshot
from infra.cdp import Chromium

from conftest import make_params


@pytest.mark.slow
def test_new_experiment_is_marked_model_training(mlflow_store):
    experiment_id = configure(make_params().tracking)
    assert mlflow.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


@pytest.mark.parametrize("before, after", [
    (None, EXPERIMENT_KIND),                                   # made before ferops set the tag
    ("genai_development_inferred", EXPERIMENT_KIND),            # a guess, not a choice
    ("no_inferred_type", EXPERIMENT_KIND),
    ("genai_development", "genai_development"),                 # someone chose it: kept
])
@pytest.mark.slow
def test_existing_experiment_gets_the_kind_unless_someone_chose_one(mlflow_store, before, after):
    params = make_params().tracking
    mlflow.create_experiment(params.experiment, tags={EXPERIMENT_KIND_TAG: before} if before else None)
    experiment_id = configure(params)
    assert mlflow.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == after


def test_ui_hint_links_the_experiments_runs_view(mlflow_store):
    params = make_params().tracking
    experiment_id = configure(params)
    hint = ui_hint(params)
    assert (f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={RESULTS_VIEW}") in hint
    assert f"--backend-store-uri {mlflow_store}" in hint
    assert ui_url("http://team:5000/", "7") == \
        f"http://team:5000/#/experiments/7/runs?workflowType=machine_learning&viewStateShareKey={RESULTS_VIEW}"
    view = json.loads(mlflow.get_experiment(experiment_id).tags[f"{SHARED_VIEW_TAG}{RESULTS_VIEW}"])
    assert "metrics.`cv_accuracy_mean`" in view["selectedColumns"]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.mark.slow
def test_a_newcomer_sees_the_cv_headline_and_the_champions_evidence(tmp_path):
    """The link ferops prints, the CV parent and the champion's version page, as a newcomer's Chromium shows them.

    On the demo store by default; FEROPS_UI_STORE=sqlite:///path/mlflow.db checks a built store (after `make run`).
    """
    browser = ui_screenshot.find_browser()
    if browser is None:
        pytest.skip("no Chromium on PATH (apt-get install -y chromium): the UI cannot be rendered here")
    shots = tmp_path / "shots"  # kept as test artefacts in pytest's tmp folder
    report = ui_screenshot.check_store(os.environ.get("FEROPS_UI_STORE"), "ferops", "fer-emotion", tmp_path / "work",
                                       browser, shots)
    for page in report.pages:
        assert page.ok, page.describe()
    assert {p.name for p in report.pages} == {"experiment", "cv_parent", "model_version"}
    assert report.unreadable == [], report.unreadable  # every logged PNG >= 800 px wide, no label cut
    for path in report.shots.values():
        assert _png_size(path) == (1600, 1000)


def test_visible_means_on_screen_and_on_top(tmp_path):
    """The checker itself: text off to the right, or under a panel, is in the DOM but not seen."""
    browser = ui_screenshot.find_browser()
    if browser is None:
        pytest.skip("no Chromium on PATH (apt-get install -y chromium): the UI cannot be rendered here")
    page_file = tmp_path / "page.html"
    page_file.write_text(
        "<html><body style='margin:0'>"
        "<div style='position:absolute;left:10px;top:10px'>on screen</div>"
        "<div style='position:absolute;left:1700px;top:10px'>off to the right</div>"
        "<div style='position:absolute;left:1300px;top:300px'>under the panel</div>"
        "<div style='position:absolute;left:1200px;top:0;width:400px;height:1000px;background:#fff'></div>"
        "</body></html>")
    with Chromium(browser, tmp_path) as chromium:
        page = chromium.page(page_file.as_uri())
        try:
            assert page.wait_visible(["on screen"], 20) == []
            assert page.visible(["on screen", "off to the right", "under the panel", "never written"]) == \
                ["off to the right", "under the panel", "never written"]
        finally:
            page.close()

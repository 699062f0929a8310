"""The analyze stage end to end: a tiny trained model, small posed + AU probe sets, a temp MLflow store."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ferops.data.synthfacs_dataset import synthfacs_dataset
from ferops.errors import FeropsError
from ferops.experiments.analysis.stage import analyze
from ferops.train.fit import fit
from ferops.train.tasks import emotion_task
from tests.conftest import make_params


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    """Posed data (some rows with unknown AUs, as CK+ codes peaks only), an AU probe set, a 1-epoch model."""
    root = tmp_path_factory.mktemp("analysis")
    posed = synthfacs_dataset("posed", 24, seed=3, masks=False)
    posed.manifest.loc[posed.manifest.index % 5 == 1, "AU12"] = np.nan
    posed.save(root / "posed")
    synthfacs_dataset("au", 120, seed=4, masks=True).save(root / "probe")
    params = make_params({"dataset": {"processed_dir": str(root / "posed")},
                          "analysis": {"probe_data": str(root / "probe")}})
    model = fit(params, emotion_task(posed.classes), posed.images, posed.labels).model
    model.save(root / "model.keras")
    return root, params, len(posed)


@pytest.mark.slow
def test_analyze_writes_tables_figures_and_a_linked_run(tiny_project, mlflow_store, tmp_path):
    root, params, n = tiny_project
    mlflow.set_experiment(params.tracking.experiment)
    with mlflow.start_run() as trained:  # stands in for the refit run
        pass
    (root / "run.json").write_text(json.dumps({"run_id": trained.info.run_id}))
    out = tmp_path / "analysis"
    m = analyze(params, root / "model.keras", out)

    for rel in ("metrics.json", "run.json", "au_heatmap.png", "tables/au_correlation.csv",
                "tables/probe_auroc.csv", "tables/dead_filters.csv", "tables/mask_energy.csv",
                "figures/filter_topk.png", "figures/filter_grid_01.png", "figures/conv1_kernels.png"):
        assert (out / rel).is_file(), rel
    saved = json.loads((out / "metrics.json").read_text())
    assert 0 < saved["alive"] <= saved["total"] == 32  # conv3 at width 0.125: 256 / 8
    assert saved["n_images_au_known"] == n - len(range(1, n, 5))  # rows with an unknown AU are left out
    for key in ("matched", "matched_by_chance", "matched_by_cooccurrence", "probe_auroc_matched",
                "mask_energy_ratio", "pointing_game"):
        assert key in saved, key
    assert saved["n_pairs"] > 0 and saved["mask_energy_ratio"] > 0
    assert json.loads((out / "run.json").read_text())["run_id"] == m["run_id"]

    run = mlflow.get_run(m["run_id"])
    assert run.data.tags["ferops.analysed_run"] == trained.info.run_id
    assert run.data.tags["mlflow.parentRunId"] == trained.info.run_id
    assert run.data.metrics["alive"] == saved["alive"]
    logged = {f.path for f in MlflowClient().list_artifacts(m["run_id"], "analysis")}
    assert {"analysis/au_correlation.json", "analysis/au_heatmap.png", "analysis/metrics.json",
            "analysis/figures"} <= logged
    figures = {f.path for f in MlflowClient().list_artifacts(m["run_id"], "analysis/figures")}
    assert "analysis/figures/filter_grid_01.png" in figures
    # readable figures: every PNG at least 800 px wide, the heatmap wide (AUs as rows), grid pages of 16 filters
    for png in out.rglob("*.png"):
        assert _png_size(png)[0] >= 800, png
    width, height = _png_size(out / "au_heatmap.png")
    assert height <= 1000  # AUs are rows: both axes on one screen, however many filters
    pages = sorted((out / "figures").glob("filter_grid_*.png"))
    assert len(pages) == -(-saved["alive"] // 16) and len(pages) >= 1


def _png_size(path) -> tuple[int, int]:
    import struct

    return struct.unpack(">II", path.read_bytes()[16:24])


def test_missing_probe_set_is_one_line(tiny_project, mlflow_store, tmp_path):
    root, params, _ = tiny_project
    from ferops.config import replace

    bad = replace(params, **{"analysis.probe_data": str(tmp_path / "nowhere")})
    with pytest.raises(FeropsError, match="probe set not found"):
        analyze(bad, root / "model.keras", tmp_path / "out")
    assert not (tmp_path / "out").exists()

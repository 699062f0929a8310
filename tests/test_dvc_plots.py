"""`dvc plots show` on this project's dvc.yaml: every chart drawn once, the confusion from actual/predicted,
and a page that loads no script from the network (Vega is inline in infra/dvc_plots/template.html)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra import ui_screenshot

from conftest import ROOT, make_dvc_project, run_checked

CLASSES = ["neutral", "happiness", "surprise"]


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)


def _outputs(repo: Path) -> None:
    """Every file dvc.yaml names as a plot, small but shaped as the stages write them."""
    rng = np.random.default_rng(0)
    cv = repo / "outputs" / "cv"
    cv.mkdir(parents=True)
    actual = rng.choice(CLASSES, 60)
    pd.DataFrame({"actual": actual, "predicted": np.where(rng.random(60) < 0.8, actual, CLASSES[0]),
                  "fold": np.arange(60) % 3, "path": [f"cohn-kanade-images/S{i:03d}.png" for i in range(60)]}
                 ).to_csv(cv / "predictions.csv", index=False)
    pd.DataFrame({"fold": np.repeat([0, 1], 3), "epoch": np.tile([0, 1, 2], 2), "accuracy": rng.random(6),
                  "val_accuracy": rng.random(6)}).to_csv(cv / "learning_curves.csv", index=False)
    (repo / "outputs" / "cross_task").mkdir(parents=True)
    pd.DataFrame({"n_subjects": [2, 4], "f1_mean": [0.3, 0.5]}).to_csv(
        repo / "outputs" / "cross_task" / "learning_curve.csv", index=False)
    import yaml

    for stage in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].values():
        for entry in stage.get("plots", []):
            name = next(iter(entry)) if isinstance(entry, dict) else entry
            if name.endswith(".png"):
                _png(repo / name)


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory):
    repo = tmp_path_factory.mktemp("plots") / "project"
    env = make_dvc_project(repo)
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # this project's plots.html_template
    shutil.copytree(ROOT / "infra" / "dvc_plots", repo / "infra" / "dvc_plots")
    _outputs(repo)
    run_checked(["dvc", "plots", "show"], repo, env)  # default output: dvc_plots/
    return repo, env, (repo / "dvc_plots" / "index.html").read_text()


def _vega_specs(page: str) -> dict[str, dict]:
    """div id -> the Vega-Lite spec DVC embedded for it."""
    return {m.group(1): json.loads(m.group(2)) for m in
            re.finditer(r'<div id = "([^"]+)">\s*<script type = "text/javascript">\s*var spec = (.*?);\s*vegaEmbed',
                        page, re.S)}


def test_the_page_loads_no_script_from_the_network_and_is_git_ignored(plots_page):
    repo, env, page = plots_page
    assert not re.findall(r"<script[^>]*\bsrc\s*=", page)  # no CDN, no file beside it to lose
    assert "vegaEmbed" in page and "cdn.jsdelivr" not in page
    assert run_checked(["git", "check-ignore", "dvc_plots/index.html"], repo, env, check=False).returncode == 0


def test_every_chart_once_and_the_confusion_from_actual_and_predicted(plots_page):
    repo, env, page = plots_page
    specs = _vega_specs(page)
    assert len(specs) == 3, list(specs)  # confusion, learning curves, cross-task curve: no file drawn twice
    assert set(specs) == {"confusion", "learning_curves", "outputs_cross_task_learning_curve_csv"}
    encoded = json.dumps(specs["confusion"]["spec"])  # the confusion template's layered heatmap
    assert '"field": "actual"' in encoded and '"field": "predicted"' in encoded
    assert '"field": "path"' not in encoded and '"field": "step"' not in encoded  # not file names against step
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(set(images)) and any("confusion_matrix.png" in i for i in images)
    assert sum("confusion_matrix.png" in i for i in images) == 1


@pytest.mark.slow
def test_chromium_draws_every_chart_offline(plots_page):
    browser = ui_screenshot.find_browser()
    if browser is None:
        pytest.skip("no Chromium on PATH (apt-get install -y chromium): the page cannot be rendered here")
    repo, env, page = plots_page
    profile = tempfile.mkdtemp(prefix="profile-")
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                          "--virtual-time-budget=10000", "--dump-dom", (repo / "dvc_plots" / "index.html").as_uri()],
                         capture_output=True, text=True, timeout=180).stdout
    shutil.rmtree(profile, ignore_errors=True)
    for div in _vega_specs(page):  # vega-embed replaced each placeholder with a drawn canvas or SVG
        drawn = re.search(rf'<div id="{re.escape(div)}"[^>]*>(.*?)</div>', dom, re.S)
        assert drawn and re.search(r"<(canvas|svg)\b", dom[drawn.start():drawn.start() + 5000]), div

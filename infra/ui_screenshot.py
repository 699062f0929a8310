"""What a newcomer sees in the MLflow UI, asked of a real browser's live page.

    .venv/bin/python infra/ui_screenshot.py                       # demo store, PNGs in outputs/ui/
    .venv/bin/python infra/ui_screenshot.py --store sqlite:///mlflow.db --out docs/ui \
        --prefect-run http://127.0.0.1:4200/runs/flow-run/<id> \
        --prefect-artifact http://127.0.0.1:4200/artifacts/artifact/<id>   # a built store, plus Prefect pages

Starts `mlflow server` on a loopback port over the store (a throwaway one shaped like a
ferops project unless --store is given) and opens, in headless Chromium with a fresh
profile at 1600x1000 (a newcomer's browser and first screen):
- the link ferops prints (ferops.tracking.store.ui_url): the runs table, with the newest CV
  parent and its `cv_accuracy_mean` column;
- that CV parent's page: its description with the headline figure;
- the champion version page of the emotion model: its description with the score.
It also checks that every PNG the runs logged is at least 800 px wide with no label cut at
its edge, and saves each page
(and the analysis figures, when the store has an analyze run) as a screenshot.

"Visible" is asked of the rendered page over the DevTools protocol (infra/cdp.py): the text's
box is inside the window and on top at its centre. A DOM dump is not enough, because the
runs table renders a buffer of off-screen columns, and MLflow's Assistant panel covers the
right third of a fresh browser's screen.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ferops.evaluation import MIN_WIDTH_PX  # noqa: E402  (after the path, so the script runs from anywhere)
from infra.cdp import Chromium  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WAIT_S = 60  # a slow machine gets this long for a page to show what it must


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DEMO_SCORE = 0.5238095238095238  # shown as 0.5238 wherever ferops writes it for a person


class _Constant:
    """A stand-in model for the demo store's registered version (import-light: mlflow.pyfunc only)."""

    def __new__(cls):
        import mlflow.pyfunc

        class Constant(mlflow.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return [0] * len(model_input)

        return Constant()


def make_demo_store(root: Path) -> tuple[str, str, list[str]]:
    """A SQLite store shaped like a ferops project: a CV parent with folds and a description, a registered champion.

    Returns (uri, experiment, top-level run names).
    """
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)  # configure() and the registry would prefer it
    try:
        return _fill_demo_store(uri, root)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def _fill_demo_store(uri: str, root: Path) -> tuple[str, str, list[str]]:
    import mlflow

    from ferops.config import TrackingParams
    from ferops.tracking.registry import ComparabilityKey, register
    from ferops.tracking.run_record import describe
    from ferops.tracking.store import configure

    params = TrackingParams(tracking_uri=uri, artifact_root=str(root / "mlartifacts"), experiment="ferops",
                            model_name="fer-emotion", promote_metric="cv_accuracy_mean")
    configure(params)
    names = ["cv-synthfacs_posed", "train-synthfacs_posed"]
    with mlflow.start_run(run_name=names[0]) as cv_run:
        mlflow.set_tag("ferops.kind", "cross-validation")
        for fold in range(3):
            with mlflow.start_run(run_name=f"fold-{fold:02d}", nested=True):
                for epoch in range(3):
                    mlflow.log_metric("val_accuracy", 0.3 + 0.1 * epoch + 0.01 * fold, step=epoch)
        mlflow.log_metric("cv_accuracy_mean", DEMO_SCORE)
        describe(f"**cv_accuracy_mean = {DEMO_SCORE:.4g}**, 3-fold CV (demo store)")
    with mlflow.start_run(run_name=names[1]):
        mlflow.set_tag("ferops.kind", "holdout")
        mlflow.log_metric("val_accuracy", 0.55)
        info = mlflow.pyfunc.log_model(name="model", python_model=_Constant(), pip_requirements=["mlflow"])
    key = ComparabilityKey(task="emotion", dataset="synthfacs_posed", data_hash="0" * 32 + ".dir",
                           protocol="subject", classes=("neutral", "happiness"))
    register(info.model_uri, params.model_name, DEMO_SCORE, params.promote_metric, key, cv_run_id=cv_run.info.run_id)
    return uri, "ferops", names


class MlflowServer:
    """`mlflow server` on a free loopback port for the duration of a `with` block."""

    def __init__(self, store_uri: str, workdir: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "mlflow_server.log"
        self.cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store_uri,
                    "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.workdir = workdir

    def __enter__(self) -> "MlflowServer":
        self.log = open(self.log_path, "w")
        # Own process group: the server's workers and job consumer stop with it.
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"mlflow server did not start: {self.log_path.read_text()[-1500:]}")

    def __exit__(self, *exc) -> None:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


@dataclass
class PageCheck:
    name: str
    url: str
    title: str
    ok: bool
    missing: list[str]

    def describe(self) -> str:
        return f"{self.name}: {self.url}\n  title {self.title!r}: " + ("ok" if self.ok else f"NOT VISIBLE {self.missing}")


def check_page(browser: Chromium, name: str, url: str, expected: list[str], title_prefix: str = "",
               shot: Path | None = None) -> PageCheck:
    """Open `url` at 1600x1000 (a newcomer's first screen); ok when every expected text is visible there.

    Visible means inside the window and on top at its centre, asked of the live page: the
    runs table keeps off-screen columns in its DOM, so a text merely present proves nothing.
    """
    page = browser.page(url)
    try:
        missing = page.wait_visible(expected, WAIT_S)
        title = page.title()
        if not title.startswith(title_prefix):
            missing.append(f"a title starting with {title_prefix!r}")
        if shot is not None:
            page.screenshot(shot)
        return PageCheck(name, url, title, not missing, missing)
    finally:
        page.close()


def screenshot(browser: Chromium, url: str, out: Path, wait_for: list[str]) -> Path:
    """`url` as a 1600x1000 PNG, once `wait_for` is visible (or after WAIT_S)."""
    page = browser.page(url)
    try:
        page.wait_visible(wait_for, WAIT_S)
        time.sleep(1)  # images and charts finish drawing after their labels
        return page.screenshot(out)
    finally:
        page.close()


def png_width(path: Path) -> int:
    head = Path(path).read_bytes()[:24]
    return struct.unpack(">I", head[16:20])[0] if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def drawn_to_the_edge(path: Path, frame_px: int = 2) -> bool:
    """Whether dark ink (text, lines) touches the PNG's outer frame: a label cut by the canvas edge does.

    Every figure ferops logs has a white margin (ferops.evaluation.save_figure); a filled
    plot area or a face tile stops short of the edge, so ink there is a cut label.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    frame = np.concatenate([image[:frame_px].ravel(), image[-frame_px:].ravel(),
                            image[:, :frame_px].ravel(), image[:, -frame_px:].ravel()])
    return bool((frame < 128).any())


def unreadable_pngs(client, experiment_id: str, workdir: Path, min_width: int = MIN_WIDTH_PX) -> list[str]:
    """Every PNG any run of the experiment logged that is narrower than `min_width` px or has ink cut at its edge."""
    found = []
    for run in client.search_runs([experiment_id], max_results=1000):
        stack = [None]
        while stack:
            for item in client.list_artifacts(run.info.run_id, stack.pop()):
                if item.is_dir:
                    stack.append(item.path)
                elif item.path.endswith(".png"):
                    local = Path(client.download_artifacts(run.info.run_id, item.path, str(workdir)))
                    if (width := png_width(local)) < min_width:
                        found.append(f"{run.info.run_name}/{item.path} ({width} px wide)")
                    elif drawn_to_the_edge(local):
                        found.append(f"{run.info.run_name}/{item.path} (ink at the edge: a label is cut)")
    return found


@dataclass
class UiReport:
    pages: list[PageCheck]
    unreadable: list[str]  # logged PNGs under 800 px wide, or with a label cut at the edge
    shots: dict[str, Path]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.pages) and not self.unreadable


def check_store(store_uri: str | None, experiment: str, model_name: str, workdir: Path, browser: str,
                shots_dir: Path | None = None) -> UiReport:
    """What a newcomer sees in the MLflow UI over `store_uri` (a demo store when None), checked on the live page.

    - the link ferops prints: the runs table, the newest CV parent on it with `cv_accuracy_mean` shown;
    - the CV parent's page: its description with the headline figure;
    - the champion version page of `model_name`: the description with the score;
    - every logged PNG at least 800 px wide, with no label cut at its edge.
    With `shots_dir`, each page (and the analysis figures, when the store has them) is saved as a PNG.
    """
    from mlflow.tracking import MlflowClient

    from ferops.tracking.run_record import NOTE_TAG
    from ferops.tracking.store import ML_VIEW, model_version_url, run_url, ui_url

    workdir.mkdir(parents=True, exist_ok=True)
    if store_uri is None:
        store_uri, experiment, _ = make_demo_store(workdir)
    client = MlflowClient(tracking_uri=store_uri, registry_uri=store_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no experiment {experiment!r} in {store_uri}")
    eid = found.experiment_id
    (cv,) = client.search_runs([eid], "tags.`ferops.kind` = 'cross-validation'", max_results=1,
                               order_by=["attributes.start_time DESC"])
    headline = cv.data.tags.get(NOTE_TAG, "").split("**")[1] if "**" in cv.data.tags.get(NOTE_TAG, "") else \
        "(the CV parent has no description)"
    version = client.get_model_version_by_alias(model_name, "champion")
    score = version.tags.get("score")
    score_text = f"{float(score):.4g}" if score else "(the champion has no score tag)"
    analysis = client.search_runs([eid], "tags.`ferops.kind` = 'analyze'", max_results=1,
                                  order_by=["attributes.start_time DESC"])
    with MlflowServer(store_uri, workdir) as server:
        pages = {
            # the column and the CV parent's value in it ("Sort: cv_accuracy_mean" alone names the column too)
            "experiment": (ui_url(server.url, eid), [cv.info.run_name, "cv_accuracy_mean",
                                                     str(cv.data.metrics["cv_accuracy_mean"])], "Runs"),
            "cv_parent": (run_url(server.url, eid, cv.info.run_id), [cv.info.run_name, headline], ""),
            "model_version": (model_version_url(server.url, model_name, version.version),
                              [f"Version {version.version}", f"{version.tags.get('score.metric', 'cv_accuracy_mean')} = "
                                                      f"{score_text}"], ""),
        }
        figures = {}
        if analysis:
            base = f"{server.url}/#/experiments/{eid}/runs/{analysis[0].info.run_id}/artifacts"
            figures = {"analysis_heatmap": f"{base}/analysis/au_heatmap.png?{ML_VIEW}",
                       "analysis_filter_grid": f"{base}/analysis/figures/filter_grid_01.png?{ML_VIEW}"}
        shots, checks = {}, []
        with Chromium(browser, workdir) as chromium:
            for name, (url, expected, prefix) in pages.items():
                shot = shots_dir / f"mlflow_{name}.png" if shots_dir is not None else None
                checks.append(check_page(chromium, name, url, expected, prefix, shot))
                if shot is not None:
                    shots[name] = shot
            for name, url in figures.items() if shots_dir is not None else ():
                shots[name] = screenshot(chromium, url, shots_dir / f"mlflow_{name}.png", [Path(url).name[:-len(ML_VIEW) - 1]])
    return UiReport(checks, unreadable_pngs(client, eid, workdir), shots)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="tracking URI of an existing store (default: a demo store in a temp dir)")
    parser.add_argument("--experiment", default="ferops")
    parser.add_argument("--model", default="fer-emotion", help="registered model whose champion page is checked")
    parser.add_argument("--out", default="outputs/ui", help="folder for the screenshots")
    parser.add_argument("--prefect-run", help="a Prefect flow run page to screenshot too (its UI address)")
    parser.add_argument("--prefect-artifact", help="a Prefect artifact page (the paper summary) to screenshot too")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium found: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ferops-ui-") as tmp:
        report = check_store(args.store, args.experiment, args.model, Path(tmp), browser, Path(args.out))
        prefect = {"prefect_paper_run": args.prefect_run, "prefect_paper_summary": args.prefect_artifact}
        with Chromium(browser, Path(tmp)) as chromium:
            for name, url in prefect.items():
                if url:
                    report.shots[name] = screenshot(chromium, url, Path(args.out) / f"{name}.png", ["paper"])
    for page in report.pages:
        print(page.describe())
    print("logged PNGs under 800 px wide or cut at the edge: " + (", ".join(report.unreadable) or "none"))
    for name, path in report.shots.items():
        print(f"screenshot {name}: {path}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

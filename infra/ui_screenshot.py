"""Does the MLflow UI open ferops' experiment on its training runs? Ask a real browser.

    .venv/bin/python infra/ui_screenshot.py                       # demo store, PNG in outputs/ui/
    .venv/bin/python infra/ui_screenshot.py --store sqlite:///mlflow.db --experiment ferops

Starts `mlflow server` on a loopback port over the store (a throwaway one with
a few ferops-like runs unless --store is given), opens the link `ferops cv`
prints (ferops.tracking.store.ui_url) in headless Chromium with a fresh
profile - a newcomer's browser - and checks the rendered page: the title is
the Runs page and every top-level run name is on it. The same page is saved as
a PNG for a person to look at. The bare experiment address is checked too and
reported, not asserted: in MLflow 3.17 a fresh browser opens it on the GenAI
overview, which is why ferops prints the longer link.

The UI is a React app; `--virtual-time-budget` lets Chromium run its timers
and requests before dumping the DOM, and a slow machine gets a second,
longer budget before the check fails.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BUDGETS_MS = (15000, 40000)


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_demo_store(root: Path) -> tuple[str, str, list[str]]:
    """A SQLite store shaped like a ferops project (a CV parent with folds, a holdout run): (uri, experiment, names)."""
    import mlflow

    from ferops.config import TrackingParams
    from ferops.tracking.store import configure

    uri = f"sqlite:///{root / 'mlflow.db'}"
    params = TrackingParams(tracking_uri=uri, artifact_root=str(root / "mlartifacts"), experiment="ferops",
                            model_name="fer-emotion", promote_metric="cv_accuracy_mean")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)  # configure() would prefer it to the demo store
    try:
        configure(params)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    names = ["cv-synthfacs_posed", "train-synthfacs_posed"]
    with mlflow.start_run(run_name=names[0]):
        mlflow.set_tag("ferops.kind", "cross-validation")
        for fold in range(3):
            with mlflow.start_run(run_name=f"fold-{fold:02d}", nested=True):
                for epoch in range(3):
                    mlflow.log_metric("val_accuracy", 0.3 + 0.1 * epoch + 0.01 * fold, step=epoch)
        mlflow.log_metric("cv_accuracy_mean", 0.52)
    with mlflow.start_run(run_name=names[1]):
        mlflow.set_tag("ferops.kind", "holdout")
        mlflow.log_metric("val_accuracy", 0.55)
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


def _chromium(browser: str, profile: Path, budget_ms: int, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: Chromium refuses to run as root (CI, containers) with its sandbox on.
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def page_text(dom: str) -> tuple[str, str]:
    """(title, visible text) of a dumped DOM."""
    title = html.unescape(m.group(1)) if (m := re.search(r"<title>(.*?)</title>", dom, re.S)) else ""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return title.strip(), re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


@dataclass
class PageCheck:
    url: str
    title: str
    shows_runs: bool
    missing: list[str]

    def describe(self) -> str:
        what = "runs table" if self.shows_runs else f"NOT the runs table (missing {self.missing})"
        return f"{self.url}\n  title {self.title!r}: {what}"


def check_page(browser: str, url: str, run_names: list[str], workdir: Path) -> PageCheck:
    """Render `url` in a fresh profile; the runs table is shown when the title says Runs and every name is there."""
    for budget in BUDGETS_MS:
        profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
        dom = _chromium(browser, profile, budget, "--dump-dom", url).stdout
        title, text = page_text(dom)
        missing = [name for name in run_names if name not in text]
        if title.startswith("Runs") and not missing:
            return PageCheck(url, title, True, [])
    return PageCheck(url, title, False, missing or ["a title starting with 'Runs'"])


def screenshot(browser: str, url: str, out: Path, workdir: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=workdir))
    _chromium(browser, profile, BUDGETS_MS[-1], "--window-size=1400,900", f"--screenshot={out.resolve()}", url)
    if not out.exists():
        raise RuntimeError(f"Chromium wrote no screenshot to {out}")
    return out


def run_check(store_uri: str | None, experiment: str, run_names: list[str] | None, out: Path,
              workdir: Path, browser: str, check_bare: bool = True) -> tuple[PageCheck, PageCheck | None]:
    """(check of the link ferops prints, check of the bare experiment address); saves the PNG of the first."""
    from mlflow.tracking import MlflowClient

    from ferops.tracking.store import ui_url

    if store_uri is None:
        store_uri, experiment, run_names = make_demo_store(workdir)
    client = MlflowClient(tracking_uri=store_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no experiment {experiment!r} in {store_uri}")
    if not run_names:  # the newest top-level runs, as the table lists them
        runs = client.search_runs([found.experiment_id], max_results=50, order_by=["attributes.start_time DESC"])
        run_names = [r.info.run_name for r in runs if "mlflow.parentRunId" not in r.data.tags][:3]
    with MlflowServer(store_uri, workdir) as server:
        link = check_page(browser, ui_url(server.url, found.experiment_id), run_names, workdir)
        bare = check_page(browser, f"{server.url}/#/experiments/{found.experiment_id}", run_names, workdir) \
            if check_bare else None
        screenshot(browser, ui_url(server.url, found.experiment_id), out, workdir)
    return link, bare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="tracking URI of an existing store (default: a demo store in a temp dir)")
    parser.add_argument("--experiment", default="ferops")
    parser.add_argument("--out", default="outputs/ui/experiment_runs.png", help="where the PNG goes")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium found: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ferops-ui-") as tmp:
        link, bare = run_check(args.store, args.experiment, None, Path(args.out), Path(tmp), browser)
    print(f"ferops link: {link.describe()}")
    print(f"bare experiment address (fresh browser, for reference): {bare.describe()}")
    print(f"screenshot: {args.out}")
    return 0 if link.shows_runs else 1


if __name__ == "__main__":
    sys.exit(main())

"""Serve a deployment of every ferops flow from this project (what `make deploy` runs).

    make deploy          # starts a local Prefect server if none answers, then serves (Ctrl-C stops serving)
    prefect deployment run 'emotion-cv/default' -p epochs=2 --watch      # in another terminal

Deployments run in this directory, on this params.yaml and dvc.yaml; their
parameters are validated against the flows' type hints (Prefect's schema).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prefect import serve

from flows.emotion_cv import emotion_cv
from flows.experiments import analyze, au, micro, transfer
from flows.paper import paper
from flows.tune import tune

FLOWS = (emotion_cv, tune, au, transfer, analyze, micro, paper)
DEFAULT_API = "http://127.0.0.1:4200/api"


def deployments():
    return [f.to_deployment(name="default", description=(f.description or "").strip().splitlines()[0],
                            tags=["ferops"]) for f in FLOWS]


def server_up(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def ensure_server(api: str, log: Path, timeout_s: float = 120) -> subprocess.Popen | None:
    """Start `prefect server start` on the API's port when nothing answers there; wait until it is healthy."""
    if server_up(api):
        return None
    port = api.rsplit(":", 1)[1].split("/")[0]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)  # the server must not try to reach itself as a client
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                             "--port", port], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    deadline = time.time() + timeout_s
    while not server_up(api):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"prefect server did not start on {api}; see {log}")
        time.sleep(1)
    print(f"Prefect server on {api.removesuffix('/api')} (pid {proc.pid}, log {log}); it keeps running after "
          f"this command: stop it with `kill {proc.pid}`")
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-server", action="store_true", help="serve against PREFECT_API_URL, start nothing")
    args = parser.parse_args()
    api = os.environ.get("PREFECT_API_URL") or DEFAULT_API
    if not args.no_server:
        ensure_server(api, Path(".prefect-server.log"))
    os.environ["PREFECT_API_URL"] = api
    print(f"serving {len(FLOWS)} deployments: " + ", ".join(f"'{f.name}/default'" for f in FLOWS))
    print(f"run one:  PREFECT_API_URL={api} .venv/bin/prefect deployment run 'emotion-cv/default' -p epochs=2 --watch")
    serve(*deployments())


if __name__ == "__main__":
    main()

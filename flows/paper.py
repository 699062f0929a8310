"""The whole paper program as one flow: every DVC stage in dependency order, then one summary.

The summary is a Markdown table of every figure Breuer & Kimmel (2017) report beside
ferops's figure from this run, plus a link to each registered champion. It is
published as a Prefect artifact (key `paper-summary`, on the flow run's
Artifacts tab) and logged to MLflow (a `paper-summary` run with summary.md).

    prefect deployment run 'paper/default' --watch
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from ferops.config import load_params
from ferops.io import atomic_file
from ferops.results import paper_table
from ferops.tracking.store import configure, model_version_url, ui_address
from flows.stages import PARAMS, all_stages, run_stages


def champions(model_names: list[str], ui_base: str) -> dict[str, str]:
    """name -> Markdown link to its champion version in the MLflow UI at `ui_base` (or why there is none)."""
    client, links = MlflowClient(), {}
    for name in model_names:
        try:
            v = client.get_model_version_by_alias(name, "champion")
            links[name] = f"[v{v.version}]({model_version_url(ui_base, name, v.version)}) (`models:/{name}@champion`)"
        except MlflowException:
            links[name] = "no champion yet"
    return links


@task(retries=2, retry_delay_seconds=10, cache_policy=NO_CACHE)  # a tracking server may be restarting
def publish_summary() -> str:
    params = load_params(PARAMS)
    configure(params.tracking)
    names = [params.tracking.model_name, params.au.model_name, params.micro.model_name]
    if hasattr(params, "serving"):
        names.append(params.serving.model_name)
    ui_base, local_note = ui_address(params.tracking)  # the server's real address, not a hard-coded port
    table = paper_table(".", champions(names, ui_base))
    if local_note:
        table += f"\n\n{local_note}"
    path = Path("outputs/paper_summary.md")
    with atomic_file(path) as tmp:
        tmp.write_text(table + "\n")
    with mlflow.start_run(run_name="paper-summary", tags={"ferops.kind": "paper-summary"}):
        mlflow.log_artifact(str(path))
    print(table)
    return table


@flow(name="paper", log_prints=True)
def paper(overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Every stage (emotion CV, tuning, AU, transfer, cross-task, filter analysis, micro-expressions), then the table."""
    results = run_stages(all_stages(), overrides, force)
    summary = publish_summary()
    # In the flow, not the task: an artifact made in a task shows "Flow run: None" on its card in Prefect 3.9.
    create_markdown_artifact(key="paper-summary", markdown=summary, description="Breuer & Kimmel 2017 vs ferops")
    return {"stages": results, "summary": summary}

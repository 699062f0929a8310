"""What a run page shows first: the settings it depends on, the data it read, and a description with the headline.

MLflow's run table and comparison view list every param a run logs; 200+ flattened keys put
`analysis.*` ahead of the one that differs (`fold`). A run therefore logs only the params.yaml
sections its DVC stage reads (the `params:` of dvc.yaml), and the whole settings object goes
beside them as one `params.yaml` artifact. The data is an MLflow dataset input whose digest is
the DVC content hash, so the runs table's Dataset column names what was read, and a Markdown
description (`mlflow.note.content`) states the headline figure, protocol and data hash.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import mlflow
import pandas as pd
import yaml

from ferops.config import flatten

NOTE_TAG = "mlflow.note.content"  # the run (and model) description the MLflow UI shows and edits
DIGEST_CHARS = 36  # MLflow's dataset digest column: a DVC directory hash (32 hex + ".dir") fits exactly


def sig4(value: float) -> str:
    """A figure as a researcher reads it: 4 significant digits (0.9296, not 0.9295833333333334)."""
    return f"{float(value):.4g}"


def round_table(table: pd.DataFrame) -> pd.DataFrame:
    """Float columns at 4 significant digits, for tables the UI shows (log_table)."""
    out = table.copy()
    for column in out.select_dtypes("float").columns:
        out[column] = out[column].map(lambda v: float(sig4(v)) if pd.notna(v) else v)
    return out


def log_param_sections(params: Any, sections: tuple[str, ...], extra: dict | None = None,
                       whole: bool = True) -> None:
    """Log the flattened keys of `sections` (plus `extra`), and the whole settings as `params.yaml` when `whole`."""
    flat = flatten(params)
    mlflow.log_params({k: v for k, v in flat.items() if k.split(".", 1)[0] in sections} | (extra or {}))
    if whole:
        plain = json.loads(json.dumps(dataclasses.asdict(params), default=list))  # tuples -> lists for YAML
        mlflow.log_text(yaml.safe_dump(plain, sort_keys=False), "params.yaml")


def log_training_data(manifest: pd.DataFrame, name: str, digest: str, source: str, context: str = "training") -> None:
    """The data as an MLflow dataset input: `name`, digest = its DVC content hash, the manifest as its rows."""
    dataset = mlflow.data.from_pandas(manifest.reset_index(drop=True), source=str(source), name=name,
                                      digest=digest[:DIGEST_CHARS])
    mlflow.log_input(dataset, context=context)


def note(headline: str, protocol: str, data: str, more: tuple[str, ...] = ()) -> str:
    """A run description: the headline in bold, then how it was measured and on what data."""
    return "\n".join([f"**{headline}**", "", f"- protocol: {protocol}", f"- data: {data}",
                      *(f"- {line}" for line in more)]) + "\n"


def model_link(name: str, version: str | int) -> str:
    """A Markdown link to a model version, relative: it opens on whichever host serves the UI."""
    return f"[{name} v{version}](#/models/{name}/versions/{version}?workflowType=machine_learning)"


def registry_line(registry: dict) -> str:
    """What became of the run's model in the registry, for its description."""
    if not registry.get("registered"):
        return f"not registered: {registry.get('reason', 'no model')}"
    state = "champion" if registry.get("champion") else "candidate (did not beat the champion)"
    return f"registered as {model_link(registry['model'], registry['version'])}, {state}"


def describe(markdown: str) -> None:
    """The active run's description in the MLflow UI."""
    mlflow.set_tag(NOTE_TAG, markdown)

"""Where `make run`'s minutes go: every top-level MLflow run of a store with its wall time, in start order.

Each DVC stage that trains or measures opens one top-level run (data stages log theirs to the
`ferops-data` experiment), so the runs' start/end times are the stages' own work. The gaps between
them are process start-up (Python, TensorFlow, MLflow imports) and DVC's bookkeeping.

    .venv/bin/python benchmarks/stage_budget.py [--store sqlite:///mlflow.db]
"""

from __future__ import annotations

import argparse

import mlflow


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="sqlite:///mlflow.db")
    args = ap.parse_args()
    mlflow.set_tracking_uri(args.store)
    runs = [r for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
            if "mlflow.parentRunId" not in r.data.tags and r.info.end_time]
    runs.sort(key=lambda r: r.info.start_time)
    if not runs:
        raise SystemExit(f"{args.store}: no finished top-level runs")
    first, last = runs[0].info.start_time, max(r.info.end_time for r in runs)
    print(f"{'run':<34} {'kind':<18} {'seconds':>8}")
    for r in runs:
        seconds = (r.info.end_time - r.info.start_time) / 1000
        print(f"{r.info.run_name[:34]:<34} {r.data.tags.get('ferops.kind', '-')[:18]:<18} {seconds:8.1f}")
    inside = sum(r.info.end_time - r.info.start_time for r in runs) / 1000
    span = (last - first) / 1000
    print(f"{'in runs':<53} {inside:8.1f}")
    print(f"{'first start to last end':<53} {span:8.1f}  (the rest: process start-up and DVC between runs)")


if __name__ == "__main__":
    main()

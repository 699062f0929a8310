#!/usr/bin/env bash
# A shared MLflow tracking server (HTTP API + model registry) over the project's store.
# Point clients at it with:  export MLFLOW_TRACKING_URI=http://127.0.0.1:${PORT:-5000}
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/mlflow server \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}" \
  --backend-store-uri "${BACKEND_STORE_URI:-sqlite:///mlflow.db}" \
  --artifacts-destination "${ARTIFACTS_DESTINATION:-./mlartifacts}"

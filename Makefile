# Two commands matter: `make run` (set up + run the pipeline on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV := .venv
# Which TensorFlow build `make setup` installs: cpu (tensorflow-cpu) or gpu (tensorflow[and-cuda]); see pyproject.toml.
TF_EXTRA ?= cpu
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
# The store `make ui` opens; ferops itself reads params.yaml (tracking.tracking_uri) or MLFLOW_TRACKING_URI.
MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: setup run paper-scale test test-fast ui serve deploy benchmarks gpu-wheels clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,$(TF_EXTRA)]"
	touch $@

setup: $(VENV)/.installed

## generate -> preprocess -> validate -> cross-validation (cv.folds) -> refit -> register, on SynthFACS (see params.yaml)
# `ferops reconcile` first: stage records naming runs this store lacks are removed, so DVC redoes those stages.
run: setup data/raw
	ferops reconcile
	dvc repro
	@echo
	@ferops results
	@echo "(every number: dvc metrics show; plots: dvc plots show)"
	@echo
	@echo "Open the MLflow UI on this store:  make ui   (= $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port 5000),"
	@echo "then the link 'ferops register' printed above (it ends in ?workflowType=machine_learning: the runs table)."

# data.dvc versions the raw datasets you import; a clone starts with the empty folder it records.
data/raw:
	mkdir -p data/raw
	dvc commit --quiet --force data.dvc

# Two workers, one test file each at a time (--dist loadfile keeps a file's module fixtures in one process):
# the end-to-end file runs beside the rest instead of after it.
## The paper's folds and full-width network for every experiment (params.paper.yaml) as one DVC experiment,
# `paper-scale`: hours on 2 CPU cores (docs/paper_scale.md). `dvc exp show` lists it beside the default's results.
paper-scale: setup data/raw
	ferops reconcile
	@args=$$($(BIN)/python -m ferops.profile params.paper.yaml) || exit 2; \
	echo "$$args" | xargs -d '\n' $(BIN)/dvc exp run -n paper-scale

test: setup
	$(BIN)/pytest -n 2 --dist loadfile --durations=40

test-fast: setup
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow"

# Prefect: a local server (http://127.0.0.1:4200, left running; log .prefect-server.log) and a deployment of every
# flow in flows/, served from this directory. In another terminal:
#   PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/prefect deployment run 'emotion-cv/default' -p epochs=2 --watch
PREFECT_API_URL ?= http://127.0.0.1:4200/api
deploy: setup data/raw
	PREFECT_API_URL=$(PREFECT_API_URL) $(BIN)/python -m flows.deploy

ui: setup
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port 5000

# REST scoring of the fer-pipeline bundle (POST http://127.0.0.1:5001/invocations, base64 images; see
# docs/serving.md). MLflow starts uvicorn by name,
# so .venv/bin must be on PATH (this Makefile puts it there); --env-manager local: no downloads here.
MODEL ?= models:/fer-pipeline@champion
serve: setup
	MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI) $(BIN)/mlflow models serve -m $(MODEL) --env-manager local --port 5001

benchmarks: setup
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/synth_speed.py
	$(BIN)/python benchmarks/fer2013_parse.py
	$(BIN)/python benchmarks/analysis_speed.py
	$(BIN)/python benchmarks/casme2_memory.py
	$(BIN)/python benchmarks/video.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/gpu_throughput.py

# Wheels for the GPU check on the lent H200 (Keras on JAX; docs/gpu.md): downloaded here, carried there.
gpu-wheels:
	bash benchmarks/gpu_check.sh --fetch

clean:
	rm -rf outputs data/processed data/synth

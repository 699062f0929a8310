# Two commands matter: `make run` (set up + run the pipeline on the embedded default) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
# The store `make ui` opens; ferops itself reads params.yaml (tracking.tracking_uri) or MLFLOW_TRACKING_URI.
MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: setup run test test-fast ui benchmarks clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

## generate -> preprocess -> validate -> 10-fold CV -> register, on SynthFACS (see params.yaml)
run: setup
	dvc repro
	@echo
	@dvc metrics show
	@echo
	@echo "Open the MLflow UI on this store:  make ui   (= $(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port 5000), then browse http://127.0.0.1:5000"

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not slow"

ui: setup
	$(BIN)/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port 5000

benchmarks: setup
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/synth_speed.py
	$(BIN)/python benchmarks/fer2013_parse.py

clean:
	rm -rf outputs data/processed data/synth

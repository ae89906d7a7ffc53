# Two newcomer commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint format bench clean

setup: $(STAMP)

# torch first, pinned, so that pip takes the local CPU build instead of a multi-GB CUDA one.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/mmm-eeg demo --out demo_out

# Both tiers: the fast one (synthetic data) and the real-data one (-m realdata).
test: lint
	$(BIN)/python -m pytest -q

# The fast tier only: no ../shared needed.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not realdata"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks write bench/results/*.json and their tables into docs/benchmarks.md.
# TORCHEEG_PYTHON: a python with torcheeg installed (its pins clash with ours), for bench/features.py.
bench: setup
	$(BIN)/python bench/model.py
	$(BIN)/python bench/features.py $(if $(TORCHEEG_PYTHON),--torcheeg-python $(TORCHEEG_PYTHON))
	$(BIN)/python bench/corpus.py
	$(BIN)/python bench/transfer.py

clean:
	rm -rf $(VENV) demo_out bench/out .pytest_cache .ruff_cache

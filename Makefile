# Set-up and the two commands README.md gives. Python 3.11; torch pinned to the
# 2.13.0 CPU build that dev and CI machines hold (pyproject.toml).
PYTHON ?= python3.11
VENV := .venv

.PHONY: setup quickstart lint test bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# The main job: the quickstart sweep (raw vs tinv_mds vs fa, with and without mip) on a local Ray, tracked in ./mlflow.db.
quickstart: setup
	$(VENV)/bin/geosweep sweep configs/sweeps/quickstart.yaml

# Lint, format and package-layering checks (configured in pyproject.toml); the test command runs them first.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The default test suite (unit + integration on a real local Ray and MLflow).
test: lint
	$(VENV)/bin/python -m pytest -m "not slow" --durations=20

bench: setup
	$(VENV)/bin/python -m geosweep.bench.overhead

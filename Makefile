PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test test-slow demo demo-check lint format bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.py
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests

# Tests too long for every run (the demo's claims, which CI checks with demo-check); see tests/test_demo.py.
test-slow: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

demo: $(STAMP)
	$(VENV)/bin/actionclip demo --output-dir demo_output

# The demo as CI runs it: no progress bars, and a failed check of the report fails the target.
demo-check: $(STAMP)
	$(VENV)/bin/actionclip demo --output-dir demo_output --quiet --strict

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info demo_output

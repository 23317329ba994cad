# The two commands a newcomer needs: `make demo` and `make test`.
# Each sets itself up: a Python 3.11 virtual environment with the package, and Tesseract;
# `make test` also installs Chromium (the coverage report's test opens the page in it).

VENV   := .venv
PYTHON := $(shell command -v python3.11 || command -v python3)
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test setup lint bench clean

demo: setup
	$(VENV)/bin/care-etl demo

test: setup
	@bash scripts/ensure-chromium.sh
	$(VENV)/bin/pytest -n 2 --dist loadfile

setup: $(STAMP)
	@bash scripts/ensure-tesseract.sh

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check care_etl care_etl_tests benchmarks
	$(VENV)/bin/ruff format --check care_etl care_etl_tests benchmarks

bench: setup
	$(VENV)/bin/python benchmarks/bench_generate.py
	$(VENV)/bin/python benchmarks/bench_pipeline.py
	$(VENV)/bin/python benchmarks/bench_accuracy.py
	$(VENV)/bin/python benchmarks/bench_linkage.py
	$(VENV)/bin/python benchmarks/bench_countries.py
	$(VENV)/bin/python benchmarks/bench_incremental.py

clean:
	rm -rf demo reports .pytest_cache test-artifacts

# Shrinkwatch: `make demo` and `make test` install what is missing, then run.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

STORE_VENV ?= .venv-store

.PHONY: install install-store demo test lint services-up services-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	bash infra/install-system.sh
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,export]'
	$(BIN)/python -m infra.kafka_jars
	touch $(STAMP)

# A store box: the runtime without PyTorch or Ultralytics (exported models only; docs/DETECTOR.md).
install-store:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	bash infra/install-system.sh
	test -d $(STORE_VENV) || $(PYTHON) -m venv $(STORE_VENV)
	$(STORE_VENV)/bin/pip install --quiet --upgrade pip
	$(STORE_VENV)/bin/pip install --quiet '.[store]'
	$(STORE_VENV)/bin/python -m infra.kafka_jars

demo: install
	$(BIN)/shrinkwatch demo

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

services-up: install
	$(BIN)/shrinkwatch infra up

services-down: install
	$(BIN)/shrinkwatch infra down

clean:
	rm -rf .shrinkwatch-test .pytest_cache .mypy_cache .ruff_cache

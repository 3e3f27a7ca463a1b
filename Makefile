# Shrinkwatch: `make demo` and `make test` install what is missing, then run.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp

.PHONY: install demo test lint services-up services-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	bash infra/install-system.sh
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m infra.kafka_jars
	touch $(STAMP)

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

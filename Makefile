# Two entry points (see README): `make demo` and `make test`. Each builds .venv itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready

.PHONY: demo test lint bench clean

$(READY): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(READY)

demo: $(READY)
	$(BIN)/metrify demo

test: $(READY) lint
	$(BIN)/pytest -q

lint: $(READY)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(READY)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .metrify

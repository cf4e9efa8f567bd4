# Everything a newcomer needs: `make demo` and `make test` create the virtualenv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install lint test demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check aiostorage tests
	$(BIN)/ruff format --check aiostorage tests
	$(BIN)/mypy --strict aiostorage

test: lint
	$(BIN)/python -m pytest

demo: install
	@echo "The end-to-end demo (embedded S3+SQS, uploads, events, a worker) lands with the local-stack issue."

bench: install
	@echo "Benchmarks land with the transfer engines."

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

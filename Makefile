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

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	npm install --silent --no-audit --no-fund --prefix .bench s3rver@3.7.1
	touch $(BENCH_STAMP)

# Each benchmarks/bench_*.py prints its figures and the ratios against the peers, measured in one run.
bench: $(BENCH_STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python -m $$(echo $${script%.py} | tr / .) || exit 1; done

clean:
	rm -rf $(VENV) .bench .mypy_cache .pytest_cache .ruff_cache

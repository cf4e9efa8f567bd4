# Everything a newcomer needs: `make demo` and `make test` create the virtualenv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: install lint test demo bench docs docs-serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check aiostorage tests examples benchmarks
	$(BIN)/ruff format --check aiostorage tests examples benchmarks
	$(BIN)/mypy --strict aiostorage

test: lint
	$(BIN)/python -m pytest

# The whole pipeline on an embedded local S3+SQS: uploads, notifications, typed events, a worker.
demo: install
	$(BIN)/python examples/pipeline_demo.py

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	npm install --silent --no-audit --no-fund --prefix .bench s3rver@3.7.1
	touch $(BENCH_STAMP)

# Each benchmarks/bench_*.py prints its figures and the ratios against the peers, measured in one run.
bench: $(BENCH_STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python -m $$(echo $${script%.py} | tr / .) || exit 1; done

DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $(DOCS_STAMP)

# The documentation site into site/; --strict makes every warning (a broken link, a page missing from the
# nav, a name the reference cannot find) an error.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The site at http://127.0.0.1:8000, rebuilt on every change.
docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

clean:
	rm -rf $(VENV) .bench .mypy_cache .pytest_cache .ruff_cache site

# checkov gets a venv of its own: it pins an old botocore, and its bc-python-hcl2 and the dev extra's python-hcl2
# both install a module named `hcl2`. Pinned, so a new release cannot add checks that break `make test` overnight.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: checkov clean-checkov

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV_STAMP)

# Offline: no update check, no platform download or ID mapping, no module downloads, and no API key (which
# would switch on the platform integration). The allowlist is terraform/.checkov.yaml.
checkov: $(CHECKOV_STAMP)
	cd terraform && env -u BC_API_KEY -u PRISMA_API_URL CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE \
		../$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --directory . --framework terraform \
		--skip-download --download-external-modules false --compact --quiet

lint: checkov

clean-checkov:
	rm -rf $(CHECKOV_VENV)

clean: clean-checkov

# The whole suite against LocalStack (https://github.com/localstack/localstack), a second S3 + SQS stricter
# than moto: presigned signatures and expiry, copy and read preconditions (412), checksums. It runs from a venv
# of its own on Python >= 3.12 (found at run time), on 127.0.0.1 only; tests/localstack_server.py starts it,
# runs pytest against it and stops it. Pinned, with the pins that keep its dependencies importable.
LOCALSTACK_VERSION := 2026.3.0
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed-$(LOCALSTACK_VERSION)
LOCALSTACK_PACKAGES := 'localstack-core[runtime]==$(LOCALSTACK_VERSION)' 'cbor2<6' 'pyopenssl<26' 'cryptography<47' service_identity

.PHONY: test-localstack clean-localstack

$(LOCALSTACK_STAMP): | $(BIN)/python
	python="$$($(BIN)/python tests/localstack_server.py python)" && "$$python" -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet $(LOCALSTACK_PACKAGES)
	touch $(LOCALSTACK_STAMP)

test-localstack: $(STAMP) $(LOCALSTACK_STAMP)
	$(BIN)/python tests/localstack_server.py run $(LOCALSTACK_VENV) -- $(BIN)/python -m pytest -p no:cacheprovider -rsx

clean-localstack:
	rm -rf $(LOCALSTACK_VENV)

clean: clean-localstack

# The whole suite against the oldest versions pyproject.toml allows, pinned by tests/compat-oldest.txt (`make test`
# runs the newest), from a venv of its own, made anew when either file changes. The transport reaches private
# internals of aiobotocore, botocore and aiohttp: their bounds in pyproject.toml are what these two targets pass.
COMPAT_VENV := .venv-compat
COMPAT_CONSTRAINTS := tests/compat-oldest.txt
COMPAT_STAMP := $(COMPAT_VENV)/.installed-oldest

.PHONY: test-compat clean-compat

$(COMPAT_STAMP): pyproject.toml $(COMPAT_CONSTRAINTS)
	rm -rf $(COMPAT_VENV)
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet -c $(COMPAT_CONSTRAINTS) -e '.[dev]'
	touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -m pytest -q -p no:cacheprovider

clean-compat:
	rm -rf $(COMPAT_VENV)

clean: clean-compat

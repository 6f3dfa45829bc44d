# Quick start: `make run` (server on http://127.0.0.1:8000) and `make test`.
# Everything installs from uv.lock into .venv with the machine's Python 3.11.
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_WORKERS ?= auto
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test lint types pytest bench bench-instructions bench-usage clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

run: install
	$(PY) -m config.bootstrap_env .env
	$(PY) manage.py migrate --no-input
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --no-input --verbosity 0
	@echo "Serving on http://$(HOST):$(PORT)/  (Ctrl+C to stop)"
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: install
	$(VENV)/bin/mypy .

# worksteal: a worker that runs out of tests takes some from the other, so a long test near
# the end does not leave a core idle; --durations shows where CI's minutes go.
pytest: install
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=15 $(PYTEST_ARGS)

test: lint types pytest

# Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/llmcp_bench).
bench: install
	$(PY) bench/gateway_bench.py

# Instructions per gateway call under valgrind's callgrind: steady where timings drift.
bench-instructions: install
	$(PY) bench/instructions.py

# The usage pages over a large usage table (PostgreSQL; BENCH_USAGE_DATABASE_URL).
bench-usage: install
	$(PY) bench/usage_pages.py

clean:
	rm -rf $(VENV) $(TOOLS) staticfiles

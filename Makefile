# Conveyor: `make up` runs it locally, `make test` tests it (both set up the host first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: up down test test-fast bench host venv

up: host venv
	$(PY) platform/stack.py up --host $(HOST) --port $(PORT)

down:
	@if [ -x $(PY) ]; then $(PY) platform/stack.py down; else echo "nothing was running"; fi

test: host venv
	$(PY) -m pytest

test-fast: host venv
	$(PY) -m pytest -m "not e2e"

bench: host venv $(VENV)/.bench-installed
	@command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
	$(PY) benchmarks/run.py $(BENCH_ARGS)

host:
	bash platform/setup-host.sh

venv: $(VENV)/.installed

$(VENV)/.bench-installed: benchmarks/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	touch $@

$(VENV)/.installed: requirements.txt pyproject.toml | host
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -e .
	touch $@

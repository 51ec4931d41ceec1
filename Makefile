# Set-up is part of every target: a fresh machine needs only python3.11 and make.
PY ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	# torch first, pinned, so that no other package pulls a second one. PyPI serves a
	# several-GB build on the first install (it runs on the CPU); pip caches it after.
	$(VENV)/bin/pip install --progress-bar on torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/governor demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff format --check serving controller kuberay

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP)
	bash scripts/ensure-prometheus.sh
	bash scripts/build-k8s.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check serving controller kuberay
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest

unit: $(STAMP)
	bash scripts/build-k8s.sh
	$(VENV)/bin/pytest -m "not integration"

clean:
	rm -rf $(VENV) out .governor .mypy_cache .ruff_cache .pytest_cache

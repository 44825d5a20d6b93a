# credvend: the project's verbs. Every target installs what it needs on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first Python 3.13 that actually runs (a pyenv shim may exist without a 3.13 selected).
PYTHON313 ?= $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13.*/bin/python3.13); do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { command -v "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
CDK := node_modules/.bin/cdk
# ARCH: what LocalStack runs here (tests, demo); SYNTH_ARCH: the app's default on AWS (Graviton).
ARCH ?= x86_64
SYNTH_ARCH ?= arm64
PYTEST_ARGS ?=
# `make local`: the policy file to deploy and the caller to act as (default: its first caller).
POLICY ?= policy.yaml
CALLER ?=
# LocalStack's own venv (credvend_local/launcher.py) is built with the same Python.
export CREDVEND_LS_PYTHON ?= $(PYTHON313)
# Node 20 is what this machine has; jsii would print an end-of-life banner on every synth.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help install test unit e2e lint synth demo demo-stop local local-stop bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/lock.txt pyproject.toml
	@test -n "$(PYTHON313)" || { echo "credvend needs Python 3.13: set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	@echo "==> project venv ($(PYTHON313))"
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	$(PIP) install -r requirements/lock.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> CDK CLI (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.cache/wheels/%/.downloaded: lambda_src/requirements.txt $(VENV)/.installed
	@echo "==> function wheels for $*"
	$(PY) -m infra.bundling --download-only --arch $*
	@touch $@

install: $(VENV)/.installed node_modules/.installed .cache/wheels/$(ARCH)/.downloaded ## install venv, CDK CLI, function wheels

lint: $(VENV)/.installed ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

unit: $(VENV)/.installed ## unit, handler, client and infra tests (no LocalStack)
	$(PY) -m pytest -m "not localstack and not e2e" $(PYTEST_ARGS)

test: install ## everything: lint, unit, infra, LocalStack plugin and end-to-end tests
	$(MAKE) lint
	$(PY) -m pytest $(PYTEST_ARGS)

e2e: install ## only the tests that run on LocalStack
	$(PY) -m pytest -m "localstack or e2e" $(PYTEST_ARGS)

synth: $(VENV)/.installed node_modules/.installed .cache/wheels/$(SYNTH_ARCH)/.downloaded ## cdk synth of what `cdk deploy` deploys (no AWS call)
	$(CDK) synth -c architecture=$(SYNTH_ARCH) --quiet
	@echo "cloud assembly in cdk.out/"

demo: install ## the guided tour on LocalStack, no AWS account
	$(PY) -m demo

demo-stop: $(VENV)/.installed ## stop the demo's LocalStack
	$(PY) -m credvend_local down --name demo

# stdout carries only the export lines (eval "$$(make local)"): installing talks on stderr.
local: ## a local credvend left running (POLICY=, CALLER=): prints export lines to eval
	@$(MAKE) --no-print-directory install 1>&2
	@$(PY) -m credvend_local up --policy "$(POLICY)" $(if $(CALLER),--caller "$(CALLER)")

local-stop: $(VENV)/.installed ## stop the local credvend
	@$(PY) -m credvend_local down

bench: install ## benchmarks: prints the figures (the gateway one starts its own LocalStack)
	$(PY) bench/bench_function.py
	$(PY) bench/bench_oidc.py
	$(PY) bench/bench_issuance.py
	$(PY) bench/bench_sidecar.py
	$(PY) bench/bench_operations.py
	$(PY) bench/bench_gateway.py
	$(PY) bench/bench_scale.py
	$(PY) bench/bench_load.py

lock: $(VENV)/.installed ## re-freeze requirements/lock.txt from requirements/dev.in
	$(PIP) install -r requirements/dev.in
	$(PIP) freeze --exclude-editable | grep -v '^-e' > requirements/lock.txt

clean: ## remove build outputs (keeps venvs and caches)
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache

# Keyfan: every target bootstraps its own .venv from pyproject.toml (needs only python3, make, PyPI).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
COUNT  ?= 50

.DEFAULT_GOAL := help
.PHONY: help demo test unit e2e lint typecheck iac-lint docker-lint bench local-up local-down clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) ## Run the whole pipeline end to end on the embedded local stack
	$(BIN)/keyfan demo --count $(COUNT)

test: lint typecheck iac-lint docker-lint ## Run every check and every test (unit, functional, e2e)
	$(BIN)/pytest

unit: $(STAMP) ## Only the fast tests (no servers)
	$(BIN)/pytest tests/unit

e2e: $(STAMP) ## Only the tests that start the real broker and moto server
	$(BIN)/pytest tests/e2e

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy

iac-lint: $(STAMP) ## cfn-lint the CloudFormation templates
	@if ls iac/*.yaml >/dev/null 2>&1; then $(BIN)/cfn-lint iac/*.yaml; else echo "no templates yet"; fi

docker-lint: $(STAMP) ## hadolint the Dockerfile
	@if [ -f Dockerfile ]; then $(BIN)/hadolint Dockerfile; else echo "no Dockerfile yet"; fi

bench: $(STAMP) ## Benchmarks: encrypted vs plaintext, written to bench/results/
	$(BIN)/keyfan bench

local-up: $(STAMP) ## Start the embedded local stack
	$(BIN)/keyfan local up

local-down: $(STAMP) ## Stop the embedded local stack
	$(BIN)/keyfan local down

clean: ## Stop the stack and remove the venv and state
	-@[ -x $(BIN)/keyfan ] && $(BIN)/keyfan local down
	rm -rf $(VENV) .keyfan .pytest_cache .mypy_cache .ruff_cache

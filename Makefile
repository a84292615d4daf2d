# dada: every target sets up what it needs (.venv, the installs, the embedded data) on first use.
# `make help` lists the targets.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

SCALE ?= smoke
SEEDS ?= 0,1,2
DATA_ROOT ?= ./data
export DATA_ROOT

.DEFAULT_GOAL := help
.PHONY: help setup data test test-fast bench-ops bench-search mlflow-ui clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade -q pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(STAMP) data ## create .venv and install dada with its dev extras

data: $(FASHION_MNIST) ## install the embedded data set (Debian's dataset-fashion-mnist)

$(FASHION_MNIST):
	@echo "Installing the embedded data set: Debian package dataset-fashion-mnist"
	@SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist) \
	|| { echo "Could not install it. Run: sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist"; exit 1; }

test: setup ## run the test suite (under 10 minutes on 2 CPU cores)
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-fast: setup ## run the tests not marked slow
	$(PY) -m pytest -q -m "not slow"

clean: ## remove run outputs (keeps .venv and results/)
	rm -rf runs outputs multirun

bench-ops: setup ## throughput of the batched ops vs the PIL per-image path (prints ratios)
	$(PY) benchmarks/bench_ops.py

bench-search: setup ## search steps/s of ours vs an emulation of the official pipeline (prints ratios)
	$(PY) benchmarks/bench_search.py

mlflow-ui: setup ## serve the MLflow UI on 127.0.0.1:5000 over the project's store (mlruns.db)
	$(PY) -m mlflow ui --backend-store-uri sqlite:///mlruns.db --host 127.0.0.1 --port 5000

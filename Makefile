# dada: every target sets up what it needs (.venv, the installs, the embedded data) on first use.
# `make help` lists the targets.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

SCALE ?= smoke
# SEEDS: empty runs each target's own seeds (reproduce/tables.py, Layout.seeds: 0,1,2; Table 5: 0). JOBS: empty runs
# conf/reproduce/<scale>.yaml's: one thread per run and one run per core at smoke and mini, so that the numbers do
# not depend on the machine.
SEEDS ?=
JOBS ?=
DATA_ROOT ?= ./data
export DATA_ROOT

.DEFAULT_GOAL := help
.PHONY: help setup data test test-fast lint bench-ops bench-search mlflow-ui clean

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

lint: setup ## ruff: lint rules and the format (ruff format), over the code
	$(PY) -m ruff check dada analysis reproduce benchmarks tests
	$(PY) -m ruff format --check dada analysis reproduce benchmarks tests

clean: ## remove run outputs (keeps .venv and results/)
	rm -rf runs outputs multirun

bench-ops: setup ## throughput of the batched ops vs the PIL per-image path (prints ratios)
	$(PY) benchmarks/bench_ops.py

bench-search: setup ## search steps/s of ours vs an emulation of the official pipeline (prints ratios)
	$(PY) benchmarks/bench_search.py

.PHONY: device-check
device-check: setup ## the GPU path in one command (<= 8 min on CUDA): ops parity, fp32/bf16 speed, a paper search epoch, eval img/s; tiny on CPU (< 2 min)
	$(PY) benchmarks/device_check.py

mlflow-ui: setup ## serve the MLflow UI on 127.0.0.1:5000 over the project's store (mlruns.db)
	$(PY) -m mlflow ui --backend-store-uri sqlite:///mlruns.db --host 127.0.0.1 --port 5000

.PHONY: wandb-sync
wandb-sync: setup ## upload the offline W&B runs under runs/ (each run keeps them in <run>/wandb/); DRY_RUN=1 lists them
	$(PY) -m dada.tracking.sync $(if $(DRY_RUN),--dry-run) runs

# -- reproducing the paper: reproduce/ runs what a target needs (finished runs are skipped), analysis/ writes results/
# Each takes SCALE=smoke|mini|paper, SEEDS (default: the target's) and DATA_ROOT=./data; rows whose data set is
# missing say "not run".
# OVERRIDES="logger=mlflow" adds Hydra overrides to every run (then: python -m analysis <target> --source mlflow).
# JOBS=N runs N runs at once here (an evaluation waits for its search), each with conf/reproduce/<scale>.yaml's
# threads (1 at smoke and mini; OVERRIDES=threads=N changes it).
# LAUNCHER=slurm submits one Slurm job per run instead (conf/launcher/slurm.yaml; SLURM_PARTITION, SLURM_ACCOUNT) and
# returns, writing the results from what has finished; WAIT=1 waits for the jobs first. `make status TABLE=...`.
OVERRIDES ?=
LAUNCHER ?= local
WAIT ?=
SLURM_PARTITION ?=
SLURM_ACCOUNT ?=
TABLE ?= table1
REPRODUCE = $(PY) -m reproduce --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) --data-root $(DATA_ROOT) \
	$(foreach override,$(OVERRIDES),--override $(override)) $(if $(JOBS),--jobs $(JOBS)) --launcher $(LAUNCHER) \
	$(if $(filter 1 yes true,$(WAIT)),--wait) $(if $(SLURM_PARTITION),--partition $(SLURM_PARTITION)) \
	$(if $(SLURM_ACCOUNT),--account $(SLURM_ACCOUNT))
ANALYSIS = $(PY) -m analysis --scale $(SCALE) $(if $(SEEDS),--seeds $(SEEDS)) --data-root $(DATA_ROOT)
# Run what the target needs, then write its results even when a run failed (exit 1: the tables say which), keeping the
# status; a refused command (exit 2: a bad JOBS, SEEDS, ...) ran nothing, so results/ is left as it is.
RUN_AND_ANALYSE = $(REPRODUCE) $@; status=$$?; if [ $$status -ge 2 ]; then \
	echo "reproduce refused $@ (exit $$status); results/ left as it is" >&2; exit $$status; fi; \
	$(ANALYSIS) $@ && exit $$status
.PHONY: table1 table2 table3 table4 table5 table6 fig1 fig3a fig3b figures all status

table1: setup ## Table 1: search cost and test error per data set (smoke: Fashion-MNIST; SCALE=mini: the evidence run)
	@$(RUN_AND_ANALYSE)

table2: setup ## Table 2: CIFAR-10/100 test error across six models (needs CIFAR under DATA_ROOT)
	@$(RUN_AND_ANALYSE)

table3: setup ## Table 3: SVHN test error (needs SVHN train, extra, test under DATA_ROOT)
	@$(RUN_AND_ANALYSE)

table4: setup ## Table 4: ImageNet ResNet-50 top-1/top-5 error and search time (needs ImageNet)
	@$(RUN_AND_ANALYSE)

table5: setup ## Table 5: COCO box/mask AP of RetinaNet, Faster R-CNN, Mask R-CNN on ResNet-50s without/with DADA (COCO rows need DATA_ROOT/coco; smoke: the embedded detection set)
	@$(RUN_AND_ANALYSE)

table6: setup ## Table 6: policy searched on reduced vs full CIFAR-10 (smoke: Fashion-MNIST row)
	@$(RUN_AND_ANALYSE)

fig1: setup ## Fig. 1: test error vs search GPU-hours (log x), AA/PBA/Fast AA/OHL AA/DADA and ours
	@$(RUN_AND_ANALYSE)

fig3a: setup ## Fig. 3a: Gumbel-Softmax vs RELAX test error
	@$(RUN_AND_ANALYSE)

fig3b: setup ## Fig. 3b: speed/accuracy trade-off, CIFAR-10 WRN-40-2 (smoke: Fashion-MNIST)
	@$(RUN_AND_ANALYSE)

figures: setup ## all figures, policy heatmaps, estimator variance during search and on toy problems
	@$(RUN_AND_ANALYSE)

all: setup ## every table and figure
	@$(RUN_AND_ANALYSE)

status: setup ## per run of TABLE (default table1): pending / running / finished / failed / not run, with Slurm job ids
	@$(REPRODUCE) status $(TABLE)

.PHONY: audit
audit: setup ## Table 1(a)'s search GPU-hours against a FLOP lower bound of each published protocol (no data, no GPU; a few minutes)
	$(PY) -m analysis audit

# -- studies: a design fixed in conf/study/<name>.yaml before its runs; reproduce.study runs its searches and
# evaluations (seeds as the design declares them; finished runs skipped), analysis.study writes
# results/<name>_<scale>{.md,_seeds.csv,_tests.csv,_movement.csv,_cost.csv,.png,.pdf}. The finished runs
# themselves (less checkpoints, figures and progress output) are committed in results/<name>_<scale>_runs.tar.gz:
# restored first (a run folder already here is kept), re-packed at the end, so a study longer than one sitting
# resumes on a fresh clone. SECONDARY=1 adds the design's secondary arm.
SECONDARY ?=
.PHONY: study-search
study-search: setup ## does the search matter? DADA vs a no-search control, TrivialAugment, random (SCALE=mini: 15 seeds, about 5 h on 2 cores)
	@$(PY) -m reproduce.study search_matters --scale $(SCALE) --data-root $(DATA_ROOT) $(if $(JOBS),--jobs $(JOBS)) \
		--archive results/search_matters_$(SCALE)_runs.tar.gz \
		$(foreach override,$(OVERRIDES),--override $(override)) $(if $(filter 1 yes true,$(SECONDARY)),--secondary); \
		status=$$?; if [ $$status -ge 2 ]; then echo "reproduce.study refused (exit $$status); results/ left as it is" >&2; \
		exit $$status; fi; $(PY) -m analysis.study search_matters --scale $(SCALE) && exit $$status

.PHONY: estimator-hypergradient
estimator-hypergradient: setup ## gumbel/RELAX/REINFORCE hypergradient variance, SNR and bias at 3 states of an official and a paper search
	$(PY) -m dada.search.hypergradients --scale $(SCALE) --out runs/$(SCALE)/estimator-hypergradient/seed0/hypergradients.csv
	$(PY) -m analysis.hypergradients --csv runs/$(SCALE)/estimator-hypergradient/seed0/hypergradients.csv --out results/

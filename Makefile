# The two commands: `make run` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: setup kube run test lint bench bench-scale clean

setup: $(STAMP)
	scripts/system-deps.sh

$(STAMP): requirements.txt requirements-dev.txt layers/chaosplane/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: setup  ## start the whole platform locally on the embedded AWS (Ctrl-C stops it)
	$(BIN)/chaosplane local $(ARGS)

kube:  ## build the real Kubernetes control plane the tests run (once: cached outside the repo)
	scripts/system-deps.sh
	scripts/kube-build.sh

test: setup kube  ## every test: unit, integration on the embedded AWS, end to end over HTTP
	$(BIN)/python -m pytest $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

bench: setup  ## latency figures on the embedded AWS
	$(BIN)/python bench/run_latency.py
	$(BIN)/python bench/time_to_halt.py

bench-scale: setup kube  ## scale figures: 1,000 EC2 instances (embedded AWS), 1,000 and 5,000 pods (real kube-apiserver)
	$(BIN)/python bench/cloud_scale.py
	$(BIN)/python bench/eks_scale.py --pods 1000 5000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

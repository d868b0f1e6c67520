# The two commands: `make run` and `make test`. Each sets up what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
# A second venv on the Lambda runtime's Python (scripts/lambda-python.sh finds it), for
# `make test-lambda-python`: the same requirements files, so only the interpreter differs.
LAMBDA_VENV  := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
REQUIREMENTS := requirements.txt requirements-dev.txt layers/chaosplane/requirements.txt pyproject.toml

.PHONY: setup ui kube run test test-lambda-python lint deploy-check bench bench-scale clean

setup: $(STAMP) ui
	scripts/system-deps.sh

UI_VENDOR := layers/chaosplane/chaosplane/ui/static/vendor/.built

ui: $(UI_VENDOR)  ## the dashboard's pinned Bootstrap, Bootstrap Icons and Chart.js, copied from npm into the package

$(UI_VENDOR): ui/package.json ui/package-lock.json ui/build.mjs
	@command -v npm >/dev/null || { echo "make ui needs npm (Node 18+): the dashboard's assets come from the npm registry" >&2; exit 1; }
	cd ui && npm ci --no-audit --no-fund --silent && npm run --silent build
	touch $@

# $(call venv,PYTHON,DIR): a venv in DIR on PYTHON with the pinned requirements and this package.
define venv
	$(1) -m venv $(2)
	$(2)/bin/python -m pip install --quiet --upgrade pip
	$(2)/bin/python -m pip install --quiet -r requirements-dev.txt
	$(2)/bin/python -m pip install --quiet --no-deps -e .
	touch $(2)/.installed
endef

$(STAMP): $(REQUIREMENTS)
	$(call venv,$(PYTHON),$(VENV))

$(LAMBDA_STAMP): $(REQUIREMENTS) template.yaml scripts/lambda-python.sh
	scripts/lambda-python.sh >/dev/null  # stops here, saying how to get it, without that Python
	$(call venv,"$$(scripts/lambda-python.sh)",$(LAMBDA_VENV))

run: setup  ## start the whole platform locally on the embedded AWS (Ctrl-C stops it)
	$(BIN)/chaosplane local $(ARGS)

kube:  ## build the real Kubernetes control plane the tests run (once: cached outside the repo)
	scripts/system-deps.sh
	scripts/kube-build.sh

# One worker per core, one test file per worker at a time (module-scoped fixtures such as the local
# platform and the kube-apiserver stay per file): about half the time on two cores. WORKERS=0 runs
# everything in this one process.
WORKERS ?= auto

test: setup kube  ## every test: unit, integration on the embedded AWS, end to end over HTTP
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile $(ARGS)

test-lambda-python: $(LAMBDA_STAMP)  ## the unit tests again, on the Lambda runtime's Python (template.yaml's Runtime)
	$(LAMBDA_VENV)/bin/python -m pytest -n $(WORKERS) --dist loadfile tests/unit $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml infra/apigateway-account.yaml infra/target-account.yaml

# The deploy tools, each in a venv of its own (their pins would fight the project's), pinned in tools/.
TOOLS := .venv-tools
$(TOOLS)/%/.installed: tools/%.txt
	rm -rf $(TOOLS)/$*
	$(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

# The Lambda runtime's Python, which `sam build` (no container) needs on PATH as python3.13:
# pyenv's build when there is one (its shim alone may not run), else whatever PATH has.
PY313 ?= $(or $(lastword $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.13*/bin/python3.13)),$(shell command -v python3.13 2>/dev/null))
SAM_ENV = PATH="$(dir $(PY313)):$$PATH" AWS_DEFAULT_REGION="$${AWS_DEFAULT_REGION:-us-east-1}" SAM_CLI_TELEMETRY=0

deploy-check: $(STAMP) ui $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed  ## offline: sam validate, sam build, the built artefact, checkov
	@test -n "$(PY313)" || { echo "deploy-check needs Python 3.13 (Lambda's runtime): pyenv install 3.13, or PY313=/path/to/python3.13" >&2; exit 1; }
	$(SAM_ENV) $(TOOLS)/sam/bin/sam validate --lint
	$(SAM_ENV) $(TOOLS)/sam/bin/sam build
	$(BIN)/python scripts/check-build.py --python $(PY313)
	$(BIN)/python scripts/check-checkov.py

bench: setup  ## latency figures on the embedded AWS
	$(BIN)/python bench/run_latency.py
	$(BIN)/python bench/time_to_halt.py

bench-scale: setup kube  ## scale figures: 1,000 EC2 instances (embedded AWS), 1,000 and 5,000 pods (real kube-apiserver)
	$(BIN)/python bench/cloud_scale.py
	$(BIN)/python bench/eks_scale.py --pods 1000 5000

clean:
	rm -rf ui/node_modules layers/chaosplane/chaosplane/ui/static/vendor $(VENV) $(LAMBDA_VENV) $(TOOLS) .aws-sam .pytest_cache .mypy_cache .ruff_cache

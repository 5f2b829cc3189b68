# The two commands a newcomer needs: `make run` and `make test`. Each creates/updates .venv.
SHELL := /bin/bash
# Prefer Python 3.12 (the Lambda runtime); pyenv's shim may exist without the version selected, so try each.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.13 python3; do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { command -v "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 3000
# `sam build` looks for `python3.12` on PATH (the functions' runtime); pyenv's shim fails unless selected.
PYTHON312 ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12); do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { command -v "$$p"; break; }; done)
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
SAM := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} PATH="$(dir $(PYTHON312)):$$PATH" \
	$(SAM_VENV)/bin/sam

.PHONY: run sam-local test test-fast typecheck lint format openapi deploy-check demo bench scale clean

$(STAMP): requirements-dev.txt layers/common/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

# State (DynamoDB, S3, SNS, queued messages) is kept in .local/state/ across restarts; FRESH=1 starts empty.
run: $(STAMP)
	$(PY) -m local_stack --port $(PORT) $(if $(FRESH),--fresh)

# The API in SAM CLI's emulator (Lambda containers; needs a container engine), the rest in the local
# stack: README "sam local start-api". SAM on $(PORT), the local stack (samples, topics) on PORT+1.
sam-local: $(STAMP) $(SAM_STAMP)
	$(PY) -m tools.sam_local --port $(PORT) --sam $(SAM_VENV)/bin/sam

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(PY) -m pytest -q

# mypy on the layer, local stack, dev kit and CLI (pyproject.toml), then each function: every one is
# an `app` module of its own (Lambda loads them apart), so they are checked one by one.
typecheck: $(STAMP)
	$(VENV)/bin/mypy
	@for f in functions/*/app.py; do $(VENV)/bin/mypy --no-error-summary $$f || exit 1; done

# Unit and integration tests only (no local stack, no browser): the quick loop while editing.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "unit or integration"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml

# Regenerates openapi.json from the handlers (tests fail while the committed file differs).
openapi: $(STAMP)
	$(PY) -m tools.openapi --write

$(SAM_STAMP): requirements-sam.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q -r requirements-sam.txt
	@touch $(SAM_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

# What a deploy would trip over, without deploying: cfn-lint, SAM's own lint, checkov's AWS checks
# (each finding fixed or waived with its reason in .checkov.yaml), and a real build (no container).
deploy-check: $(STAMP) $(SAM_STAMP) $(CHECKOV_STAMP)
	@test -n "$(PYTHON312)" || { echo "deploy-check: python3.12 is needed on PATH for sam build" >&2; exit 1; }
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -f template.yaml --config-file .checkov.yaml
	$(SAM) build
	@# The layer as layers/common/Makefile builds it: bytecode for python3.12, no botocore of its own.
	@test ! -e .aws-sam/build/CommonLayer/python/botocore || { echo "deploy-check: the layer ships botocore" >&2; exit 1; }
	@ls .aws-sam/build/CommonLayer/python/retail_pulse/__pycache__/*.cpython-312.pyc >/dev/null 2>&1 || \
		{ echo "deploy-check: the layer ships no bytecode" >&2; exit 1; }

# The bundled sample job through a local stack started for the occasion, with a live progress bar.
demo: $(STAMP)
	@$(PY) -m local_stack --port $(PORT) --no-state > .local-stack.log 2>&1 & pid=$$!; \
	trap "kill $$pid 2>/dev/null; wait $$pid 2>/dev/null" EXIT; \
	for i in $$(seq 120); do grep -q "Local stack ready" .local-stack.log && break; sleep 0.5; done; \
	$(PY) -m retail_pulse_cli --base-url http://127.0.0.1:$(PORT) submit examples/sample_job.json --wait; \
	status=$$?; test $$status -le 1

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .ruff_cache

# Speed and cost targets as figures (writes BENCHMARKS.md); BENCH_ARGS=--quick for a smoke run.
bench: $(STAMP)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# The scale model of AWS (writes SCALE.md; long, its header says how long the last run took): both
# write paths at Lambda concurrency 20, 100 and 1,000 against the DynamoDB limits model. QUICK=1: a
# smoke run of a few minutes (artifacts/SCALE.quick.md); SCALE_ARGS="--only 'one-job L=1000'" for
# some runs only, SCALE_ARGS="--factor 200" to slow the clock further on a busy machine.
scale: $(STAMP)
	$(PY) -m benchmarks.scale $(if $(QUICK),--quick) $(SCALE_ARGS)

# The two commands a newcomer needs: `make run` and `make test`. Each creates/updates .venv.
SHELL := /bin/bash
# Prefer Python 3.12 (the Lambda runtime); pyenv's shim may exist without the version selected, so try each.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.13 python3; do \
	"$$p" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { command -v "$$p"; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 3000

.PHONY: run test lint format demo bench clean

$(STAMP): requirements-dev.txt layers/common/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m local_stack --port $(PORT)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml

# The bundled sample job through a local stack started for the occasion, with a live progress bar.
demo: $(STAMP)
	@$(PY) -m local_stack --port $(PORT) > .local-stack.log 2>&1 & pid=$$!; \
	trap "kill $$pid 2>/dev/null; wait $$pid 2>/dev/null" EXIT; \
	for i in $$(seq 120); do grep -q "Local stack ready" .local-stack.log && break; sleep 0.5; done; \
	$(PY) -m retail_pulse_cli --base-url http://127.0.0.1:$(PORT) submit examples/sample_job.json --wait; \
	status=$$?; test $$status -le 1

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache

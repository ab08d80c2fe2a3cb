# The two commands of README: `make demo` and `make test`. Everything else is here for them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make test` runs every test that fits CI's budget on a 2-core machine: everything not marked
# slow, plus the slow lab tests marked in_make_test (the lab VM and the arm64 container). The
# other slow tests (full package installs in VMs and emulated hosts, whole simulated clusters)
# run with `make test-all` (about an hour on an idle 2-core machine).
TEST_SELECTION ?= (not slow and not vm and not arm64) or in_make_test
PYTEST_ARGS ?= --durations=40
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo test test-all lint bench e2e clean testenv collection collection-install ee

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Debian packages, dockerd and binfmt for the tests (installs only what is missing, as root).
testenv:
	bash scripts/testenv.sh start

lint: setup
	$(BIN)/ruff check provision tests benchmarks
	$(BIN)/ansible-lint -q playbooks roles

test: setup
	@PROVISION_TESTENV_RUN_FILE=$$(mktemp); export PROVISION_TESTENV_RUN_FILE; \
	bash scripts/testenv.sh start; \
	$(MAKE) --no-print-directory lint && \
	$(BIN)/pytest tests -m "$(TEST_SELECTION)" $(PYTEST_ARGS); rc=$$?; \
	bash scripts/testenv.sh stop; rm -f "$$PROVISION_TESTENV_RUN_FILE"; exit $$rc

test-all:
	$(MAKE) --no-print-directory test TEST_SELECTION="not e2e"

demo: setup
	bash scripts/testenv.sh demo
	bash scripts/demo.sh

# benchmarks/noop_rerun.py (16 lab hosts, the kubeadm chain on a simulated cluster: 30+ min)
# runs only with PROVISION_BENCH_NOOP=1: `PROVISION_BENCH_NOOP=1 make bench`.
bench: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# Real Kubernetes on hosts with internet access: PROVISION_E2E_INVENTORY=DIR (your throwaway
# hosts) or PROVISION_E2E_IMAGE=ubuntu.img (a lab VM); skips with the reason otherwise.
e2e: setup
	$(BIN)/pytest tests/e2e -m e2e -rs -v $(PYTEST_ARGS)

# The Ansible collection provision.kubernetes, generated from roles/ and playbooks/ into a temp
# dir: dist/provision-kubernetes-<version>.tar.gz; collection-install also installs it
# (COLLECTIONS_PATH, default ~/.ansible/collections).
COLLECTIONS_PATH ?= $(HOME)/.ansible/collections
collection: setup
	$(BIN)/python -m provision.collection build --out dist

collection-install: setup
	$(BIN)/python -m provision.collection install --out dist --path $(COLLECTIONS_PATH)

# The execution environment's build context (ee/execution-environment.yml, ansible-builder v3)
# in build/ee; then: docker build -t provision-ee:<version> build/ee (pulls the base image).
ee: setup
	$(BIN)/python -m provision.collection ee --context build/ee

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build

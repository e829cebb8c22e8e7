# The two commands of this project are `make run` and `make test`; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PACKAGES := mikey kms kms_client policies focus ue

.PHONY: help run test lint typecheck layers pytest system-deps clean bench soak

help:
	@echo "make run    start the reference KMS and the conference focus on loopback"
	@echo "make test   lint, type-check, check the layers and run the whole test suite"
	@echo "make bench  joins, relay and memory of the focus next to a bare TLS-PSK relay (< 10 min)"
	@echo "make soak   atheris on every decoder, then 10 minutes of churn with bound checks"

# The virtual environment is rebuilt only when the project's metadata changes, so a
# second `make test` goes straight to the checks.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@# Editable installs cannot map twisted.plugins; put the drop-in folder on sys.path.
	@$(PY) -c 'import sysconfig,pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "msrp_focus_twistd_plugins.pth").write_text("$(CURDIR)/twistd-plugins\n")'
	@touch $@

# Programs we did not write that the interop tests talk to (sipp, tshark, openssl).
system-deps:
	@scripts/ensure-system-deps

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck layers pytest

# Benchmarks and soak runs are measurements, never part of `make test` (bench/README.md).
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	@touch $@

bench: $(BENCH_STAMP) system-deps
	$(PY) -m bench

FUZZ_SECONDS ?= 60
SOAK_MINUTES ?= 10
soak: $(BENCH_STAMP) system-deps
	$(PY) -m bench.fuzz --seconds $(FUZZ_SECONDS)
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES)

run: $(STAMP)
	$(PY) -m focus.demo

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .hypothesis

# The two commands of this project are `make run` and `make test`; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
PACKAGES := mikey kms kms_client policies focus ue

.PHONY: help run test lint typecheck layers pytest system-deps clean

help:
	@echo "make run    start the reference KMS and the conference focus on loopback"
	@echo "make test   lint, type-check, check the layers and run the whole test suite"

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

run: $(STAMP)
	$(PY) -m focus.demo

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .hypothesis

# rf8sim: everything runs from a .venv/ at the repo root, created on demand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rf8sim-installed
export MPLBACKEND := Agg
export NUMBA_CACHE_DIR := $(CURDIR)/build/numba-cache
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: all venv sysdeps demo test test-slow bench golden lint clean

all: test

# System packages the tests need: Icarus Verilog (cocotb's simulator).  Installed with apt when run
# as root; otherwise the target fails and prints the command to run (CI must not skip the RTL legs).
sysdeps:
	@if command -v iverilog >/dev/null && command -v vvp >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing iverilog (apt)"; \
	  (apt-get install -y -q iverilog >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q iverilog >/dev/null)); \
	else echo "error: Icarus Verilog is missing; run: sudo apt-get install -y iverilog   (or: sudo make sysdeps)" >&2; exit 1; fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	@touch $@

venv: $(STAMP) sysdeps

demo: venv
	$(VENV)/bin/rf8sim demo

test: venv
	$(PY) -m pytest -n 2 -q

test-slow: venv
	$(PY) -m pytest -n 2 -q -m slow --runslow

bench: venv
	$(VENV)/bin/rf8sim bench --record results/bench.json --force

golden: venv
	$(VENV)/bin/rf8sim golden --out golden

# ruff (pinned in the test extra); the rule set and its justified ignores are in pyproject.toml
lint: venv
	$(VENV)/bin/ruff check rf8sim tests hdl setup.py

clean:
	rm -rf build .pytest_cache

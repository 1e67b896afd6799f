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

bench: $(VENV)/.test-installed
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance/sessions tests/artifacts .pytest_cache

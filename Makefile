# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-long bench fmt-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

HOST ?= 127.0.0.1
ECONOMY_PORT ?= 8891

# The main job: check everything, then compile, sign and serve the services on localhost with
# SQLite ledgers (kept in var/ between runs; a development API key is printed on start).
# Served so far: economy (8891). Telemetry (8890) and payment join them with issue 5.
run: $(STAMP)
	$(VENV)/bin/lwasc check examples/*.lwas stdlib/*.lwas services/*.lwas
	mkdir -p var
	$(VENV)/bin/lwasc serve services/economy.lwas --host $(HOST) --port $(ECONOMY_PORT) --db var/economy.db

test: $(STAMP)
	$(PY) -m pytest -q

test-long: $(STAMP)
	LWAS_LONG=1 $(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

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

# The main job: check everything, then compile, sign and serve the services on localhost with
# SQLite ledgers (kept in var/ between runs): economy on 8891, telemetry on 8890 (the payment
# service joins them with issue 5). One development API key for both is printed, unless
# LWAS_API_KEYS is set. Ctrl-C stops both.
run: $(STAMP)
	$(VENV)/bin/lwasc check examples/*.lwas stdlib/*.lwas services/*.lwas
	@mkdir -p var
	@KEYS="$${LWAS_API_KEYS:-lwas_dev_$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(24))'):admin}"; \
	 [ -n "$$LWAS_API_KEYS" ] || echo "development API key (role admin): KEY=$${KEYS%:admin}"; \
	 export LWAS_API_KEYS="$$KEYS"; \
	 $(VENV)/bin/lwasc serve services/telemetry.lwas --host $(HOST) --port 8890 --db var/telemetry.db & TEL=$$!; \
	 trap 'kill $$TEL 2>/dev/null' EXIT INT TERM; \
	 $(VENV)/bin/lwasc serve services/economy.lwas --host $(HOST) --port 8891 --db var/economy.db

test: $(STAMP)
	$(PY) -m pytest -q

test-long: $(STAMP)
	LWAS_LONG=1 $(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

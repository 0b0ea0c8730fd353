# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-long system-deps bench fmt-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

HOST ?= 127.0.0.1

# The main job: check everything, then compile, sign and serve the three services on localhost
# with SQLite ledgers (kept in var/ between runs): telemetry on 8890, economy on 8891, payment on
# 8892 (its outbox delivers to the other two), and the dashboard (a live page over the three) on
# 8893. The console shows the URLs, a development API key and Stripe webhook secret (kept in
# var/dev-api-key and var/dev-stripe-webhook-secret, the same on every run, unless LWAS_API_KEYS /
# STRIPE_WEBHOOK_SECRET are set), then only warnings and errors; every log record, access log
# included, goes as JSON to var/log/NAME.log. Stripe API calls need STRIPE_SECRET_KEY (without it,
# intents answer 503 "payments are not configured"). Ctrl-C stops them all. The launcher is
# runtime/launch.py (`python -m lwas.runtime.launch --help`).
run: $(STAMP)
	$(VENV)/bin/lwasc check examples/*.lwas stdlib/*.lwas services/*.lwas
	@$(PY) -m lwas.runtime.launch --host $(HOST) --var var --dashboard-port 8893 \
	  --serve services/telemetry.lwas --port 8890 \
	  --serve services/economy.lwas --port 8891 \
	  --serve services/payment.lwas --port 8892

# Every .lwas file is in the one style (the VS Code grammar's scope fixtures are columns, not code).
LWAS_SOURCES = $(shell find examples stdlib services bench tests -name '*.lwas' -not -path '*/node_modules/*')

# The system packages the tests drive for real (PostgreSQL's server, systemd-analyze, Chromium and
# its driver, tmux), installed with apt-get when one is missing (as root, or through sudo);
# otherwise it says what to install and fails. Nothing is skipped for a missing package.
system-deps:
	@bash .ci/system-deps

# Hypothesis runs derandomized here (tests/conftest.py, profile "ci"): the same examples every
# run, so a failure is a real one, on every machine. `make test-long` searches at random, longer.
test: system-deps $(STAMP)
	$(VENV)/bin/lwasc fmt --check $(LWAS_SOURCES)
	$(PY) -m pytest -q
	$(VENV)/bin/lwasc test examples
	$(VENV)/bin/lwasc test stdlib services --generate --examples 50

test-long: system-deps $(STAMP)
	LWAS_LONG=1 $(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis

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
# 8892 (its outbox delivers to the other two). One development API key for all three is printed,
# unless LWAS_API_KEYS is set; likewise a development Stripe webhook secret unless
# STRIPE_WEBHOOK_SECRET is set. Stripe API calls need STRIPE_SECRET_KEY (without it, intents
# answer 503 "payments are not configured"). The dashboard (a live page over the three) is on
# 8893. Ctrl-C stops them all.
run: $(STAMP)
	$(VENV)/bin/lwasc check examples/*.lwas stdlib/*.lwas services/*.lwas
	@mkdir -p var
	@KEYS="$${LWAS_API_KEYS:-lwas_dev_$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(24))'):admin}"; \
	 [ -n "$$LWAS_API_KEYS" ] || echo "development API key (role admin): KEY=$${KEYS%:admin}"; \
	 export LWAS_API_KEYS="$$KEYS"; FIRST="$${KEYS%%,*}"; FIRST="$${FIRST%:*}"; \
	 export STRIPE_WEBHOOK_SECRET="$${STRIPE_WEBHOOK_SECRET:-whsec_dev_$$($(PY) -c 'import secrets; print(secrets.token_hex(16))')}"; \
	 echo "Stripe webhook secret: WHSEC=$$STRIPE_WEBHOOK_SECRET"; \
	 export LWAS_CONFIG_PAYMENT_ECONOMY_URL="$${LWAS_CONFIG_PAYMENT_ECONOMY_URL:-http://$(HOST):8891}"; \
	 export LWAS_CONFIG_PAYMENT_TELEMETRY_URL="$${LWAS_CONFIG_PAYMENT_TELEMETRY_URL:-http://$(HOST):8890}"; \
	 export LWAS_CONFIG_PAYMENT_ECONOMY_API_KEY="$${LWAS_CONFIG_PAYMENT_ECONOMY_API_KEY:-$$FIRST}"; \
	 export LWAS_CONFIG_PAYMENT_TELEMETRY_API_KEY="$${LWAS_CONFIG_PAYMENT_TELEMETRY_API_KEY:-$$FIRST}"; \
	 $(VENV)/bin/lwasc serve services/telemetry.lwas --host $(HOST) --port 8890 --db var/telemetry.db & TEL=$$!; \
	 export LWAS_REPORT_URL="$${LWAS_REPORT_URL:-http://$(HOST):8890}" LWAS_REPORT_API_KEY="$${LWAS_REPORT_API_KEY:-$$FIRST}"; \
	 $(VENV)/bin/lwasc serve services/payment.lwas --host $(HOST) --port 8892 --db var/payment.db & PAY=$$!; \
	 $(VENV)/bin/lwasc dashboard --economy http://$(HOST):8891 --payment http://$(HOST):8892 \
	   --telemetry http://$(HOST):8890 --host $(HOST) --port 8893 & DASH=$$!; \
	 echo "dashboard: http://$(HOST):8893/"; \
	 trap 'kill $$TEL $$PAY $$DASH 2>/dev/null' EXIT INT TERM; \
	 $(VENV)/bin/lwasc serve services/economy.lwas --host $(HOST) --port 8891 --db var/economy.db

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

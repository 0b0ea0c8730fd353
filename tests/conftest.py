"""Hypothesis profiles: `make test` is reproducible, `make test-long` searches.

ci    (the default, `make test` and CI): derandomized, so every run tries the same examples and a
      test passes or fails the same way on every machine; no example database (a failure found
      earlier on one machine does not change what runs on the next); no deadline and no too_slow
      health check (a loaded CI machine must not fail a test). A failure prints its reproduction
      blob (`@reproduce_failure`).
long  (`make test-long`, LWAS_LONG=1): random, with more examples, and the example database in
      .hypothesis/ so that a failure found replays first on the next run.

HYPOTHESIS_PROFILE=NAME picks a profile explicitly. Tests' own @settings(...) set max_examples,
deadline and health checks only: they merge with the profile and never set derandomize or
database, which are the profile's to decide.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

LONG = os.environ.get("LWAS_LONG", "") not in ("", "0")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", derandomize=False, max_examples=1000, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("long" if LONG else "ci"))


# Fixtures shared by the test modules (shared helpers that are not fixtures: tests/helpers.py).

@pytest.fixture
def isolated_home(tmp_path, monkeypatch):
    """Config and cache directories in the test's tmp_path (never the real ~/.config or ~/.cache)
    and no signing key from the environment; the tmp_path."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LWAS_SIGNING_KEY", raising=False)
    return tmp_path

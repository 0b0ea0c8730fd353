"""services/telemetry.lwas over real HTTP on 127.0.0.1. Its durations are constants of the
program: the tests compile it with seconds instead of minutes (and a CPU threshold every
machine exceeds) so the alert rules run in a test's time."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import psutil
import pytest

from helpers import AUTH, BANK, ROOT, Server, compile_signed

TELEMETRY = ROOT / "services" / "telemetry.lwas"


def build(*replacements: tuple[str, str]) -> tuple[bytes, object]:
    """The service compiled (and signed with a fresh key), with text replacements applied."""
    src = TELEMETRY.read_text()
    for old, new in replacements:
        assert old in src, old
        src = src.replace(old, new)
    return compile_signed(src, TELEMETRY)


@pytest.fixture(scope="module")
def compiled():
    return build()


@pytest.fixture
def telemetry(compiled, tmp_path):
    with Server(*compiled, str(tmp_path / "telemetry.db")) as s:
        yield s


def market(s: Server, symbol: str, price: float, second: int):
    stamp = f"2026-01-25T02:{second // 60:02d}:{second % 60:02d}.000Z"
    return s.http.post("/market", json={"symbol": symbol, "price": price, "volume": 3.5, "timestamp": stamp},
                       headers=AUTH)


def test_health_and_system(telemetry):
    assert telemetry.http.get("/health").json() == {"status": "healthy", "service": "lwas_telemetry",
                                                    "version": "1.0.0"}
    m = telemetry.http.get("/system").json()
    assert set(m) == {"cpu_usage", "ram_used_gb", "ram_total_gb", "uptime_secs", "timestamp", "resonance"}
    assert 0.0 <= m["cpu_usage"] <= 100.0 and 0.0 <= m["resonance"] <= 0.99
    assert m["ram_total_gb"] == psutil.virtual_memory().total / 1024 ** 3
    assert m["timestamp"].endswith("Z")


def test_one_spike_does_not_alert_a_persistent_shift_does(telemetry):
    for i, p in enumerate([100.0, 101.0, 99.0, 100.5, 102.0, 98.0, 100.0, 101.0]):
        assert market(telemetry, "BTC", p, i).status_code == 200
    assert market(telemetry, "BTC", 180.0, 10).status_code == 200  # one spike
    assert market(telemetry, "BTC", 100.0, 11).status_code == 200
    assert telemetry.http.get("/alerts").json() == []
    for i in range(3):  # a level shift: three in a row
        market(telemetry, "BTC", 150.0 + i, 20 + i)
    alerts = telemetry.http.get("/alerts").json()
    assert [a["name"] for a in alerts] == ["price_anomaly:BTC"] and alerts[0]["severity"] == "Critical"
    assert alerts[0]["since"] == "2026-01-25T02:00:22Z"
    r = telemetry.http.get("/report").json()
    assert r["report_id"].startswith("report_") and r["generated_at"].endswith("Z")
    assert r["markets"][0]["symbol"] == "BTC" and r["markets"][0]["observations"] == 13
    assert r["alerts"] == alerts and r["system"]["resonance"] == 0.0  # an active alert
    assert telemetry.http.post("/alerts/clear", headers=AUTH).json() == {"status": "cleared"}
    assert telemetry.http.get("/alerts").json() == []


def test_market_validation_and_idempotency(telemetry):
    assert market(telemetry, "ETH", 10.0, 1).headers["lwas-ledger"] == "created"
    assert market(telemetry, "ETH", 10.0, 1).headers["lwas-ledger"] == "exists"
    assert market(telemetry, "ETH", 11.0, 1).status_code == 409
    r = market(telemetry, "ETH", -1.0, 2)
    assert r.status_code == 422 and r.json()["error"]["rule"] == "finite_price"
    r = telemetry.http.post("/market", json={"symbol": "ETH", "price": 1.0}, headers=AUTH)
    assert r.status_code == 422


def test_samples_and_high_cpu_alert(tmp_path, monkeypatch):
    """Samples every 100 ms (the interval is a literal: replaced here); 'high CPU' configured
    as above -1 % for 1 s: the alert fires only once the condition has held for the whole
    duration, with the configured figures in its message, and the samples are in the ledger."""
    monkeypatch.setenv("LWAS_CONFIG_HIGH_CPU_PERCENT", "-1")
    monkeypatch.setenv("LWAS_CONFIG_HIGH_CPU_FOR_SECS", "1")
    art, key = build(('every "10s" {', 'every "100ms" {'))
    with Server(art, key, str(tmp_path / "t.db")) as s:
        t0 = time.monotonic()
        while "high_cpu" not in [a["name"] for a in s.http.get("/alerts").json()]:
            assert time.monotonic() - t0 < 20, "high_cpu never fired"
            time.sleep(0.1)
        assert time.monotonic() - t0 >= 0.9  # held for a second first
        alert = next(a for a in s.http.get("/alerts").json() if a["name"] == "high_cpu")
        assert alert["message"] == "CPU usage above -1% for 1 s"
        assert s.http.get("/ledger/samples/checkpoint").json()["tree_size"] >= 10


def test_state_survives_a_restart(compiled, tmp_path):
    db = str(tmp_path / "t.db")
    with Server(*compiled, db) as s:
        for i, p in enumerate([5.0, 5.1, 4.9, 5.0, 5.2, 4.8, 9.0, 9.1, 9.2]):
            market(s, "SOL", p, i)
        before = (s.http.get("/alerts").json(), s.http.get("/report").json()["markets"])
    with Server(*compiled, db) as s:
        assert (s.http.get("/alerts").json(), s.http.get("/report").json()["markets"]) == before


def event(s: Server, id: str, kind: str, ok: bool, second: float):
    stamp = (datetime(2026, 1, 25, 2, 0, 0, tzinfo=timezone.utc) + timedelta(seconds=second))
    return s.http.post("/events", json={"id": id, "service": "economy", "kind": kind, "ok": ok,
                                        "timestamp": stamp.isoformat().replace("+00:00", "Z")}, headers=AUTH)


def test_error_and_payment_failure_rates_alert_after_their_durations(telemetry):
    """critical_errors: > 1 % of requests failed, held for a minute; payment_failures: > 5 % of
    payments, held for 5 minutes. Time is the events' own (so minutes pass in a test)."""
    names = lambda: {a["name"] for a in telemetry.http.get("/alerts").json()}  # noqa: E731
    for i in range(50):  # healthy traffic: one request a second
        assert event(telemetry, f"r{i}", "Request", True, i).status_code == 200
    for i in range(50, 140):  # every 10th fails (10 %) from second 50 on
        event(telemetry, f"r{i}", "Request", i % 10 != 0, i)
        if i == 100:
            assert "critical_errors" not in names()  # hot for less than a minute so far
    assert "critical_errors" in names()
    for i in range(140, 260):  # recovery: the rate drops, the alert clears
        event(telemetry, f"r{i}", "Request", True, i)
    assert "critical_errors" not in names()
    for i in range(40):  # a payment every 15 s, one in four failing, for 10 minutes
        event(telemetry, f"p{i}", "Payment", i % 4 != 0, 1000 + 15 * i)
    assert "payment_failures" in names()
    assert event(telemetry, "p0", "Payment", False, 1000).headers["lwas-ledger"] == "exists"
    assert event(telemetry, "p0", "Payment", True, 1000).status_code == 409


def window(i: int, ok: int, failed: int, until: datetime) -> dict:
    stamp = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    return {"id": f"economy-{i}", "service": "economy", "ok": ok, "failed": failed,
            "since": stamp(until - timedelta(seconds=10)), "until": stamp(until)}


def test_request_windows_from_runtimes_drive_critical_errors(telemetry):
    """A runtime reports a window of requests as one entry; more than 1 % failed for a minute
    (by the windows' own times) raises critical_errors."""
    t0 = datetime.now(timezone.utc) - timedelta(minutes=5)
    post = lambda body: telemetry.http.post("/requests", json=body, headers=AUTH)  # noqa: E731
    for i in range(6):  # 1 minute of healthy traffic
        assert post(window(i, 1000, 1, t0 + timedelta(seconds=10 * i))).status_code == 200
    names = lambda: [a["name"] for a in telemetry.http.get("/alerts").json()]  # noqa: E731
    assert "critical_errors" not in names()
    for i in range(6, 14):  # then 5 % failing, for 80 s
        post(window(i, 950, 50, t0 + timedelta(seconds=10 * i)))
    assert "critical_errors" in names()
    r = post(window(99, -1, 0, t0))
    assert r.status_code == 422 and r.json()["error"]["rule"] == "valid_window"


def test_a_runtime_reports_its_requests_to_telemetry(telemetry, tmp_path):
    from lwas.runtime.report import RequestReporter
    from test_service import transfer

    reporter = RequestReporter(telemetry.url, "bank", api_key=AUTH["Authorization"].split()[1], every=3600)
    with Server(*compile_signed(path=BANK), str(tmp_path / "bank.db"), reporter=reporter) as bank:
        for i in range(4):
            assert bank.http.post("/transfers", json=transfer(f"r{i}"), headers=AUTH).status_code == 200
        assert bank.http.get("/average/0").status_code == 500  # a fault: counted as failed
        bank.http.get("/healthz")  # operations endpoints are not service routes: not counted
        assert reporter.flush() and reporter.sent == 1
        rate = telemetry.http.get("/requests").json()
        assert (rate["total"], rate["failed"]) == (5, 1)
        assert reporter.flush()  # nothing new: nothing sent
        assert reporter.sent == 1


def test_a_window_telemetry_did_not_take_is_merged_into_the_next(tmp_path):
    from lwas.runtime.report import RequestReporter

    r = RequestReporter("http://127.0.0.1:9", "x", every=3600)  # nothing listens on port 9
    r.count(200)
    r.count(503)
    assert not r.flush() and (r.ok, r.failed) == (1, 1)
    r.count(200)
    assert (r.ok, r.failed) == (2, 1)

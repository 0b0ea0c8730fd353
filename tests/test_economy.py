"""services/economy.lwas over real HTTP on 127.0.0.1 with the design documents' payloads."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from helpers import AUTH, ROOT, Server, compile_signed

ECONOMY = ROOT / "services" / "economy.lwas"


@pytest.fixture(scope="module")
def compiled():
    return compile_signed(path=ECONOMY)


@pytest.fixture
def economy(compiled, tmp_path):
    with Server(*compiled, str(tmp_path / "economy.db")) as s:
        yield s


def tx(id: str, amount, tx_type="Payment", currency="USD", when: datetime | None = None, metadata=None) -> str:
    """A request body exactly as the design writes it (amount as a bare JSON number)."""
    when = when or datetime.now(timezone.utc)
    stamp = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    meta = "{}" if metadata is None else metadata
    return (f'{{"id": "{id}", "amount": {amount}, "currency": "{currency}", "timestamp": "{stamp}", '
            f'"tx_type": "{tx_type}", "metadata": {meta}}}')


def post(s: Server, body: str):
    return s.http.post("/transaction", content=body, headers={**AUTH, "content-type": "application/json"})


def test_health_and_the_design_example(economy):
    assert economy.http.get("/health").json() == {"status": "healthy", "service": "lwas_economy", "version": "1.0.0"}
    body = ('{"id": "tx_001", "amount": 99.99, "currency": "USD", "timestamp": "2026-01-25T02:52:48.340Z", '
            '"tx_type": "Payment", "metadata": {}}')
    r = post(economy, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "recorded", "message": "Transaction processed successfully"}
    assert r.headers["lwas-ledger"] == "created"
    assert economy.http.get("/equity").text == '{"total_equity":99.99,"currency":"USD"}'
    r = post(economy, body)  # a retry: recorded once
    assert r.status_code == 200 and r.headers["lwas-ledger"] == "exists"
    assert post(economy, body.replace("99.99", "98.99")).status_code == 409
    assert economy.http.get("/equity").json()["total_equity"] == 99.99


def test_each_type_moves_the_books_as_documented(economy):
    for i, (amount, kind) in enumerate([("1000.00", "Payment"), ("250.50", "Revenue"),
                                        ("300.25", "Expense"), ("49.99", "Refund")]):
        assert post(economy, tx(f"t{i}", amount, kind, metadata='{"note": "x"}')).status_code == 200
    m = economy.http.get("/metrics").json()
    assert m["revenue"] == 1250.50 and m["expenses"] == 300.25 and m["refunds"] == 49.99
    assert m["equity"] == 900.26 and m["profitability"] == 900.26
    assert m["transaction_count"] == 4 and m["transaction_volume"] == 1600.74
    assert m["payments"] == {"count": 1, "volume": 1000.00, "currency": "USD"}
    assert m["revenues"]["count"] == 1 and m["expenses_by_type"]["volume"] == 300.25
    assert m["refunds_by_type"]["count"] == 1
    assert economy.http.get("/profitability").text == '{"current_profitability":900.26,"currency":"USD"}'
    cp = economy.http.get("/ledger/transactions/checkpoint").json()
    assert m["ledger"] == {"name": "transactions", "tree_size": cp["tree_size"], "root_hash": cp["root_hash"]}


def test_refusals_are_clear_and_write_nothing(economy):
    cases = [
        (tx("e1", "5.00", currency="EUR"), "in_base_currency"),
        (tx("e2", "0"), "valid_amount"),
        (tx("e3", "1000000.01"), "valid_amount"),
    ]
    for body, rule in cases:
        r = post(economy, body)
        assert r.status_code == 422 and r.json()["error"]["rule"] == rule, r.text
    r = post(economy, tx("e4", "99.999"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "amount"]
    r = post(economy, tx("e5", "1.00", tx_type="Gift"))
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["body", "tx_type"]
    r = post(economy, tx("e6", "1.00").replace('"timestamp": "', '"timestamp": "yesterday'))
    assert r.status_code == 422
    assert economy.http.get("/metrics").json()["transaction_count"] == 0


def test_growth_rate_compares_periods(economy):
    now = datetime.now(timezone.utc)
    assert post(economy, tx("old", "100.00", when=now - timedelta(days=40))).status_code == 200
    assert post(economy, tx("new", "150.00", when=now - timedelta(days=1))).status_code == 200
    m = economy.http.get("/metrics").json()
    assert m["period_days"] == 30 and m["profitability"] == 150.00 and m["previous_profitability"] == 100.00
    assert m["growth_rate"] == 0.5 and m["equity"] == 250.00
    week = economy.http.get("/metrics/7").json()
    assert week["period_days"] == 7 and week["profitability"] == 150.00 and week["previous_profitability"] == 0.0
    assert week["growth_rate"] == 0.0
    assert economy.http.get("/metrics/0").status_code == 422  # a period is at least one day


def test_the_period_is_configurable(compiled, tmp_path, monkeypatch):
    monkeypatch.setenv("LWAS_CONFIG_PERIOD_DAYS", "7")
    with Server(*compiled, str(tmp_path / "economy.db")) as s:
        now = datetime.now(timezone.utc)
        assert post(s, tx("a", "10.00", when=now - timedelta(days=10))).status_code == 200
        assert post(s, tx("b", "30.00", when=now)).status_code == 200
        m = s.http.get("/metrics").json()
        assert m["period_days"] == 7 and m["profitability"] == 30.00 and m["previous_profitability"] == 10.00
        assert m["growth_rate"] == 2.0
        assert s.http.get("/profitability").json()["current_profitability"] == 30.00


def test_books_survive_a_restart_exactly(compiled, tmp_path):
    db = str(tmp_path / "economy.db")
    with Server(*compiled, db) as s:
        for i in range(25):
            kind = ("Payment", "Expense", "Refund", "Revenue")[i % 4]
            assert post(s, tx(f"r{i}", f"{i + 1}.{i:02d}", kind)).status_code == 200
        before = s.http.get("/metrics").json()
    with Server(*compiled, db) as s:
        assert s.http.get("/metrics").json() == before


def test_a_period_outside_the_books_is_refused_not_a_fault(economy):
    """Found by `lwasc test --generate`: GET /metrics/0 used to fault (500)."""
    for bad in (0, -3, 36501):
        r = economy.http.get(f"/metrics/{bad}")
        assert r.status_code == 422 and r.json()["error"]["rule"] == "valid_period"
    assert economy.http.get("/metrics/7").status_code == 200


def test_every_transaction_is_kept_and_served_in_pages(economy):
    """No cut: GET /transactions pages through every transaction, newest first, with the query
    parameters `limit` (default 50) and `after` (how many of the newest to skip)."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(120):
        assert post(economy, tx(f"p{i:03d}", "1.00", when=base + timedelta(hours=i))).status_code == 200
    http = economy.http
    first = http.get("/transactions").json()
    assert [t["id"] for t in first] == [f"p{i:03d}" for i in range(119, 69, -1)]  # 50, newest first
    ids = []
    after = 0
    while True:
        page = http.get("/transactions", params={"limit": 25, "after": after}).json()
        if not page:
            break
        ids += [t["id"] for t in page]
        after += len(page)
    assert ids == [f"p{i:03d}" for i in range(119, -1, -1)]
    bad = http.get("/transactions", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["rule"] == "valid_page"
    bad = http.get("/transactions", params={"limit": "many"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == ["query", "limit"]
    spec = http.get("/openapi.json").json()["paths"]["/transactions"]["get"]["parameters"]
    assert {p["name"]: (p["in"], p["required"], p["schema"].get("default")) for p in spec} == {
        "limit": ("query", False, 50), "after": ("query", False, 0)}


def test_days_are_served_in_ascending_pages(compiled, tmp_path):
    """GET /days?limit=&after=: per-day figures (UTC days by the transactions' own timestamps) in
    ascending day order, `limit` days after day `after`, with the transaction count and equity of
    the state they come from; the history the dashboard's chart draws. Every day can be paged to,
    the nets sum to the equity, and a restart serves the same days."""
    db = str(tmp_path / "economy.db")
    s = Server(*compiled, db)
    base = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    day0 = int(base.timestamp()) // 86400
    try:
        for i in range(7):  # one day a week apart, with two transactions on the odd ones
            when = base + timedelta(days=7 * i)
            assert post(s, tx(f"d{i}", f"{10 * (i + 1)}.00", when=when)).status_code == 200
            if i % 2:
                assert post(s, tx(f"x{i}", "2.50", "Expense", when=when + timedelta(hours=1))).status_code == 200
        # a transaction before 1970 is a day like any other (a negative number)
        assert post(s, tx("old", "1.00", "Refund", when=datetime(1969, 12, 31, 23, tzinfo=timezone.utc))).status_code == 200
        http = s.http
        first = http.get("/days").json()
        assert (first["transaction_count"], first["equity"], first["currency"]) == (11, 271.5, "USD")  # 280 - 3 x 2.50 - 1
        every = first["days"]
        assert [d["day"] for d in every] == [-1] + [day0 + 7 * i for i in range(7)]
        assert every[0] == {"day": -1, "date": "1969-12-31T00:00:00Z", "revenue": 0.0, "expenses": 0.0,
                            "refunds": 1.0, "net": -1.0, "currency": "USD"}
        d1 = every[2]
        assert d1["date"] == (base + timedelta(days=7)).strftime("%Y-%m-%dT00:00:00Z")
        assert (d1["revenue"], d1["expenses"], d1["refunds"], d1["net"]) == (20.0, 2.5, 0.0, 17.5)
        assert round(sum(d["net"] for d in every), 2) == http.get("/equity").json()["total_equity"] == first["equity"]
        pages, after = [], None
        while True:
            params = {"limit": 3} if after is None else {"limit": 3, "after": after}
            got = http.get("/days", params=params).json()
            assert got["transaction_count"] == 11
            page = got["days"]
            if not page:
                break
            pages.append([d["day"] for d in page])
            after = page[-1]["day"]
        assert [len(p) for p in pages] == [3, 3, 2] and sum(pages, []) == [d["day"] for d in every]
        window = http.get("/days", params={"after": day0 + 13, "limit": 2}).json()["days"]  # a window of days
        assert [d["day"] for d in window] == [day0 + 14, day0 + 21]
        for bad in (0, 1001):
            r = http.get("/days", params={"limit": bad})
            assert r.status_code == 422 and r.json()["error"]["rule"] == "valid_days_page", r.text
        r = http.get("/days", params={"after": "yesterday"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "after"]
        spec = http.get("/openapi.json").json()["paths"]["/days"]["get"]["parameters"]
        assert {p["name"]: (p["in"], p["required"], p["schema"].get("default")) for p in spec} == {
            "limit": ("query", False, 50), "after": ("query", False, -719163)}
    finally:
        s.close()
    with Server(*compiled, db) as s:
        assert s.http.get("/days").json() == first

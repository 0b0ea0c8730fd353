"""The dashboard (runtime/dashboard.py): the snapshot, history and SSE logic without a browser,
then the page in headless Chromium (Selenium, Debian's chromium + chromedriver) against the
economy, payment and telemetry services running in-process on 127.0.0.1. Every wait is bounded.

Screenshots go to $LWAS_DASHBOARD_SCREENSHOTS when set (a directory, created), else to the test's
tmp_path."""
from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from helpers import AUTH, WRITER, Server, Threaded, compile_services, wait_until
from lwas.runtime.checkpoint import sign_checkpoint, key_name_for
from lwas.runtime.dashboard import Hub, Poller, create_dashboard, history_points, today_utc, verify_checkpoint
from serving import free_port
from stripe_standin import event, payment_intent_obj, sign

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WEBHOOK_SECRET = "whsec_dashboard_test"


# ---------------------------------------------------------------- without a browser

def test_hub_publishes_changes_only_and_the_stream_yields_after_a_change():
    async def go():
        hub = Hub()
        assert await hub.publish({"polled_at": "t0", "economy": {"equity": 1}})
        assert not await hub.publish({"polled_at": "t1", "economy": {"equity": 1}}), "no change, no version"
        assert hub.version == 1 and hub.snapshot["polled_at"] == "t1"
        frames = hub.stream(keepalive=0.2)
        assert await frames.__anext__() == "retry: 1000\n\n"
        first = await asyncio.wait_for(frames.__anext__(), 1)
        assert first.startswith("id: 1\nevent: snapshot\ndata: ")
        assert json.loads(first.split("data: ", 1)[1])["economy"] == {"equity": 1}
        assert await asyncio.wait_for(frames.__anext__(), 1) == ": keepalive\n\n"  # idle
        asyncio.get_running_loop().call_later(0.1, lambda: asyncio.ensure_future(
            hub.publish({"polled_at": "t2", "economy": {"equity": 2}})))
        started = time.monotonic()
        nxt = await asyncio.wait_for(frames.__anext__(), 2)
        while nxt.startswith(":"):
            nxt = await asyncio.wait_for(frames.__anext__(), 2)
        assert nxt.startswith("id: 2\n") and time.monotonic() - started < 1
        assert json.loads(nxt.split("data: ", 1)[1])["economy"] == {"equity": 2}
        await frames.aclose()

    asyncio.run(go())


def _signed_checkpoint(size=3, root=bytes(range(32))):
    key = Ed25519PrivateKey.generate()
    note = sign_checkpoint("lwas/economy/transactions", size, root, key, key_name_for(key.public_key()))
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return {"origin": "lwas/economy/transactions", "tree_size": size, "root_hash": root.hex(), "checkpoint": note}, pem


def test_checkpoint_verification():
    cp, pem = _signed_checkpoint()
    assert verify_checkpoint(cp, pem)["verified"] is True
    assert verify_checkpoint({**cp, "tree_size": 4}, pem)["verified"] is False  # JSON disagrees with the note
    forged = {**cp, "checkpoint": cp["checkpoint"].replace("\n3\n", "\n4\n"), "tree_size": 4}
    bad = verify_checkpoint(forged, pem)
    assert bad["verified"] is False and "signature" in bad["error"]
    _, other = _signed_checkpoint()
    assert verify_checkpoint(cp, other)["verified"] is False


def test_history_points_are_exact_and_anchored_on_the_equity():
    days = [{"day": 10, "date": "d10", "net": Decimal("0.1")}, {"day": 12, "date": "d12", "net": Decimal("0.2")},
            {"day": 13, "date": "d13", "net": Decimal("-0.3")}]
    points = history_points(days, Decimal("100.0"))
    assert [p["equity"] for p in points] == [100.1, 100.3, 100.0]  # exact: no 100.30000000000001
    assert [p["day_profit"] for p in points] == [0.1, 0.2, -0.3]
    assert [(p["day"], p["t"], p["live"]) for p in points] == [(10, "d10", False), (12, "d12", False), (13, "d13", False)]
    assert history_points([], Decimal(5)) == []


def _economy_mock(state, cp, pem):
    """An httpx handler for the three services; `state` holds equity, today's net, the days and
    flags (payment down, no /days route)."""
    def handler(request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if host == "payment":
            raise httpx.ConnectError("refused", request=request)
        if (host, path) == ("economy", "/ledger/key"):
            return httpx.Response(200, text=pem.decode())
        if (host, path) == ("economy", "/days"):
            if state.get("no_days"):
                return httpx.Response(404, json={"detail": "Not Found"})
            after, limit = int(request.url.params["after"]), int(request.url.params["limit"])
            state["day_requests"] += 1
            days = [d for d in state["days"] if d["day"] > after][:limit]
            return httpx.Response(200, json={"days": days, "transaction_count": state["count"],
                                             "equity": state["equity"], "currency": "USD"})
        answers = {
            ("economy", "/equity"): {"total_equity": state["equity"], "currency": "USD"},
            ("economy", "/profitability"): {"current_profitability": state["equity"], "currency": "USD"},
            ("economy", "/metrics"): {"equity": state["equity"], "revenue": 10, "expenses": 0, "refunds": 0,
                                      "growth_rate": 0.0, "period_days": 30, "transaction_count": state["count"]},
            ("economy", "/transactions"): [{"id": "tx1", "amount": 10.0, "currency": "USD",
                                            "timestamp": "2026-01-25T02:52:48Z", "tx_type": "Payment", "metadata": {}}],
            ("economy", "/ledger/transactions/checkpoint"): cp,
            ("telemetry", "/system"): {"cpu_usage": 12.5, "ram_used_gb": 2.0, "ram_total_gb": 8.0,
                                       "uptime_secs": 100, "timestamp": "2026-01-25T02:52:48Z", "resonance": 0.99},
            ("telemetry", "/alerts"): [{"name": "high_ram", "severity": "Warning", "message": "RAM", "since": "x"}],
        }
        return httpx.Response(200, json=answers[(host, path)])
    return handler


URLS = {"economy": "http://economy", "payment": "http://payment", "telemetry": "http://telemetry"}


def test_poller_survives_a_down_service_and_marks_it_unreachable():
    cp, pem = _signed_checkpoint()
    today = today_utc()
    state = {"equity": 10.0, "count": 2, "day_requests": 0, "days": [
        {"day": today - 400, "date": "too old", "net": 1.0},  # outside the window: never asked for
        {"day": today - 2, "date": "2 days ago", "net": 4.0},
        {"day": today, "date": "today", "net": 6.0}]}
    state["equity"] = 11.0  # the old day counts in the equity, not in the window

    async def go():
        hub = Hub()
        async with httpx.AsyncClient(transport=httpx.MockTransport(_economy_mock(state, cp, pem))) as client:
            p = Poller(hub, client, URLS)
            snap = await p.poll_once()
            up = {s["name"]: s for s in snap["services"]}
            assert up["economy"]["up"] and up["telemetry"]["up"]
            assert not up["payment"]["up"] and "unreachable" in up["payment"]["error"]
            assert snap["checkpoint"]["verified"] is True and snap["checkpoint"]["tree_size"] == 3
            assert snap["transactions"][0]["id"] == "tx1" and snap["alerts"][0]["name"] == "high_ram"
            # the history: one point per day of the window, anchored on the equity now
            assert [(h["t"], h["equity"], h["day_profit"], h["live"]) for h in snap["equity_history"]] == [
                ("2 days ago", 5.0, 4.0, False), ("today", 11.0, 6.0, False)]
            assert snap["history"] == {"loaded": True, "days": 2, "window_days": 365, "error": ""}
            v, asked = hub.version, state["day_requests"]
            await p.poll_once()
            assert len(hub.snapshot["equity_history"]) == 2, "no change, no new point"
            assert state["day_requests"] == asked + 1, "the history is read once; then only today's figures"
            state.update(equity=26.5, count=3)
            state["days"][-1]["net"] = 21.5
            await p.poll_once()
            last = hub.snapshot["equity_history"][-1]
            assert (last["equity"], last["day_profit"], last["live"]) == (26.5, 21.5, True)
            assert len(hub.snapshot["equity_history"]) == 3 and hub.version > v

    asyncio.run(go())


def test_poller_without_a_days_route_draws_live_points_only():
    cp, pem = _signed_checkpoint()
    state = {"equity": 10.0, "count": 1, "no_days": True, "days": [], "day_requests": 0}

    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(_economy_mock(state, cp, pem))) as client:
            p = Poller(Hub(), client, URLS)
            snap = await p.poll_once()
            assert snap["services"][0]["up"], "an economy without /days is still up"
            assert snap["history"]["loaded"] is False and "HTTP 404 from /days" in snap["history"]["error"]
            assert [(h["equity"], h["day_profit"], h["live"]) for h in snap["equity_history"]] == [(10.0, None, True)]
            state["equity"] = 12.0
            snap = await p.poll_once()
            assert [h["equity"] for h in snap["equity_history"]] == [10.0, 12.0]

    asyncio.run(go())


def test_history_pages_agree_on_one_ledger_state(monkeypatch):
    """The history is read page by page; if a page comes from another ledger state than the first
    (a transaction landed in between), the read starts over, and gives up after 3 tries."""
    import lwas.runtime.dashboard as dashboard

    monkeypatch.setattr(dashboard, "DAYS_PAGE", 1)
    cp, pem = _signed_checkpoint()
    today = today_utc()
    state = {"equity": 3.0, "count": 2, "day_requests": 0, "days": [
        {"day": today - 1, "date": "yesterday", "net": 1.0}, {"day": today, "date": "today", "net": 2.0}]}
    handler = _economy_mock(state, cp, pem)

    def moving(request):  # a transaction lands after the first page of the first read
        answer = handler(request)
        if request.url.path == "/days" and state["day_requests"] == 1:
            state.update(count=3, equity=4.0)
            state["days"][-1]["net"] = 3.0
        return answer

    async def go(transport):
        async with httpx.AsyncClient(transport=transport) as client:
            return await Poller(Hub(), client, URLS).load_history()

    points, count = asyncio.run(go(httpx.MockTransport(moving)))
    assert count == 3 and [(p["equity"], p["day_profit"]) for p in points] == [(1.0, 1.0), (4.0, 3.0)]
    assert state["day_requests"] == 2 + 3, "one page of a read that was started over, then a whole read"

    def always_moving(request):
        state["count"] += 1
        return handler(request)

    with pytest.raises(ValueError, match="kept changing"):
        asyncio.run(go(httpx.MockTransport(always_moving)))


class Dashboard(Threaded):
    def __init__(self, app):
        super().__init__(app, timeout_graceful_shutdown=1)


def test_sse_endpoint_and_state_with_every_service_down():
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    d = Dashboard(create_dashboard(*dead))
    try:
        with httpx.Client(base_url=d.url, timeout=5) as c:
            snap = wait_until(lambda: c.get("/state").json().get("version"), 5, "a first snapshot") and c.get("/state").json()
            assert [s["up"] for s in snap["services"]] == [False, False, False]
            page = c.get("/")
            assert page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe-inline" not in csp
            for path, kind in (("/static/dashboard.js", "text/javascript"), ("/static/dashboard.css", "text/css"),
                               ("/favicon.ico", "image/svg+xml")):
                r = c.get(path)
                assert r.status_code == 200 and r.headers["content-type"].startswith(kind), (path, r.headers)
            assert c.get("/static/index.html").status_code == 404 and c.get("/static/nope.js").status_code == 404
            with c.stream("GET", "/events") as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                data = None
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        data = json.loads(line[6:])
                        break
                assert data and data["services"][0]["name"] == "economy" and not data["services"][0]["up"]
    finally:
        d.close()


# ---------------------------------------------------------------- in a real browser

@pytest.fixture(scope="module")
def artifacts():
    return compile_services("payment", "economy", "telemetry")


@pytest.fixture
def services(artifacts, tmp_path, monkeypatch):
    """The three services on 127.0.0.1 (payment wired to the other two), no dashboard yet."""
    arts, key = artifacts
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    for k, v in {"STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "LWAS_CONFIG_PAYMENT_ECONOMY_API_KEY": WRITER,
                 "LWAS_CONFIG_PAYMENT_TELEMETRY_API_KEY": WRITER, "LWAS_CONFIG_PAYMENT_MAX_BACKOFF_SECS": "1"}.items():
        monkeypatch.setenv(k, v)
    started = []
    try:
        telemetry = Server(arts["telemetry"], key, str(tmp_path / "telemetry.db"))
        started.append(telemetry)
        economy = Server(arts["economy"], key, str(tmp_path / "economy.db"))
        started.append(economy)
        monkeypatch.setenv("LWAS_CONFIG_PAYMENT_TELEMETRY_URL", telemetry.url)
        monkeypatch.setenv("LWAS_CONFIG_PAYMENT_ECONOMY_URL", economy.url)
        payment = Server(arts["payment"], key, str(tmp_path / "payment.db"))
        started.append(payment)
        yield {"economy": economy, "payment": payment, "telemetry": telemetry}
    finally:
        for s in reversed(started):
            s.close()


def start_dashboard(svc) -> Dashboard:
    return Dashboard(create_dashboard(svc["economy"].url, svc["payment"].url, svc["telemetry"].url))


@pytest.fixture
def stack(services):
    dash = start_dashboard(services)
    try:
        yield {**services, "dashboard": dash}
    finally:
        dash.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: $LWAS_DASHBOARD_SCREENSHOTS (created), else the test's tmp_path."""
    out = Path(os.environ.get("LWAS_DASHBOARD_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture
def browser():
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), \
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): `make test` installs them (.ci/system-deps)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors: 404s, CSP refusals
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100",
              "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def post_tx(economy, id, amount, tx_type="Payment", when: float | None = None):
    """Record a transaction at `when` (unix seconds; now unless given)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if when is None else when))
    r = economy.http.post("/transaction", headers=AUTH, json={
        "id": id, "amount": amount, "currency": "USD", "timestamp": stamp,
        "tx_type": tx_type, "metadata": {"note": "<b>not html</b>"}})
    assert r.status_code == 200, r.text


A11Y = r"""
const out = [];
if (!document.querySelector('main')) out.push('no main landmark');
if (!document.querySelector('header[role=banner], header')) out.push('no banner');
if (!document.documentElement.lang) out.push('no lang');
for (const s of document.querySelectorAll('section')) {
  if (!s.querySelector('h2')) out.push('section without heading: ' + s.id);
  const by = s.getAttribute('aria-labelledby');
  if (!by || !document.getElementById(by)) out.push('section not labelled: ' + s.id);
}
for (const g of document.querySelectorAll('svg, img')) {
  const titled = (g.querySelector(':scope > title') && g.querySelector(':scope > title').textContent.trim())
    || g.getAttribute('aria-label') || g.getAttribute('aria-labelledby') || g.getAttribute('alt');
  if (!titled) out.push('unlabelled graphic: ' + (g.id || g.tagName));
}
for (const t of document.querySelectorAll('table')) {
  if (!t.caption || !t.caption.textContent.trim()) out.push('table without caption');
  for (const th of t.querySelectorAll('thead th')) if (th.getAttribute('scope') !== 'col') out.push('th without scope');
}
for (const m of document.querySelectorAll('meter, input, output[for]')) {
  if (m.tagName !== 'OUTPUT' && !(m.labels && m.labels.length)) out.push('unlabelled control: ' + m.id);
}
for (const id of ['tx-body', 'alert-list', 'services', 'pay-body'])
  if (!document.getElementById(id).closest('[aria-live]')) out.push('not live: ' + id);
// contrast (WCAG AA 4.5:1) of every visible text element against its nearest opaque background
const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
const bgOf = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
  if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3); } return [255, 255, 255]; };
for (const e of document.querySelectorAll('body *')) {
  if (!e.offsetParent || ![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  if (e.closest('svg')) continue;
  const fg = rgb(getComputedStyle(e).color).slice(0, 3), bg = bgOf(e);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  if (ratio < 4.5) out.push(`low contrast ${ratio.toFixed(2)} on ${e.tagName}#${e.id}.${e.className}: ${e.textContent.trim().slice(0, 30)}`);
}
return out;
"""


def test_dashboard_in_a_browser(stack, browser, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    eco, dash = stack["economy"], stack["dashboard"]
    t_start = time.monotonic()
    browser.get(dash.url + "/")
    wait = WebDriverWait(browser, 10, poll_frequency=0.05)
    wait.until(lambda d: d.find_element(By.ID, "cp-status").text == "verified")
    assert browser.find_element(By.ID, "cp-size").text == "0"
    assert "No transactions yet." in browser.find_element(By.ID, "tx-body").text
    wait.until(lambda d: "%" in d.find_element(By.ID, "cpu-out").text)
    ups = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#services li")]
    assert ups == ["economy: up", "payment: up", "telemetry: up"], ups

    # a transaction appears without a reload, within a second (one poll interval + the push)
    chart = browser.find_element(By.ID, "equity-chart")
    before_d = browser.find_element(By.ID, "equity-path").get_attribute("d")
    before_points = int(chart.get_attribute("data-points"))
    post_tx(eco, "tx_dash_1", 123.45)
    posted = time.monotonic()
    row = WebDriverWait(browser, 5, poll_frequency=0.02).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#tx-body tr[data-id="tx_dash_1"]'))
    latency = time.monotonic() - posted
    assert latency < 1.5, f"the transaction took {latency:.2f} s to appear"
    assert "$123.45" in row[0].text and "Payment" in row[0].text
    wait.until(lambda d: d.find_element(By.ID, "equity-chart").get_attribute("data-equity") == "123.45")
    assert browser.find_element(By.ID, "equity-path").get_attribute("d") != before_d
    assert int(chart.get_attribute("data-points")) == before_points + 1
    assert browser.find_element(By.ID, "equity-value").text == "$123.45"
    wait.until(lambda d: d.find_element(By.ID, "cp-size").text == "1")
    assert browser.find_element(By.ID, "cp-status").text == "verified"
    assert browser.find_element(By.ID, "cp-root").text == eco.http.get("/ledger/transactions/checkpoint").json()["root_hash"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#tx-body b"), "service data is text, never HTML"

    # an expense moves equity down; a payment through the payment service's webhook and outbox
    post_tx(eco, "tx_dash_2", 23.45, "Expense")
    body = event("payment_intent.succeeded", payment_intent_obj("pi_dash1", 5000, "usd"))
    r = stack["payment"].http.post("/webhooks/stripe", content=body, headers={
        "Stripe-Signature": sign(body, WEBHOOK_SECRET, int(time.time())), "content-type": "application/json"})
    assert r.status_code == 200, r.text
    wait.until(lambda d: d.find_element(By.ID, "equity-chart").get_attribute("data-equity") == "150")
    ids = [tr.get_attribute("data-id") for tr in browser.find_elements(By.CSS_SELECTOR, "#tx-body tr")]
    assert ids == ["pi_dash1", "tx_dash_2", "tx_dash_1"], ids  # newest first
    wait.until(lambda d: d.find_element(By.ID, "ob-delivered").text not in ("–", "0"))
    assert browser.find_element(By.ID, "ob-dead").text == "0"
    assert "No payment intents yet." in browser.find_element(By.ID, "pay-body").text  # STRIPE_SECRET_KEY unset

    browser.save_screenshot(str(shots / "dashboard.png"))

    # accessibility: landmarks, headings, labels, captions, live regions, contrast, focus
    problems = browser.execute_script(A11Y)
    assert problems == [], problems
    body_el = browser.find_element(By.TAG_NAME, "body")
    body_el.send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("class") == "skip"
    style = browser.execute_script("const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth, s.left];",
                                   focused)
    assert style[0] != "none" and style[1] != "0px" and not style[2].startswith("-"), style

    # a narrow screen: no horizontal overflow
    browser.set_window_size(375, 900)
    wait.until(lambda d: d.execute_script("return window.innerWidth") <= 400)
    overflow = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1], f"horizontal overflow at 375 px: {overflow}"
    browser.save_screenshot(str(shots / "dashboard-narrow.png"))

    # a service goes down: shown as unreachable, the page goes on
    stack["telemetry"].close()
    stack["telemetry"].close = lambda: None
    wait.until(lambda d: "telemetry: unreachable" in d.find_element(By.ID, "services").text)
    assert browser.find_element(By.ID, "telemetry").get_attribute("data-stale") == "true"
    post_tx(eco, "tx_dash_3", 1.00, "Revenue")
    WebDriverWait(browser, 5, poll_frequency=0.05).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#tx-body tr[data-id="tx_dash_3"]'))
    assert time.monotonic() - t_start < 45


LAYOUT = r"""
const top = (id) => document.getElementById(id).getBoundingClientRect().top + window.scrollY;
const box = document.querySelector('#transactions .table-wrap'), cs = getComputedStyle(box);
return {vw: window.innerWidth, vh: window.innerHeight, alerts: top('alerts'), checkpoint: top('checkpoint'),
        table: top('transactions'), boxHeight: box.clientHeight, boxScroll: box.scrollHeight, overflowY: cs.overflowY,
        maxHeight: cs.maxHeight, rows: box.querySelectorAll('tbody tr').length,
        section: document.getElementById('transactions').getBoundingClientRect().height};
"""


def chart(browser) -> dict:
    return browser.execute_script("""const c = document.getElementById('equity-chart');
        return {points: +c.dataset.points, history: +c.dataset.historyPoints, firstDay: c.dataset.firstDay,
                equity: document.getElementById('equity-path').getAttribute('d'),
                profit: document.getElementById('profit-path').getAttribute('d'),
                live: [...document.querySelectorAll('#equity-labels text')].some((t) => t.textContent === 'live')};""")


def severe_console_errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_alerts_first_history_from_the_ledger_and_a_favicon(services, browser, shots):
    """Issue 16: at 1280x1000 the alerts and the checkpoint are above the fold and the long table
    scrolls in a bounded box; the equity chart starts from the ledger's per-day history (seeded
    over HTTP before the dashboard starts) and a restarted dashboard draws the same; equity and
    the day's net are two different lines; /favicon.ico is an image."""
    from selenium.webdriver.support.ui import WebDriverWait

    eco = services["economy"]
    today = today_utc()
    noon = lambda days_ago: (today - days_ago) * 86400 + 43200  # noqa: E731
    seeded = [("h4", "100.00", "Payment", noon(4)), ("h3a", "50.00", "Payment", noon(3)),
              ("h3b", "20.00", "Expense", noon(3)), ("h2", "10.00", "Refund", noon(2)),
              ("h1", "30.00", "Revenue", noon(1))]
    seeded += [(f"today{i:02d}", f"{1 + i % 7}.25", ("Payment", "Expense", "Revenue")[i % 3], today * 86400 + 60 * i)
               for i in range(60)]  # enough rows for a long table
    for id, amount, kind, when in seeded:
        post_tx(eco, id, amount, kind, when)
    sign = {"Payment": 1, "Revenue": 1, "Expense": -1, "Refund": -1}
    net: dict[int, Decimal] = {}
    for _, amount, kind, when in seeded:
        net[int(when // 86400)] = net.get(int(when // 86400), Decimal(0)) + sign[kind] * Decimal(amount)
    days = sorted(net)
    equity = [float(sum(net[d] for d in days[:i + 1])) for i in range(len(days))]
    assert days == [today - 4, today - 3, today - 2, today - 1, today]

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    wait = WebDriverWait(browser, 15, poll_frequency=0.05)
    drawn = []
    for phase in ("before-restart", "after-restart"):
        dash = start_dashboard(services)  # the ledger already holds the days: the dashboard never saw them live
        try:
            browser.get_log("browser")  # drain: only this page's messages count
            browser.get(dash.url + "/")
            wait.until(lambda d: chart(d)["history"] == len(days))
            wait.until(lambda d: d.find_element("id", "cp-status").text == "verified"
                       and "No active alerts." in d.find_element("id", "alert-list").text)
            snap = httpx.get(dash.url + "/state", timeout=5).json()
            hist = [p for p in snap["equity_history"] if not p["live"]]
            assert [p["day"] for p in hist] == days and [p["equity"] for p in hist] == equity
            assert [p["day_profit"] for p in hist] == [float(net[d]) for d in days]
            assert snap["history"]["loaded"] and snap["history"]["days"] == len(days)
            c = chart(browser)
            assert c["firstDay"] == str(today - 4), "the chart's first point is the ledger's first day"
            assert c["points"] == len(days) and not c["live"], "nothing changed live yet"
            assert c["equity"] and c["profit"] and c["equity"] != c["profit"], "equity and the day's net are two lines"
            assert [p["equity"] for p in hist] != [p["day_profit"] for p in hist]
            drawn.append((c["equity"], c["profit"]))

            lay = browser.execute_script(LAYOUT)
            assert (lay["vw"], lay["vh"]) == (1280, 1000), lay
            assert lay["alerts"] < 1000 and lay["checkpoint"] < 1000, f"alerts/checkpoint below the fold: {lay}"
            assert lay["alerts"] < lay["table"], lay
            assert lay["rows"] == 50 and lay["overflowY"] in ("auto", "scroll") and lay["maxHeight"] != "none", lay
            assert lay["boxHeight"] <= 420 and lay["boxScroll"] > lay["boxHeight"], f"the table is not in a bounded scroll box: {lay}"
            assert lay["section"] < 600, lay
            browser.save_screenshot(str(shots / f"dashboard-1280x1000-{phase}.png"))

            icon = httpx.get(dash.url + "/favicon.ico", timeout=5)
            assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/"), icon.headers
            assert icon.content.lstrip().startswith(b"<svg")
            assert browser.execute_script("return document.querySelector('link[rel=icon]').href") == dash.url + "/favicon.ico"
            assert severe_console_errors(browser) == [], "no 404 (favicon), no CSP refusal, no script error"

            if phase == "after-restart":  # then live points follow the history
                post_tx(eco, "live1", "5.00")
                wait.until(lambda d: chart(d)["points"] == len(days) + 1)
                c = chart(browser)
                assert c["history"] == len(days) and c["live"] and c["firstDay"] == str(today - 4)
                browser.save_screenshot(str(shots / "dashboard-1280x1000-live.png"))
        finally:
            browser.get("about:blank")  # close the page's /events stream before the dashboard stops
            dash.close()
    assert drawn[0] == drawn[1], "a restarted dashboard draws the same history"

"""The dashboard (runtime/dashboard.py): the snapshot and SSE logic without a browser, then the
page in headless Chromium (Selenium, Debian's chromium + chromedriver) against the economy,
payment and telemetry services running in-process on 127.0.0.1. Every wait is bounded."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lwas.driver import compile_file
from lwas.keys import generate
from lwas.runtime.checkpoint import sign_checkpoint, key_name_for
from lwas.runtime.dashboard import Hub, Poller, create_dashboard, verify_checkpoint
from stripe_standin import event, payment_intent_obj, sign
from test_service import AUTH, WRITER, Server

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WEBHOOK_SECRET = "whsec_dashboard_test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(step)


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


def test_poller_survives_a_down_service_and_marks_it_unreachable():
    cp, pem = _signed_checkpoint()
    equity = {"v": 10.0}

    def handler(request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if host == "payment":
            raise httpx.ConnectError("refused", request=request)
        answers = {
            ("economy", "/equity"): {"total_equity": equity["v"], "currency": "USD"},
            ("economy", "/profitability"): {"current_profitability": equity["v"], "currency": "USD"},
            ("economy", "/metrics"): {"revenue": 10, "expenses": 0, "refunds": 0, "growth_rate": 0.0,
                                      "period_days": 30, "transaction_count": 1},
            ("economy", "/transactions"): [{"id": "tx1", "amount": 10.0, "currency": "USD",
                                            "timestamp": "2026-01-25T02:52:48Z", "tx_type": "Payment", "metadata": {}}],
            ("economy", "/ledger/transactions/checkpoint"): cp,
            ("telemetry", "/system"): {"cpu_usage": 12.5, "ram_used_gb": 2.0, "ram_total_gb": 8.0,
                                       "uptime_secs": 100, "timestamp": "2026-01-25T02:52:48Z", "resonance": 0.99},
            ("telemetry", "/alerts"): [{"name": "high_ram", "severity": "Warning", "message": "RAM", "since": "x"}],
        }
        if (host, path) == ("economy", "/ledger/key"):
            return httpx.Response(200, text=pem.decode())
        return httpx.Response(200, json=answers[(host, path)])

    async def go():
        hub = Hub()
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            p = Poller(hub, client, {"economy": "http://economy", "payment": "http://payment",
                                     "telemetry": "http://telemetry"})
            snap = await p.poll_once()
            up = {s["name"]: s for s in snap["services"]}
            assert up["economy"]["up"] and up["telemetry"]["up"]
            assert not up["payment"]["up"] and "unreachable" in up["payment"]["error"]
            assert snap["checkpoint"]["verified"] is True and snap["checkpoint"]["tree_size"] == 3
            assert snap["transactions"][0]["id"] == "tx1" and snap["alerts"][0]["name"] == "high_ram"
            assert [h["equity"] for h in snap["equity_history"]] == [10.0]
            v = hub.version
            await p.poll_once()
            assert len(hub.snapshot["equity_history"]) == 1, "no change, no new point"
            equity["v"] = 25.5
            await p.poll_once()
            assert [h["equity"] for h in hub.snapshot["equity_history"]] == [10.0, 25.5]
            assert hub.version > v

    asyncio.run(go())


class Dashboard:
    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, 20, "the dashboard to start")

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


def test_sse_endpoint_and_state_with_every_service_down():
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(3)]
    d = Dashboard(create_dashboard(*dead))
    try:
        with httpx.Client(base_url=d.url, timeout=5) as c:
            snap = wait_until(lambda: c.get("/state").json().get("version"), 5, "a first snapshot") and c.get("/state").json()
            assert [s["up"] for s in snap["services"]] == [False, False, False]
            assert c.get("/").headers["content-type"].startswith("text/html")
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
    key = generate()
    out = {}
    for name in ("payment", "economy", "telemetry"):
        c = compile_file(ROOT / "services" / f"{name}.lwas", key=key)
        assert c.ok, c.diagnostics
        out[name] = c.artifact
    return out, key


@pytest.fixture
def stack(artifacts, tmp_path, monkeypatch):
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
        dash = Dashboard(create_dashboard(economy.url, payment.url, telemetry.url))
        started.append(dash)
        yield {"economy": economy, "payment": payment, "telemetry": telemetry, "dashboard": dash}
    finally:
        for s in reversed(started):
            s.close()


@pytest.fixture
def browser():
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), \
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): `make test` installs them (.ci/system-deps)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
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


def post_tx(economy, id, amount, tx_type="Payment"):
    r = economy.http.post("/transaction", headers=AUTH, json={
        "id": id, "amount": amount, "currency": "USD", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
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


def test_dashboard_in_a_browser(stack, browser):
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

    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

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
    browser.save_screenshot(str(ARTIFACTS / "dashboard-narrow.png"))

    # a service goes down: shown as unreachable, the page goes on
    stack["telemetry"].close()
    stack["telemetry"].close = lambda: None
    wait.until(lambda d: "telemetry: unreachable" in d.find_element(By.ID, "services").text)
    assert browser.find_element(By.ID, "telemetry").get_attribute("data-stale") == "true"
    post_tx(eco, "tx_dash_3", 1.00, "Revenue")
    WebDriverWait(browser, 5, poll_frequency=0.05).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#tx-body tr[data-id="tx_dash_3"]'))
    assert time.monotonic() - t_start < 45

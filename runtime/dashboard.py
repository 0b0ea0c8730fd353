"""The dashboard: one live web page for the economy, payment and telemetry services.

`create_dashboard(economy_url, payment_url, telemetry_url)` is a FastAPI app that polls the three
services in the background (httpx, every `interval` seconds, 0.5 by default) and keeps one
*snapshot* of what it saw: equity and profitability (a point per change), the latest
transactions, payment intents and the outbox, system telemetry (with a short history), active
alerts, and the economy ledger's signed checkpoint, verified here with the service's Ed25519 key.
A service that does not answer is shown as unreachable; its last known data stays, marked stale.

    GET /         the page (HTML, CSS and JS inline: no framework, no build step, no CDN)
    GET /state    the current snapshot (JSON)
    GET /events   Server-Sent Events: the snapshot now, then again after every change
    GET /healthz  alive

`lwasc dashboard --economy URL --payment URL --telemetry URL [--host H] [--port P]` runs it
(`main(argv)`).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import httpx
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from lwas.runtime.checkpoint import parse_checkpoint

log = logging.getLogger("lwas.dashboard")

HISTORY = 200          # equity/profitability points kept (one per change)
SYSTEM_HISTORY = 120   # telemetry samples kept for the sparklines (one per poll)
SHOW_PAYMENTS = 50     # newest intents shown
KEEPALIVE = 15.0       # seconds between SSE comments when nothing changes


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def verify_checkpoint(cp: dict, pem: bytes | str) -> dict:
    """{tree_size, root_hash, origin, verified, error} for a `/ledger/NAME/checkpoint` answer.

    Verified means: the signed note carries a valid Ed25519 signature by `pem`'s key, and the
    size and root it signs are the ones the JSON states."""
    out = {"tree_size": cp.get("tree_size"), "root_hash": cp.get("root_hash"), "origin": cp.get("origin"),
           "verified": False, "error": ""}
    try:
        key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
        note = cp.get("checkpoint", "")
        name = None
        for line in note.split("\n\n", 1)[-1].splitlines():  # the name the note itself gives
            parts = line.split(" ")
            if len(parts) == 3:
                name = parts[1]
                break
        try:
            origin, size, root = parse_checkpoint(note, key)
        except ValueError:
            if not name:
                raise
            origin, size, root = parse_checkpoint(note, key, key_name=name)
        if size != cp.get("tree_size") or root.hex() != cp.get("root_hash"):
            raise ValueError("the signed note does not state the same tree size and root")
        out["verified"], out["origin"] = True, origin
    except Exception as e:  # noqa: BLE001 - any failure is "not verified", with the reason
        out["error"] = str(e) or type(e).__name__
    return out


class Hub:
    """The current snapshot, its version, and a way to wait for the next one."""

    def __init__(self, snapshot: dict | None = None):
        self.version = 0
        self.snapshot: dict = snapshot or {}
        self._digest = b""
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def publish(self, snapshot: dict) -> bool:
        """Store `snapshot`; a new version (and a wake-up for every stream) only if it changed."""
        digest = hashlib.sha256(json.dumps({k: v for k, v in snapshot.items() if k not in ("version", "polled_at")},
                                           sort_keys=True, default=str).encode()).digest()
        cond = self._condition()
        async with cond:
            if digest == self._digest:
                self.snapshot["polled_at"] = snapshot.get("polled_at")
                return False
            self._digest = digest
            self.version += 1
            self.snapshot = {**snapshot, "version": self.version}
            cond.notify_all()
            return True

    async def wait_newer(self, version: int, timeout: float) -> bool:
        """True once a version after `version` exists; False after `timeout` seconds."""
        cond = self._condition()
        async with cond:
            try:
                await asyncio.wait_for(cond.wait_for(lambda: self.version > version), timeout)
                return True
            except (asyncio.TimeoutError, TimeoutError):
                return False

    async def stream(self, disconnected: Callable[[], Awaitable[bool]] | None = None,
                     keepalive: float = KEEPALIVE) -> AsyncIterator[str]:
        """SSE frames: the current snapshot, then one per new version; a comment when idle."""
        seen = -1
        yield "retry: 1000\n\n"
        while True:
            if disconnected is not None and await disconnected():
                return
            if self.version > seen:
                seen = self.version
                yield f"id: {seen}\nevent: snapshot\ndata: {json.dumps(self.snapshot, default=str)}\n\n"
                continue
            if not await self.wait_newer(seen, keepalive):
                yield ": keepalive\n\n"


class Poller:
    """Reads the three services and folds what it sees into the hub's snapshot."""

    def __init__(self, hub: Hub, client: httpx.AsyncClient, urls: dict[str, str],
                 economy_pubkey: bytes | None = None):
        self.hub, self.client, self.urls = hub, client, urls
        self.pinned = economy_pubkey
        self.equity_history: list[dict] = []
        self.system_history: list[dict] = []
        self.last: dict[str, Any] = {}
        self.services = {name: {"name": name, "url": url, "up": False, "error": "not polled yet", "checked_at": None}
                         for name, url in urls.items()}

    async def _get(self, service: str, path: str, text: bool = False):
        r = await self.client.get(self.urls[service].rstrip("/") + path)
        r.raise_for_status()
        return r.text if text else r.json()

    async def _service(self, name: str, paths: dict[str, tuple[str, bool]]) -> dict | None:
        """{field: answer} for every path, or None (and the service marked unreachable)."""
        keys = list(paths)
        got = await asyncio.gather(*(self._get(name, p, t) for p, t in (paths[k] for k in keys)),
                                   return_exceptions=True)
        status = self.services[name]
        status["checked_at"] = _now()
        errors = [g for g in got if isinstance(g, BaseException)]
        if errors:
            e = errors[0]
            if isinstance(e, httpx.HTTPStatusError):
                why = f"HTTP {e.response.status_code} from {e.request.url.path}"
            elif isinstance(e, httpx.HTTPError):
                why = f"unreachable ({type(e).__name__})"
            else:
                why = f"bad answer ({type(e).__name__})"
            status.update(up=False, error=why)
            return None
        status.update(up=True, error="")
        return dict(zip(keys, got))

    async def poll_once(self) -> dict:
        eco_paths = {"equity": ("/equity", False), "profitability": ("/profitability", False),
                     "metrics": ("/metrics", False), "transactions": ("/transactions", False),
                     "checkpoint": ("/ledger/transactions/checkpoint", False)}
        if self.pinned is None and "economy_key" not in self.last:
            eco_paths["key"] = ("/ledger/key", True)
        eco, pay, tel = await asyncio.gather(
            self._service("economy", eco_paths),
            self._service("payment", {"payments": ("/payments", False), "outbox": ("/outbox", False)}),
            self._service("telemetry", {"system": ("/system", False), "alerts": ("/alerts", False)}))
        at = _now()
        if eco is not None:
            if "key" in eco:
                self.last["economy_key"] = eco["key"]
            eq, pr = eco["equity"]["total_equity"], eco["profitability"]["current_profitability"]
            if not self.equity_history or (self.equity_history[-1]["equity"], self.equity_history[-1]["profitability"]) != (eq, pr):
                self.equity_history = (self.equity_history + [{"t": at, "equity": eq, "profitability": pr}])[-HISTORY:]
            m = eco["metrics"]
            self.last["economy"] = {
                "currency": eco["equity"]["currency"], "equity": eq, "profitability": pr,
                "revenue": m["revenue"], "expenses": m["expenses"], "refunds": m["refunds"],
                "growth_rate": m["growth_rate"], "period_days": m["period_days"],
                "transaction_count": m["transaction_count"]}
            self.last["transactions"] = eco["transactions"]
            pem = self.pinned if self.pinned is not None else self.last.get("economy_key", "")
            self.last["checkpoint"] = verify_checkpoint(eco["checkpoint"], pem)
        if pay is not None:
            self.last["payments"] = list(reversed(pay["payments"]))[:SHOW_PAYMENTS]
            self.last["payments_total"] = len(pay["payments"])
            box = pay["outbox"]
            self.last["outbox"] = {"pending_transfers": box["pending_transfers"], "pending_reports": box["pending_reports"],
                                   "dead_transfers": box["dead_transfers"], "delivered": box["delivered"]}
        if tel is not None:
            s = tel["system"]
            self.last["system"] = s
            total = s.get("ram_total_gb") or 0
            self.system_history = (self.system_history + [{
                "t": s.get("timestamp", at), "cpu": s.get("cpu_usage"),
                "ram": round(100.0 * s.get("ram_used_gb", 0) / total, 2) if total else None}])[-SYSTEM_HISTORY:]
            self.last["alerts"] = tel["alerts"]
        snap = {
            "polled_at": at,
            "services": [dict(v) for v in self.services.values()],
            "economy": self.last.get("economy"),
            "equity_history": list(self.equity_history),
            "transactions": self.last.get("transactions", []),
            "payments": self.last.get("payments", []),
            "payments_total": self.last.get("payments_total", 0),
            "outbox": self.last.get("outbox"),
            "system": self.last.get("system"),
            "system_history": list(self.system_history),
            "alerts": self.last.get("alerts", []),
            "checkpoint": self.last.get("checkpoint"),
        }
        for s in snap["services"]:
            s.pop("checked_at", None)  # not a change worth pushing
        await self.hub.publish(snap)
        return snap

    async def run(self, interval: float) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bad answer must not stop the dashboard
                log.exception("dashboard poll failed")
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))


def create_dashboard(economy_url: str, payment_url: str, telemetry_url: str, api_key: str | None = None, *,
                     interval: float = 0.5, economy_pubkey: bytes | None = None,
                     transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The dashboard app. `api_key`: a bearer credential for services that require one to read;
    `economy_pubkey`: the economy's public key (PEM) to verify checkpoints against, instead of
    the one the economy serves at /ledger/key."""
    hub = Hub()
    urls = {"economy": economy_url, "payment": payment_url, "telemetry": telemetry_url}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(2.0), transport=transport)
        poller = Poller(hub, client, urls, economy_pubkey)
        app.state.poller = poller
        task = asyncio.create_task(poller.run(interval))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()

    app = FastAPI(title="LwaS dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})

    @app.get("/state")
    async def state():
        return JSONResponse(hub.snapshot or {"version": 0}, headers={"Cache-Control": "no-store"})

    @app.get("/events")
    async def events(request: Request):
        return StreamingResponse(hub.stream(request.is_disconnected), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lwasc dashboard",
                                description="a live web page for the economy, payment and telemetry services")
    p.add_argument("--economy", default="http://127.0.0.1:8891", help="the economy service's URL")
    p.add_argument("--payment", default="http://127.0.0.1:8892", help="the payment service's URL")
    p.add_argument("--telemetry", default="http://127.0.0.1:8890", help="the telemetry service's URL")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8893)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls (default 0.5)")
    p.add_argument("--economy-pubkey", metavar="KEY.pub",
                   help="verify the economy's checkpoints with this key, not the one it serves")
    a = p.parse_args(argv)
    pem = None
    if a.economy_pubkey:
        try:
            with open(a.economy_pubkey, "rb") as f:
                pem = f.read()
        except OSError as e:
            print(f"error: cannot read {a.economy_pubkey}: {e.strerror}", flush=True)
            return 2
    import uvicorn

    # read credentials from the environment, never the command line (ps shows it)
    app = create_dashboard(a.economy, a.payment, a.telemetry, os.environ.get("LWAS_DASHBOARD_API_KEY") or None,
                           interval=a.interval, economy_pubkey=pem)
    print(f"dashboard on http://{a.host}:{a.port}/", flush=True)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", timeout_graceful_shutdown=1)  # open /events streams end then
    return 0


CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LwaS dashboard</title>
<style>
:root { --fg: #1b1f24; --muted: #4a5360; --bg: #f6f7f9; --card: #ffffff; --line: #c9ced6;
        --accent: #0b57d0; --ok: #0a6b2e; --warn: #8a4b00; --bad: #b3261e; --focus: #0b57d0; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--card); padding: .5rem 1rem; }
.skip:focus { left: .5rem; }
header[role=banner] { background: #14213d; color: #fff; padding: .75rem 1rem; display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; }
header h1 { font-size: 1.25rem; margin: 0; }
header ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem; }
.svc { padding: .15rem .6rem; border-radius: 1rem; font-size: .875rem; border: 1px solid #fff; }
.svc.up { background: #e6f4ea; color: #0a4b20; }
.svc.down { background: #fce8e6; color: #8c1d18; font-weight: 600; }
main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 24rem), 1fr)); }
section { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem 1rem; min-width: 0; }
section.wide { grid-column: 1 / -1; }
section[data-stale="true"] { border-color: var(--bad); }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: .75rem 0 .25rem; }
.figures { display: flex; flex-wrap: wrap; gap: .25rem 1.5rem; margin: 0 0 .5rem; }
.figures div { min-width: 8rem; }
.figures dt { color: var(--muted); font-size: .875rem; }
.figures dd { margin: 0; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
svg.chart { width: 100%; height: 12.5rem; display: block; background: #fbfcfd; border: 1px solid var(--line); border-radius: .25rem; }
.legend { font-size: .875rem; color: var(--muted); margin: .25rem 0 0; }
.legend .sw { display: inline-block; width: 1.5rem; height: 0; border-top: 3px solid var(--accent); vertical-align: middle; margin-right: .25rem; }
.legend .sw.dash { border-top: 3px dashed #7a3e9d; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
caption { text-align: left; color: var(--muted); font-size: .875rem; padding-bottom: .25rem; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { overflow-wrap: anywhere; min-width: 8ch; }
svg.spark { height: 4rem; }
tr.new { animation: flash 1.5s ease-out; }
@keyframes flash { from { background: #fff3bf; } to { background: transparent; } }
@media (prefers-reduced-motion: reduce) { tr.new { animation: none; } }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .25rem; font-size: .8rem; font-weight: 600; border: 1px solid currentColor; }
.badge.ok { color: var(--ok); } .badge.warning { color: var(--warn); } .badge.critical, .badge.bad { color: var(--bad); }
.gauge { display: grid; grid-template-columns: 6.5rem 1fr 4.5rem; gap: .5rem; align-items: center; margin: .35rem 0; }
.gauge meter { width: 100%; height: 1.1rem; }
.gauge output { text-align: right; font-variant-numeric: tabular-nums; }
.root { font-family: ui-monospace, monospace; font-size: .85rem; overflow-wrap: anywhere; }
.status { font-weight: 700; }
.status.ok { color: var(--ok); } .status.bad { color: var(--bad); }
ul.alerts { list-style: none; padding: 0; margin: 0; }
ul.alerts li { padding: .35rem 0; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); }
footer { padding: 0 1rem 1rem; color: var(--muted); font-size: .875rem; }
</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header role="banner">
  <h1>LwaS dashboard</h1>
  <nav aria-label="Services"><ul id="services" aria-live="polite"></ul></nav>
</header>
<main id="main" tabindex="-1">
  <section id="equity" class="wide" aria-labelledby="equity-h">
    <h2 id="equity-h">Equity and profitability</h2>
    <dl class="figures">
      <div><dt>Equity</dt><dd id="equity-value">–</dd></div>
      <div><dt>Profitability (<span id="period">30</span> days)</dt><dd id="profit-value">–</dd></div>
      <div><dt>Growth rate</dt><dd id="growth-value">–</dd></div>
      <div><dt>Transactions</dt><dd id="count-value">–</dd></div>
    </dl>
    <svg id="equity-chart" class="chart" viewBox="0 0 600 200" role="img" aria-labelledby="equity-chart-title equity-chart-desc" data-points="0">
      <title id="equity-chart-title">Equity and profitability over time</title>
      <desc id="equity-chart-desc">No data yet.</desc>
      <g id="equity-axes" stroke="#c9ced6" stroke-width="1"></g>
      <g id="equity-labels" fill="#4a5360" font-size="12"></g>
      <path id="equity-path" fill="none" stroke="#0b57d0" stroke-width="2.5" d=""></path>
      <path id="profit-path" fill="none" stroke="#7a3e9d" stroke-width="2" stroke-dasharray="6 4" d=""></path>
    </svg>
    <p class="legend"><span class="sw" aria-hidden="true"></span>equity <span class="sw dash" aria-hidden="true"></span>profitability — one point per change the dashboard saw</p>
  </section>

  <section id="transactions" aria-labelledby="tx-h">
    <h2 id="tx-h">Latest transactions</h2>
    <div class="table-wrap" tabindex="0" role="region" aria-labelledby="tx-caption">
    <table>
      <caption id="tx-caption">The last 50 transactions in the economy's ledger, newest first</caption>
      <thead><tr><th scope="col">Id</th><th scope="col">Type</th><th scope="col" class="num">Amount</th><th scope="col">Time</th></tr></thead>
      <tbody id="tx-body" aria-live="polite" aria-relevant="additions"></tbody>
    </table>
    </div>
  </section>

  <section id="payments" aria-labelledby="pay-h">
    <h2 id="pay-h">Payments</h2>
    <div class="table-wrap" tabindex="0" role="region" aria-labelledby="pay-caption">
    <table>
      <caption id="pay-caption">Payment intents and their status, newest first</caption>
      <thead><tr><th scope="col">Intent</th><th scope="col" class="num">Amount</th><th scope="col">Status</th></tr></thead>
      <tbody id="pay-body" aria-live="polite"></tbody>
    </table>
    </div>
    <h3 id="outbox-h">Outbox</h3>
    <dl class="figures" aria-labelledby="outbox-h" aria-live="polite" id="outbox">
      <div><dt>Pending transfers</dt><dd id="ob-pending">–</dd></div>
      <div><dt>Pending reports</dt><dd id="ob-reports">–</dd></div>
      <div><dt>Dead letters</dt><dd id="ob-dead">–</dd></div>
      <div><dt>Delivered</dt><dd id="ob-delivered">–</dd></div>
    </dl>
    <ul id="ob-dead-list" class="alerts" aria-label="Dead letters"></ul>
  </section>

  <section id="telemetry" aria-labelledby="tel-h">
    <h2 id="tel-h">System</h2>
    <div class="gauge"><label for="cpu-meter">CPU</label><meter id="cpu-meter" min="0" max="100" low="70" high="90" optimum="0" value="0"></meter><output id="cpu-out" for="cpu-meter">–</output></div>
    <div class="gauge"><label for="ram-meter">RAM</label><meter id="ram-meter" min="0" max="100" low="75" high="95" optimum="0" value="0"></meter><output id="ram-out" for="ram-meter">–</output></div>
    <div class="gauge"><label for="res-meter">Resonance</label><meter id="res-meter" min="0" max="1" low="0.5" high="0.9" optimum="1" value="0"></meter><output id="res-out" for="res-meter">–</output></div>
    <p>Uptime: <span id="uptime">–</span> · RAM <span id="ram-detail">–</span></p>
    <svg id="cpu-spark" class="chart spark" viewBox="0 0 300 60" preserveAspectRatio="none" role="img" aria-labelledby="cpu-spark-title">
      <title id="cpu-spark-title">CPU and RAM usage, recent samples (percent)</title>
      <path id="ram-spark-path" fill="none" stroke="#7a3e9d" stroke-width="1.5" stroke-dasharray="4 3" vector-effect="non-scaling-stroke" d=""></path>
      <path id="cpu-spark-path" fill="none" stroke="#0b57d0" stroke-width="2" vector-effect="non-scaling-stroke" d=""></path>
    </svg>
    <p class="legend"><span class="sw" aria-hidden="true"></span>CPU <span class="sw dash" aria-hidden="true"></span>RAM</p>
  </section>

  <section id="alerts" aria-labelledby="alerts-h">
    <h2 id="alerts-h">Active alerts</h2>
    <ul id="alert-list" class="alerts" aria-live="assertive"></ul>
  </section>

  <section id="checkpoint" aria-labelledby="cp-h">
    <h2 id="cp-h">Ledger checkpoint</h2>
    <dl class="figures" aria-live="polite">
      <div><dt>Signature</dt><dd><span id="cp-status" class="status">–</span></dd></div>
      <div><dt>Tree size</dt><dd id="cp-size">–</dd></div>
    </dl>
    <p>Root hash: <span id="cp-root" class="root">–</span></p>
    <p class="muted" id="cp-note">The economy's <code>transactions</code> ledger: its latest signed checkpoint, checked by the dashboard against the service's Ed25519 key.</p>
  </section>
</main>
<footer><p>Updated <time id="updated">never</time> · <span id="conn" aria-live="polite">connecting…</span></p></footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
const money = (v) => (v === null || v === undefined) ? "–" : Number(v).toLocaleString("en-US", {style: "currency", currency: "USD"});
const last = {};
const changed = (key, value) => { const s = JSON.stringify(value); if (last[key] === s) return false; last[key] = s; return true; };

function stepPath(points, key, x, y) {
  let d = "";
  points.forEach((p, i) => { const px = x(i).toFixed(1), py = y(p[key]).toFixed(1); d += i === 0 ? `M${px} ${py}` : `H${px} V${py}`; });
  return d;
}

function renderEquity(snap) {
  const e = snap.economy, h = snap.equity_history || [];
  if (e && changed("eco", e)) {
    $("equity-value").textContent = money(e.equity);
    $("profit-value").textContent = money(e.profitability);
    $("period").textContent = e.period_days;
    $("growth-value").textContent = (100 * e.growth_rate).toFixed(1) + " %";
    $("count-value").textContent = e.transaction_count;
  }
  const svg = $("equity-chart");
  const W = Math.max(240, Math.round(svg.clientWidth) || 600), H = Math.max(120, Math.round(svg.clientHeight) || 200);
  if (!changed("hist", [h, W, H])) return;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const L = 70, R = 10, T = 10, B = 24;
  const vals = h.flatMap((p) => [p.equity, p.profitability]);
  let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals); if (hi === lo) hi = lo + 1;
  const n = Math.max(h.length - 1, 1);
  const x = (i) => L + (W - L - R) * (h.length === 1 ? 1 : i / n);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  $("equity-path").setAttribute("d", stepPath(h, "equity", x, y));
  $("profit-path").setAttribute("d", stepPath(h, "profitability", x, y));
  const axes = $("equity-axes"), labels = $("equity-labels");
  axes.replaceChildren(); labels.replaceChildren();
  for (const v of [lo, (lo + hi) / 2, hi]) {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
    line.setAttribute("x1", L); line.setAttribute("x2", W - R); line.setAttribute("y1", y(v)); line.setAttribute("y2", y(v));
    axes.appendChild(line);
    const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("x", L - 6); t.setAttribute("y", y(v) + 4); t.setAttribute("text-anchor", "end"); t.textContent = money(v);
    labels.appendChild(t);
  }
  const when = (p) => new Date(p.t).toLocaleTimeString();
  if (h.length) for (const [i, anchor] of (h.length > 1 ? [[0, "start"], [h.length - 1, "end"]] : [[0, "end"]])) {
    const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("x", x(i)); t.setAttribute("y", H - 6); t.setAttribute("text-anchor", anchor); t.textContent = when(h[i]);
    labels.appendChild(t);
  }
  svg.dataset.points = h.length;
  const lastP = h[h.length - 1];
  svg.dataset.equity = lastP ? lastP.equity : "";
  $("equity-chart-desc").textContent = lastP
    ? `${h.length} points; equity now ${money(lastP.equity)}, profitability ${money(lastP.profitability)}.`
    : "No data yet.";
}

function renderTransactions(snap) {
  const txs = snap.transactions || [];
  if (!changed("tx", txs)) return;
  const body = $("tx-body"), had = new Set([...body.rows].map((r) => r.dataset.id)), first = body.rows.length === 0;
  const rows = txs.map((t) => {
    const tr = el("tr"); tr.dataset.id = t.id;
    if (!first && !had.has(t.id)) tr.className = "new";
    tr.append(el("td", t.id, "id"), el("td", t.tx_type), el("td", money(t.amount), "num"), el("td", (t.timestamp || "").replace("T", " ").replace(/\.\d+/, "")));
    return tr;
  });
  if (!rows.length) { const tr = el("tr"); const td = el("td", "No transactions yet.", "muted"); td.colSpan = 4; tr.append(td); rows.push(tr); }
  body.replaceChildren(...rows);
}

function statusBadge(s) {
  const cls = s === "succeeded" ? "ok" : (s === "failed" || s === "canceled") ? "bad" : (s === "refunded" ? "warning" : "");
  return el("span", s, "badge " + cls);
}

function renderPayments(snap) {
  const ps = snap.payments || [];
  if (changed("pay", ps)) {
    const rows = ps.map((p) => { const tr = el("tr"); const st = el("td"); st.append(statusBadge(p.status));
      tr.append(el("td", p.id, "id"), el("td", money(p.amount), "num"), st); return tr; });
    if (!rows.length) { const tr = el("tr"); const td = el("td", "No payment intents yet.", "muted"); td.colSpan = 3; tr.append(td); rows.push(tr); }
    $("pay-body").replaceChildren(...rows);
  }
  const o = snap.outbox;
  if (o && changed("outbox", o)) {
    $("ob-pending").textContent = o.pending_transfers.length;
    $("ob-reports").textContent = o.pending_reports.length;
    $("ob-dead").textContent = o.dead_transfers.length;
    $("ob-delivered").textContent = o.delivered;
    $("ob-dead-list").replaceChildren(...o.dead_transfers.map((d) => {
      const li = el("li"); li.append(el("span", "dead", "badge bad"), " " + d.transfer.id + ": " + d.last_error); return li; }));
  }
}

function spark(points, key) {
  let d = ""; const n = Math.max(points.length - 1, 1);
  points.forEach((p, i) => { if (p[key] === null || p[key] === undefined) return;
    const x = (300 * i / n).toFixed(1), y = (58 - 56 * Math.min(100, Math.max(0, p[key])) / 100).toFixed(1);
    d += (d ? "L" : "M") + x + " " + y; });
  return d;
}

function duration(s) {
  s = Math.floor(s || 0); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + " d " : "") + h + " h " + m + " min";
}

function renderSystem(snap) {
  const s = snap.system; if (!s) return;
  const ram = s.ram_total_gb ? 100 * s.ram_used_gb / s.ram_total_gb : 0;
  $("cpu-meter").value = s.cpu_usage; $("cpu-out").textContent = s.cpu_usage.toFixed(1) + " %";
  $("ram-meter").value = ram; $("ram-out").textContent = ram.toFixed(1) + " %";
  $("res-meter").value = s.resonance; $("res-out").textContent = Number(s.resonance).toFixed(2);
  $("uptime").textContent = duration(s.uptime_secs);
  $("ram-detail").textContent = `${s.ram_used_gb.toFixed(1)} of ${s.ram_total_gb.toFixed(1)} GiB`;
  const h = snap.system_history || [];
  $("cpu-spark-path").setAttribute("d", spark(h, "cpu"));
  $("ram-spark-path").setAttribute("d", spark(h, "ram"));
}

function renderAlerts(snap) {
  const a = snap.alerts || [];
  if (!changed("alerts", a)) return;
  const items = a.map((x) => { const li = el("li"); const sev = String(x.severity || "").toLowerCase();
    li.append(el("span", sev || "alert", "badge " + sev), " ", el("strong", x.name), " — " + x.message + " (since " + x.since + ")"); return li; });
  if (!items.length) items.push(el("li", "No active alerts.", "muted"));
  $("alert-list").replaceChildren(...items);
}

function renderCheckpoint(snap) {
  const c = snap.checkpoint;
  if (!c || !changed("cp", c)) return;
  const st = $("cp-status");
  st.textContent = c.verified ? "verified" : "NOT verified";
  st.className = "status " + (c.verified ? "ok" : "bad");
  st.title = c.error || "";
  $("cp-size").textContent = c.tree_size;
  $("cp-root").textContent = c.root_hash;
  if (!c.verified) $("cp-note").textContent = "Not verified: " + c.error;
}

function renderServices(snap) {
  const ss = snap.services || [];
  if (!changed("svc", ss)) return;
  $("services").replaceChildren(...ss.map((s) => { const li = el("li", `${s.name}: ${s.up ? "up" : s.error || "unreachable"}`, "svc " + (s.up ? "up" : "down")); return li; }));
  const stale = Object.fromEntries(ss.map((s) => [s.name, !s.up]));
  for (const [sec, svc] of [["equity", "economy"], ["transactions", "economy"], ["checkpoint", "economy"], ["payments", "payment"], ["telemetry", "telemetry"], ["alerts", "telemetry"]])
    $(sec).dataset.stale = stale[svc] ? "true" : "false";
}

function render(snap) {
  if (!snap || !snap.version) return;
  latest = snap;
  for (const f of [renderServices, renderEquity, renderTransactions, renderPayments, renderSystem, renderAlerts, renderCheckpoint]) {
    try { f(snap); } catch (err) { console.error(f.name, err); }
  }
  document.body.dataset.version = snap.version;
  $("updated").textContent = new Date().toLocaleTimeString();
}

let latest = null;
window.addEventListener("resize", () => { if (latest) renderEquity(latest); });
fetch("/state").then((r) => r.json()).then(render).catch(() => {});
const es = new EventSource("/events");
es.addEventListener("snapshot", (ev) => render(JSON.parse(ev.data)));
es.onopen = () => { $("conn").textContent = "live"; };
es.onerror = () => { $("conn").textContent = "reconnecting…"; };
</script>
</body>
</html>
"""

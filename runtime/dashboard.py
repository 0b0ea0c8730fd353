"""The dashboard: one live web page for the economy, payment and telemetry services.

`create_dashboard(economy_url, payment_url, telemetry_url)` is a FastAPI app that polls the three
services in the background (httpx, every `interval` seconds, 0.5 by default) and keeps one
*snapshot* of what it saw: equity and net profit per day over time, the latest transactions,
payment intents and the outbox, system telemetry (with a short history), active alerts, and the
economy ledger's signed checkpoint, verified here with the service's Ed25519 key. A service that
does not answer is shown as unreachable; its last known data stays, marked stale.

The equity chart starts from the ledger, not from when the dashboard started: once the economy
answers, the poller reads its per-day figures (`GET /days?after=&limit=`, page by page, the last
HISTORY_DAYS days only) and turns them into one point per day (the equity at the end of the day
and that day's net: revenue - expenses - refunds); then it appends a point per change it sees
live, from today's page of the same route. Each page states the ledger state it was read from
(transaction count, equity), so the equity and the day's net of a point come from one state. A
restarted dashboard draws the same history. The second line is the day's net, on its own axis,
and not the period's profitability: that equals the equity as long as every transaction is
within the period (30 days), so the two lines used to coincide.

    GET /              the page (runtime/dashboard_static/index.html: no framework, no build
                       step, no CDN; its CSS and JS are served beside it, under a strict CSP)
    GET /static/NAME   dashboard.css, dashboard.js
    GET /favicon.ico   the icon (SVG)
    GET /state         the current snapshot (JSON)
    GET /events        Server-Sent Events: the snapshot now, then again after every change
    GET /healthz       alive

`lwasc dashboard --economy URL --payment URL --telemetry URL [--host H] [--port P]` runs it
(`main(argv)`).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.resources
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from lwas.runtime.checkpoint import parse_checkpoint

log = logging.getLogger("lwas.dashboard")

HISTORY = 200          # live equity points kept (one per change seen)
HISTORY_DAYS = 365     # days of the ledger's history drawn: the last N calendar days (UTC)
DAYS_PAGE = 500        # days per GET /days request
MAX_DAY_PAGES = 20     # a history load reads at most this many pages, then gives up
HISTORY_RETRY = 30.0   # seconds before a failed history load is tried again
SYSTEM_HISTORY = 120   # telemetry samples kept for the sparklines (one per poll)
SHOW_PAYMENTS = 50     # newest intents shown
KEEPALIVE = 15.0       # seconds between SSE comments when nothing changes


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def today_utc() -> int:
    """Today's UTC day number (days since 1970-01-01), as the economy numbers its days."""
    return int(time.time() // 86400)


def history_points(days: list[dict], equity: Decimal) -> list[dict]:
    """Chart points from GET /days figures (ascending) and the equity of the same ledger state.

    `days` must hold every day with activity after the first one (the ledger's tail), so the
    equity at the end of day d is the equity now minus the nets of the days after d. Amounts are
    added as decimals (exact), then written as JSON numbers."""
    points, later = [], Decimal(0)
    for d in reversed(days):
        net = Decimal(str(d["net"]))
        points.append({"t": d["date"], "day": d["day"], "equity": float(equity - later),
                       "day_profit": float(net), "live": False})
        later += net
    points.reverse()
    return points


def today_net(page: dict, today: int) -> float:
    """The net of `today` from a `GET /days?after=today-1&limit=1` page (0 without activity)."""
    days = page["days"]
    return float(days[0]["net"]) if days and days[0]["day"] == today else 0.0


def why_failed(e: BaseException) -> str:
    """A request's failure in a few words (shown on the page)."""
    if isinstance(e, httpx.HTTPStatusError):
        return f"HTTP {e.response.status_code} from {e.request.url.path}"
    if isinstance(e, httpx.HTTPError):
        return f"unreachable ({type(e).__name__})"
    if type(e) is ValueError and str(e):  # ours (not a JSONDecodeError)
        return str(e)
    return f"bad answer ({type(e).__name__})"


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
        self.history: list[dict] = []       # one point per day, from the ledger (GET /days)
        self.live: list[dict] = []          # one point per change seen since
        self.history_status = {"loaded": False, "days": 0, "window_days": HISTORY_DAYS, "error": ""}
        self.history_retry_at = 0.0
        self.history_count: int | None = None  # transactions in the ledger state the history shows
        self.system_history: list[dict] = []
        self.last: dict[str, Any] = {}
        self.services = {name: {"name": name, "url": url, "up": False, "error": "not polled yet", "checked_at": None}
                         for name, url in urls.items()}

    async def _get(self, service: str, path: str, text: bool = False, exact: bool = False):
        r = await self.client.get(self.urls[service].rstrip("/") + path)
        r.raise_for_status()
        if text:
            return r.text
        return r.json(parse_float=Decimal) if exact else r.json()

    async def _service(self, name: str, paths: dict[str, tuple[str, bool]],
                       optional: frozenset[str] = frozenset()) -> dict | None:
        """{field: answer} for every path, or None (and the service marked unreachable). A field
        in `optional` that fails is None and leaves the service up."""
        keys = list(paths)
        got = await asyncio.gather(*(self._get(name, p, t) for p, t in (paths[k] for k in keys)),
                                   return_exceptions=True)
        status = self.services[name]
        status["checked_at"] = _now()
        errors = [g for k, g in zip(keys, got) if isinstance(g, BaseException) and k not in optional]
        if errors:
            status.update(up=False, error=why_failed(errors[0]))
            return None
        status.update(up=True, error="")
        return {k: None if isinstance(g, BaseException) else g for k, g in zip(keys, got)}

    async def _days_after(self, day: int) -> tuple[list[dict], dict] | None:
        """Every day with activity after `day`, ascending, page by page (at most MAX_DAY_PAGES),
        and the first page (its count and equity); None if the ledger moved between pages."""
        days: list[dict] = []
        first = None
        for _ in range(MAX_DAY_PAGES):
            page = await self._get("economy", f"/days?after={day}&limit={DAYS_PAGE}", exact=True)
            first = first or page
            if page["transaction_count"] != first["transaction_count"]:
                return None
            days += page["days"]
            if len(page["days"]) < DAYS_PAGE:
                return days, first
            day = page["days"][-1]["day"]
        raise ValueError(f"more than {MAX_DAY_PAGES * DAYS_PAGE} days to read")

    async def load_history(self) -> tuple[list[dict], int]:
        """The chart's per-day points for the last HISTORY_DAYS days, and the number of
        transactions they account for. The days and the equity they are anchored to come from
        one ledger state: if a page states another count than the first, the read starts over
        (3 times at most)."""
        start = today_utc() - HISTORY_DAYS
        for _ in range(3):
            got = await self._days_after(start)
            if got is not None:
                days, first = got
                return history_points(days, Decimal(str(first["equity"])))[-HISTORY_DAYS:], first["transaction_count"]
        raise ValueError("the ledger kept changing while its history was read")

    async def _try_history(self) -> None:
        """Load the history once; on failure, say why and try again after HISTORY_RETRY s."""
        try:
            self.history, self.history_count = await self.load_history()
        except Exception as e:  # noqa: BLE001 - no history is not a reason to stop: live points go on
            why = why_failed(e)
            log.warning("dashboard: no equity history from the economy: %s", why)
            self.history_status.update(error=why)
            self.history_retry_at = time.monotonic() + HISTORY_RETRY
            return
        self.history_status.update(loaded=True, days=len(self.history), error="")
        self.live = []  # the history covers what was seen live before it

    def _add_live_point(self, at: str, count: int, equity: float, day_profit: float | None) -> None:
        """Append a live point when equity or the day's net moved since the last point, unless
        the answers (`count` transactions) are older than the history (read after them)."""
        if self.history_count is not None and count < self.history_count:
            return
        prev = (self.live or self.history)[-1:]
        if not prev or (prev[0]["equity"], prev[0]["day_profit"]) != (equity, day_profit):
            self.live = (self.live + [{"t": at, "equity": equity, "day_profit": day_profit, "live": True}])[-HISTORY:]

    async def poll_once(self) -> dict:
        today = today_utc()
        eco_paths = {"equity": ("/equity", False), "profitability": ("/profitability", False),
                     "metrics": ("/metrics", False), "transactions": ("/transactions", False),
                     "checkpoint": ("/ledger/transactions/checkpoint", False),
                     "today": (f"/days?after={today - 1}&limit=1", False)}
        if self.pinned is None and "economy_key" not in self.last:
            eco_paths["key"] = ("/ledger/key", True)
        eco, pay, tel = await asyncio.gather(
            self._service("economy", eco_paths, optional=frozenset({"today"})),
            self._service("payment", {"payments": ("/payments", False), "outbox": ("/outbox", False)}),
            self._service("telemetry", {"system": ("/system", False), "alerts": ("/alerts", False)}))
        at = _now()
        if eco is not None:
            if "key" in eco:
                self.last["economy_key"] = eco["key"]
            eq, pr = eco["equity"]["total_equity"], eco["profitability"]["current_profitability"]
            m = eco["metrics"]
            if not self.history_status["loaded"] and time.monotonic() >= self.history_retry_at:
                await self._try_history()
            page = eco["today"]  # one state: its count, equity and today's net agree
            if page is not None:
                self._add_live_point(at, page["transaction_count"], page["equity"], today_net(page, today))
            else:  # an economy without GET /days: equity alone
                self._add_live_point(at, m["transaction_count"], eq, None)
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
            "equity_history": self.history + self.live,
            "history": dict(self.history_status),
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


# The page's assets (runtime/dashboard_static/, package data of lwas.runtime): name -> media type.
ASSETS = {"index.html": "text/html; charset=utf-8", "dashboard.css": "text/css; charset=utf-8",
          "dashboard.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml"}

# Nothing inline and nothing from elsewhere: scripts and styles only from the dashboard itself.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def load_assets() -> dict[str, bytes]:
    """The bytes of every asset, read once; a missing one is a broken install, said plainly."""
    folder = importlib.resources.files(__package__ or "lwas.runtime") / "dashboard_static"
    try:
        return {name: (folder / name).read_bytes() for name in ASSETS}
    except OSError as e:
        raise RuntimeError(f"the dashboard's page is missing from this install ({e}): "
                           "lwas.runtime must ship dashboard_static/* as package data") from e


def create_dashboard(economy_url: str, payment_url: str, telemetry_url: str, api_key: str | None = None, *,
                     interval: float = 0.5, economy_pubkey: bytes | None = None,
                     transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The dashboard app. `api_key`: a bearer credential for services that require one to read;
    `economy_pubkey`: the economy's public key (PEM) to verify checkpoints against, instead of
    the one the economy serves at /ledger/key."""
    hub = Hub()
    urls = {"economy": economy_url, "payment": payment_url, "telemetry": telemetry_url}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    assets = load_assets()

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

    def asset(name: str, cache: str = "no-cache") -> Response:
        return Response(assets[name], media_type=ASSETS[name],
                        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return HTMLResponse(assets["index.html"], headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})

    @app.get("/static/{name}")
    async def static(name: str):
        if name not in ("dashboard.css", "dashboard.js"):
            return JSONResponse({"error": {"code": "not_found", "message": "no such file"}}, status_code=404)
        return asset(name)

    @app.get("/favicon.ico")
    async def favicon():
        return asset("favicon.svg", "public, max-age=86400")

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

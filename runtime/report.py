"""Reporting the requests a runtime served to the telemetry service, in windows.

`lwasc serve` with `LWAS_REPORT_URL=http://telemetry:8890` counts each request to a service route
as ok (status < 500) or failed (5xx) and, every `LWAS_REPORT_EVERY` seconds (10), posts the
window to telemetry's `POST /requests` (`LWAS_REPORT_API_KEY` as the bearer key):
`{"id": "<service>-<start µs>", "service", "ok", "failed", "since", "until"}`. Telemetry's
`critical_errors` alert (more than 1 % failed, held for a minute) follows them.

A window is one ledger entry however many requests it counts, so reporting costs telemetry one
append per window rather than one per request. Best effort (these are metrics, not money): a
window telemetry does not accept is merged into the next one, so counts are not dropped while the
process lives; a post that timed out but landed may be counted twice. Counting never waits on
the network.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime, timezone

import httpx

from lwas.runtime.models import dumps

log = logging.getLogger("lwas.report")


def _stamp(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class RequestReporter:
    def __init__(self, url: str, service: str, api_key: str = "", every: float = 10.0):
        self.url = url.rstrip("/") + "/requests"
        self.service = service
        self.every = every
        self.headers = {"content-type": "application/json"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self.lock = threading.Lock()
        self.ok = self.failed = 0
        self.since = time.time_ns() // 1000
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.sent = 0  # windows telemetry accepted

    def count(self, status: int) -> None:
        with self.lock:
            if status >= 500:
                self.failed += 1
            else:
                self.ok += 1

    def flush(self, client: httpx.Client | None = None) -> bool:
        """Post the current window if it counted anything; True if there was nothing or it landed."""
        with self.lock:
            ok, failed, since = self.ok, self.failed, self.since
        if ok == 0 and failed == 0:
            return True
        until = max(time.time_ns() // 1000, since + 1)
        body = {"id": f"{self.service}-{since}-{until}", "service": self.service, "ok": ok, "failed": failed,
                "since": _stamp(since), "until": _stamp(until)}
        try:
            c = client or httpx.Client(timeout=5.0)
            try:
                r = c.post(self.url, content=dumps(body), headers=self.headers)
            finally:
                if client is None:
                    c.close()
            landed = r.status_code < 300
            if not landed:
                log.warning("telemetry refused a request window: HTTP %s %s", r.status_code, r.text[:200])
        except httpx.HTTPError as e:
            landed = False
            log.warning("telemetry is unreachable (%s); the window is kept for the next report", e)
        if landed:
            with self.lock:  # what was counted meanwhile starts the next window
                self.ok -= ok
                self.failed -= failed
                self.since = until
            self.sent += 1
        return landed

    def start(self) -> None:
        def run():
            with httpx.Client(timeout=5.0) as client:
                while not self.stopping.wait(self.every):
                    self.flush(client)
                self.flush(client)

        self.thread = threading.Thread(target=run, name="lwas-report", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


def reporter_from_env(service: str, env=os.environ) -> RequestReporter | None:
    url = env.get("LWAS_REPORT_URL", "")
    if not url:
        return None
    return RequestReporter(url, service, env.get("LWAS_REPORT_API_KEY", ""),
                           float(env.get("LWAS_REPORT_EVERY", "10")))

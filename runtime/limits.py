"""Request limits of LwaS services: what one client can make the server hold, and for how long.

The contract (defaults; each is an environment setting, checked when the server starts):

* `LWAS_MAX_BODY_BYTES` (1 MiB): a request body larger than this is refused with 413
  `body_too_large` on every route, signed webhooks included, before it is read: a declared
  `Content-Length` above the limit is refused without reading a byte of the body, and a chunked
  body is counted as it streams in and refused at the first chunk past the limit. The answer
  carries `Connection: close`, so the rest of the body is never read either.
* `LWAS_MAX_HEADER_BYTES` (64 KiB): a request line plus headers larger than this is refused with
  431 `headers_too_large` and the connection is closed. uvicorn's httptools protocol has no such
  limit (h11's `h11_max_incomplete_event_size` applies to the h11 protocol only), and httptools
  buffers a header value until it ends, so the bytes are counted as they arrive, here.
* `LWAS_HEADER_TIMEOUT` (10 s): from a connection's first byte (or its opening) to the end of a
  request's headers. A client that trickles its headers ("slowloris") gets 408 `request_timeout`
  and is disconnected. uvicorn has no such timeout (`timeout_keep_alive` only covers the idle time
  between requests, and is cancelled by the first byte of the next one).
* `LWAS_BODY_TIMEOUT` (30 s): from the end of the headers to the end of the body (408, closed).
* `LWAS_MAX_CONNECTIONS` (1000): open connections (or requests in flight) one server process
  holds; a request beyond gets 503 `overloaded` with `Retry-After`, in the JSON error shape
  (uvicorn's `limit_concurrency`, whose own answer is text/plain: replaced below).

The body limit and the JSON error answer for any unhandled exception live in `RequestGuard`, an
ASGI middleware (so they hold under any ASGI server, in-process tests included); the header limit
and both timeouts need the HTTP protocol itself: `GuardedHttpToolsProtocol`, a subclass of
uvicorn's httptools protocol that `lwasc serve` passes as uvicorn's `http` class.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Mapping

log = logging.getLogger("lwas.http")

MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = MIB
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Limits":
        """The limits from LWAS_MAX_BODY_BYTES, LWAS_MAX_HEADER_BYTES, LWAS_HEADER_TIMEOUT,
        LWAS_BODY_TIMEOUT and LWAS_MAX_CONNECTIONS; ValueError (naming the setting and the value)
        for anything that is not a finite positive number (bytes, connections: a whole number)."""
        d = cls()
        return cls(max_body_bytes=_count(env, "LWAS_MAX_BODY_BYTES", d.max_body_bytes),
                   max_header_bytes=_count(env, "LWAS_MAX_HEADER_BYTES", d.max_header_bytes, minimum=1024),
                   header_timeout_s=_seconds(env, "LWAS_HEADER_TIMEOUT", d.header_timeout_s),
                   body_timeout_s=_seconds(env, "LWAS_BODY_TIMEOUT", d.body_timeout_s),
                   max_connections=_count(env, "LWAS_MAX_CONNECTIONS", d.max_connections, unit="connections",
                                          most=1 << 20))


def _count(env: Mapping[str, str], name: str, default: int, minimum: int = 1, unit: str = "bytes",
           most: int = 1 << 40) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not minimum <= int(text) <= most:
        raise ValueError(f"{name} must be a whole number of {unit} from {minimum} to {most}, got {text!r}")
    return int(text)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and 0 < v <= 86400):
        raise ValueError(f"{name} must be a number of seconds above 0 and at most 86400, got {text!r}")
    return v


_current: Limits | None = None


def current() -> Limits:
    """The process's limits (from the environment on first use; `configure` sets them)."""
    global _current
    if _current is None:
        _current = Limits.from_env()
    return _current


def configure(limits: Limits) -> None:
    global _current
    _current = limits


def error_bytes(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


# ------------------------------------------------------------------------------ ASGI: the body

class BodyTooLarge(Exception):
    pass


class RequestGuard:
    """ASGI middleware: the body limit (413), and a JSON 500 `internal` for any exception the app
    lets through, logged with its traceback (Starlette's own answer is a text/plain 500)."""

    def __init__(self, app, max_body_bytes: int, error):
        self.app = app
        self.max = max_body_bytes
        self.error = error  # error(status, code, message, headers) -> a Starlette Response

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope["headers"]:
            if k == b"content-length" and v.isdigit() and int(v) > self.max:
                return await self._too_large(scope, receive, send)
        started = False
        seen = 0

        async def receive_():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max:
                    raise BodyTooLarge()
            return msg

        async def send_(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, receive_, send_)
        except BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send)
        except Exception as e:  # noqa: BLE001 - the last line of defence: answer JSON, log the cause
            from starlette.requests import ClientDisconnect

            if isinstance(e, ClientDisconnect):
                log.info("the client disconnected before sending its whole request")
                return
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                r = self.error(500, "internal", "internal error (logged with its traceback)", None)
                await r(scope, receive, send)

    async def _too_large(self, scope, receive, send):
        r = self.error(413, "body_too_large", f"the request body is larger than {self.max} bytes",
                       {"Connection": "close"})
        await r(scope, receive, send)


# ------------------------------------------------------------------------------ the HTTP protocol

def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = error_bytes(code, message)
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


async def overloaded(scope, receive, send) -> None:
    """What a request past LWAS_MAX_CONNECTIONS gets: 503 in the JSON error shape."""
    body = error_bytes("overloaded", "the server holds as many connections as it may; try again shortly")
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"retry-after", b"1"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


try:
    from uvicorn.protocols.http import httptools_impl
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HttpToolsProtocol = None
else:  # uvicorn answers limit_concurrency with this module-level app: ours speaks our error shape
    httptools_impl.service_unavailable = overloaded

if HttpToolsProtocol is not None:
    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with a header size limit and header and body read
        timeouts (the module docstring). Head bytes are counted in `data_received`, before the
        parser buffers them; a chunk that completes the headers is not counted against them."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.limits = current()
            self._in_head = True
            self._head_bytes = 0
            self._timer = None

        def _arm(self, seconds: float, callback) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, callback)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
            self._disarm()
            if self.transport.is_closing():
                return
            busy = self.cycle is not None and self.cycle.response_started
            if not busy:
                self.transport.write(_raw_response(status, reason, code, message))
            log.info("refused a request: %s", message)
            self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm(self.limits.header_timeout_s, self._head_timeout)

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._in_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > self.limits.max_header_bytes:
                self._refuse(431, "Request Header Fields Too Large", "headers_too_large",
                             f"the request line and headers are larger than {self.limits.max_header_bytes} bytes")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._timer is None:  # the first byte of a request on a kept-alive connection
                self._arm(self.limits.header_timeout_s, self._head_timeout)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._arm(self.limits.body_timeout_s, self._body_timeout)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_head, self._head_bytes = True, 0
            super().on_message_complete()

        def _head_timeout(self) -> None:
            self._timer = None
            if self._in_head and (self.cycle is None or self.cycle.response_complete):
                self._refuse(408, "Request Timeout", "request_timeout",
                             f"the request headers did not arrive within {self.limits.header_timeout_s:g} s")

        def _body_timeout(self) -> None:
            self._timer = None
            if not self._in_head:
                self._refuse(408, "Request Timeout", "request_timeout",
                             f"the request body did not arrive within {self.limits.body_timeout_s:g} s")

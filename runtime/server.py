"""The HTTP face of LwaS services: FastAPI routes generated from the artifact's service
descriptions, plus health, metrics and the ledger's audit endpoints.

Per generated route: request id → body size limit (lwas.runtime.limits, before anything is read)
→ auth (mutating routes always; read routes when configured) → per-credential rate limit → media
type (application/json, UTF-8) → body read raw and decoded by lwas.runtime.models.decode_json
(nesting bounded on the raw bytes, duplicate keys refused, numbers as Decimals: money never passes
through a binary float) → strict validation (lwas.runtime.models; ledger keys at most
MAX_KEY_BYTES) → the service (lwas.runtime.host: reads on a worker thread, writes through the
writer's group commit) → JSON.

Errors are JSON `{"error": {"code": ..., "message": ..., ...}}`: 400 malformed JSON, 401/403
auth, 404 unknown ledger key, 409 ledger key conflict, 413 body too large, 415 not JSON, 422
invalid body or refused guard, 429 rate limit (with Retry-After), 500 a runtime fault in the
handler (kind and source position; the service keeps serving) or `internal` (any other exception,
logged with its traceback), 503 store unavailable. Nothing is written in any of these cases.
FastAPI's and Starlette's own errors (a bad query on a ledger route, an unknown path) use the same
format. With read_requires_auth, the metrics and the OpenAPI document need a reader's credential.

The OpenAPI document, /docs and its assets: lwas.runtime.openapi.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.runtime import openapi
from lwas.runtime.auth import AuthError, RateLimiter, authenticate, authorize, retry_after
from lwas.runtime.host import MAX_KEY_BYTES, GuardRefused, Outcome, Unavailable, Unprocessable
from lwas.runtime.limits import Limits, RequestGuard, current
from lwas.runtime.models import BodyError, JsonRefused, decode_json, dumps, parse_body, parse_value, to_json
from lwas.runtime.webhooks import WebhookRejected, WebhookUnavailable, webhook_reader

log = logging.getLogger("lwas.http")


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: what log shippers expect; `extra` fields are kept."""

    FIELDS = ("request_id", "method", "path", "status", "ms", "principal")

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 6), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        for k in self.FIELDS:
            v = getattr(record, k, None)
            if v is not None:
                out[k] = v
        return json.dumps(out)


class ExactJSON(JSONResponse):
    """JSON with exact decimal numbers (flat money fields are Decimals)."""

    def render(self, content) -> bytes:
        return dumps(content)


def reply(desc, value, headers: dict | None = None, status_field: str | None = None) -> JSONResponse:
    """A handler's result as JSON, or a 500 if it cannot be rendered (a flat money field whose
    currency field disagrees: a bug in the handler, reported, not hidden). A response record's
    `http_status` field (status_field) is the HTTP status, not part of the body."""
    try:
        out = to_json(desc, value)
        status = 200
        if status_field is not None:
            status = out.pop(status_field)
            if not 200 <= status <= 599:
                raise ValueError(f"`{status_field}` is {status}, not an HTTP status (200..599)")
        return ExactJSON(out, status, headers=headers)
    except ValueError as e:
        log.error("cannot render a response: %s", e)
        return error(500, "bad_response", f"the handler's response cannot be rendered: {e}")


def error(status: int, code: str, message: str, headers: dict | None = None, **more) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **more}}, status, headers=headers)


def _refused(g: GuardRefused) -> JSONResponse:
    return error(422, "guard_refused", str(g), rule=g.rule, truth=g.truth, threshold=g.threshold)


def _fault(e: LwasRuntimeError) -> JSONResponse:
    p = e.position
    pos = {"file": p.file, "line": p.line, "col": p.col} if p is not None else None
    if e.kind == "conflict":
        return error(409, "conflict", e.message, kind=e.kind, position=pos)
    return error(500, "runtime_error", e.message, kind=e.kind, position=pos)


class _Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("lwas_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("lwas_http_request_seconds", "HTTP request latency by route",
                                 ["method", "route"], registry=r,
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.faults = Counter("lwas_native_faults", "Runtime faults in native handlers by kind",
                              ["kind"], registry=r)
        self.entries = Gauge("lwas_ledger_entries", "Entries in each ledger", ["ledger"], registry=r)


class _Observe:
    """Pure ASGI middleware: request id, JSON access log, per-route metrics (no BaseHTTPMiddleware:
    it costs a task and a stream per request)."""

    def __init__(self, app, metrics: _Metrics, reporter=None, routes: frozenset = frozenset()):
        self.app = app
        self.m = metrics
        self.reporter = reporter  # lwas.runtime.report: service routes' outcomes for telemetry
        self.routes = routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        rid = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                rid = v.decode("latin-1")[:128]
                break
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = [500]

        async def send_(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
                msg.setdefault("headers", []).append((b"x-request-id", rid.encode("latin-1")))
            await send(msg)

        try:
            await self.app(scope, receive, send_)
        finally:
            dt = time.perf_counter() - t0
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "(unmatched)"
            method = scope["method"]
            self.m.requests.labels(method, template, str(status[0])).inc()
            if self.reporter is not None and (method, template) in self.routes:
                self.reporter.count(status[0])
            self.m.latency.labels(method, template).observe(dt)
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"request_id": rid, "method": method, "path": scope["path"],
                                           "status": status[0], "ms": round(dt * 1000, 3)})


def create_app(services: list, *, credentials, public_key_pem: bytes, limiter: RateLimiter | None = None,
               ready=lambda: True, title: str = "LwaS services", reporter=None,
               limits: Limits | None = None) -> FastAPI:
    """The ASGI app for started `host.Service`s (the caller starts and stops them). `limits`:
    lwas.runtime.limits (default: the process's, from the environment)."""
    limits = limits or current()
    metrics = _Metrics()
    # FastAPI's own /docs, /redoc and /openapi.json load their assets from CDNs and describe the
    # routes inaccurately: lwas.runtime.openapi replaces them (see openapi.install below)
    app = FastAPI(title=title, version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    limiter = limiter or RateLimiter(rate_per_s=2000.0, burst=4000.0)
    ledgers = {}
    for svc in services:
        for ledger in svc.ledgers:
            if ledger.name in ledgers:
                raise ValueError(f"two services declare a ledger named {ledger.name!r}")
            ledgers[ledger.name] = (svc, ledger)
    who = _who(credentials)
    seen_routes = {}
    for svc in services:
        for route in svc.desc["routes"]:
            k = (route["method"], route["path"])
            if k in seen_routes:
                raise ValueError(f"route {route['method']} {route['path']} is declared by services "
                                 f"{seen_routes[k]} and {svc.name}")
            seen_routes[k] = svc.name
            _add_route(app, svc, route, who, credentials, limiter, metrics)

    async def read_guard(request: Request):
        if credentials.read_requires_auth:
            return (await who(request, "reader"))[1]
        return None

    @app.get("/healthz", tags=["operations"])
    async def healthz():
        return {"status": "alive"}

    @app.get("/readyz", tags=["operations"])
    async def readyz():
        ok = await run_in_threadpool(ready)
        if not ok:
            return error(503, "not_ready", "the ledger store is not reachable")
        return {"status": "ready", "services": [s.name for s in services]}

    async def prometheus():
        for name, (svc, ledger) in ledgers.items():
            metrics.entries.labels(name).set(ledger.size)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def guarded_prometheus(request: Request):
        if (bad := await read_guard(request)) is not None:
            return bad
        return await prometheus()

    app.get("/_lwas/metrics", tags=["operations"])(guarded_prometheus)
    if ("GET", "/metrics") not in seen_routes:  # else the service's own GET /metrics has the path
        app.get("/metrics", tags=["operations"])(guarded_prometheus)

    @app.get("/ledger", tags=["ledger"])
    async def ledger_names(request: Request):
        if (bad := await read_guard(request)) is not None:
            return bad
        return {"ledgers": sorted(ledgers)}

    @app.get("/ledger/key", tags=["ledger"])
    async def ledger_key():
        return PlainTextResponse(public_key_pem.decode(), media_type="application/x-pem-file")

    async def find(request: Request, name: str):
        """((service, ledger), None), or (None, the error response)."""
        if (bad := await read_guard(request)) is not None:
            return None, bad
        hit = ledgers.get(name)
        if hit is None:
            return None, error(404, "unknown_ledger", f"no ledger named {name!r}", ledgers=sorted(ledgers))
        return hit, None

    @app.get("/ledger/{name}/checkpoint", tags=["ledger"])
    async def checkpoint(name: str, request: Request):
        hit, bad = await find(request, name)
        if bad:
            return bad
        svc, ledger = hit
        with svc.lock:
            return ledger.checkpoint()

    @app.get("/ledger/{name}/proof/{key:path}", tags=["ledger"])  # any stored key: empty, with `/`
    async def proof(name: str, key: str, request: Request):
        hit, bad = await find(request, name)
        if bad:
            return bad
        svc, ledger = hit
        with svc.lock:  # the tree and its checkpoint at one size; the entry is read after
            p = ledger.proof(key, with_entry=False)
        if p is None:
            return error(404, "unknown_key", f"ledger {name!r} has no entry with key {key!r}")
        entry = base64.b64encode(await run_in_threadpool(ledger.entry, p["leaf_index"])).decode()
        return {"leaf_index": p["leaf_index"], "tree_size": p["tree_size"], "leaf_hash": p["leaf_hash"],
                "entry": entry, "audit_path": p["audit_path"], "checkpoint": p["checkpoint"]}

    @app.get("/ledger/{name}/consistency", tags=["ledger"])
    async def consistency(name: str, first: int, second: int, request: Request):
        hit, bad = await find(request, name)
        if bad:
            return bad
        svc, ledger = hit
        try:
            with svc.lock:
                return ledger.consistency(first, second)
        except ValueError as e:
            return error(422, "bad_range", str(e))

    openapi.install(app, services, credentials.read_requires_auth, guard=read_guard)
    # innermost first: the guard's 413 and JSON 500 are counted and logged by _Observe
    app.add_middleware(RequestGuard, max_body_bytes=limits.max_body_bytes, error=error)
    app.add_middleware(_Observe, metrics=metrics, reporter=reporter, routes=frozenset(seen_routes))
    return app


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own parameter validation (the ledger routes' query) in the runtime's format."""
    details = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
               for e in exc.errors()]
    return error(422, "invalid_request", "the request does not match the route's types", details=details)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's errors (an unknown path, a method the path does not take) in the runtime's format."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error(exc.status_code, code, str(exc.detail), exc.headers)


def _who(credentials):
    """`await who(request, role)`: (the principal, None), or (None, the 401/403 response)."""

    async def who(request: Request, role: str):
        try:
            p = authenticate(credentials, request.headers.get("authorization"))
            authorize(p, role)
            return p, None
        except AuthError as e:
            headers = {"WWW-Authenticate": e.www_authenticate()} if e.status == 401 else None
            return None, error(e.status, e.code, e.message, headers)

    return who


def _add_route(app: FastAPI, svc, route: dict, who, credentials, limiter: RateLimiter, metrics: _Metrics) -> None:
    body = route["body"]
    path_params = route["path_params"]
    query = route.get("query") or []  # [name, TypeDesc, default value form or None]
    order = route.get("params") or [n for n, _ in path_params] + ([body[0]] if body else [])
    response_desc = route["response"]
    mutating = route["mutating"]
    status_field = route.get("status_field")
    signed = route.get("signed")
    run = svc.run_external if route.get("external") else None
    webhook = webhook_reader(signed, body[1]) if signed else None
    key_fields = _ledger_key_fields(svc, body[1]) if body is not None else ()

    async def endpoint(request: Request):
        principal = None
        if signed:  # a webhook: its signature is its credential
            raw = await request.body()
            try:
                event = webhook(raw, request.headers)
            except WebhookRejected as e:
                return error(400, "bad_webhook", e.reason)
            except WebhookUnavailable as e:
                return error(503, "webhooks_unavailable", str(e))
            return await finish(request, [event])
        if mutating or credentials.read_requires_auth:
            principal, bad = await who(request, "writer" if mutating else "reader")
            if bad is not None:
                return bad
            wait = limiter.take(f"{principal.kind}:{principal.id}")
            if wait > 0:
                return error(429, "rate_limited", "too many requests for this credential",
                             {"Retry-After": str(retry_after(wait))})
        values = {}
        problems = []
        for name, desc in path_params:
            try:
                values[name] = parse_value(desc, request.path_params[name], text=True)
            except BodyError as e:
                problems.extend({**p, "loc": ["path", name] + list(p["loc"])} for p in e.errors)
        for name, desc, default in query:
            raw = request.query_params.get(name)
            if raw is None and default is None:
                problems.append({"loc": ["query", name], "msg": "a required query parameter is missing",
                                 "type": "missing"})
                continue
            try:
                values[name] = parse_value(desc, raw, text=True) if raw is not None else default
            except BodyError as e:
                problems.extend({**p, "loc": ["query", name] + list(p["loc"])} for p in e.errors)
        if body is not None:
            if (bad := _media_type_refused(request.headers.get("content-type"))) is not None:
                return bad
            raw = await request.body()
            try:
                obj = decode_json(raw) if raw else _MISSING
            except JsonRefused as e:
                return error(400, "malformed_json", str(e))
            if obj is _MISSING:
                problems.append({"loc": ["body"], "msg": "a JSON request body is required", "type": "missing"})
            else:
                try:
                    values[body[0]] = parse_body(body[1], obj)
                except BodyError as e:
                    problems.extend({**p, "loc": ["body"] + list(p["loc"])} for p in e.errors)
                else:
                    problems.extend(_long_keys(values[body[0]], key_fields))
        if problems:
            return error(422, "invalid_request", "the request does not match the route's types",
                         details=problems)
        return await finish(request, [values[n] for n in order])

    async def finish(request: Request, args: list):
        if run is not None:
            key = request.headers.get("idempotency-key")
            result = await run_in_threadpool(_outcome, run, route, tuple(args),
                                             {"idempotency_key": key[:255]} if key else None)
        elif not mutating:
            try:
                value = await run_in_threadpool(svc.read, route, tuple(args))
            except LwasRuntimeError as e:
                metrics.faults.labels(e.kind).inc()
                return _fault(e)
            except GuardRefused as e:
                return _refused(e)
            return reply(response_desc, value, status_field=status_field)
        else:
            result = await _submit(svc, route, tuple(args))
        if isinstance(result, Outcome):
            return reply(response_desc, result.response, {"LwaS-Ledger": result.ledger}, status_field)
        if isinstance(result, GuardRefused):
            return _refused(result)
        if isinstance(result, LwasRuntimeError):
            metrics.faults.labels(result.kind).inc()
            return _fault(result)
        if isinstance(result, Unavailable):
            return error(503, "unavailable", str(result), {"Retry-After": "1"})
        if isinstance(result, Unprocessable):
            return error(result.status, result.code, str(result))
        log.error("unexpected result from the writer: %r", result)
        return error(500, "internal", "internal error")

    endpoint.__name__ = route["handler"].replace("$", "_")
    # described by lwas.runtime.openapi from the same descriptor (FastAPI's generator cannot)
    app.add_api_route(route["path"], endpoint, methods=[route["method"]], include_in_schema=False)


_MISSING = object()


def _media_type_refused(content_type: str | None) -> JSONResponse | None:
    """None when a body may be read as JSON: no Content-Type, or application/json (any `+json`
    type too) without a charset or with charset=utf-8; else the 415 answer."""
    if content_type is None:
        return None
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    charset = None
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset":
            charset = v.strip().strip('"').lower()
    if (media == "application/json" or (media.startswith("application/") and media.endswith("+json"))) \
            and charset in (None, "utf-8", "utf8"):
        return None
    return error(415, "unsupported_media_type",
                 f"the body must be application/json in UTF-8, not {content_type[:100]!r}")


def _ledger_key_fields(svc, body_desc: dict) -> tuple[str, ...]:
    """The `text` fields of a body record that key a ledger of the same record (`ledger NAME:
    Record by field`): those are bounded to MAX_KEY_BYTES here, with a 422 naming the field."""
    out = []
    for ledger in svc.desc.get("ledgers", ()):
        entry = ledger.get("entry")
        if isinstance(entry, dict) and entry.get("record") == body_desc.get("record"):
            types = dict((n, t) for n, t in body_desc["fields"])
            if types.get(ledger.get("key")) == "text":
                out.append(ledger["key"])
    return tuple(dict.fromkeys(out))


def _long_keys(value: dict, fields: tuple[str, ...]) -> list[dict]:
    return [{"loc": ["body", f], "msg": f"a ledger key is at most {MAX_KEY_BYTES} bytes of UTF-8",
             "type": "key_too_long"}
            for f in fields if len(value[f].encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES]


def _outcome(run, route: dict, args: tuple, request: dict | None):
    """run(route, args)'s Outcome, or the exception it raised (as the writer hands them back)."""
    try:
        return run(route, args, request)
    except (GuardRefused, LwasRuntimeError, Unavailable, Unprocessable) as e:
        return e


async def _submit(svc, route: dict, args: tuple):
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def done(result):
        loop.call_soon_threadsafe(_resolve, fut, result)

    svc.submit(route, args, done)
    return await fut


def _resolve(fut: asyncio.Future, result) -> None:
    if not fut.done():
        fut.set_result(result)

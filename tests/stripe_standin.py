"""A STAND-IN for Stripe's HTTP API, for tests only: Stripe (and stripe-mock) cannot be reached here.

It is a real HTTP server on 127.0.0.1 that speaks just enough of Stripe's v1 wire format for the
official SDK to talk to it unchanged (`StripeClient(key, base_addresses={"api": s.url})`):
form-encoded `POST /v1/payment_intents`, `GET /v1/payment_intents/{id}`, Bearer `sk_test_` keys,
Stripe's error JSON, and Idempotency-Key semantics (same key + same params replays the stored
response with `Idempotent-Replayed: true`; same key + other params is a 400 idempotency_error).
`fail_next` queues canned failures; `requests` records everything received.

The webhook helpers (`sign`, `event`, `payment_intent_obj`, `charge_obj`) build what Stripe would
POST to us: Stripe's documented `Stripe-Signature` scheme, computed here with hmac, not the SDK,
so the code under test is checked against the spec rather than against itself.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2026-10-28.endive"  # what stripe-python 16.1.0 pins
_ALNUM = string.ascii_letters + string.digits


def stripe_id(prefix: str, n: int = 24) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALNUM) for _ in range(n))


def stripe_error(type_: str, message: str, code: str | None = None, param: str | None = None) -> dict:
    """Stripe's error body: `{"error": {"type", "message", "code"?, "param"?}}`."""
    err: dict[str, Any] = {"type": type_, "message": message}
    if code:
        err["code"] = code
    if param:
        err["param"] = param
    return {"error": err}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names as sent; look up with .get("Idempotency-Key")
    params: dict[str, str]  # form fields, Stripe's bracket names flattened: automatic_payment_methods[enabled]


@dataclass
class _Fault:
    status: int
    body: dict
    headers: dict[str, str]
    times: int
    delay: float


@dataclass
class StripeStandIn:
    api_key: str | None = None  # when set, only this key is accepted; otherwise any sk_test_ key
    requests: list[Seen] = field(default_factory=list)
    intents: dict[str, dict] = field(default_factory=dict)
    url: str = ""

    def __post_init__(self):
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._idem: dict[str, tuple[tuple, int, bytes]] = {}  # key -> (request fingerprint, status, body)
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> "StripeStandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait out a delayed ACK (~40 ms)

            def do_GET(self):
                standin._handle(self)

            def do_POST(self):
                standin._handle(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------ test controls

    def fail_next(self, status: int, body_json: dict, headers: dict[str, str] | None = None, times: int = 1,
                  delay: float = 0.0):
        """Answer the next `times` requests with this canned response (before auth or idempotency),
        after `delay` seconds (to exercise client timeouts)."""
        with self._lock:
            self._faults.append(_Fault(status, body_json, dict(headers or {}), times, delay))

    def idempotency_keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]

    # ------------------------------------------------------------ the API

    def _handle(self, h: BaseHTTPRequestHandler):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n else b""
        params = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        path = h.path.split("?", 1)[0]
        headers = {k: v for k, v in h.headers.items()}
        with self._lock:
            self.requests.append(Seen(h.command, path, headers, params))
            fault = self._faults[0] if self._faults else None
            if fault is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(0)
            else:
                status, body, extra = self._route(h.command, path, headers, params)
        if fault is not None:
            time.sleep(fault.delay)
            return self._send(h, fault.status, json.dumps(fault.body).encode(), fault.headers)
        self._send(h, status, body, extra)

    def _route(self, method: str, path: str, headers: dict, params: dict) -> tuple[int, bytes, dict]:
        auth = headers.get("Authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not key.startswith("sk_test_") or (self.api_key is not None and key != self.api_key):
            shown = f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"  # Stripe shows the tail only
            return _json(401, stripe_error("invalid_request_error", f"Invalid API Key provided: {shown}"))
        if method == "POST" and path == "/v1/payment_intents":
            return self._create_intent(headers.get("Idempotency-Key"), params)
        m = re.fullmatch(r"/v1/payment_intents/([A-Za-z0-9_]+)", path)
        if method == "GET" and m:
            pi = self.intents.get(m.group(1))
            if pi is None:
                return _json(404, stripe_error("invalid_request_error", f"No such payment_intent: '{m.group(1)}'",
                                               "resource_missing", "id"))
            return _json(200, pi)
        return _json(404, stripe_error("invalid_request_error",
                                       f"Unrecognized request URL ({method}: {path}).", "url_invalid"))

    def _create_intent(self, idem_key: str | None, params: dict) -> tuple[int, bytes, dict]:
        fingerprint = ("POST", "/v1/payment_intents", tuple(sorted(params.items())))
        if idem_key and idem_key in self._idem:
            seen, status, body = self._idem[idem_key]
            if seen != fingerprint:
                return _json(400, stripe_error(
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{idem_key}' if you meant to execute a different "
                    "request."), {"Idempotency-Key": idem_key})
            return status, body, {"Idempotency-Key": idem_key, "Idempotent-Replayed": "true"}
        amount, currency = params.get("amount", ""), params.get("currency", "")
        if not amount.isdigit() or int(amount) <= 0:
            return _json(400, stripe_error("invalid_request_error", "Invalid positive integer",
                                           "parameter_invalid_integer", "amount"))
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            return _json(400, stripe_error("invalid_request_error", f"Invalid currency: {currency}.",
                                           "parameter_invalid_string", "currency"))
        pid = stripe_id("pi")
        pi = {
            "id": pid, "object": "payment_intent", "amount": int(amount), "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": ({"allow_redirects": "always", "enabled": True}
                                          if params.get("automatic_payment_methods[enabled]") == "true" else None),
            "capture_method": "automatic_async", "client_secret": f"{pid}_secret_{stripe_id('x', 25)[2:]}",
            "confirmation_method": "automatic", "created": int(time.time()), "currency": currency.lower(),
            "description": params.get("description"), "latest_charge": None, "livemode": False,
            "metadata": {}, "payment_method": None, "payment_method_types": ["card"],
            "status": "requires_payment_method",
        }
        self.intents[pid] = pi
        status, body, extra = _json(200, pi)
        if idem_key:  # Stripe saves the result once the endpoint has started executing
            self._idem[idem_key] = (fingerprint, status, body)
            extra["Idempotency-Key"] = idem_key
        return status, body, extra

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]):
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Request-Id", stripe_id("req", 14))
        h.send_header("Stripe-Version", API_VERSION)
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)


def _json(status: int, obj: dict, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    return status, json.dumps(obj, indent=2).encode(), dict(headers or {})


# ---------------------------------------------------------------- "Stripe sends a webhook"

def sign(payload: bytes, secret: str, t: int) -> str:
    """The `Stripe-Signature` header: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<raw body>"))."""
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(type: str, obj: dict, id: str | None = None, created: int | None = None) -> bytes:
    """A webhook body as Stripe sends it (pretty-printed, which is why only the raw bytes verify)."""
    return json.dumps({
        "id": id or stripe_id("evt"), "object": "event", "api_version": API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": stripe_id("req", 14), "idempotency_key": None}, "type": type,
    }, indent=2).encode()


def payment_intent_obj(id: str, amount: int, currency: str) -> dict:
    """A PaymentIntent that has been paid in full."""
    return {"id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_received": amount, "currency": currency.lower(), "latest_charge": stripe_id("ch"),
            "livemode": False, "metadata": {}, "status": "succeeded", "created": int(time.time())}


def charge_obj(id: str, payment_intent: str, amount: int, amount_refunded: int, currency: str) -> dict:
    return {"id": id, "object": "charge", "amount": amount, "amount_captured": amount,
            "amount_refunded": amount_refunded, "captured": True, "currency": currency.lower(),
            "livemode": False, "paid": True, "payment_intent": payment_intent,
            "refunded": amount_refunded >= amount, "status": "succeeded", "created": int(time.time())}

"""Connectors: the Python functions that LwaS `extern fn` declarations bind to.

A connector takes plain Python values (Money, str, int, bool, dict) and returns a flat dict that the
runtime encodes as an LwaS record. Remote failures are data, not exceptions: an LwaS program cannot
catch a Python exception, so every outcome it must handle (declined card, provider down) comes back
as fields it can branch on. Secret keys are never logged, returned or quoted in an error text.

`verify_stripe_event` is the inbound side: it authenticates a Stripe webhook on its raw bytes and
flattens the event into the few fields a handler needs.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from lwas.runtime.values import Money

STRIPE_TIMEOUT_S = 10.0  # the SDK's default is 80 s: far longer than a caller will wait
STRIPE_DEFAULT_RETRIES = 2
POST_JSON_TIMEOUT_S = 5.0
NO_CURRENCY = "XXX"  # ISO 4217 "no currency": an event amount without a currency means nothing
# Bounds of a Stripe event's fields, far beyond what Stripe sends (amounts have at most 8 digits
# for most currencies; `created` is a Unix time) and small enough that a handler's sums and the
# time arithmetic cannot overflow 64 bits: anything outside is refused (400), never a 500.
MAX_EVENT_AMOUNT = 10 ** 15 - 1
MAX_EVENT_CREATED = 253402300799  # 9999-12-31T23:59:59Z

_CURRENCY = re.compile(r"[A-Za-z]{3}")


@dataclass(frozen=True)
class Connector:
    name: str  # the binding named by `extern fn ... = "name"`
    params: tuple[str, ...]  # kinds of the LwaS arguments, in order: text, int, bool, money, record
    returns: dict[str, str]  # the record it returns: field name -> kind (bool, text, int, money)
    call: Callable[..., dict]  # call(*args) -> exactly the `returns` fields; never raises for remote failures


class WebhookRejected(Exception):
    """A webhook we must not act on; `reason` is safe to send back to the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _once(build: Callable[[], Any]) -> Callable[[], Any]:
    """`build()` at most once, on first use, even when several threads ask at the same time."""
    lock = threading.Lock()
    box: list[Any] = []

    def get() -> Any:
        if not box:
            with lock:
                if not box:
                    box.append(build())
        return box[0]

    return get


def _redact(text: str, *secrets: str) -> str:
    """`text` with every secret cut out: provider messages may quote what we sent."""
    for s in secrets:
        if s:
            text = text.replace(s, "[redacted]")
    return text


# ---------------------------------------------------------------- stripe.create_payment_intent

STRIPE_INTENT_RETURNS = {"ok": "bool", "id": "text", "client_secret": "text", "status": "text",
                         "error": "text", "error_type": "text", "http_status": "int", "created": "int"}


def _intent_result(http_status: int, error: str = "", error_type: str = "", intent: Any = None) -> dict:
    if intent is None:
        return {"ok": False, "id": "", "client_secret": "", "status": "", "error": error,
                "error_type": error_type, "http_status": http_status, "created": 0}
    created = getattr(intent, "created", None)
    return {"ok": True, "id": str(intent.id), "client_secret": str(intent.client_secret or ""),
            "status": str(intent.status or ""), "error": "", "error_type": "", "http_status": 200,
            "created": created if isinstance(created, int) and not isinstance(created, bool) else 0}


def _stripe_client(api_key: str, base: str, retries: int):
    """One SDK client per connectors() call. RequestsClient keeps a session per thread, so sharing
    the client between threads is safe; the timeout bounds each attempt, not the retries."""
    import stripe

    # The SDK logs whole response bodies at DEBUG (an error body may quote a key): never ours.
    logging.getLogger("stripe").setLevel(logging.WARNING)
    kwargs: dict[str, Any] = {"max_network_retries": retries,
                              "http_client": stripe.RequestsClient(timeout=STRIPE_TIMEOUT_S)}
    if base:
        kwargs["base_addresses"] = {"api": base}
    return stripe.StripeClient(api_key, **kwargs)


def _stripe_failure(e: Exception, api_key: str) -> dict:
    """The record for a StripeError; the SDK has already retried whatever was safe to retry."""
    import stripe

    msg = _redact(str(getattr(e, "user_message", None) or "").strip(), api_key)
    code = str(getattr(e, "code", None) or "")
    if isinstance(e, stripe.CardError):
        return _intent_result(402, msg or "the card was declined", code or "card_error")
    if isinstance(e, stripe.IdempotencyError):
        return _intent_result(400, msg or "idempotency key reused with different parameters",
                              "idempotency_error")
    if isinstance(e, stripe.InvalidRequestError):
        return _intent_result(400, msg or "the payment provider rejected the request",
                              code or "invalid_request_error")
    if isinstance(e, (stripe.AuthenticationError, stripe.PermissionError)):
        return _intent_result(502, "the payment provider refused our credentials (check STRIPE_SECRET_KEY)",
                              "authentication_error")
    if isinstance(e, stripe.RateLimitError):
        return _intent_result(503, "the payment provider is rate limiting us; try again later",
                              "rate_limit_error")
    if isinstance(e, stripe.APIConnectionError):
        return _intent_result(502, "the payment provider could not be reached", "api_connection_error")
    status = getattr(e, "http_status", None)
    where = f" (HTTP {status})" if status else ""
    return _intent_result(502, f"the payment provider failed{where}", "api_error")


def _create_payment_intent_fn(env: Mapping[str, str]) -> Callable[[Money, str, str], dict]:
    api_key = env.get("STRIPE_SECRET_KEY", "")
    base = env.get("STRIPE_API_BASE", "")
    retries_text = env.get("STRIPE_MAX_NETWORK_RETRIES", str(STRIPE_DEFAULT_RETRIES)).strip()
    retries = int(retries_text) if retries_text.isdigit() else -1
    client = _once(lambda: _stripe_client(api_key, base, retries))

    def create_payment_intent(amount: Money, idempotency_key: str, description: str) -> dict:
        """Create a PaymentIntent; the idempotency key makes a repeated call return the same one."""
        import stripe

        if not api_key:
            return _intent_result(503, "payments are not configured: STRIPE_SECRET_KEY is not set",
                                  "not_configured")
        if retries < 0:
            return _intent_result(503, "payments are misconfigured: STRIPE_MAX_NETWORK_RETRIES must be "
                                  "a non-negative integer", "not_configured")
        if not idempotency_key:
            # without one the SDK invents a key per call: a retried LwaS call would charge twice
            return _intent_result(400, "an idempotency key is required", "invalid_request_error")
        if amount.minor <= 0 or not _CURRENCY.fullmatch(amount.currency):
            return _intent_result(400, f"the amount must be positive, got {amount}", "invalid_request_error")
        params = {"amount": amount.minor, "currency": amount.currency.lower(),
                  "description": description, "automatic_payment_methods": {"enabled": True}}
        try:
            intent = client().v1.payment_intents.create(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as e:
            return _stripe_failure(e, api_key)
        return _intent_result(200, intent=intent)

    return create_payment_intent


# ---------------------------------------------------------------- http.post_json

POST_JSON_RETURNS = {"ok": "bool", "status": "int", "retry": "bool", "error": "text"}


def _post_json_fn() -> Callable[[str, str, dict], dict]:
    import httpx

    client = _once(lambda: httpx.Client(timeout=POST_JSON_TIMEOUT_S))

    def post_json(url: str, api_key: str, body: dict) -> dict:
        """POST `body` as JSON; `retry` says whether the same request may succeed later."""
        from lwas.runtime.models import dumps

        try:
            data = dumps(body)
        except (TypeError, ValueError) as e:
            return {"ok": False, "status": 0, "retry": False, "error": f"body is not JSON: {e}"}
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            r = client().post(url, content=data, headers=headers)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
            return {"ok": False, "status": 0, "retry": False, "error": _redact(f"invalid url: {e}", api_key)}
        except httpx.TimeoutException:
            return {"ok": False, "status": 0, "retry": True,
                    "error": f"connection failed: no answer within {POST_JSON_TIMEOUT_S:g} s"}
        except httpx.HTTPError as e:
            return {"ok": False, "status": 0, "retry": True,
                    "error": _redact(f"connection failed: {e or type(e).__name__}", api_key)}
        if 200 <= r.status_code < 300:
            return {"ok": True, "status": r.status_code, "retry": False, "error": ""}
        retry = r.status_code in (408, 429) or r.status_code >= 500
        text = r.content[:200].decode("utf-8", "replace")
        return {"ok": False, "status": r.status_code, "retry": retry,
                "error": _redact(f"HTTP {r.status_code}: {text}", api_key)}

    return post_json


# ---------------------------------------------------------------- registry

def connectors(env: Mapping[str, str] = os.environ) -> dict[str, Connector]:
    """Every connector, configured from `env` now; network clients are built on first use."""
    return {
        "stripe.create_payment_intent": Connector(
            "stripe.create_payment_intent", ("money", "text", "text"), dict(STRIPE_INTENT_RETURNS),
            _create_payment_intent_fn(env)),
        "http.post_json": Connector(
            "http.post_json", ("text", "text", "record"), dict(POST_JSON_RETURNS), _post_json_fn()),
    }


# ---------------------------------------------------------------- Stripe webhooks

def _signature_timestamp(header: str) -> int:
    """The `t=` of a Stripe-Signature header (`t=...,v1=...,v0=...`)."""
    stamps = [v for k, _, v in (part.strip().partition("=") for part in header.split(",")) if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise WebhookRejected("malformed Stripe-Signature header")
    return int(stamps[0])


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def verify_stripe_event(raw: bytes, signature_header: str | None, secret: str, tolerance: int = 300,
                        now: float | None = None) -> dict:
    """Authenticate a Stripe webhook and flatten it. Verify the RAW body: re-serialised JSON no
    longer matches the signature. The SDK accepts timestamps from the future; a replay window must
    be bounded on both sides, so those are refused here too. Callers still dedupe on `id`: Stripe
    redelivers for days, in any order."""
    import stripe

    if not signature_header:
        raise WebhookRejected("missing Stripe-Signature header")
    if not secret:
        raise WebhookRejected("webhook secret is not configured")
    t = _signature_timestamp(signature_header)
    try:
        # tolerance=None: the SDK would read the wall clock; the age is checked below against `now`
        stripe.WebhookSignature.verify_header(raw, signature_header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        raise WebhookRejected("signature does not match the payload") from None
    except UnicodeDecodeError:
        raise WebhookRejected("body is not UTF-8") from None
    clock = time.time() if now is None else now
    if t < clock - tolerance:
        raise WebhookRejected(f"timestamp too old (more than {tolerance} s ago)")
    if t > clock + tolerance:
        raise WebhookRejected(f"timestamp in the future (more than {tolerance} s ahead)")
    try:
        ev = json.loads(raw)
    except (ValueError, RecursionError):
        raise WebhookRejected("body is not valid JSON") from None
    if not isinstance(ev, dict) or not isinstance(ev.get("id"), str) or not ev["id"] \
            or not isinstance(ev.get("type"), str) or not ev["type"]:
        raise WebhookRejected("event has no id or type")
    data = ev.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise WebhookRejected("event has no data.object")
    return _normalize(ev, obj)


def _normalize(ev: dict, obj: dict) -> dict:
    kind = obj.get("object")
    if kind == "payment_intent":
        pi: Any = obj.get("id")
        received = obj.get("amount_received")
        amount = received if _is_int(received) and received > 0 else obj.get("amount", 0)
    else:
        pi = obj.get("payment_intent") if kind == "charge" else ""
        if isinstance(pi, dict):  # an expanded field is the object itself
            pi = pi.get("id")
        field = "amount_refunded" if ev["type"] == "charge.refunded" else "amount"
        amount = obj.get(field, 0)
    amount = 0 if amount is None else amount
    if not _is_int(amount):
        raise WebhookRejected("event amount is not an integer")
    if not 0 <= amount <= MAX_EVENT_AMOUNT:
        raise WebhookRejected(f"event amount is not between 0 and {MAX_EVENT_AMOUNT} minor units")
    currency = obj.get("currency") or ""
    if currency and not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        raise WebhookRejected("event currency is not an ISO 4217 code")
    currency = currency.upper()
    created = ev.get("created")
    created = created if _is_int(created) else 0
    if not 0 <= created <= MAX_EVENT_CREATED:
        raise WebhookRejected("event `created` is not a time between 1970 and 9999")
    return {
        "id": ev["id"],
        "type": ev["type"],
        "created": created,
        "object_id": str(obj.get("id") or ""),
        "payment_intent": str(pi or ""),
        "amount": Money(amount, currency) if currency else Money(0, NO_CURRENCY),
        "currency": currency,
        "livemode": ev.get("livemode") is True,
    }

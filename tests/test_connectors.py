"""Connectors against real HTTP on loopback: the official Stripe SDK talking to a Stripe stand-in
(tests/stripe_standin.py), `http.post_json` against a tiny local server, and webhook verification
against signatures computed from Stripe's documented scheme."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import lwas.runtime.connectors as conn
from lwas.runtime.connectors import WebhookRejected, connectors, verify_stripe_event
from lwas.runtime.values import Money
from serving import free_port as closed_port  # bound once and released: nothing listens there
from stripe_standin import (StripeStandIn, charge_obj, event, payment_intent_obj, sign,
                                  stripe_error)

KEY = "sk_test_51AbCdEfGhIjKlMnOpQrStUvWx"
WHSEC = "whsec_test_0123456789abcdef"


@pytest.fixture
def stripe_api():
    with StripeStandIn(api_key=KEY) as s:
        yield s


def create_intent(env: dict):
    return connectors(env)["stripe.create_payment_intent"].call


def env_for(s: StripeStandIn, **extra) -> dict:
    return {"STRIPE_SECRET_KEY": KEY, "STRIPE_API_BASE": s.url, **extra}


def no_secret(result: dict):
    assert KEY not in json.dumps(result)


# ---------------------------------------------------------------- stripe.create_payment_intent

def test_registry_declares_kinds():
    c = connectors({})
    pi = c["stripe.create_payment_intent"]
    assert pi.params == ("money", "text", "text")
    assert pi.returns == {"ok": "bool", "id": "text", "client_secret": "text", "status": "text",
                          "error": "text", "error_type": "text", "http_status": "int", "created": "int"}
    pj = c["http.post_json"]
    assert pj.params == ("text", "text", "record")
    assert pj.returns == {"ok": "bool", "status": "int", "retry": "bool", "error": "text"}


def test_create_intent_success(stripe_api):
    r = create_intent(env_for(stripe_api))(Money(1250, "USD"), "order-1", "Order #1")
    assert r["ok"] is True and r["http_status"] == 200
    assert r["id"].startswith("pi_") and r["client_secret"].startswith(r["id"] + "_secret_")
    assert r["status"] == "requires_payment_method" and r["error"] == "" and r["error_type"] == ""
    assert r["created"] == stripe_api.intents[r["id"]]["created"] > 0
    assert set(r) == set(connectors({})["stripe.create_payment_intent"].returns)
    [seen] = stripe_api.requests
    assert (seen.method, seen.path) == ("POST", "/v1/payment_intents")
    assert seen.params["amount"] == "1250"  # integer minor units, not "12.50"
    assert seen.params["currency"] == "usd"
    assert seen.params["description"] == "Order #1"
    assert seen.params["automatic_payment_methods[enabled]"] == "true"
    assert seen.headers["Idempotency-Key"] == "order-1"
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert stripe_api.intents[r["id"]]["amount"] == 1250


def test_zero_decimal_currency_is_sent_as_is(stripe_api):
    r = create_intent(env_for(stripe_api))(Money(500, "JPY"), "order-jpy", "")
    assert r["ok"]
    assert stripe_api.requests[0].params["amount"] == "500"
    assert stripe_api.requests[0].params["currency"] == "jpy"


def test_same_key_twice_returns_the_same_intent(stripe_api):
    call = create_intent(env_for(stripe_api))
    a = call(Money(1250, "USD"), "order-2", "Order #2")
    b = call(Money(1250, "USD"), "order-2", "Order #2")
    assert a["ok"] and b["ok"] and a["id"] == b["id"] and a["client_secret"] == b["client_secret"]
    assert len(stripe_api.intents) == 1


def test_same_key_other_params_is_an_idempotency_error(stripe_api):
    call = create_intent(env_for(stripe_api))
    assert call(Money(1250, "USD"), "order-3", "Order #3")["ok"]
    r = call(Money(9999, "USD"), "order-3", "Order #3")
    assert r["ok"] is False and r["http_status"] == 400 and r["error_type"] == "idempotency_error"
    assert "same parameters" in r["error"]
    assert len(stripe_api.requests) == 2  # a 400 is final: not retried
    assert len(stripe_api.intents) == 1


def test_500_with_should_retry_is_retried_with_the_same_key(stripe_api):
    stripe_api.fail_next(500, stripe_error("api_error", "Something went wrong on Stripe's end."),
                         {"Stripe-Should-Retry": "true"})
    r = create_intent(env_for(stripe_api))(Money(2000, "EUR"), "order-4", "Order #4")
    assert r["ok"] is True and r["id"].startswith("pi_")
    assert len(stripe_api.requests) == 2
    assert stripe_api.idempotency_keys() == ["order-4", "order-4"]
    assert stripe_api.requests[0].params == stripe_api.requests[1].params
    assert len(stripe_api.intents) == 1


def test_retries_exhausted_gives_502(stripe_api):
    stripe_api.fail_next(500, stripe_error("api_error", "Something went wrong on Stripe's end."),
                         {"Stripe-Should-Retry": "true"}, times=2)
    r = create_intent(env_for(stripe_api, STRIPE_MAX_NETWORK_RETRIES="1"))(Money(2000, "EUR"), "order-5", "")
    assert r["ok"] is False and r["http_status"] == 502 and r["error_type"] == "api_error"
    assert stripe_api.idempotency_keys() == ["order-5", "order-5"]  # 1 try + 1 retry, then give up
    assert stripe_api.intents == {}


def test_card_declined_is_not_retried(stripe_api):
    stripe_api.fail_next(402, {"error": {"type": "card_error", "code": "card_declined",
                                         "decline_code": "generic_decline",
                                         "message": "Your card was declined."}})
    r = create_intent(env_for(stripe_api))(Money(1250, "USD"), "order-6", "")
    assert r == {"ok": False, "id": "", "client_secret": "", "status": "", "error": "Your card was declined.",
                 "error_type": "card_declined", "http_status": 402, "created": 0}
    assert len(stripe_api.requests) == 1


def test_should_retry_false_is_respected(stripe_api):
    stripe_api.fail_next(500, stripe_error("api_error", "boom"), {"Stripe-Should-Retry": "false"})
    r = create_intent(env_for(stripe_api))(Money(1250, "USD"), "order-7", "")
    assert r["ok"] is False and r["http_status"] == 502
    assert len(stripe_api.requests) == 1


def test_bad_key_gives_502_without_quoting_the_key(stripe_api):
    wrong = "sk_test_WRONGwrongWRONGwrong1234"
    r = create_intent({"STRIPE_SECRET_KEY": wrong, "STRIPE_API_BASE": stripe_api.url})(
        Money(1250, "USD"), "order-8", "")
    assert r["ok"] is False and r["http_status"] == 502 and r["error_type"] == "authentication_error"
    assert "STRIPE_SECRET_KEY" in r["error"]
    assert wrong not in json.dumps(r) and wrong[-4:] not in json.dumps(r)
    assert len(stripe_api.requests) == 1  # a 401 is final


def test_provider_messages_quoting_the_key_are_redacted(stripe_api):
    stripe_api.fail_next(400, stripe_error("invalid_request_error", f"bad request made with {KEY}"))
    r = create_intent(env_for(stripe_api))(Money(1250, "USD"), "order-9", "")
    assert r["http_status"] == 400 and "[redacted]" in r["error"]
    no_secret(r)


def test_rate_limited_gives_503(stripe_api):
    stripe_api.fail_next(429, stripe_error("invalid_request_error", "Too many requests", "rate_limit"),
                         {"Stripe-Should-Retry": "false"})
    r = create_intent(env_for(stripe_api))(Money(1250, "USD"), "order-10", "")
    assert r["ok"] is False and r["http_status"] == 503


def test_invalid_amount_is_400_before_any_request(stripe_api):
    call = create_intent(env_for(stripe_api))
    assert call(Money(0, "USD"), "order-11", "")["http_status"] == 400
    assert call(Money(100, "USD"), "", "")["http_status"] == 400  # no key: a retry could charge twice
    assert stripe_api.requests == []


def test_key_unset_sends_nothing(stripe_api):
    r = create_intent({"STRIPE_API_BASE": stripe_api.url})(Money(1250, "USD"), "order-12", "")
    assert r["ok"] is False and r["http_status"] == 503
    assert r["error"] == "payments are not configured: STRIPE_SECRET_KEY is not set"
    assert stripe_api.requests == []


def test_connection_refused_gives_502():
    env = {"STRIPE_SECRET_KEY": KEY, "STRIPE_API_BASE": f"http://127.0.0.1:{closed_port()}",
           "STRIPE_MAX_NETWORK_RETRIES": "1"}
    t0 = time.monotonic()
    r = create_intent(env)(Money(1250, "USD"), "order-13", "")
    assert r["ok"] is False and r["http_status"] == 502
    assert r["error"] == "the payment provider could not be reached"
    no_secret(r)
    assert time.monotonic() - t0 < 8


def test_slow_provider_times_out_client_side(stripe_api, monkeypatch):
    monkeypatch.setattr(conn, "STRIPE_TIMEOUT_S", 0.3)  # read when the client is built
    stripe_api.fail_next(200, {}, delay=1.5)
    t0 = time.monotonic()
    r = create_intent(env_for(stripe_api, STRIPE_MAX_NETWORK_RETRIES="0"))(Money(1250, "USD"), "order-15", "")
    assert time.monotonic() - t0 < 1.2
    assert r["ok"] is False and r["http_status"] == 502 and r["error_type"] == "api_connection_error"


def test_one_client_shared_by_threads(stripe_api, monkeypatch):
    built = []
    real = conn._stripe_client
    monkeypatch.setattr(conn, "_stripe_client", lambda *a: built.append(a) or real(*a))
    call = create_intent(env_for(stripe_api))
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: call(Money(100 + i, "USD"), f"order-t{i}", ""), range(16)))
    assert all(r["ok"] for r in results)
    assert len({r["id"] for r in results}) == 16 and len(stripe_api.intents) == 16
    assert len(built) == 1


def test_standin_get_payment_intent(stripe_api):
    import stripe

    r = create_intent(env_for(stripe_api))(Money(777, "GBP"), "order-14", "")
    client = stripe.StripeClient(KEY, base_addresses={"api": stripe_api.url})
    pi = client.v1.payment_intents.retrieve(r["id"])
    assert (pi.id, pi.amount, pi.currency) == (r["id"], 777, "gbp")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve("pi_missing")


# ---------------------------------------------------------------- http.post_json

class _Sink(BaseHTTPRequestHandler):
    """/201, /409, /503...: answer with that status and record what arrived."""
    protocol_version = "HTTP/1.1"
    seen: list

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.path, dict(self.headers.items()), body))
        if self.path == "/slow":
            time.sleep(1.5)
            status = 200
        else:
            status = int(self.path.strip("/"))
        reply = b'{"error":"conflict: already exists"}' if status == 409 else b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *a):
        pass


@pytest.fixture
def sink():
    seen: list = []
    handler = type("Sink", (_Sink,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_post_json_201_sends_exact_json(sink):
    url, seen = sink
    post = connectors({})["http.post_json"].call
    r = post(f"{url}/201", "tok_123", {"amount": Decimal("12.50"), "n": 3, "who": "café"})
    assert r == {"ok": True, "status": 201, "retry": False, "error": ""}
    [(_, headers, body)] = seen
    assert body == '{"amount":12.50,"n":3,"who":"café"}'.encode()
    assert headers["Content-Type"] == "application/json"
    assert headers["Authorization"] == "Bearer tok_123"


def test_post_json_without_key_sends_no_authorization(sink):
    url, seen = sink
    assert connectors({})["http.post_json"].call(f"{url}/200", "", {})["ok"]
    assert "Authorization" not in seen[0][1]


def test_post_json_409_is_final(sink):
    url, _ = sink
    r = connectors({})["http.post_json"].call(f"{url}/409", "k", {"id": 1})
    assert r == {"ok": False, "status": 409, "retry": False,
                 "error": 'HTTP 409: {"error":"conflict: already exists"}'}


@pytest.mark.parametrize("status", [503, 500, 429, 408])
def test_post_json_transient_statuses_are_retryable(sink, status):
    url, _ = sink
    r = connectors({})["http.post_json"].call(f"{url}/{status}", "k", {})
    assert r["ok"] is False and r["status"] == status and r["retry"] is True
    assert r["error"].startswith(f"HTTP {status}")


def test_post_json_timeout_is_retryable(sink, monkeypatch):
    url, _ = sink
    monkeypatch.setattr(conn, "POST_JSON_TIMEOUT_S", 0.3)
    t0 = time.monotonic()
    r = connectors({})["http.post_json"].call(f"{url}/slow", "k", {})
    assert time.monotonic() - t0 < 1.2
    assert r["ok"] is False and r["status"] == 0 and r["retry"] is True and "connection failed" in r["error"]


def test_post_json_closed_port_is_retryable():
    r = connectors({})["http.post_json"].call(f"http://127.0.0.1:{closed_port()}/x", "secret-tok", {})
    assert r["ok"] is False and r["status"] == 0 and r["retry"] is True
    assert r["error"].startswith("connection failed") and "secret-tok" not in r["error"]


# ---------------------------------------------------------------- verify_stripe_event

NOW = 1_800_000_000


def signed(body: bytes, secret: str = WHSEC, t: int = NOW) -> str:
    return sign(body, secret, t)


def test_payment_intent_succeeded_is_normalized():
    body = event("payment_intent.succeeded", payment_intent_obj("pi_123", 1250, "usd"),
                 id="evt_1", created=NOW - 5)
    ev = verify_stripe_event(body, signed(body), WHSEC, now=NOW)
    assert ev == {"id": "evt_1", "type": "payment_intent.succeeded", "created": NOW - 5,
                  "object_id": "pi_123", "payment_intent": "pi_123", "amount": Money(1250, "USD"),
                  "currency": "USD", "livemode": False}


def test_payment_intent_not_yet_received_uses_amount():
    obj = payment_intent_obj("pi_9", 800, "eur") | {"amount_received": 0, "status": "processing"}
    body = event("payment_intent.processing", obj)
    assert verify_stripe_event(body, signed(body), WHSEC, now=NOW)["amount"] == Money(800, "EUR")


def test_charge_refunded_is_normalized():
    body = event("charge.refunded", charge_obj("ch_1", "pi_123", 5000, 2000, "jpy"), id="evt_2", created=NOW)
    ev = verify_stripe_event(body, signed(body), WHSEC, now=NOW)
    assert ev == {"id": "evt_2", "type": "charge.refunded", "created": NOW, "object_id": "ch_1",
                  "payment_intent": "pi_123", "amount": Money(2000, "JPY"), "currency": "JPY",
                  "livemode": False}


def test_other_object_without_currency():
    body = event("customer.created", {"id": "cus_1", "object": "customer"})
    ev = verify_stripe_event(body, signed(body), WHSEC, now=NOW)
    assert (ev["object_id"], ev["payment_intent"], ev["amount"], ev["currency"]) == \
        ("cus_1", "", Money(0, "XXX"), "")


def test_signature_with_several_v1_values_accepts_any_match():
    body = event("charge.succeeded", charge_obj("ch_2", "pi_2", 100, 0, "usd"))
    header = signed(body) + ",v1=" + "0" * 64 + ",v0=deadbeef"
    assert verify_stripe_event(body, header, WHSEC, now=NOW)["object_id"] == "ch_2"


def reject(body: bytes, header: str | None, now: float = NOW, secret: str = WHSEC) -> str:
    with pytest.raises(WebhookRejected) as e:
        verify_stripe_event(body, header, secret, now=now)
    return e.value.reason


BODY = event("payment_intent.succeeded", payment_intent_obj("pi_1", 100, "usd"))


def test_wrong_secret_is_rejected():
    assert "signature" in reject(BODY, signed(BODY, secret="whsec_other"))


def test_tampered_body_is_rejected():
    tampered = BODY.replace(b'"amount": 100', b'"amount": 999')
    assert tampered != BODY
    assert "signature" in reject(tampered, signed(BODY))


def test_reserialized_body_is_rejected():
    compact = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert "signature" in reject(compact, signed(BODY))


def test_old_timestamp_is_rejected():
    assert "too old" in reject(BODY, signed(BODY, t=NOW - 301))
    assert verify_stripe_event(BODY, signed(BODY, t=NOW - 299), WHSEC, now=NOW)


def test_future_timestamp_is_rejected():
    assert "future" in reject(BODY, signed(BODY, t=NOW + 301))
    assert verify_stripe_event(BODY, signed(BODY, t=NOW + 299), WHSEC, now=NOW)


def test_real_clock_is_the_default():
    t = int(time.time())
    assert verify_stripe_event(BODY, signed(BODY, t=t), WHSEC)["payment_intent"] == "pi_1"
    with pytest.raises(WebhookRejected):
        verify_stripe_event(BODY, signed(BODY, t=t - 3600), WHSEC)


def test_missing_or_malformed_header_is_rejected():
    assert "missing" in reject(BODY, None)
    assert "missing" in reject(BODY, "")
    assert "malformed" in reject(BODY, "v1=abc")
    assert "malformed" in reject(BODY, "t=soon,v1=abc")
    assert "signature" in reject(BODY, f"t={NOW}")


def test_malformed_json_is_rejected():
    body = b'{"id": "evt_1", "type": '
    assert "JSON" in reject(body, signed(body))


def test_missing_id_or_type_is_rejected():
    for doc in ({"type": "x", "data": {"object": {}}}, {"id": "evt_1", "data": {"object": {}}}, [1, 2]):
        body = json.dumps(doc).encode()
        assert "id or type" in reject(body, signed(body))


def test_non_utf8_body_is_rejected():
    body = b'{"id": "\xff"}'
    assert reject(body, signed(body))


def test_reason_never_quotes_the_secret():
    assert WHSEC not in reject(BODY, signed(BODY, secret="whsec_x"))

"""services/payment.lwas end to end over real HTTP on 127.0.0.1: the payment service, the economy
and telemetry services it hands off to, and `StripeStandIn`, a stand-in for Stripe's HTTP API
(an external service that cannot be reached from here) spoken to only through the official SDK.
Webhooks are signed as Stripe signs them (HMAC-SHA256 over `t.body`) and checked by the SDK."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from helpers import AUTH, WRITER, Server, compile_services, deref
from serving import free_port
from stripe_standin import StripeStandIn, charge_obj, event, payment_intent_obj, sign, stripe_error

SECRET_KEY = "sk_test_51LwaSpaymentsSecretKey0000"
WEBHOOK_SECRET = "whsec_lwas_test_secret"


@pytest.fixture(scope="module")
def artifacts():
    return compile_services("payment", "economy", "telemetry")


@pytest.fixture
def stripe_api():
    with StripeStandIn(api_key=SECRET_KEY) as s:
        yield s


class Flow:
    """The three services and the stand-in, wired as `make run` wires them."""

    def __init__(self, artifacts, tmp_path: Path, stripe_api: StripeStandIn, monkeypatch, economy_up=True):
        (self.arts, self.key), self.tmp = artifacts, tmp_path
        self.stripe = stripe_api
        self.monkeypatch = monkeypatch
        for k, v in {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": stripe_api.url,
                     "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_MAX_NETWORK_RETRIES": "2",
                     "LWAS_CONFIG_PAYMENT_ECONOMY_API_KEY": WRITER, "LWAS_CONFIG_PAYMENT_TELEMETRY_API_KEY": WRITER,
                     "LWAS_CONFIG_PAYMENT_MAX_BACKOFF_SECS": "1"}.items():
            monkeypatch.setenv(k, v)
        self.telemetry = Server(self.arts["telemetry"], self.key, str(tmp_path / "telemetry.db"))
        monkeypatch.setenv("LWAS_CONFIG_PAYMENT_TELEMETRY_URL", self.telemetry.url)
        self.economy_port = free_port()
        monkeypatch.setenv("LWAS_CONFIG_PAYMENT_ECONOMY_URL", f"http://127.0.0.1:{self.economy_port}")
        self.economy = self.start_economy() if economy_up else None
        self.payment = self.start_payment()

    def start_economy(self) -> Server:
        self.economy = Server(self.arts["economy"], self.key, str(self.tmp / "economy.db"), port=self.economy_port)
        return self.economy

    def start_payment(self) -> Server:
        self.payment = Server(self.arts["payment"], self.key, str(self.tmp / "payment.db"))
        return self.payment

    def close(self):
        for s in (self.payment, self.economy, self.telemetry):
            if s is not None:
                s.close()

    # ------------------------------------------------------------ the client's and Stripe's side
    def intent(self, amount, currency="USD", key: str | None = None):
        headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
        return self.payment.http.post("/payments/intent", json={"amount": amount, "currency": currency},
                                      headers=headers)

    def webhook(self, body: bytes, t: int | None = None, secret: str = WEBHOOK_SECRET, header: str | None = None):
        t = int(time.time()) if t is None else t
        h = {"Stripe-Signature": header if header is not None else sign(body, secret, t),
             "content-type": "application/json"}
        return self.payment.http.post("/webhooks/stripe", content=body, headers=h)

    def equity(self) -> float:
        return self.economy.http.get("/equity").json()["total_equity"]

    def wait_equity(self, want: float, timeout: float = 15.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            got = self.equity()
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def outbox(self) -> dict:
        return self.payment.http.get("/outbox").json()


@pytest.fixture
def flow(artifacts, tmp_path, stripe_api, monkeypatch):
    f = Flow(artifacts, tmp_path, stripe_api, monkeypatch)
    yield f
    f.close()


def succeeded(pi: str, amount: int, **kw) -> bytes:
    return event("payment_intent.succeeded", payment_intent_obj(pi, amount, "usd"), **kw)


# ---------------------------------------------------------------- intents

def test_health(flow):
    assert flow.payment.http.get("/health").json() == {"status": "healthy", "service": "lwas_payment",
                                                       "version": "1.0.0"}


def test_intent_goes_to_stripe_in_minor_units_with_an_idempotency_key(flow):
    r = flow.intent(20.00, key="order-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["error"] == ""
    pi = body["payment_intent_id"]
    assert pi.startswith("pi_") and body["client_secret"].startswith(pi + "_secret_")
    seen = [q for q in flow.stripe.requests if q.method == "POST"]
    assert len(seen) == 1
    assert seen[0].params["amount"] == "2000" and seen[0].params["currency"] == "usd"
    assert seen[0].headers.get("Idempotency-Key") == "lwas-intent-order-1"
    assert flow.payment.http.get(f"/payments/{pi}").json() == {
        "id": pi, "amount": 20.00, "currency": "USD", "status": "requires_payment_method"}
    # the client retries with the same key: the same intent, nothing new anywhere
    again = flow.intent(20.00, key="order-1")
    assert again.status_code == 200 and again.json() == body
    assert again.headers["lwas-ledger"] == "exists"
    assert len(flow.stripe.intents) == 1
    # another key: another intent
    other = flow.intent(20.00, key="order-2").json()["payment_intent_id"]
    assert other != pi and len(flow.payment.http.get("/payments").json()) == 2


@pytest.mark.parametrize("amount,currency,why", [
    (0, "USD", "amount must be greater than 0"),
    (-5.00, "USD", "amount must be greater than 0"),
    (1_000_000.01, "USD", "at most 1000000.00 USD"),
    (10.00, "EUR", "currency EUR is not accepted"),
])
def test_invalid_requests_are_refused_before_any_call(flow, amount, currency, why):
    r = flow.intent(amount, currency)
    assert r.status_code == 422, r.text
    assert r.json()["success"] is False and why in r.json()["error"]
    assert flow.stripe.requests == []


def test_malformed_bodies_are_422_and_unauthenticated_is_401(flow):
    r = flow.payment.http.post("/payments/intent", json={"amount": True, "currency": "USD"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = flow.payment.http.post("/payments/intent", json={"amount": 20.0, "currency": "USD"})
    assert r.status_code == 401
    assert flow.stripe.requests == []


def test_declined_card_is_a_clear_402_and_is_not_retried(flow):
    flow.stripe.fail_next(402, stripe_error("card_error", "Your card was declined.", "card_declined"))
    r = flow.intent(12.00, key="declined")
    assert r.status_code == 402
    assert r.json() == {"success": False, "client_secret": "", "payment_intent_id": "", "error": "Your card was declined."}
    assert len(flow.stripe.requests) == 1
    assert flow.payment.http.get("/payments").json() == []


def test_a_retryable_stripe_failure_is_retried_with_the_same_key(flow):
    flow.stripe.fail_next(500, stripe_error("api_error", "try again"), headers={"Stripe-Should-Retry": "true"})
    r = flow.intent(30.00, key="flaky")
    assert r.status_code == 200 and r.json()["success"] is True, r.text
    keys = flow.stripe.idempotency_keys()
    assert len(keys) == 2 and set(keys) == {"lwas-intent-flaky"}


def test_stripe_down_is_a_502_and_keys_never_leak(flow, caplog):
    caplog.set_level(logging.DEBUG)
    flow.stripe.fail_next(401, stripe_error("invalid_request_error", f"Invalid API Key provided: {SECRET_KEY}"))
    r = flow.intent(5.00)
    assert r.status_code == 502 and r.json()["success"] is False
    assert "STRIPE_SECRET_KEY" in r.json()["error"]
    texts = [r.text] + [rec.getMessage() for rec in caplog.records]
    body = succeeded("pi_leakcheck", 500)
    texts.append(flow.webhook(body, secret="whsec_wrong").text)
    for t in texts:
        assert SECRET_KEY not in t and SECRET_KEY[-8:] not in t and WEBHOOK_SECRET not in t


# ---------------------------------------------------------------- webhooks and the economy

def test_intent_to_equity_with_a_replayed_webhook(flow):
    """The design's flow: intent → Stripe → confirmation (webhook) → economy → ledger."""
    pi = flow.intent(20.00, key="flow-1").json()["payment_intent_id"]
    body = succeeded(pi, 2000)
    r = flow.webhook(body)
    assert r.status_code == 200 and r.json() == {"received": True, "duplicate": False, "action": "payment recorded"}
    assert flow.wait_equity(20.00) == 20.00
    assert flow.payment.http.get(f"/payments/{pi}").json()["status"] == "succeeded"
    # Stripe delivers the same event again (it retries for days): acknowledged, ignored
    again = flow.webhook(body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # a new event for the same intent (Stripe may send one): the economy books it once
    r = flow.webhook(succeeded(pi, 2000))
    assert r.status_code == 200 and r.json()["action"] == "payment already recorded"
    time.sleep(1.5)
    assert flow.equity() == 20.00
    tx = flow.economy.http.get(f"/ledger/transactions/proof/{pi}")
    assert tx.status_code == 200, "the economy's ledger holds the payment under the intent's id"
    assert flow.outbox()["pending_transfers"] == []


def test_refunds_book_each_increase_once(flow):
    pi = flow.intent(50.00, key="refund-1").json()["payment_intent_id"]
    assert flow.webhook(succeeded(pi, 5000)).status_code == 200
    assert flow.wait_equity(50.00) == 50.00
    partial = event("charge.refunded", charge_obj("ch_lwas1", pi, 5000, 1500, "usd"))
    assert flow.webhook(partial).json()["action"] == "refund recorded"
    assert flow.wait_equity(35.00) == 35.00
    full = event("charge.refunded", charge_obj("ch_lwas1", pi, 5000, 5000, "usd"))
    assert flow.webhook(full).json()["action"] == "refund recorded"
    assert flow.wait_equity(0.00) == 0.00
    # an older event arriving late (Stripe does not order them) changes nothing
    late = event("charge.refunded", charge_obj("ch_lwas1", pi, 5000, 1500, "usd"))
    assert flow.webhook(late).json()["action"] == "refund already recorded"
    assert flow.webhook(full).json()["duplicate"] is True
    time.sleep(1.5)
    assert flow.equity() == 0.00
    assert flow.payment.http.get(f"/payments/{pi}").json()["status"] == "refunded"
    metrics = flow.economy.http.get("/metrics").json()
    assert metrics["refunds"] == 50.00 and metrics["revenue"] == 50.00


@pytest.mark.parametrize("case", ["wrong_secret", "tampered", "too_old", "future", "no_header", "not_json"])
def test_bad_webhooks_are_400_and_change_nothing(flow, case):
    body = succeeded("pi_forged", 99_900)
    now = int(time.time())
    r = {"wrong_secret": lambda: flow.webhook(body, secret="whsec_other"),
         "tampered": lambda: flow.webhook(body.replace(b"99900", b"99999"), header=sign(body, WEBHOOK_SECRET, now)),
         "too_old": lambda: flow.webhook(body, t=now - 400),
         "future": lambda: flow.webhook(body, t=now + 400),
         "no_header": lambda: flow.payment.http.post("/webhooks/stripe", content=body),
         "not_json": lambda: flow.webhook(b"{not json"),
         }[case]()
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_webhook" and r.json()["error"]["message"]
    assert flow.payment.http.get("/ledger/events/checkpoint").json()["tree_size"] == 0
    assert flow.outbox()["pending_transfers"] == []


def test_webhook_tolerance_accepts_clock_skew_inside_it(flow):
    now = int(time.time())
    assert flow.webhook(succeeded("pi_skew_past", 100), t=now - 200).status_code == 200
    assert flow.webhook(succeeded("pi_skew_future", 100), t=now + 200).status_code == 200


def test_unhandled_event_types_are_acknowledged(flow):
    r = flow.webhook(event("customer.created", {"id": "cus_123", "object": "customer"}))
    assert r.status_code == 200 and r.json()["action"] == "ignored: customer.created"


def test_reports_reach_telemetry(flow):
    flow.stripe.fail_next(402, stripe_error("card_error", "Your card was declined.", "card_declined"))
    assert flow.intent(10.00, key="t-fail").status_code == 402
    pi = flow.intent(10.00, key="t-ok").json()["payment_intent_id"]
    deadline = time.monotonic() + 15
    while flow.outbox()["pending_reports"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert flow.outbox()["pending_reports"] == []
    events = flow.telemetry.http.get("/ledger/events/checkpoint").json()
    assert events["tree_size"] == 2
    assert flow.telemetry.http.get(f"/ledger/events/proof/intent-{pi}").status_code == 200


# ---------------------------------------------------------------- durability of the hand-off

def test_a_down_economy_delays_but_never_loses_a_payment_across_a_restart(artifacts, tmp_path, stripe_api, monkeypatch):
    f = Flow(artifacts, tmp_path, stripe_api, monkeypatch, economy_up=False)
    try:
        pi = f.intent(42.00, key="restart-1").json()["payment_intent_id"]
        body = succeeded(pi, 4200)
        assert f.webhook(body).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pending = f.outbox()["pending_transfers"]
            if pending and pending[0]["attempts"] >= 2:
                break
            time.sleep(0.1)
        pending = f.outbox()["pending_transfers"]
        assert len(pending) == 1 and pending[0]["attempts"] >= 2
        assert "connection failed" in pending[0]["last_error"]
        # the payment service restarts in the middle: the outbox is its ledger
        f.payment.close()
        f.start_payment()
        assert f.outbox()["pending_transfers"][0]["transfer"]["id"] == pi
        assert f.webhook(body).json()["duplicate"] is True  # Stripe's redelivery after the restart
        f.start_economy()
        assert f.wait_equity(42.00) == 42.00
        deadline = time.monotonic() + 10
        while f.outbox()["pending_transfers"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f.outbox()["pending_transfers"] == [] and f.outbox()["dead_transfers"] == []
        time.sleep(1.5)
        assert f.equity() == 42.00  # delivered once, however many attempts
    finally:
        f.close()


def test_a_transfer_the_economy_refuses_for_good_becomes_a_dead_letter(flow):
    """The economy already holds a different transaction under the intent's id (409): retrying
    cannot help, so it is kept, with the reason, for an operator."""
    r = flow.economy.http.post("/transaction", headers={**AUTH, "content-type": "application/json"}, content=json.dumps(
        {"id": "pi_clash", "amount": 1.00, "currency": "USD", "timestamp": "2026-01-25T02:52:48.340Z",
         "tx_type": "Revenue", "metadata": {}}))
    assert r.status_code == 200
    assert flow.webhook(succeeded("pi_clash", 700)).status_code == 200
    deadline = time.monotonic() + 10
    while not flow.outbox()["dead_transfers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    box = flow.outbox()
    assert [d["transfer"]["id"] for d in box["dead_transfers"]] == ["pi_clash"]
    assert box["dead_transfers"][0]["last_error"].startswith("HTTP 409")
    assert box["pending_transfers"] == [] and flow.equity() == 1.00


def test_openapi_describes_the_webhook_as_signed_and_the_intent_as_typed(flow):
    spec = flow.payment.http.get("/openapi.json").json()
    hook = spec["paths"]["/webhooks/stripe"]["post"]
    assert "signed" in hook["requestBody"]["description"] and "400" in hook["responses"]
    assert "401" not in hook["responses"]  # its credential is the signature
    intent = spec["paths"]["/payments/intent"]["post"]
    assert "401" in intent["responses"]
    schema = json.dumps(deref(spec, intent["requestBody"]["content"]["application/json"]["schema"]))
    assert "amount" in schema and "currency" in schema

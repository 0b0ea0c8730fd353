"""The payment service's latencies against their anchors, measured in the same run.

In one process, on 127.0.0.1: the payment, economy and telemetry services (uvicorn, SQLite with
synchronous=FULL) and the stand-in for Stripe's HTTP API from tests/ (Stripe itself cannot be
reached here). Figures, medians of ROUNDS rounds of N sequential requests:

- POST /payments/intent (auth, validation, one Stripe call through the SDK, two appends each
  committed before the handler goes on) against the bare SDK call to the same stand-in;
- POST /webhooks/stripe (signature check, dedupe, one or two appends through the writer) against
  POST /transaction of the economy (one append), the plainest durable write we serve;
- the outbox: webhooks for N succeeded intents, then the time until the economy has booked all.

Run: .venv/bin/python bench/bench_payment.py
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from stripe_standin import StripeStandIn, event, payment_intent_obj, sign  # noqa: E402

ROUNDS, N = 3, 100
SECRET = "whsec_bench"


def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main() -> None:
    from lwas.driver import compile_file
    from lwas.backend.keys import generate
    from lwas.runtime.connectors import connectors
    from lwas.runtime.values import Money

    with StripeStandIn() as stripe_api, tempfile.TemporaryDirectory() as tmp:
        os.environ.update({"STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_API_BASE": stripe_api.url,
                           "STRIPE_WEBHOOK_SECRET": SECRET})
        from helpers import AUTH, WRITER, Server

        key = generate()
        eco_art = compile_file(ROOT / "services" / "economy.lwas", key=key).artifact
        pay_art = compile_file(ROOT / "services" / "payment.lwas", key=key).artifact
        tel_art = compile_file(ROOT / "services" / "telemetry.lwas", key=key).artifact
        eco = Server(eco_art, key, f"{tmp}/economy.db")
        tel = Server(tel_art, key, f"{tmp}/telemetry.db")
        os.environ.update({"LWAS_CONFIG_PAYMENT_ECONOMY_URL": eco.url, "LWAS_CONFIG_PAYMENT_ECONOMY_API_KEY": WRITER,
                           "LWAS_CONFIG_PAYMENT_TELEMETRY_URL": tel.url, "LWAS_CONFIG_PAYMENT_TELEMETRY_API_KEY": WRITER})
        pay = Server(pay_art, key, f"{tmp}/payment.db")
        sdk = connectors()["stripe.create_payment_intent"].call
        rows = {k: [] for k in ("sdk", "intent", "economy", "webhook", "outbox")}
        booked = 0.0
        try:
            for r in range(ROUNDS):
                rows["sdk"].append(statistics.median(
                    timed(lambda i=i: sdk(Money(100, "USD"), f"sdk-{r}-{i}", "bench")) for i in range(N)))
                ids = []

                def intent(i):
                    reply = pay.http.post("/payments/intent", json={"amount": 1.00, "currency": "USD"},
                                          headers={**AUTH, "Idempotency-Key": f"b-{r}-{i}"})
                    ids.append(reply.json()["payment_intent_id"])
                rows["intent"].append(statistics.median(timed(lambda i=i: intent(i)) for i in range(N)))
                body = ('{"id": "tx_%s", "amount": 1.00, "currency": "USD", "timestamp": '
                        '"2026-01-25T02:52:48.340Z", "tx_type": "Revenue", "metadata": {}}')
                rows["economy"].append(statistics.median(timed(lambda i=i: eco.http.post(
                    "/transaction", content=body % f"{r}-{i}", headers={**AUTH, "content-type": "application/json"}))
                    for i in range(N)))
                before = eco.http.get("/equity").json()["total_equity"]
                t0 = time.perf_counter()

                def hook(pi):
                    raw = event("payment_intent.succeeded", payment_intent_obj(pi, 100, "usd"))
                    pay.http.post("/webhooks/stripe", content=raw, headers={
                        "Stripe-Signature": sign(raw, SECRET, int(time.time())), "content-type": "application/json"})
                rows["webhook"].append(statistics.median(timed(lambda pi=pi: hook(pi)) for pi in ids))
                deadline = time.monotonic() + 120
                while eco.http.get("/equity").json()["total_equity"] < before + N and time.monotonic() < deadline:
                    time.sleep(0.02)
                rows["outbox"].append(time.perf_counter() - t0)
                booked = eco.http.get("/equity").json()["total_equity"]
        finally:
            pay.close()
            eco.close()
            tel.close()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"payment service, {ROUNDS} rounds x {N} sequential requests (medians)")
    print(f"  bare SDK call to the stand-in   {med['sdk'] * 1e3:7.2f} ms")
    print(f"  POST /payments/intent           {med['intent'] * 1e3:7.2f} ms   ({med['intent'] / med['sdk']:.1f}x the SDK call)")
    print(f"  economy POST /transaction       {med['economy'] * 1e3:7.2f} ms")
    print(f"  POST /webhooks/stripe           {med['webhook'] * 1e3:7.2f} ms   ({med['webhook'] / med['economy']:.1f}x the economy POST)")
    print(f"  {N} webhooks sent and booked    {med['outbox']:7.2f} s    ({N / med['outbox']:.0f} payments/s end to end)")
    print(f"  economy equity at the end       {booked:.2f}")


if __name__ == "__main__":
    main()

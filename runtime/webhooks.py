"""Webhook bodies for `signed "NAME"` routes: verified on the raw bytes, then shaped as the
route's body record.

A signer authenticates the request (for Stripe: the `Stripe-Signature` HMAC over the raw body,
checked by the SDK, with the timestamp inside the tolerance on both sides) and flattens the event
into plain fields (lwas.runtime.connectors.verify_stripe_event). The route's body record takes
any of those fields; which ones is checked when the route is built, so a typo stops the service
at start instead of failing every webhook.
"""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Callable, Mapping

from lwas.runtime.connectors import WebhookRejected, verify_stripe_event
from lwas.runtime.externs import kind

# What a verified Stripe event offers a body record: field -> kind.
STRIPE_EVENT_FIELDS = {"id": "text", "type": "text", "created": "time", "object_id": "text",
                       "payment_intent": "text", "amount": "int", "currency": "text", "livemode": "bool"}
# `amount` is in minor units: an event without a currency (ISO's "XXX") has no money amount, so
# a handler makes money of it (`from_minor(e.amount, e.currency)`) only for the events that do.

_ID = re.compile(r"[A-Za-z0-9_.\-]{0,255}")

__all__ = ["WebhookRejected", "WebhookUnavailable", "webhook_reader", "STRIPE_EVENT_FIELDS"]


class WebhookUnavailable(Exception):
    """The signer is not configured (no secret): the sender should retry later (503)."""


def webhook_reader(signer: str, body_desc: dict,
                   env: Mapping[str, str] = os.environ) -> Callable[[bytes, Mapping[str, str]], dict]:
    """read(raw, headers) -> the body record's value; raises WebhookRejected (400) or
    WebhookUnavailable (503). Only "stripe" exists (lwas.semantics.service.SIGNERS)."""
    if signer != "stripe":
        raise ValueError(f"unknown webhook signer {signer!r}")
    fields = body_desc["fields"]
    for name, t in fields:
        want = STRIPE_EVENT_FIELDS.get(name)
        if want is None or want != kind(t):
            offered = ", ".join(f"{n}: {k}" for n, k in STRIPE_EVENT_FIELDS.items())
            raise ValueError(f"`signed \"stripe\"` body record {body_desc['record']}: field `{name}: {kind(t)}` "
                             f"is not one a Stripe event gives (it gives {offered})")
    secret = env.get("STRIPE_WEBHOOK_SECRET", "")
    tolerance_text = env.get("STRIPE_WEBHOOK_TOLERANCE", "300").strip()
    if not tolerance_text.isdigit() or not 1 <= int(tolerance_text) <= 86400:
        raise ValueError(f"STRIPE_WEBHOOK_TOLERANCE must be whole seconds from 1 to 86400, got {tolerance_text!r}")
    tolerance = int(tolerance_text)

    def read(raw: bytes, headers: Mapping[str, str]) -> dict:
        if not secret:
            raise WebhookUnavailable("webhooks are not configured: STRIPE_WEBHOOK_SECRET is not set")
        event = verify_stripe_event(raw, headers.get("stripe-signature"), secret, tolerance)
        for k in ("id", "type", "object_id", "payment_intent"):
            if not _ID.fullmatch(event[k]):  # handlers build JSON and keys from these
                raise WebhookRejected(f"event {k} {event[k][:80]!r} has characters Stripe ids never have")
        out = {}
        for name, t in fields:
            v = event[name]
            if kind(t) == "time":
                v = datetime.fromtimestamp(v, timezone.utc)
            elif name == "amount":
                v = v.minor
            out[name] = v
        return out

    return read

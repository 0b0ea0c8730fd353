"""Binding a program's `extern fn`s to the runtime's connectors (lwas.runtime.connectors).

An artifact names each extern's connector ("stripe.create_payment_intent") and its LwaS
signature. Binding checks, when the service starts, that the connector exists, that the
arguments have the kinds it takes and that every field of the declared result record is one it
returns with the same kind: a mismatch stops the service with a message naming the declaration,
instead of a fault at the first request. A bound call converts record arguments to their JSON
form (what goes over the wire) and cuts the connector's answer to the declared fields.
"""
from __future__ import annotations

import os
from typing import Callable, Mapping

from lwas.runtime.connectors import connectors
from lwas.runtime.models import to_json


class BindError(ValueError):
    """An extern the runtime cannot provide as declared."""


def kind(desc) -> str:
    """A TypeDesc as a connector kind: text, int, bool, float, time, money, record, array, enum."""
    if isinstance(desc, str):
        return "float" if desc == "truth" else desc
    for k in ("money", "record", "array", "enum"):
        if k in desc:
            return k
    return "unknown"


def bind_connectors(externs: list, service: dict | None = None,
                    env: Mapping[str, str] = os.environ) -> list[Callable[[list], dict]]:
    """One callable per extern (by index): args (Python values) -> the result (a dict)."""
    available = connectors(env)
    return [_bind(x, available) for x in externs]


def _bind(x: dict, available: dict) -> Callable[[list], dict]:
    where = f"{x['file']}:{x['line']}: extern fn {x['name']}"
    c = available.get(x["binding"])
    if c is None:
        raise BindError(f"{where}: the runtime has no connector {x['binding']!r} "
                        f"(it has: {', '.join(sorted(available))})")
    got = tuple(kind(p["type"]) for p in x["params"])
    if got != tuple(c.params):
        raise BindError(f"{where}: {x['binding']} takes ({', '.join(c.params)}), "
                        f"the declaration passes ({', '.join(got)})")
    result = x["result"]
    if kind(result) != "record":
        raise BindError(f"{where}: the result must be a record of some of: "
                        + ", ".join(f"{n}: {k}" for n, k in c.returns.items()))
    fields = [n for n, _ in result["fields"]]
    for n, t in result["fields"]:
        want = c.returns.get(n)
        if want is None or want != kind(t):
            have = ", ".join(f"{f}: {k}" for f, k in c.returns.items())
            raise BindError(f"{where}: result field `{n}: {kind(t)}` is not one {x['binding']} returns "
                            f"(it returns {have})")
    descs = [p["type"] for p in x["params"]]
    call = c.call

    def bound(args: list) -> dict:
        wire = [to_json(d, a) if kind(d) == "record" else a for d, a in zip(descs, args)]
        out = call(*wire)
        return {n: out[n] for n in fields}

    return bound

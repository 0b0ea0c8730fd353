"""`lwasc test --generate`: tests generated from the program's own types and contracts.

For every function and rule of the file (its exports; not `test`s, not the `$` functions the
compiler writes), hypothesis draws arguments from the parameter types — ints and floats with
their edge values, truths in [0, 1], money respecting its currency's exponent, text, times,
arrays, records, enums — and calls the native code. A call passes when it returns, or when it
stops at a precondition of the function itself (`requires`: the input was outside its domain).
It fails on any other runtime error (overflow, index, division by zero, a postcondition, a
precondition of something it calls) and for a rule, on a truth outside [0, 1]. A failure is
shrunk by hypothesis to a minimal input and printed as a ready-to-paste LwaS `test` block.

Native code cannot be interrupted, and a generated `n` may ask a loop for 2^63 steps or an array
for 2^40 elements. So each function is searched in a forked child with a memory limit (an
allocation beyond it is an `out of memory` runtime error, i.e. a finding) and a time budget; a
child out of time is reported as a failure naming the budget: bound the argument with `requires`.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import resource
import select
import signal
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, find, settings, strategies as st
from hypothesis.errors import NoSuchExample

from lwas.semantics.types import CURRENCY_EXPONENTS

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
_CURRENCIES = sorted(CURRENCY_EXPONENTS)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def strategy(desc):
    """Values of an LwaS type (a TypeDesc, lwas.abi) as the native binding takes them."""
    from lwas.runtime.values import Money

    if isinstance(desc, str):
        if desc == "int":
            return st.one_of(st.sampled_from([0, 1, -1, INT_MAX, INT_MIN]), st.integers(INT_MIN, INT_MAX))
        if desc == "float":
            return st.floats(allow_nan=False, allow_infinity=False)
        if desc == "truth":
            return st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))
        if desc == "bool":
            return st.booleans()
        if desc == "text":
            return st.text(max_size=20)
        if desc == "time":
            return st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31), timezones=st.just(timezone.utc))
        raise ValueError(f"no values of type {desc}")
    if "money" in desc:
        codes = st.just(desc["money"]) if desc["money"] else st.sampled_from(_CURRENCIES)
        return st.builds(lambda m, c: Money(m, c), st.integers(-10 ** 15, 10 ** 15), codes)
    if "array" in desc:
        return st.lists(strategy(desc["array"]), max_size=8)
    if "map" in desc:
        return st.dictionaries(strategy(desc["map"]), strategy(desc["value"]), max_size=8)
    if "enum" in desc:
        return st.sampled_from(desc["variants"])
    as_json = set(desc.get("json", ()))
    fields = {n: (_JSON if n in as_json else strategy(t)) for n, t in desc["fields"]}
    flat = [(n, t["in"]) for n, t in desc["fields"] if isinstance(t, dict) and "in" in t]
    if not flat:
        return st.fixed_dictionaries(fields)
    return st.fixed_dictionaries(fields).map(lambda v: _same_currency(v, flat))


# a `json` field holds a JSON document (text)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 6, 10 ** 6) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                     max_leaves=6).map(lambda v: json.dumps(v, sort_keys=True))


def _same_currency(v: dict, flat: list) -> dict:
    """`amount: money in currency`: the record's currency field names the money's currency."""
    for money_field, currency_field in flat:
        v[currency_field] = v[money_field].currency
    return v


def literal(v, desc) -> str:
    """v as LwaS source (what a `test` block needs to reproduce the call)."""
    if isinstance(desc, str):
        if desc == "bool":
            return "true" if v else "false"
        if desc == "int":
            return str(v) if v != INT_MIN else f"({INT_MIN + 1} - 1)"  # -2^63 has no literal
        if desc in ("float", "truth"):
            r = repr(float(v))
            if "e" in r or "E" in r:
                mant, _, exp = r.partition("e")
                r = (mant if "." in mant else mant + ".0") + "e" + exp
            return f"({r})" if r.startswith("-") else r
        if desc == "text":
            return json.dumps(v, ensure_ascii=False)
        if desc == "time":
            return f"at_micros({(v - _EPOCH) // _MICRO})"
    if "money" in desc:
        exp = CURRENCY_EXPONENTS[v.currency]
        whole, frac = divmod(abs(v.minor), 10 ** exp)
        text = f"{whole}.{frac:0{exp}d} {v.currency}" if exp else f"{whole} {v.currency}"
        return f"(-{text})" if v.minor < 0 else text
    if "array" in desc:
        return "[" + ", ".join(literal(x, desc["array"]) for x in v) + "]"
    if "map" in desc:
        from lwas.runtime.values import sorted_items

        return "{" + ", ".join(f"{literal(k, desc['map'])}: {literal(x, desc['value'])}"
                               for k, x in sorted_items(desc, v)) + "}"
    if "enum" in desc:
        return v
    args = ", ".join(f"{n}: {literal(v[n], t)}" for n, t in desc["fields"])
    return f"{desc['record']}({args})"


@dataclass
class Finding:
    name: str
    ok: bool
    examples: int
    args: tuple = ()
    kind: str = ""
    message: str = ""
    test_block: str = ""


def _verdict(program, export, args):
    """None when the call passes, else (kind, message)."""
    from lwas.errors import RuntimeError as LwasRuntimeError

    name = export["name"]
    try:
        r = program.call(name, *args)
    except LwasRuntimeError as e:
        if e.kind == "contract" and e.message.startswith("precondition") and e.message.endswith(f"of `{name.split('.')[-1]}` violated"):
            return None  # outside the function's declared domain
        return e.kind, e.message
    except (TypeError, ValueError, OverflowError):
        return None  # a value the binding refuses (e.g. a currency the record mixes): not a finding
    if export["kind"] == "rule" and not (isinstance(r, float) and 0.0 <= r <= 1.0):
        return "truth_range", f"rule `{name}` returned {r!r}, outside [0, 1]"
    return None


MEMORY_LIMIT = 2 << 30  # bytes of address space for a searching child


def search(program, e: dict, examples: int) -> Finding:
    """The minimal failing input of export e, or ok (in this process)."""
    descs = [p["type"] for p in e["params"]]
    strat = st.tuples(*[strategy(d) for d in descs])
    seen = [0]

    def fails(args):
        seen[0] += 1
        return _verdict(program, e, args) is not None

    cfg = settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                   derandomize=not os.environ.get("LWAS_LONG"))  # make test: the same inputs every run
    try:
        args = find(strat, fails, settings=cfg)
    except NoSuchExample:
        return Finding(e["name"], True, seen[0])
    kind, message = _verdict(program, e, args)
    call = f"{e['name']}({', '.join(literal(a, d) for a, d in zip(args, descs))})"
    block = f'test "{e["name"]}: {kind} found by lwasc test --generate" {{\n  let r = {call}\n}}'
    return Finding(e["name"], False, seen[0], args, kind, message, block)


def _in_child(program, e: dict, examples: int, budget: float) -> Finding:
    """search() in a forked child, bounded in memory and time."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: search, send the finding, leave without cleanup handlers
        os.close(r)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))
            data = pickle.dumps(search(program, e, examples))
        except BaseException as exc:  # noqa: BLE001 - reported by the parent
            data = pickle.dumps(Finding(e["name"], False, 0, (), "internal", f"the search failed: {exc!r}"))
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    chunks, deadline = [], time.monotonic() + budget
    with os.fdopen(r, "rb") as f:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([f], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Finding(e["name"], False, 0, (), "timeout",
                               f"no verdict within {budget:g} s: some input makes it run (or loop) too long; "
                               f"bound its arguments with `requires`")
            chunk = os.read(f.fileno(), 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return Finding(e["name"], False, 0, (), "crash", f"the search process died (status {status})")
    return pickle.loads(b"".join(chunks))


def generate(program, described: dict, examples: int = 200, budget: float = 30.0) -> list[Finding]:
    out = []
    externs = {x["name"] for x in described.get("externs", ())}  # the runtime's, not the program's
    for e in described["exports"]:
        if e["kind"] not in ("fn", "rule") or "$" in e["name"] or e["name"] in externs:
            continue
        try:
            [strategy(p["type"]) for p in e["params"]]
        except ValueError:
            continue  # a parameter type without values (unit): nothing to generate
        out.append(_in_child(program, e, examples, budget))
    return out


def report(file: str, findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        if f.ok:
            lines.append(f"{file}::{f.name} ok ({f.examples} inputs)")
        else:
            lines += [f"{file}::{f.name} FAILED: {f.kind}: {f.message}", "minimal input, as a test:", f.test_block]
    return "\n".join(lines)


# ---------------------------------------------------------------- services

@dataclass
class RouteFinding:
    route: str  # "POST /transaction"
    ok: bool
    requests: int
    status: int = 0
    request: str = ""  # the minimal failing request (method, path, JSON body)
    answer: str = ""


def _request(route: dict, values: tuple):
    """(path, JSON body or None) for generated path parameters and body values."""
    from urllib.parse import quote

    from lwas.runtime.models import dumps, to_json

    path = route["path"]
    n = len(route["path_params"])
    for (name, desc), v in zip(route["path_params"], values[:n]):
        text = v if isinstance(v, str) else json.dumps(to_json(desc, v))
        path = path.replace("{" + name + "}", quote(str(text).strip('"'), safe=""))
    body = None
    if route["body"] is not None:
        body = dumps(to_json(route["body"][1], values[n]))
    return path, body


def generate_services(artifact: bytes, key, examples: int = 100) -> list[RouteFinding]:
    """Every route that neither calls out (`extern fn`) nor is a signed webhook, on generated
    path parameters and bodies, against the services in this process (a fresh SQLite ledger):
    each answer must be 2xx or a documented 4xx, never 5xx. Found: the minimal request."""
    import tempfile

    import warnings

    with warnings.catch_warnings():  # starlette's note about httpx, not ours
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from lwas.runtime.auth import Credentials, RateLimiter
    from lwas.runtime.host import Service
    from lwas.runtime.loader import load_verified
    from lwas.runtime.server import create_app
    from lwas.runtime.store import open_store
    from lwas.backend.keys import public_pem

    import hashlib

    art, program = load_verified(artifact, [key.public_key()])
    out: list[RouteFinding] = []
    logging.getLogger("lwas").setLevel(logging.WARNING)  # one access-log line per generated request
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"{tmp}/generated.db")
        services = [Service(program, d, store, key, hashlib.sha512(artifact).digest(), settings={})
                    for d in art.manifest["services"]]
        for s in services:
            s.start()
        creds = Credentials()
        token = "generated-" + hashlib.sha256(artifact).hexdigest()[:32]
        creds.add_key(token, "admin", "generate")
        app = create_app(services, credentials=creds, public_key_pem=public_pem(key), ready=store.ping,
                         limiter=RateLimiter(rate_per_s=1e9, burst=1e9))
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        try:
            with TestClient(app) as client:
                for s in services:
                    for route in s.desc["routes"]:
                        if route.get("external") or route.get("signed"):
                            continue
                        out.append(_search_route(client, route, headers, examples))
        finally:
            for s in services:
                s.stop()
            store.close()
    return out


def _search_route(client, route: dict, headers: dict, examples: int) -> RouteFinding:
    descs = [d for _, d in route["path_params"]] + ([route["body"][1]] if route["body"] is not None else [])
    name = f"{route['method']} {route['path']}"
    seen = [0]

    def send(values):
        try:
            path, body = _request(route, values)
        except (ValueError, TypeError):
            return None  # a value with no JSON form (a flat money field in another currency)
        seen[0] += 1
        return path, body, client.request(route["method"], path, content=body, headers=headers)

    def fails(values) -> bool:
        r = send(values)
        return r is not None and r[2].status_code >= 500

    cfg = settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
                   derandomize=not os.environ.get("LWAS_LONG"))  # make test: the same inputs every run
    try:
        values = find(st.tuples(*[strategy(d) for d in descs]), fails, settings=cfg)
    except NoSuchExample:
        return RouteFinding(name, True, seen[0])
    path, body, r = send(values)
    req = f"{route['method']} {path}" + (f"\n{body.decode()}" if body else "")
    return RouteFinding(name, False, seen[0], r.status_code, req, r.text[:500])

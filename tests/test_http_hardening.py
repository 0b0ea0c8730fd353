"""Hostile HTTP input against a real server on 127.0.0.1 (issue 20, the HTTP part).

A small service with everything an attacker can aim at (a `signed "stripe"` webhook, a flat-money
record with a `json` field keyed by a text id, a path parameter) is compiled, signed and served
by uvicorn with lwas.runtime.limits' protocol, in this process, with small limits so each test is
quick; one test runs `lwasc serve` as a subprocess with the default limits and reads its peak RSS
from /proc. Raw sockets are used where a client library would refuse to misbehave.

- bodies: over the limit by Content-Length (refused before a byte of the body is sent) and by
  chunks (refused at the first chunk past it), on the webhook route too; 413 in the error shape;
- headers: too large (431), too slow (408), an idle connection (408), a body too slow (408);
- every 5xx is JSON and logged with its traceback; the known 500s are 4xx now (a JWT whose `alg`
  is an object, JSON nested 1,000 deep, a flat money field sent as an object, a signed webhook
  with `created` 10**20 or a negative amount);
- `json` fields: 1e309 refused, 2 and 2.0 the same content, duplicate keys and non-UTF-8 or
  non-JSON media types refused; ledger keys longer than 256 bytes refused with 422;
- with read_requires_auth, metrics, /openapi.json and /docs need a credential;
- invalid numeric settings are refused at start (LWAS_RATE_LIMIT=nan, the limits, LWAS_REPORT_EVERY);
- every stored key can be proven (empty, with `/`, 256 bytes, non-ASCII);
- hypothesis: arbitrary JSON and arbitrary bytes never give a 5xx (in-process ASGI client).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from helpers import AUTH, READ, WRITER, Server, compile_signed
from lwas.runtime import limits as limits_mod
from lwas.runtime.auth import Credentials
from lwas.runtime.host import Service
from lwas.runtime.limits import Limits
from lwas.runtime.loader import load_verified
from lwas.runtime.server import create_app
from lwas.runtime.store import open_store

SECRET = "whsec_test_secret_0123456789"
SMALL = Limits(max_body_bytes=8 * 1024, max_header_bytes=8 * 1024, header_timeout_s=1.0, body_timeout_s=1.0)

SOURCE = '''
record Event {
  id: text
  type: text
  created: time
  amount: int
  currency: text
}
record Tx {
  id: text
  amount: money in currency
  currency: text
  metadata: json
}
service hard {
  ledger events: Event by id
  ledger txs: Tx by id
  post "/hook" (e: Event) -> bool signed "stripe" {
    append events(e)
    return true
  }
  post "/tx" (t: Tx) -> Tx {
    append txs(t)
    return t
  }
  get "/echo/{id}" (id: text) -> text {
    return id
  }
}
'''


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_signed(SOURCE, tmp_path_factory.mktemp("src") / "hard.lwas")


class Served(Server):
    """Services + app + uvicorn (lwas.runtime.limits' protocol) on a free loopback port, in a thread."""

    def __init__(self, artifact: bytes, key, db: str, lim: Limits, read_auth: bool = False):
        super().__init__(artifact, key, db, read_auth=read_auth, limits=lim, env={"STRIPE_WEBHOOK_SECRET": SECRET})


@pytest.fixture(scope="module")
def server(compiled, tmp_path_factory):
    before = limits_mod._current
    limits_mod.configure(SMALL)  # what the protocol reads (the app gets it explicitly)
    s = Served(*compiled, str(tmp_path_factory.mktemp("db") / "l.db"), SMALL)
    yield s
    s.close()
    limits_mod._current = before


def raw(server: Served, data: bytes, *, wait: float = 5.0, pause: float = 0.0) -> tuple[bytes, float]:
    """Send `data` on a fresh connection, then read until the server closes it (or `wait` passes);
    (the bytes received, seconds from connect to close)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as s:
        if data:
            s.sendall(data)
        if pause:
            time.sleep(pause)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out, time.monotonic() - t0


def status_of(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1]) if resp.startswith(b"HTTP/1.1 ") else 0


def error_of(resp: bytes) -> dict:
    head, _, body = resp.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return json.loads(body)["error"]


def head(method: str, path: str, headers: dict) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def tx(id="t1", amount="12.50", metadata=None) -> dict:
    return {"id": id, "amount": amount, "currency": "USD", "metadata": metadata if metadata is not None else {}}


def signed(event: dict, t: int | None = None) -> tuple[bytes, dict]:
    body = json.dumps(event).encode()
    t = int(time.time()) if t is None else t
    sig = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={t},v1={sig}", "content-type": "application/json"}


def event(id="evt_1", created=None, amount=100) -> dict:
    return {"id": id, "type": "payment_intent.succeeded", "created": int(time.time()) if created is None else created,
            "data": {"object": {"object": "payment_intent", "id": "pi_1", "amount": amount, "currency": "usd"}}}


# ---------------------------------------------------------------- 1. body size

@pytest.mark.parametrize("path,headers", [("/tx", AUTH), ("/hook", {"Stripe-Signature": "t=1,v1=00"}),
                                          ("/echo/x", {})])
def test_declared_oversized_body_is_413_before_the_body_is_sent(server, path, headers):
    """Only the head is sent: the answer comes anyway, so the server read no body to decide."""
    method = "GET" if path.startswith("/echo") else "POST"
    resp, took = raw(server, head(method, path, {**headers, "Content-Type": "application/json",
                                                 "Content-Length": "200000000"}))
    assert status_of(resp) == 413, resp[:300]
    assert error_of(resp)["code"] == "body_too_large"
    assert b"connection: close" in resp.lower()
    assert took < 4  # closed by the server, not by our read timeout


@pytest.mark.parametrize("path,headers", [("/tx", AUTH), ("/hook", {"Stripe-Signature": "t=1,v1=00"})])
def test_chunked_oversized_body_is_413_at_the_limit(server, path, headers):
    chunk = b"x" * 4096
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))  # 12 KiB > 8 KiB, unterminated
    resp, took = raw(server, head("POST", path, {**headers, "Content-Type": "application/json",
                                                 "Transfer-Encoding": "chunked"}) + body)
    assert status_of(resp) == 413, resp[:300]
    assert error_of(resp)["code"] == "body_too_large"
    assert took < 4


def test_a_body_at_the_limit_is_read(server):
    pad = "p" * (SMALL.max_body_bytes - 200)
    body = json.dumps(tx("at-limit", metadata={"pad": pad})).encode()
    assert len(body) <= SMALL.max_body_bytes
    r = server.http.post("/tx", content=body, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- 4. headers: size and time

def test_oversized_headers_are_431(server):
    resp, took = raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (SMALL.max_header_bytes + 4096))
    assert status_of(resp) == 431, resp[:300]
    assert error_of(resp)["code"] == "headers_too_large"
    assert took < 4


def test_headers_below_the_limit_pass(server):
    r = server.http.get("/healthz", headers={"X-Pad": "a" * (SMALL.max_header_bytes // 2)})
    assert r.status_code == 200


def test_slow_headers_get_408_and_the_connection_closes(server):
    resp, took = raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", wait=10)
    assert status_of(resp) == 408 and error_of(resp)["code"] == "request_timeout"
    assert SMALL.header_timeout_s * 0.8 <= took < SMALL.header_timeout_s + 3


def test_an_idle_connection_is_closed(server):
    resp, took = raw(server, b"", wait=10)
    assert status_of(resp) == 408
    assert took < SMALL.header_timeout_s + 3


def test_a_slow_body_gets_408(server):
    resp, took = raw(server, head("POST", "/tx", {**AUTH, "Content-Type": "application/json",
                                                  "Content-Length": "100"}) + b'{"id":', wait=10)
    assert status_of(resp) == 408, resp[:300]
    assert took < SMALL.body_timeout_s + 3
    assert server.http.get("/readyz").status_code == 200  # and the server goes on


def test_connections_past_the_cap_get_a_json_503_and_the_server_goes_on(compiled, tmp_path):
    s = Served(*compiled, str(tmp_path / "c.db"), Limits(max_connections=3, header_timeout_s=5.0))
    try:
        idle = [socket.create_connection(("127.0.0.1", s.port), timeout=5) for _ in range(3)]
        time.sleep(0.3)  # accepted: the server holds three connections
        resp, _ = raw(s, head("GET", "/healthz", {}), wait=5)
        assert status_of(resp) == 503, resp[:300]
        assert error_of(resp)["code"] == "overloaded" and b"retry-after: 1" in resp.lower()
        for c in idle:
            c.close()
        deadline = time.monotonic() + 5
        while status_of(raw(s, head("GET", "/healthz", {"Connection": "close"}), wait=5)[0]) != 200:
            assert time.monotonic() < deadline, "the server did not take connections again"
            time.sleep(0.1)
    finally:
        s.close()


def test_keep_alive_requests_are_not_cut_by_the_header_timer(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        for _ in range(3):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
            time.sleep(SMALL.header_timeout_s * 0.7)  # 2.1 s in all, beyond one header timeout


# ---------------------------------------------------------------- 2. no 500 for the known cases; 5xx are JSON

def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@pytest.mark.parametrize("alg", [{"x": 1}, ["HS256"], 5, None])
def test_jwt_with_a_non_string_alg_is_401(server, alg):
    token = f"{b64({'alg': alg, 'typ': 'JWT'})}.{b64({'sub': 'a'})}.c2ln"
    r = server.http.post("/tx", json=tx(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"


def test_jwt_with_a_deeply_nested_header_is_401(server):
    header = base64.urlsafe_b64encode(b'{"alg":' + b"[" * 5000 + b"]" * 5000 + b"}").decode().rstrip("=")
    r = server.http.post("/tx", json=tx(), headers={"Authorization": f"Bearer {header}.{b64({})}.c2ln"})
    assert r.status_code == 401


@pytest.mark.parametrize("depth", [101, 1000, 3000])
def test_deep_json_is_400(server, depth):
    meta = "[" * depth + "]" * depth
    r = server.http.post("/tx", content=f'{{"id":"d","amount":1,"currency":"USD","metadata":{meta}}}',
                         headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json", r.text


def test_brackets_inside_strings_do_not_count_as_depth(server):
    r = server.http.post("/tx", json=tx("brackets", metadata={"s": "[" * 500 + "{" * 500}), headers=AUTH)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("amount", [{"amount": "1.00", "currency": "EUR"}, {"x": 1}, [1], True, None])
def test_flat_money_sent_as_anything_but_an_amount_is_422(server, amount):
    r = server.http.post("/tx", json={**tx("flat"), "amount": amount}, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["loc"][:2] == ["body", "amount"]


@pytest.mark.parametrize("ev,reason", [(event("evt_c", created=10 ** 20), "created"),
                                       (event("evt_n", amount=-5), "amount"),
                                       (event("evt_b", amount=2 ** 63), "amount")])
def test_odd_fields_in_a_signed_webhook_are_400(server, ev, reason):
    body, h = signed(ev)
    r = server.http.post("/hook", content=body, headers=h)
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_webhook", r.text
    assert reason in r.json()["error"]["message"]
    body, h = signed(event("evt_ok"))
    assert server.http.post("/hook", content=body, headers=h).status_code == 200


def test_an_unexpected_exception_is_a_json_500_logged_with_its_traceback(server, caplog):
    svc = server.services[0]

    def boom(*a, **k):
        raise KeyError("a bug")

    svc.read = boom  # an instance attribute shadows the method: GET routes call svc.read
    try:
        with caplog.at_level(logging.ERROR, logger="lwas.http"):
            r = server.http.get("/echo/x")
    finally:
        del svc.read
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "internal"
    assert any(rec.exc_info and "a bug" in str(rec.exc_info[1]) for rec in caplog.records)
    assert server.http.get("/echo/x").status_code == 200


# ---------------------------------------------------------------- 3. json fields and media types

def post_raw(server: Served, body: bytes, content_type: str | None = "application/json") -> httpx.Response:
    h = dict(AUTH)
    if content_type is not None:
        h["content-type"] = content_type
    return server.http.post("/tx", content=body, headers=h)


def test_json_field_numbers_out_of_double_range_are_422(server):
    for n in ("1e309", "-1e309", "1" * 310):
        r = post_raw(server, f'{{"id":"big","amount":1,"currency":"USD","metadata":{{"n":{n}}}}}'.encode())
        assert r.status_code in (400, 422), r.text  # 310 digits: beyond Python's int parsing (400)
        if r.status_code == 422:
            assert r.json()["error"]["details"][0]["type"] == "json_number"
    r = post_raw(server, b'{"id":"big","amount":1,"currency":"USD","metadata":{"n":1e308,"m":10e307}}')
    assert r.status_code == 200 and r.json()["metadata"] == {"m": 1e308, "n": 1e308}
    assert b'"n":1E+308' in r.content  # not 309 digits: canonical, and never longer than sent


def test_json_field_numbers_compare_canonically(server):
    first = post_raw(server, b'{"id":"canon","amount":1,"currency":"USD","metadata":{"n":2,"f":0.5}}')
    assert first.status_code == 200 and first.headers["lwas-ledger"] == "created"
    for retry in (b'{"n":2.0,"f":0.50}', b'{"f":5e-1,"n":2e0}', b'{"n":20E-1,"f":0.500}'):
        r = post_raw(server, b'{"id":"canon","amount":1.00,"currency":"USD","metadata":' + retry + b"}")
        assert r.status_code == 200 and r.headers["lwas-ledger"] == "exists", (retry, r.text)
    r = post_raw(server, b'{"id":"canon","amount":1,"currency":"USD","metadata":{"n":2.5,"f":0.5}}')
    assert r.status_code == 409


def test_json_field_lone_surrogates_are_422(server):
    r = post_raw(server, b'{"id":"sur","amount":1,"currency":"USD","metadata":{"s":"\\ud800"}}')
    assert r.status_code == 422 and r.json()["error"]["details"][0]["type"] == "text_unicode"
    r = post_raw(server, b'{"id":"sur","amount":1,"currency":"USD","metadata":{"\\udc00":1}}')
    assert r.status_code == 422


def test_duplicate_keys_are_400(server):
    for body in (b'{"id":"dup","id":"dup2","amount":1,"currency":"USD","metadata":{}}',
                 b'{"id":"dup","amount":1,"currency":"USD","metadata":{"a":1,"a":2}}'):
        r = post_raw(server, body)
        assert r.status_code == 400 and "twice" in r.json()["error"]["message"], r.text


def test_bodies_that_are_not_utf8_json_are_refused(server):
    doc = json.dumps(tx("enc"))
    assert post_raw(server, doc.encode("utf-16")).status_code == 400
    assert post_raw(server, doc.encode("utf-16-le")).status_code == 400
    assert post_raw(server, b"\xef\xbb\xbf" + doc.encode()).status_code == 400  # a BOM
    assert post_raw(server, doc.encode("latin-1") + b"\xff").status_code == 400
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16",
               "multipart/form-data; boundary=x"):
        r = post_raw(server, doc.encode(), ct)
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type", ct
    for ct in ("application/json", "application/json; charset=UTF-8", "Application/JSON", None):
        r = post_raw(server, json.dumps(tx(f"ok-{ct}")).encode(), ct)
        assert r.status_code == 200, (ct, r.text)


def test_ledger_keys_are_at_most_256_bytes(server):
    r = server.http.post("/tx", json=tx("é" * 128), headers=AUTH)  # 256 bytes of UTF-8
    assert r.status_code == 200, r.text
    r = server.http.post("/tx", json=tx("é" * 128 + "x"), headers=AUTH)
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [{"loc": ["body", "id"], "msg": "a ledger key is at most 256 bytes of UTF-8",
                                             "type": "key_too_long"}]


# ---------------------------------------------------------------- 6. every stored key can be proven

@pytest.mark.parametrize("key", ["", "a/b", "/lead/and/trail/", "k" * 256, "é ü?#%&+", "a%2Fb"])
def test_every_stored_key_can_be_proven(server, key):
    r = server.http.post("/tx", json=tx(key), headers=AUTH)
    assert r.status_code == 200, r.text
    r = server.http.get("/ledger/txs/proof/" + quote(key, safe=""))
    assert r.status_code == 200, (key, r.text)
    p = r.json()
    entry = base64.b64decode(p["entry"])
    assert hashlib.sha256(b"\x00" + entry).hexdigest() == p["leaf_hash"]
    assert key.encode() in entry
    assert server.http.get("/ledger/txs/proof/" + quote(key + "-missing", safe="")).status_code == 404


# ---------------------------------------------------------------- 5. read auth and configuration

def test_read_auth_covers_metrics_and_the_api_document(compiled, tmp_path):
    s = Served(*compiled, str(tmp_path / "l.db"), SMALL, read_auth=True)
    try:
        for path in ("/_lwas/metrics", "/metrics", "/openapi.json", "/docs"):
            r = s.http.get(path)
            assert r.status_code == 401 and r.json()["error"]["code"] == "missing_credentials", path
            assert s.http.get(path, headers=READ).status_code == 200, path
        assert s.http.get("/_lwas/swagger-ui/swagger-ui.css").status_code == 200  # public assets
        assert s.http.get("/healthz").status_code == 200
        doc = s.http.get("/openapi.json", headers=READ).json()
        assert doc["paths"]["/_lwas/metrics"]["get"]["security"] == [{"bearer": []}]
        assert "401" in doc["paths"]["/_lwas/metrics"]["get"]["responses"]
    finally:
        s.close()


@pytest.mark.parametrize("spec", ["nan", "inf", "nan:10", "10:nan", "10:inf", "-1", "0", "x"])
def test_bad_rate_limits_are_refused(spec):
    from lwas.runtime.serve import ServeError, rate_limiter

    with pytest.raises(ServeError, match="LWAS_RATE_LIMIT"):
        rate_limiter(spec)


@pytest.mark.parametrize("name,value", [("LWAS_MAX_BODY_BYTES", "nan"), ("LWAS_MAX_BODY_BYTES", "-1"),
                                        ("LWAS_MAX_BODY_BYTES", "0"), ("LWAS_MAX_BODY_BYTES", "1.5"),
                                        ("LWAS_MAX_HEADER_BYTES", "10"), ("LWAS_HEADER_TIMEOUT", "nan"),
                                        ("LWAS_HEADER_TIMEOUT", "inf"), ("LWAS_BODY_TIMEOUT", "0"),
                                        ("LWAS_BODY_TIMEOUT", "soon"), ("LWAS_REPORT_EVERY", "nan"),
                                        ("LWAS_REPORT_EVERY", "0"), ("LWAS_RATE_LIMIT", "nan"),
                                        ("LWAS_CALL_BUDGET_MS", "1.5"), ("LWAS_CALL_BUDGET_MS", "-1"),
                                        ("LWAS_MAX_CONNECTIONS", "0"), ("LWAS_MAX_CONNECTIONS", "many")])
def test_bad_settings_stop_the_start_with_their_name(monkeypatch, name, value):
    from lwas.runtime.serve import ServeConfig, ServeError, _settings

    monkeypatch.setenv(name, value)
    monkeypatch.setenv("LWAS_API_KEYS", f"{WRITER}:writer")
    monkeypatch.setattr(limits_mod, "_current", limits_mod._current)  # _settings configures the process's
    with pytest.raises(ServeError, match=name):
        _settings(ServeConfig(artifact="unused"))


def test_good_settings_are_taken(monkeypatch):
    from lwas.runtime.serve import ServeConfig, _settings

    monkeypatch.setenv("LWAS_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("LWAS_HEADER_TIMEOUT", "2.5")
    monkeypatch.setenv("LWAS_API_KEYS", f"{WRITER}:writer")
    monkeypatch.setattr(limits_mod, "_current", limits_mod._current)
    _settings(ServeConfig(artifact="unused"))
    assert limits_mod.current() == Limits(max_body_bytes=2048, header_timeout_s=2.5)


def test_bad_webhook_tolerance_is_refused_when_the_app_is_built(compiled, tmp_path, monkeypatch):
    art, program = load_verified(compiled[0], [compiled[1].public_key()])
    monkeypatch.setenv("STRIPE_WEBHOOK_TOLERANCE", "-5")
    store = open_store(str(tmp_path / "t.db"))
    svcs = [Service(program, d, store, compiled[1], b"d" * 64) for d in art.manifest["services"]]
    try:
        with pytest.raises(ValueError, match="STRIPE_WEBHOOK_TOLERANCE"):
            create_app(svcs, credentials=Credentials(), public_key_pem=b"")
    finally:
        store.close()


# ---------------------------------------------------------------- property: never a 5xx

_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
            | st.decimals(allow_nan=False, allow_infinity=False)  # exact numbers, huge exponents included
            | st.text(max_size=20)
            | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=8), inner, max_size=4), max_leaves=12)
_shaped = st.fixed_dictionaries({"id": _json, "amount": _json, "currency": _json, "metadata": _json})
_bodies = (_json.map(lambda v: _dumps(v)) | _shaped.map(lambda v: _dumps(v)) | st.binary(max_size=300)
           | st.integers(1, 400).map(lambda n: b"[" * n + b"]" * n))


def _dumps(v) -> bytes:
    import simplejson  # exact Decimals (1E+400 included); lone surrogates as \ud800 escapes

    return simplejson.dumps(v, use_decimal=True, allow_nan=True).encode()  # NaN, Infinity: not JSON, sent anyway


@pytest.fixture(scope="module")
def client(server):
    with TestClient(server.app, raise_server_exceptions=False) as c:
        yield c


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(body=_bodies, route=st.sampled_from(["/tx", "/hook"]),
       ctype=st.sampled_from(["application/json", "text/plain", None]))
def test_arbitrary_bodies_never_give_a_5xx(client, body, route, ctype):
    h = dict(AUTH)
    if ctype:
        h["content-type"] = ctype
    if route == "/hook":
        h["Stripe-Signature"] = signed({})[1]["Stripe-Signature"]
    r = client.post(route, content=body, headers=h)
    assert r.status_code < 500, (body[:200], r.status_code, r.text[:300])
    assert r.headers["content-type"] == "application/json"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ev=st.fixed_dictionaries({"id": _json, "type": _json, "created": _json,
                                 "data": st.fixed_dictionaries({"object": st.fixed_dictionaries(
                                     {"object": st.sampled_from(["payment_intent", "charge"]) | _json,
                                      "id": _json, "amount": _json, "currency": _json})}) | _json}))
def test_signed_webhooks_with_arbitrary_fields_never_give_a_5xx(client, ev):
    body = _dumps(ev)
    t = int(time.time())
    sig = hmac.new(SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    r = client.post("/hook", content=body, headers={"Stripe-Signature": f"t={t},v1={sig}"})
    assert r.status_code < 500, (body[:200], r.text[:300])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.text(max_size=200) | st.builds(
    lambda h, p: ".".join(base64.urlsafe_b64encode(_dumps(v)).decode().rstrip("=") for v in (h, p)) + ".c2ln",
    st.fixed_dictionaries({"alg": _json}) | _json, _json))
def test_arbitrary_bearer_tokens_never_give_a_5xx(client, token):
    if any(c in token for c in "\r\n\x00"):
        return  # not a header value a client can send
    h = {"Authorization": f"Bearer {token}".encode("utf-8", "surrogatepass")}  # UTF-8 bytes: read as latin-1
    r = client.post("/tx", json=tx("tok"), headers=h)
    assert r.status_code < 500, (token, r.text)


# ---------------------------------------------------------------- resources: a real subprocess

def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


def _flood(port: int, chunked: bool, path: str, total: int, deadline: float) -> None:
    """Send one request announcing or streaming `total` bytes; stop when the server closes."""
    h = {"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00", "Authorization": f"Bearer {WRITER}"}
    h.update({"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(total)})
    piece = b"[" * 262144
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(head("POST", path, h))
            sent = 0
            while sent < total and time.monotonic() < deadline:
                s.sendall(frame)
                sent += len(piece)
    except OSError:
        pass  # the server answered 413 and closed: exactly what is wanted


def test_peak_rss_stays_bounded_under_oversized_requests(tmp_path, monkeypatch):
    """`lwasc serve` (default limits: 1 MiB) gets 8 requests of 48 MB each, announced and chunked,
    on the webhook route and on a writer's route; its peak RSS (VmHWM) grows by less than 40 MB.
    Before the limit, the webhook route alone buffered each body whole (about 5x its size)."""
    from serving import lwasc, served

    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    for name in ("LWAS_MAX_BODY_BYTES", "LWAS_MAX_HEADER_BYTES", "LWAS_HEADER_TIMEOUT", "LWAS_BODY_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "hard.lwas"
    src.write_text(SOURCE)
    home = tmp_path / "home"
    home.mkdir()
    key = home / "k.pem"
    assert lwasc("keygen", key, home=home).returncode == 0
    with served(src, db=str(tmp_path / "l.db"), key=key, pubkey=Path(str(key) + ".pub"), home=home,
                api_key=WRITER) as srv:
        port = int(srv.url.rsplit(":", 1)[1])
        httpx.post(srv.url + "/tx", json=tx("warm"), headers=srv.auth, timeout=10)
        before = _vm(srv.proc.pid, "VmHWM")
        deadline = time.monotonic() + 60
        for i in range(8):
            _flood(port, chunked=bool(i % 2), path="/hook" if i < 4 else "/tx", total=48 << 20, deadline=deadline)
        assert time.monotonic() < deadline + 5
        grew = _vm(srv.proc.pid, "VmHWM") - before
        assert grew < 40 << 20, f"peak RSS grew by {grew >> 20} MB"
        r = httpx.post(srv.url + "/tx", json=tx("after"), headers=srv.auth, timeout=10)
        assert r.status_code == 200, r.text

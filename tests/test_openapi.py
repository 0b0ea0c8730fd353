"""The OpenAPI documents and /docs of the three services (and examples/bank.lwas, the one with
money objects), checked against what the servers actually do, over real HTTP on 127.0.0.1.

- Each /openapi.json passes openapi-spec-validator (OpenAPI 3.1) and every `$ref` resolves.
- Responses are exercised (every operation: without a key, with a reader's key, malformed and
  empty bodies, path and query values good and bad, plus schemathesis's generated requests): each
  status must be declared, the served Content-Type must be the declared media type exactly, and
  the body must validate against the declared schema.
- Named types are written once (the ISO 4217 list, records, money), bounds are exact integers,
  `http_status` is not in any response body, errors use the `Error` schema, and FastAPI's unused
  `HTTPValidationError` is gone.
- Security: the bearer scheme is declared on exactly the operations that answer 401 without a key.
- /docs: every asset it references is on this host and served with the right type, Swagger UI is
  a version that renders OpenAPI 3.1, and headless Chromium renders every operation while
  requesting nothing from another host.
- /openapi.json, /docs and its assets are counted under their own route labels in /_lwas/metrics.
"""
from __future__ import annotations

import json
import os
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from prometheus_client.parser import text_string_to_metric_families

from helpers import AUTH, BANK, READ, Server, compile_ok, compile_services, deref
from lwas.runtime.auth import RateLimiter
from lwas.semantics.types import CURRENCY_EXPONENTS
from stripe_standin import StripeStandIn
from test_payment import SECRET_KEY, Flow

SERVICES = ("economy", "payment", "telemetry")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
          "minItems", "maxItems", "minProperties", "maxProperties", "multipleOf")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """economy, payment, telemetry wired as `make run` wires them (payment's Stripe is the
    stand-in), and bank twice: as is, and with reads behind a key and a burst of one request."""
    arts, key = compile_services(*SERVICES)
    bank = compile_ok(path=BANK, key=key)
    tmp = tmp_path_factory.mktemp("openapi")
    with StripeStandIn(api_key=SECRET_KEY) as stripe_api, pytest.MonkeyPatch.context() as mp:
        flow = Flow((arts, key), tmp, stripe_api, mp)
        extra = []
        try:
            extra.append(Server(bank.artifact, key, str(tmp / "bank.db")))
            extra.append(Server(bank.artifact, key, str(tmp / "bank-closed.db"), read_auth=True,
                                limiter=RateLimiter(rate_per_s=0.01, burst=1)))
            yield {"economy": flow.economy, "payment": flow.payment, "telemetry": flow.telemetry,
                   "bank": extra[0], "bank-closed": extra[1]}
        finally:
            for s in extra:
                s.close()
            flow.close()


def spec(server: Server) -> dict:
    r = server.http.get("/openapi.json", headers=READ)  # bank-closed: the document needs a reader
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return json.loads(r.content)


def operations(doc: dict):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def walk(node, key=None):
    """(key, value) for every value in a JSON document (key: the name it is stored under)."""
    yield key, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, key)


def conforms(doc: dict, template: str, r: httpx.Response) -> httpx.Response:
    """`r` is what the document declares for its operation: a declared status (or `default`),
    exactly the declared media type, and a body that validates against the declared schema."""
    method = r.request.method.lower()
    responses = doc["paths"][template][method]["responses"]
    where = f"{method.upper()} {r.request.url.path} -> {r.status_code}"
    assert str(r.status_code) in responses or "default" in responses, f"{where} is not declared: {r.text[:300]}"
    declared = deref(doc, responses.get(str(r.status_code)) or responses["default"])
    served = r.headers.get("content-type")
    assert served in declared.get("content", {}), f"{where}: served {served!r}, declared {list(declared['content'])}"
    schema = declared["content"][served]["schema"]
    if served == "application/json":
        errors = sorted(Draft202012Validator({"components": doc["components"], **schema}).iter_errors(r.json()),
                        key=str)
        assert not errors, f"{where}: the body does not match the declared schema: {errors[0].message}"
    return r


def samples(schema: dict) -> list[str]:
    """Path or query values to try for a parameter: good and bad ones for its type."""
    if schema.get("type") == "integer":
        return ["1", "0", "x"]
    if "enum" in schema:
        return [schema["enum"][0], "nope"]
    return ["nope"]


@pytest.mark.parametrize("name", [*SERVICES, "bank", "bank-closed"])
def test_the_document_is_valid_openapi_3_1_and_every_ref_resolves(servers, name):
    doc = spec(servers[name])
    assert doc["openapi"].startswith("3.1.")
    validate_spec(doc)
    for key, value in walk(doc):
        if key == "$ref":
            assert deref(doc, {"$ref": value}), value


@pytest.mark.parametrize("name", [*SERVICES, "bank", "bank-closed"])
def test_every_exercised_response_has_the_declared_status_media_type_and_schema(servers, name):
    s = servers[name]
    doc = spec(s)
    seen = set()

    def check(template: str, r: httpx.Response):
        conforms(doc, template, r)
        seen.add((r.request.method, template, r.status_code))

    ledgers = s.http.get("/ledger", headers=AUTH).json()["ledgers"]
    for path, method, op in operations(doc):
        params = op.get("parameters", [])
        required_query = [p for p in params if p["in"] == "query" and p["required"]]
        path_params = [p for p in params if p["in"] == "path"]
        if method == "get" and not path_params and not required_query:
            check(path, s.http.get(path))
            check(path, s.http.get(path, headers=AUTH))
            for p in params:  # optional query parameters: a value of the wrong type
                if deref(doc, p["schema"]).get("type") == "integer":
                    check(path, s.http.get(path, params={p["name"]: "x"}, headers=AUTH))
        if path_params and path.startswith("/ledger/"):
            continue  # below, with real ledger names
        for p in path_params:
            for value in samples(deref(doc, p["schema"])):
                url = path.replace("{" + p["name"] + "}", value)
                check(path, s.http.request(method, url, headers=AUTH,
                                           **({"json": {}} if "requestBody" in op else {})))
        if "security" in op and not path_params:
            check(path, s.http.request(method, path, content=b"{}",
                                       headers={"content-type": "application/json"}))
            check(path, s.http.request(method, path, content=b"{}", headers={**READ, "content-type":
                                                                              "application/json"}))
        if "requestBody" in op and not path_params:
            for body in (b"{", b"{}", b"[]"):
                check(path, s.http.request(method, path, content=body,
                                           headers={**AUTH, "content-type": "application/json"}))
    for ledger in ledgers + ["nope"]:
        check("/ledger/{name}/checkpoint", s.http.get(f"/ledger/{ledger}/checkpoint", headers=AUTH))
        check("/ledger/{name}/proof/{key}", s.http.get(f"/ledger/{ledger}/proof/nope", headers=AUTH))
        for q in ({"first": 0, "second": 0}, {"first": 1, "second": 0}, {"first": "x", "second": 0}, {}):
            check("/ledger/{name}/consistency", s.http.get(f"/ledger/{ledger}/consistency", params=q, headers=AUTH))
    codes = {code for _, _, code in seen}
    assert {200, 404, 422} <= codes, seen
    if name != "bank-closed":
        assert {400, 401, 403} <= codes, seen
    if name == "bank":
        assert 500 in codes  # /average/0 divides by zero: a runtime fault, declared
    if name == "bank-closed":  # reads need a key, and a credential gets a burst of one request
        assert ("GET", "/summary", 401) in seen and ("GET", "/ledger", 401) in seen
        for _ in range(2):
            r = s.http.post("/transfers", json={}, headers=AUTH)
            check("/transfers", r)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_media_types_are_the_ones_served(servers):
    """Prometheus text and PEM are declared as such; the economy's own GET /metrics (its books,
    JSON) keeps the path, so the runtime's /metrics is not declared there."""
    for name in SERVICES:
        s = servers[name]
        doc = spec(s)
        for path in ("/_lwas/metrics", "/metrics", "/ledger/key"):
            r = s.http.get(path)
            assert r.status_code == 200
            conforms(doc, path, r)
        content = doc["paths"]["/_lwas/metrics"]["get"]["responses"]["200"]["content"]
        assert list(content) == [s.http.get("/_lwas/metrics").headers["content-type"]]
        assert list(content)[0].startswith("text/plain; version=")
        assert list(doc["paths"]["/ledger/key"]["get"]["responses"]["200"]["content"]) == ["application/x-pem-file"]
        metrics = doc["paths"]["/metrics"]["get"]
        if name == "economy":
            assert metrics["tags"] == ["economy"] and s.http.get("/metrics").json()["currency"] == "USD"
        else:
            assert metrics["tags"] == ["operations"] and "lwas_http_requests_total" in s.http.get("/metrics").text


def test_schemathesis_responses_conform_to_the_documents(servers):
    """Generated requests (valid and not) against each document over real HTTP: every response's
    status, Content-Type, headers and body conform to what the document declares."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import (content_type_conformance, response_headers_conformance,
                                     response_schema_conformance, status_code_conformance)

    checks = [status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance]
    failures = []
    for name in ("economy", "payment", "telemetry", "bank"):
        s = servers[name]
        schema = schemathesis.openapi.from_url(s.url + "/openapi.json")
        for path, method, _ in operations(spec(s)):
            op = schema[path][method.upper()]

            @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(op.as_strategy())
            def run(case):
                r = case.call(base_url=s.url, headers=AUTH)
                try:
                    case.validate_response(r, checks=checks)
                except BaseExceptionGroup as e:  # schemathesis's FailureGroup: one per distinct failure
                    failures.append(f"{name} {method.upper()} {path} -> {r.status_code}: {str(e)[:400]}")

            run()
    assert failures == []


def test_named_types_are_components_written_once(servers):
    """The ISO 4217 list appears at most once (bank has money objects: exactly once; it was
    inlined at every use), no record is written inline in an operation, and no two components
    are equal."""
    codes = sorted(CURRENCY_EXPONENTS)
    for name in (*SERVICES, "bank"):
        doc = spec(servers[name])
        lists = [v for k, v in walk(doc) if k == "enum" and v == codes]
        assert len(lists) == 1 if name == "bank" else len(lists) <= 1, (name, len(lists))
        for path, method, op in operations(doc):
            inline = [v for k, v in walk(op) if isinstance(v, dict) and "properties" in v]
            assert inline == [], f"{name} {method} {path} has an inline object schema"
        bodies = [json.dumps(s, sort_keys=True) for s in doc["components"]["schemas"].values()]
        assert len(bodies) == len(set(bodies)), name
    bank = spec(servers["bank"])["components"]["schemas"]
    assert bank["Money"]["properties"]["currency"] == {"$ref": "#/components/schemas/Currency"}
    assert bank["Currency"]["enum"] == codes
    assert bank["Transfer"]["properties"]["amount"] == {"$ref": "#/components/schemas/Money"}


def test_bounds_are_exact_integers(servers):
    for name in (*SERVICES, "bank"):
        raw = servers[name].http.get("/openapi.json").text
        doc = json.loads(raw)
        floats = [(k, v) for k, v in walk(doc) if k in BOUNDS and isinstance(v, float)]
        assert floats == [], (name, floats[:3])
        ints = [v for k, v in walk(doc) if k == "maximum" and isinstance(v, int) and v > 2 ** 53]
        assert ints and set(ints) == {2 ** 63 - 1}, (name, ints)  # every service has an int somewhere
        assert '"maximum": 9223372036854775807' in raw or '"maximum":9223372036854775807' in raw


def test_the_status_field_is_the_status_not_part_of_the_body(servers):
    """payment's records carry `http_status` to set the status: it is never sent, so no response
    schema lists it; the statuses it can choose are declared (`default`) with the same body."""
    s = servers["payment"]
    doc = spec(s)
    for path, method, op in operations(doc):
        for code, resp in op["responses"].items():
            for media in deref(doc, resp).get("content", {}).values():
                refs = [v for k, v in walk(media["schema"]) if k == "$ref"]
                for target in [deref(doc, {"$ref": r}) for r in refs] + [media["schema"]]:
                    assert "http_status" not in target.get("properties", {}), (method, path, code)
    r = conforms(doc, "/payments/{id}", s.http.get("/payments/pi_unknown"))
    assert r.status_code == 404 and "http_status" not in r.json() and r.json()["status"] == "unknown"
    assert "default" in doc["paths"]["/payments/{id}"]["get"]["responses"]


def test_errors_have_the_error_schema_and_fastapis_validation_error_is_gone(servers):
    for name in (*SERVICES, "bank"):
        doc = spec(servers[name])
        assert not {"HTTPValidationError", "ValidationError"} & set(doc["components"]["schemas"])
        error = doc["components"]["schemas"]["Error"]
        assert error["required"] == ["error"] and {"code", "message"} <= set(error["properties"]["error"]["required"])
        for path, method, op in operations(doc):
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    schema = deref(doc, resp)["content"]["application/json"]["schema"]
                    refs = [schema] + schema.get("anyOf", [])
                    assert {"$ref": "#/components/schemas/Error"} in refs, (name, method, path, code)
    # FastAPI's own validation (the ledger routes) answers in the same format
    r = servers["economy"].http.get("/ledger/transactions/consistency", params={"first": "x", "second": 1})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == ["query", "first"]
    r = servers["economy"].http.get("/no/such/path")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_security_is_declared_on_exactly_the_operations_that_need_a_key(servers):
    for name in (*SERVICES, "bank", "bank-closed"):
        s = servers[name]
        doc = spec(s)
        bearer = doc["components"]["securitySchemes"]["bearer"]
        assert bearer["type"] == "http" and bearer["scheme"] == "bearer"
        assert "security" not in doc  # no global requirement: health, metrics and docs stay open
        writes = 0
        for path, method, op in operations(doc):
            if "{" in path:
                continue  # needs real values; the others decide
            r = s.http.request(method, path, content=b"{}", headers={"content-type": "application/json"})
            if "security" in op:
                assert op["security"] == [{"bearer": []}]
                assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), (path, r.text)
                writes += method != "get"
            else:
                assert r.status_code != 401, (name, method, path)
        posts = [p for p, m, op in operations(doc) if m == "post" and "{" not in p  # a webhook is signed
                 and not any(q["in"] == "header" for q in op.get("parameters", []))]
        assert writes == len(posts) > 0, name
    closed = spec(servers["bank-closed"])["paths"]
    assert "security" in closed["/summary"]["get"] and "security" in closed["/ledger/{name}/checkpoint"]["get"]
    assert "security" not in spec(servers["bank"])["paths"]["/summary"]["get"]
    hook = spec(servers["payment"])["paths"]["/webhooks/stripe"]["post"]
    signature = [p for p in hook["parameters"] if p["in"] == "header"]
    assert "security" not in hook and [p["name"] for p in signature] == ["Stripe-Signature"]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def docs_assets(base: str, html: str) -> list[str]:
    """Every URL /docs makes the browser load: src/href attributes and the spec's `url:`."""
    p = _Links()
    p.feed(html)
    return [urljoin(base + "/docs", u) for u in p.urls + re.findall(r"url:\s*'([^']+)'", html)]


def test_docs_load_only_from_this_host_with_the_right_types(servers):
    s = servers["economy"]
    r = s.http.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "://" not in r.text  # no absolute URL at all, so nothing from a CDN
    urls = docs_assets(s.url, r.text)
    kinds = {}
    for u in urls:
        assert urlsplit(u).netloc == urlsplit(s.url).netloc, u
        a = httpx.get(u, timeout=20)
        assert a.status_code == 200, u
        kinds[Path(urlsplit(u).path).suffix] = a.headers["content-type"]
        if u.endswith(".js"):
            version = re.search(r'PACKAGE_VERSION:"(\d+)\.', a.text)
            assert version and int(version.group(1)) >= 5, "Swagger UI before 5 cannot render OpenAPI 3.1"
    assert kinds == {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                     ".png": "image/png", ".json": "application/json"}
    assert s.http.get("/_lwas/swagger-ui/index.html").status_code == 404  # only what the page loads


def test_docs_render_every_operation_in_chromium_without_other_hosts(servers):
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), \
        "needs Debian's chromium and chromium-driver: `make test` installs them (.ci/system-deps)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100",
              "--disable-gpu", "--no-first-run", "--disable-extensions", "--disable-background-networking",
              "--disable-component-update"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(20)
    try:
        for name in ("payment", "bank"):
            s = servers[name]
            want = len(list(operations(spec(s))))
            driver.get(s.url + "/docs")
            WebDriverWait(driver, 30).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= want
                or d.find_elements(By.CSS_SELECTOR, ".errors-wrapper"))
            assert not driver.find_elements(By.CSS_SELECTOR, ".errors-wrapper"), driver.page_source[:2000]
            assert len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) == want
            assert driver.find_elements(By.CSS_SELECTOR, ".btn.authorize")  # the bearer scheme
            loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
            assert loaded and all(urlsplit(u).netloc == urlsplit(s.url).netloc for u in loaded), loaded
    finally:
        driver.quit()


def _requests_by_route(server: Server) -> dict[tuple[str, str], float]:
    text = server.http.get("/_lwas/metrics").text
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "lwas_http_requests":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    k = (sample.labels["route"], sample.labels["status"])
                    out[k] = out.get(k, 0) + sample.value
    return out


def test_openapi_and_docs_are_counted_under_their_own_routes(servers):
    s = servers["telemetry"]
    before = _requests_by_route(s)
    for _ in range(3):
        s.http.get("/openapi.json")
    s.http.get("/docs")
    s.http.get("/_lwas/swagger-ui/swagger-ui.css")
    s.http.get("/no/such/path")
    want = {("/openapi.json", "200"): 3, ("/docs", "200"): 1, ("/_lwas/swagger-ui/{asset}", "200"): 1,
            ("(unmatched)", "404"): 1}  # (unmatched): only the path no route matches
    deadline = time.monotonic() + 10
    while True:  # a request is counted when its handler returns, which may be just after the client has it
        after = _requests_by_route(s)
        grew = {k: after.get(k, 0) - before.get(k, 0) for k in want}
        if grew == want or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert grew == want

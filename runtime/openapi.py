"""The OpenAPI document of a LwaS app, and `/docs` served without a CDN.

What the document promises, and why it is built this way:

* Service operations are generated from the route descriptors of the compiled artifact (each
  service's `routes` in the manifest), never written per service. Parameters, request bodies and
  response bodies come from the TypeDescs through `lwas.runtime.models.json_schema`: the same
  pydantic models that validate requests and render responses, so the schema cannot drift from
  the validator. A response record's status field (`http_status`) is the HTTP status, not part of
  the body, so it is left out of the body's schema; the statuses it can choose are the `default`
  response.
* The error responses of an operation are exactly those lwas.runtime.server can give for that
  kind of route (a body, parameters, guards, a write, an external call, a signed webhook, reads
  behind a key), all in the runtime's one error format, the `Error` schema
  (`{"error": {"code", "message", ...}}`).
* Security is the runtime's (lwas.runtime.auth): a bearer credential (API key or short-lived JWT)
  on every write, and on reads when the server requires it (`read_requires_auth`). A signed
  webhook's credential is its signature header, declared as a header parameter.
* Named types (records, money objects, enums, the ISO 4217 code list) are `components/schemas`,
  each written once and referenced with `$ref` (the currency list alone was ~2.5 KB per use).
  Equal schemas share an entry; different schemas with the same name get a numbered suffix.
* Media types are the ones served: Prometheus text for the metrics, PEM for the ledger key.
* The document is plain dicts and never passes through FastAPI's pydantic `OpenAPI` model, which
  types schema bounds as floats: `int`'s maximum 2**63 - 1 came out as 9.223372036854776e+18,
  not even the same number. FastAPI still generates the runtime's own routes (health, metrics,
  ledger audit); their responses are replaced by the accurate ones below.

`/docs` is Swagger UI 5 from the pinned `swagger-ui-bundle-v2` wheel, served by this process at
`/_lwas/swagger-ui/` (only the three files the page loads), with the online validator badge off,
so the page requests nothing from another host. (The original `swagger-ui-bundle` 1.1.0 ships
Swagger UI 4.15, which refuses to render an OpenAPI 3.1 document.)
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path

from lwas.runtime.models import json_schema

JSON = "application/json"
PEM = "application/x-pem-file"
PROMETHEUS = CONTENT_TYPE_LATEST  # what prometheus_client's generate_latest writes
BEARER = "bearer"
SIGNATURE_HEADERS = {"stripe": "Stripe-Signature"}  # signer (lwas.runtime.webhooks) -> its header

OPENAPI_URL = "/openapi.json"
DOCS_URL = "/docs"
ASSETS_URL = "/_lwas/swagger-ui"
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8",
               "swagger-ui.css": "text/css; charset=utf-8",
               "favicon-32x32.png": "image/png"}

_REF = "#/components/schemas/"


def ref(name: str) -> dict:
    return {"$ref": _REF + name}


# ---------------------------------------------------------------- schemas of the runtime itself

_HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_SIZE = {"type": "integer", "minimum": 0}

RUNTIME_SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "description": "Every error the runtime answers: a stable `code`, a `message` for people, and "
                       "fields that depend on the code.",
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "stable and machine-readable (each response lists its codes)"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": ref("Problem"), "description": "invalid_request: each problem"},
            "rule": {"type": "string", "description": "guard_refused: the rule"},
            "truth": {"type": "number", "description": "guard_refused: how far the rule held"},
            "threshold": {"type": "number", "description": "guard_refused: what the route requires"},
            "kind": {"type": "string", "description": "runtime_error, conflict: the fault's kind"},
            "position": {"anyOf": [ref("SourcePosition"), {"type": "null"}]},
            "ledgers": {"type": "array", "items": {"type": "string"}, "description": "unknown_ledger: the ledgers"},
        }}},
    },
    "Problem": {
        "type": "object", "required": ["loc", "msg", "type"],
        "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                               "description": "where: body, path or query, then the field path"},
                       "msg": {"type": "string"}, "type": {"type": "string"}},
    },
    "SourcePosition": {
        "type": "object", "required": ["file", "line", "col"],
        "properties": {"file": {"type": "string"}, "line": {"type": "integer"}, "col": {"type": "integer"}},
    },
    "Alive": {"type": "object", "required": ["status"], "properties": {"status": {"const": "alive"}}},
    "Ready": {"type": "object", "required": ["status", "services"],
              "properties": {"status": {"const": "ready"}, "services": {"type": "array", "items": {"type": "string"}}}},
    "LedgerNames": {"type": "object", "required": ["ledgers"],
                    "properties": {"ledgers": {"type": "array", "items": {"type": "string"}}}},
    "Checkpoint": {
        "type": "object", "required": ["origin", "tree_size", "root_hash", "checkpoint"],
        "properties": {"origin": {"type": "string"}, "tree_size": _SIZE, "root_hash": _HEX,
                       "checkpoint": {"type": "string", "description": "the signed note (C2SP tlog-checkpoint)"}},
    },
    "InclusionProof": {
        "type": "object",
        "required": ["leaf_index", "tree_size", "leaf_hash", "entry", "audit_path", "checkpoint"],
        "properties": {"leaf_index": _SIZE, "tree_size": _SIZE, "leaf_hash": _HEX,
                       "entry": {"type": "string", "contentEncoding": "base64", "description": "the entry's bytes"},
                       "audit_path": {"type": "array", "items": _HEX, "description": "RFC 9162 inclusion proof"},
                       "checkpoint": {"type": "string", "description": "the signed note at tree_size"}},
    },
    "ConsistencyProof": {
        "type": "object", "required": ["first", "second", "proof"],
        "properties": {"first": _SIZE, "second": _SIZE,
                       "proof": {"type": "array", "items": _HEX, "description": "RFC 9162 consistency proof"}},
    },
}

SECURITY_SCHEMES = {BEARER: {
    "type": "http", "scheme": "bearer",
    "description": "An API key, or a JWT (EdDSA or HS256, at most 15 minutes between iat and exp) with a "
                   "`role` claim. Roles: reader < writer < admin; writes need writer."}}


# ---------------------------------------------------------------- components

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")


class Components:
    """`components` under construction. `of(desc)` is a TypeDesc's schema with every named type
    hoisted into `schemas` (bottom-up, so nested types are references too); `response(name, r)`
    shares a response that does not depend on the route."""

    def __init__(self, fixed: dict[str, dict]):
        self.named: dict[str, dict] = dict(fixed)
        self._by_content = {_canonical(s): n for n, s in fixed.items()}
        self.responses: dict[str, dict] = {}
        self._responses_by_content: dict[str, str] = {}

    def of(self, desc: Any) -> dict:
        return self.hoist(json_schema(desc))

    def hoist(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        out = {}
        for k, v in node.items():
            if k in _SCHEMA_MAPS and isinstance(v, dict):
                out[k] = {name: self.hoist(s) for name, s in v.items()}
            elif k in _SCHEMA_LISTS and isinstance(v, list):
                out[k] = [self.hoist(s) for s in v]
            elif k in _SCHEMA_ONE:
                out[k] = self.hoist(v)
            else:
                out[k] = v
        name = _type_name(out)
        return ref(self.add(name, out)) if name else out

    def add(self, name: str, schema: dict) -> str:
        return _unique(self.named, self._by_content, name, schema)

    def response(self, name: str, response: dict) -> dict:
        """A reference to `response` in components/responses (a numbered name if `name` is taken
        by a different response)."""
        name = _unique(self.responses, self._responses_by_content, name, response)
        return {"$ref": "#/components/responses/" + name}


def _unique(named: dict, by_content: dict, name: str, value: dict) -> str:
    """The name `value` has (or gets) in `named`: equal values share one, different ones with the
    same name get a numbered suffix."""
    key = _canonical(value)
    if key in by_content:
        return by_content[key]
    n, i = name, 2
    while n in named:
        n, i = f"{name}_{i}", i + 1
    named[n] = value
    by_content[key] = n
    return n


def _type_name(s: dict) -> str | None:
    """The component name of a named type, else None. models renders records and money as pydantic
    models (objects with a title) and enums, the currency list included, as titled string enums."""
    title = s.get("title")
    if not isinstance(title, str):
        return None
    named = (s.get("type") == "object" and "properties" in s) or (s.get("type") == "string" and "enum" in s)
    return re.sub(r"[^A-Za-z0-9._-]", "_", title) if named else None


def _canonical(schema: dict) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- responses

HEADERS = {  # components/headers
    "WWW-Authenticate": {"description": "the Bearer challenge (RFC 6750 §3)", "schema": {"type": "string"}},
    "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 1}},
    "LwaS-Ledger": {"description": "`created`: an entry was appended; `exists`: every append was a retry of a "
                                   "recorded entry; `none`: nothing to append",
                    "schema": {"type": "string", "enum": ["created", "exists", "none"]}},
}
_WWW_AUTHENTICATE, _RETRY_AFTER, _LEDGER_HEADER = ({h: {"$ref": "#/components/headers/" + h}} for h in HEADERS)


def ok(schema: dict, media: str = JSON, description: str = "OK", headers: dict | None = None) -> dict:
    out = {"description": description, "content": {media: {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


class _Errors:
    """Error responses for one operation: the Error schema, shared in components/responses under
    `name`. With `alt` (the route's own body, which a handler that sets its status can send with
    any status) a response is `Error` or that body, written in place."""

    def __init__(self, components: Components, alt: dict | None = None):
        self.components, self.alt = components, alt

    def __call__(self, name: str, description: str, *codes: str, headers: dict | None = None) -> dict:
        schema = ref("Error") if self.alt is None else {"anyOf": [ref("Error"), self.alt]}
        out = {"description": f"{description} ({', '.join(f'`{c}`' for c in codes)})",
               "content": {JSON: {"schema": schema}}}
        if headers:
            out["headers"] = headers
        return out if self.alt is not None else self.components.response(name, out)

    def auth(self) -> dict:
        return {"401": self("Unauthorized", "no valid bearer credential", "missing_credentials",
                            "malformed_credentials", "invalid_credentials", "token_expired",
                            "token_lifetime_too_long", headers=_WWW_AUTHENTICATE),
                "403": self("Forbidden", "the credential's role is not enough", "forbidden")}


def _sorted(responses: dict) -> dict:
    return dict(sorted(responses.items(), key=lambda kv: (kv[0] == "default", kv[0])))


def needs_key(route: dict, read_auth: bool) -> bool:
    """Whether lwas.runtime.server checks a bearer credential on this generated route."""
    return not route.get("signed") and (route["mutating"] or read_auth)


def service_responses(route: dict, body: dict, read_auth: bool, components: Components) -> dict:
    """The responses lwas.runtime.server can give on a generated route whose 200 body is `body`."""
    signed, mutating, status_field = route.get("signed"), route["mutating"], route.get("status_field")
    writes = mutating or route.get("external")  # through the writer or an external call: an Outcome
    err = _Errors(components, body if status_field else None)
    headers = _LEDGER_HEADER if writes else None
    out = {"200": ok(body, headers=headers)}
    if status_field:
        out["default"] = ok(body, headers=headers, description="the HTTP status the handler set in the "
                                                               "record's status field (not sent), with the same body")
    if signed:
        out["400"] = err("BadWebhook", "the webhook is refused: a bad signature, a timestamp outside the "
                                       "tolerance, or not an event", "bad_webhook")
    elif route["body"] is not None:
        out["400"] = err("MalformedJson", "the body is not JSON (UTF-8, no byte order mark, nested at most "
                                          "100 levels, no key twice in an object)", "malformed_json")
        out["415"] = err("UnsupportedMediaType", "the body is not application/json in UTF-8",
                         "unsupported_media_type")
    if signed or route["body"] is not None:
        out["413"] = err("BodyTooLarge", "the body is larger than the server's limit (LWAS_MAX_BODY_BYTES)",
                         "body_too_large")
    if needs_key(route, read_auth):
        out.update(err.auth())
        out["429"] = err("RateLimited", "too many requests for this credential", "rate_limited",
                         headers=_RETRY_AFTER)
    invalid = not signed and bool(route["path_params"] or route.get("query") or route["body"] is not None)
    guarded = bool(route.get("guards"))
    if invalid or guarded:
        out["422"] = err("InvalidRequest" if not guarded else "GuardRefused" if not invalid else "Refused",
                         "the request does not match the route's types, or a guard refused it",
                         *(["invalid_request"] if invalid else []), *(["guard_refused"] if guarded else []))
    if mutating:
        out["409"] = err("Conflict", "the ledger key already holds another entry", "conflict")
    out["500"] = err("Fault", "a runtime fault in the handler (the service keeps serving), a response that "
                              "cannot be rendered, or an internal error (logged)", "runtime_error", "bad_response",
                     "internal")
    if signed or writes:
        codes = (["webhooks_unavailable"] if signed else []) + (["unavailable"] if writes else [])
        out["503"] = err("WebhookUnavailable" if signed else "Unavailable",
                         "the store (or the webhook secret) is not available: nothing was written", *codes,
                         headers=_RETRY_AFTER if writes else None)
    return _sorted(out)


def _runtime_responses(path: str, read_auth: bool, components: Components) -> tuple[str, dict, bool] | None:
    """(summary, responses, whether it is a read behind read_requires_auth: ledger and metrics) of one of the
    runtime's own routes in lwas.runtime.server, or None for a route this table does not know."""
    err = _Errors(components)
    prometheus = ok({"type": "string"}, PROMETHEUS, "Prometheus text exposition")
    unknown_ledger = {"404": err("UnknownLedger", "no ledger by that name", "unknown_ledger")}
    table = {
        "/healthz": ("The process is alive", {"200": ok(ref("Alive"))}, False),
        "/readyz": ("The ledger store is reachable", {
            "200": ok(ref("Ready")), "503": err("NotReady", "the ledger store is not reachable", "not_ready")}, False),
        "/_lwas/metrics": ("Prometheus metrics (scrape this one)", {"200": prometheus}, True),
        "/metrics": ("Prometheus metrics (while no service declares GET /metrics)", {"200": prometheus}, True),
        "/ledger/key": ("The public key of the ledgers' checkpoints", {
            "200": ok({"type": "string"}, PEM, "the Ed25519 public key (PEM)")}, False),
        "/ledger": ("The ledgers' names", {"200": ok(ref("LedgerNames"))}, True),
        "/ledger/{name}/checkpoint": ("A ledger's signed tree head", {
            "200": ok(ref("Checkpoint")), **unknown_ledger}, True),
        "/ledger/{name}/proof/{key}": ("An entry and its inclusion proof", {
            "200": ok(ref("InclusionProof")),
            "404": err("UnknownLedgerOrKey", "no ledger by that name, or no entry with that key",
                       "unknown_ledger", "unknown_key")}, True),
        "/ledger/{name}/consistency": ("A consistency proof between two tree sizes", {
            "200": ok(ref("ConsistencyProof")), **unknown_ledger,
            "422": err("BadRange", "first and second are not integers with 0 <= first <= second <= the "
                                   "ledger's size", "invalid_request", "bad_range")}, True),
    }
    hit = table.get(path)
    if hit is None:
        return None
    summary, responses, reads = hit
    if reads and read_auth:
        responses = {**responses, **err.auth()}
    return summary, _sorted(responses), reads


# ---------------------------------------------------------------- operations and the document

def service_operation(service: str, route: dict, components: Components, read_auth: bool) -> dict:
    """The OpenAPI operation of one route descriptor (lwas.semantics.service builds them)."""
    method, path = route["method"], route["path"]
    handler = route["handler"].replace("$", "_")  # FastAPI's operationId for it, as before
    op: dict[str, Any] = {"tags": [service], "summary": route.get("doc") or f"{method} {path}",
                          "operationId": re.sub(r"\W", "_", handler + path) + "_" + method.lower()}
    params = [{"name": n, "in": "path", "required": True, "schema": components.of(d)}
              for n, d in route["path_params"]]
    for name, desc, default in route.get("query") or []:
        schema = components.of(desc)
        params.append({"name": name, "in": "query", "required": default is None,
                       "schema": schema if default is None else {**schema, "default": default}})
    signed = route.get("signed")
    if signed:
        params.append({"name": SIGNATURE_HEADERS.get(signed, "Signature"), "in": "header", "required": True,
                       "description": f"the {signed} signature over the raw body: the webhook's credential",
                       "schema": {"type": "string"}})
    if params:
        op["parameters"] = params
    if signed:  # the sender's own format, authenticated by its signature header
        op["requestBody"] = {"required": True, "description": f"a {signed} webhook event, signed",
                             "content": {JSON: {"schema": {"type": "object"}}}}
    elif route["body"] is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": components.of(route["body"][1])}}}
    op["responses"] = service_responses(route, components.of(sent_body(route)), read_auth, components)
    if needs_key(route, read_auth):
        op["security"] = [{BEARER: []}]
    return op


def sent_body(route: dict) -> Any:
    """The TypeDesc of the body actually sent: the response record less its status field."""
    desc, field = route["response"], route.get("status_field")
    if field is None:
        return desc
    return {**desc, "fields": [f for f in desc["fields"] if f[0] != field]}


def runtime_operation(path: str, op: dict, read_auth: bool, components: Components) -> dict:
    """One of the runtime's own operations as FastAPI generated it, with its real responses."""
    op = dict(op)
    hit = _runtime_responses(path, read_auth, components)
    if hit is None:  # not in the table: keep FastAPI's answer, but its 422 is ours
        invalid = _Errors(components)("InvalidRequest", "the request does not match the route's types",
                                      "invalid_request")
        op["responses"] = {k: (invalid if k == "422" else v) for k, v in op.get("responses", {}).items()}
        return op
    op["summary"], op["responses"], reads = hit
    if reads and read_auth:
        op["security"] = [{BEARER: []}]
    return op


def document(app: FastAPI, services: list, read_auth: bool) -> dict:
    """The OpenAPI document: the services' routes (in declaration order), then the runtime's."""
    base = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = Components(RUNTIME_SCHEMAS)
    paths: dict[str, dict] = {}
    for svc in services:
        for route in svc.desc["routes"]:
            paths.setdefault(route["path"], {})[route["method"].lower()] = \
                service_operation(svc.name, route, components, read_auth)
    for path, ops in base.get("paths", {}).items():
        for method, op in ops.items():  # a service's own route answers first: it keeps the path
            if method not in paths.setdefault(path, {}):
                paths[path][method] = runtime_operation(path, op, read_auth, components)
    for name, s in base.get("components", {}).get("schemas", {}).items():
        if name not in ("HTTPValidationError", "ValidationError"):  # FastAPI's; never sent here
            components.named.setdefault(name, s)
    return {"openapi": base["openapi"], "info": base["info"], "paths": paths,
            "components": {"schemas": components.named, "responses": dict(sorted(components.responses.items())),
                           "headers": HEADERS, "securitySchemes": SECURITY_SCHEMES}}


# ---------------------------------------------------------------- serving it

def install(app: FastAPI, services: list, read_auth: bool, guard=None) -> None:
    """Adds /openapi.json, /docs and the Swagger UI assets to `app` (as ordinary routes, so the
    request metrics count them under their own paths). Call after every other route is added:
    the document is built here, once, so a schema that cannot be built stops the start.
    `guard(request)`: None, or the error response to send instead (lwas.runtime.server's read
    guard: with read_requires_auth the document and /docs need a reader's credential; the Swagger
    UI assets, public code, do not)."""
    doc = document(app, services, read_auth)
    body = json.dumps(doc, ensure_ascii=False).encode()
    app.openapi = lambda: doc  # what FastAPI and in-process tools (schemathesis) read

    async def refused(request: Request):
        return None if guard is None else await guard(request)

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_json(request: Request):
        if (bad := await refused(request)) is not None:
            return bad
        return Response(body, media_type=JSON)

    @app.get(DOCS_URL, include_in_schema=False)
    async def docs(request: Request):
        if (bad := await refused(request)) is not None:
            return bad
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=root + OPENAPI_URL, title=f"{app.title} - API",
                                   swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io

    @app.get(ASSETS_URL + "/{asset}", include_in_schema=False)
    async def swagger_ui_asset(asset: str):
        media = DOCS_ASSETS.get(asset)
        if media is None:
            raise HTTPException(404, f"no Swagger UI asset named {asset!r}")
        return FileResponse(SWAGGER_UI_DIR / asset, media_type=media,
                            headers={"Cache-Control": "public, max-age=86400"})

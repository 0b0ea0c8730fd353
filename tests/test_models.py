"""runtime/models.py: strict JSON <-> LwaS values, every rejection's location and message, JSON
Schema, and properties (round trip; arbitrary JSON only ever raises BodyError)."""
from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwas.runtime.models import (BodyError, json_schema, parse_body, parse_value, request_model,
                                 to_json, to_minor)
from lwas.runtime.values import Money

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
UTC = timezone.utc

TX = {"record": "ledger.Transaction", "fields": [
    ["id", "int"], ["rate", "float"], ["trust", "truth"], ["ok", "bool"], ["memo", "text"],
    ["at", "time"], ["price", {"money": "USD"}], ["fee", {"money": None}],
    ["kind", {"enum": "TxType", "variants": ["Credit", "Debit"]}], ["tags", {"array": "text"}],
    ["party", {"record": "ledger.Party", "fields": [["name", "text"], ["score", "int"]]}],
]}
GOOD = ('{"id": 7, "rate": 1.5, "trust": 0.25, "ok": true, "memo": "hi", '
        '"at": "2026-11-25T23:00:00+01:00", "price": {"amount": 99.99, "currency": "USD"}, '
        '"fee": {"amount": "500", "currency": "JPY"}, "kind": "Debit", "tags": ["a", "b"], '
        '"party": {"name": "Ann", "score": -3}}')


def good() -> dict:
    return json.loads(GOOD, parse_float=Decimal)


def errors_of(desc, obj) -> list[dict]:
    with pytest.raises(BodyError) as ei:
        parse_value(desc, obj)
    return ei.value.errors


def test_good_body_gives_lwas_values_in_declaration_order():
    v = parse_body(TX, good())
    assert list(v) == [f for f, _ in TX["fields"]]
    assert v["id"] == 7 and v["rate"] == 1.5 and v["trust"] == 0.25 and v["ok"] is True
    assert v["at"] == datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    assert v["price"] == Money(9999, "USD") and v["fee"] == Money(500, "JPY")
    assert v["kind"] == "Debit" and v["tags"] == ["a", "b"]
    assert v["party"] == {"name": "Ann", "score": -3}


def test_to_json_forms():
    out = to_json(TX, parse_body(TX, good()))
    assert out["price"] == {"amount": "99.99", "currency": "USD", "minor": 9999}
    assert out["fee"] == {"amount": "500", "currency": "JPY", "minor": 500}
    assert out["at"] == "2026-11-25T22:00:00Z"
    assert list(out) == [f for f, _ in TX["fields"]]
    assert to_json("time", datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "2026-01-02T03:04:05.000006Z"
    assert to_json({"money": None}, Money(-5, "KWD"))["amount"] == "-0.005"
    assert to_json({"money": None}, Money(-123, "USD"))["amount"] == "-1.23"
    assert to_json({"money": None}, Money(12345, "CLF"))["amount"] == "1.2345"
    assert [to_json("float", x) for x in (math.nan, math.inf, -math.inf)] == ["NaN", "Infinity", "-Infinity"]
    assert math.isnan(parse_value("float", "NaN")) and parse_value("float", "-Infinity") == -math.inf
    json.dumps(out, allow_nan=False)  # strictly valid JSON


def replace(path, value):
    obj = good()
    node = obj
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return obj


def drop(path):
    obj = good()
    node = obj
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return obj


def add(path, key, value):
    obj = good()
    node = obj
    for p in path:
        node = node[p]
    node[key] = value
    return obj


D = Decimal
REJECT = [
    # (body, loc, type, part of the message)
    (add([], "extra", 1), ["extra"], "extra_forbidden", "Extra inputs"),
    (add(["party"], "extra", 1), ["party", "extra"], "extra_forbidden", "Extra inputs"),
    (add(["price"], "cents", 1), ["price", "cents"], "extra_forbidden", "Extra inputs"),
    (drop(["memo"]), ["memo"], "missing", "Field required"),
    (drop(["party", "score"]), ["party", "score"], "missing", "Field required"),
    (drop(["price", "currency"]), ["price", "currency"], "missing", "Field required"),
    (replace(["id"], True), ["id"], "int_type", "JSON integer"),
    (replace(["id"], "7"), ["id"], "int_type", "JSON integer"),
    (replace(["id"], 7.0), ["id"], "float_not_allowed", "send a decimal"),
    (replace(["id"], D("7.5")), ["id"], "int_fraction", "fraction"),
    (replace(["id"], 2 ** 63), ["id"], "int_range", "64-bit"),
    (replace(["id"], -(2 ** 63) - 1), ["id"], "int_range", "64-bit"),
    (replace(["id"], D("1E+400")), ["id"], "int_range", "64-bit"),
    (replace(["id"], None), ["id"], "int_type", "JSON integer"),
    (replace(["rate"], True), ["rate"], "float_type", "JSON number"),
    (replace(["rate"], "1.5"), ["rate"], "float_type", "JSON number"),
    (replace(["rate"], D("1E+400")), ["rate"], "float_range", "float range"),
    (replace(["rate"], math.inf), ["rate"], "float_type", "non-finite"),
    (replace(["trust"], D("1.01")), ["trust"], "truth_range", "between 0 and 1"),
    (replace(["trust"], -1), ["trust"], "truth_range", "between 0 and 1"),
    (replace(["trust"], False), ["trust"], "truth_type", "truth"),
    (replace(["trust"], "NaN"), ["trust"], "truth_type", "truth"),
    (replace(["ok"], 1), ["ok"], "bool_type", "true or false"),
    (replace(["ok"], "true"), ["ok"], "bool_type", "true or false"),
    (replace(["memo"], 5), ["memo"], "text_type", "string"),
    (replace(["memo"], "\ud800"), ["memo"], "text_unicode", "surrogate"),
    (replace(["at"], "2026-11-25T22:00:00"), ["at"], "time_format", "offset"),
    (replace(["at"], "2026-11-25"), ["at"], "time_format", "RFC 3339"),
    (replace(["at"], "2026-11-25T22:00:00+1:00"), ["at"], "time_format", "RFC 3339"),
    (replace(["at"], "2026-11-25T22:00:00+24:00"), ["at"], "time_format", "offset"),
    (replace(["at"], "2026-02-30T22:00:00Z"), ["at"], "time_value", "date"),
    (replace(["at"], "2026-11-25T22:00:60Z"), ["at"], "time_value", "date"),
    (replace(["at"], "2026-11-25T22:00:00.0000001Z"), ["at"], "time_precision", "microsecond"),
    (replace(["at"], "0001-01-01T00:00:00+01:00"), ["at"], "time_value", "date"),
    (replace(["at"], 1764108000), ["at"], "time_type", "RFC 3339"),
    (replace(["price", "amount"], D("99.999")), ["price", "amount"], "money_precision", "at most 2"),
    (replace(["price", "amount"], "99.999"), ["price", "amount"], "money_precision", "at most 2"),
    (replace(["price", "amount"], 99.99), ["price", "amount"], "float_not_allowed", "send a decimal"),
    (replace(["price", "amount"], True), ["price", "amount"], "money_amount", "number"),
    (replace(["price", "amount"], "1e3"), ["price", "amount"], "money_amount", "decimal"),
    (replace(["price", "amount"], " 1"), ["price", "amount"], "money_amount", "decimal"),
    (replace(["price", "amount"], "١٢"), ["price", "amount"], "money_amount", "decimal"),
    (replace(["price", "amount"], D("1E+17")), ["price", "amount"], "money_range", "64 bits"),
    (replace(["price", "amount"], "92233720368547758.08"), ["price", "amount"], "money_range", "64 bits"),
    (replace(["price", "currency"], "EUR"), ["price", "currency"], "money_currency", "USD"),
    (replace(["price", "minor"], 9998), ["price", "minor"], "money_minor", "agree"),
    (replace(["fee", "currency"], "XAU"), ["fee", "currency"], "money_currency", "ISO 4217"),
    (replace(["fee", "currency"], "usd"), ["fee", "currency"], "money_currency", "ISO 4217"),
    (replace(["fee", "amount"], "500.5"), ["fee", "amount"], "money_precision", "JPY amounts have at most 0"),
    (replace(["price"], "99.99 USD"), ["price"], "model_type", ""),
    (replace(["kind"], "debit"), ["kind"], "enum", "Credit, Debit"),
    (replace(["kind"], 1), ["kind"], "enum", "Credit, Debit"),
    (replace(["tags"], "ab"), ["tags"], "list_type", "list"),
    (replace(["tags"], {"0": "a"}), ["tags"], "list_type", "list"),
    (replace(["tags", 1], 3), ["tags", 1], "text_type", "string"),
    (replace(["party"], []), ["party"], "model_type", ""),
    (replace(["party", "score"], D("0.5")), ["party", "score"], "int_fraction", "fraction"),
]


@pytest.mark.parametrize("body,loc,kind,msg", REJECT, ids=[f"{'.'.join(map(str, r[1]))}:{r[2]}" for r in REJECT])
def test_rejections(body, loc, kind, msg):
    with pytest.raises(BodyError) as ei:
        parse_body(TX, body)
    errs = ei.value.errors
    assert len(errs) == 1, errs
    assert errs[0]["loc"] == loc and errs[0]["type"] == kind and msg in errs[0]["msg"]
    assert set(errs[0]) == {"loc", "msg", "type"}  # no input (secrets), no url


def test_non_object_body_and_several_errors():
    (e,) = errors_of(TX, [1])
    assert e["loc"] == [] and e["type"] == "model_type"
    errs = errors_of(TX, {})
    assert len(errs) == len(TX["fields"]) and {e["type"] for e in errs} == {"missing"}


def test_rejected_secret_input_is_not_echoed():
    e = errors_of(TX, replace(["id"], "sk_live_SECRET"))
    assert "SECRET" not in json.dumps(e)
    with pytest.raises(BodyError) as ei:
        parse_body(TX, replace(["id"], "sk_live_SECRET"))
    assert "SECRET" not in str(ei.value) and "SECRET" not in repr(ei.value)


ACCEPT = [
    ("int", D("5.0"), 5), ("int", D("1E+2"), 100), ("int", INT_MIN, INT_MIN), ("int", INT_MAX, INT_MAX),
    ("float", 3, 3.0), ("float", D("0.1"), 0.1), ("float", 0.5, 0.5), ("truth", 1, 1.0), ("truth", D("0"), 0.0),
    ("time", "2026-11-25t22:00:00.5z", datetime(2026, 11, 25, 22, 0, 0, 500000, tzinfo=UTC)),
    ("time", "2026-11-25T22:00:00.1234560-00:00", datetime(2026, 11, 25, 22, 0, 0, 123456, tzinfo=UTC)),
    ("time", "2026-11-26T03:30:00+05:30", datetime(2026, 11, 25, 22, 0, tzinfo=UTC)),
    ("time", "9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ({"money": "USD"}, {"amount": D("99.990"), "currency": "USD"}, Money(9999, "USD")),
    ({"money": "USD"}, {"amount": "-0.01", "currency": "USD"}, Money(-1, "USD")),
    ({"money": "USD"}, {"amount": D("-0.00"), "currency": "USD"}, Money(0, "USD")),
    ({"money": "USD"}, {"amount": "0." + "0" * 40, "currency": "USD"}, Money(0, "USD")),
    ({"money": "USD"}, {"amount": 5, "currency": "USD", "minor": 500}, Money(500, "USD")),
    ({"money": None}, {"amount": "1.234", "currency": "KWD"}, Money(1234, "KWD")),
    ({"money": None}, {"amount": D("1E+3"), "currency": "JPY"}, Money(1000, "JPY")),
    ({"money": None}, {"amount": "92233720368547758.07", "currency": "USD"}, Money(INT_MAX, "USD")),
    ({"money": None}, {"amount": "-92233720368547758.08", "currency": "USD"}, Money(INT_MIN, "USD")),
    ({"array": "int"}, [], []),
    ("unit", None, None),
]


@pytest.mark.parametrize("desc,obj,want", ACCEPT)
def test_accepts(desc, obj, want):
    assert parse_value(desc, obj) == want


def test_money_exactness_beyond_decimal_context_precision():
    # 40 significant digits: Decimal arithmetic at the default precision (28) would round this to 1.00
    with pytest.raises(BodyError) as ei:
        parse_value({"money": "USD"}, {"amount": "1.000000000000000000000000000000000000001", "currency": "USD"})
    assert ei.value.errors[0]["type"] == "money_precision"
    # huge exponents are judged without materialising the number
    for d in (D("1E-999999999"), D("1E+999999999")):
        with pytest.raises(BodyError):
            parse_value({"money": "USD"}, {"amount": d, "currency": "USD"})
    assert to_minor(D("12.3400"), "USD") == 1234


def test_text_parameters():
    assert parse_value("int", "-42", text=True) == -42
    assert parse_value("text", "a b", text=True) == "a b"
    assert parse_value({"enum": "K", "variants": ["A"]}, "A", text=True) == "A"
    assert parse_value("float", "2.5", text=True) == 2.5
    assert parse_value("bool", "false", text=True) is False
    assert parse_value("time", "2026-11-25T22:00:00Z", text=True) == datetime(2026, 11, 25, 22, tzinfo=UTC)
    for desc, s in [("int", "4.0"), ("int", "+4"), ("int", "٤"), ("int", "99999999999999999999"),
                    ("int", " 4"), ("bool", "1"), ("float", "0x1p3"), ("truth", "2"),
                    ({"enum": "K", "variants": ["A"]}, "a")]:
        with pytest.raises(BodyError):
            parse_value(desc, s, text=True)
    with pytest.raises(TypeError):
        parse_value({"money": None}, "5 USD", text=True)


def test_request_model_cached_and_named():
    m = request_model(TX)
    assert request_model(json.loads(json.dumps(TX))) is m
    assert m.__name__ == "ledger_Transaction"
    with pytest.raises(TypeError):
        request_model("int")


def test_awkward_field_names():
    desc = {"record": "R", "fields": [["json", "int"], ["model_config", "int"], ["_x", "int"], ["f1", "int"]]}
    assert parse_body(desc, {"json": 1, "model_config": 2, "_x": 3, "f1": 4}) == \
        {"json": 1, "model_config": 2, "_x": 3, "f1": 4}
    errs = errors_of(desc, {"json": 1, "model_config": 2, "_x": 3, "f0": 4})  # internal names are not inputs
    assert {tuple(e["loc"]) for e in errs} == {("f0",), ("f1",)}


def test_json_schema_is_self_contained():
    s = json_schema(TX)
    text = json.dumps(s)
    assert "$ref" not in text and "$defs" not in text
    assert s["type"] == "object" and s["additionalProperties"] is False
    assert s["required"] == [f for f, _ in TX["fields"]]
    p = s["properties"]
    assert p["id"]["type"] == "integer" and p["id"]["maximum"] == INT_MAX
    assert p["at"] == {**p["at"], "type": "string", "format": "date-time"}
    assert p["kind"]["enum"] == ["Credit", "Debit"]
    amount = p["price"]["properties"]["amount"]["anyOf"]
    assert {a["type"] for a in amount} == {"number", "string"}
    assert p["price"]["properties"]["currency"]["const"] == "USD"
    assert "JPY" in p["fee"]["properties"]["currency"]["enum"]
    assert set(p["price"]["required"]) == {"amount", "currency"}
    assert p["party"]["properties"]["score"]["type"] == "integer"
    assert json_schema({"array": "time"}) == {"type": "array", "items": {"type": "string", "format": "date-time"}}
    assert json_schema("truth") == {"type": "number", "minimum": 0, "maximum": 1}


# ---------------------------------------------------------------- properties

CURRENCIES = st.sampled_from(["USD", "JPY", "KWD", "CLF", "EUR"])
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True) | st.sampled_from(["json", "copy", "model_fields"])
LEAF_DESCS = st.sampled_from(["int", "float", "bool", "truth", "text", "time"]) | \
    st.builds(lambda c: {"money": c}, st.none() | CURRENCIES) | \
    st.builds(lambda vs: {"enum": "E", "variants": vs}, st.lists(st.sampled_from(["A", "B", "Cc", "d"]),
                                                                 min_size=1, unique=True))


def _record(fields):
    return {"record": "gen.R", "fields": [list(f) for f in fields]}


DESCS = st.recursive(LEAF_DESCS, lambda inner: st.builds(lambda t: {"array": t}, inner) | st.builds(
    _record, st.lists(st.tuples(NAMES, inner), max_size=4, unique_by=lambda f: f[0])), max_leaves=8)
RECORD_DESCS = st.builds(_record, st.lists(st.tuples(NAMES, DESCS), max_size=4, unique_by=lambda f: f[0]))


def values(desc):
    if desc == "int":
        return st.integers(INT_MIN, INT_MAX)
    if desc == "float":
        return st.floats(allow_nan=False)
    if desc == "truth":
        return st.floats(0, 1)
    if desc == "bool":
        return st.booleans()
    if desc == "text":
        return st.text(max_size=8)
    if desc == "time":
        return st.datetimes(timezones=st.just(UTC))
    if "money" in desc:
        cur = st.just(desc["money"]) if desc["money"] else CURRENCIES
        return st.builds(Money, st.integers(INT_MIN, INT_MAX), cur)
    if "enum" in desc:
        return st.sampled_from(desc["variants"])
    if "array" in desc:
        return st.lists(values(desc["array"]), max_size=3)
    return st.fixed_dictionaries({n: values(t) for n, t in desc["fields"]})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_round_trip(data):
    desc = data.draw(RECORD_DESCS if data.draw(st.booleans()) else DESCS)
    v = data.draw(values(desc))
    wire = json.dumps(to_json(desc, v), allow_nan=False)
    back = (parse_body if "record" in desc else parse_value)(desc, json.loads(wire, parse_float=Decimal))
    assert back == v


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False, allow_infinity=False)
    | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12)


def mutate(data, node):
    """`node` with one position (possibly the root) replaced by arbitrary JSON."""
    if isinstance(node, (dict, list)) and node and data.draw(st.booleans()):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        k = data.draw(st.sampled_from(keys))
        node = dict(node) if isinstance(node, dict) else list(node)
        node[k] = mutate(data, node[k])
        return node
    return data.draw(JSON)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_arbitrary_json_only_raises_body_error(data):
    desc = data.draw(st.just(TX) | RECORD_DESCS | DESCS)
    wire = to_json(desc, data.draw(values(desc)))
    obj = mutate(data, json.loads(json.dumps(wire), parse_float=Decimal))
    try:
        parse_value(desc, obj)
    except BodyError as e:
        assert e.errors and all(set(x) == {"loc", "msg", "type"} for x in e.errors)

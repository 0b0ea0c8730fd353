"""JSON <-> LwaS values through generated, strict pydantic models.

The service runtime decodes request bodies with `json.loads(raw, parse_float=decimal.Decimal)`
so no number ever passes through a binary float, then validates the result here. Pydantic's
lax mode would turn `true` into 1 and `"1999"` into 1999, so every leaf type is a hand-written
`PlainValidator` (exact rules, our own messages) and only records and arrays use pydantic's
machinery (extra=forbid, missing fields, error locations, JSON Schema).

JSON forms (input and output):

    int    a JSON integer in i64 range (an integral number such as 5.0 or 1e2 is accepted too)
    float  a JSON number; non-finite values are the strings "NaN", "Infinity", "-Infinity"
           (the proto3 JSON mapping's convention: lossless, and still valid JSON)
    truth  a JSON number in [0, 1]       bool  true / false        text  a string
    time   an RFC 3339 string with an offset ("Z" or +hh:mm), at most microsecond precision
           (extra fraction digits must be zeros); rendered in UTC: "2026-11-25T22:00:00Z"
    money  {"amount": 99.99 or "99.99", "currency": "USD"} (+ optional "minor": 9999, which must
           agree: it is what `to_json` adds). The amount is judged by value: 99.990 USD is
           accepted, 99.999 USD is not. Rendered with the amount as an exact decimal string.
    enum   the variant name              [T]   a list              record  an object
    {K: V} an object when K is text ({"a": 1}); otherwise a list of [key, value] pairs
           ([[3, "x"], [5, "y"]]): JSON objects have only text keys. Rendered in ascending key
           order; a key given twice is refused.

A record field declared `amount: money in currency` is flat: the JSON has a bare amount (number
or decimal string) and the currency is the record's `currency` field (`{"amount": 99.99,
"currency": "USD"}`, as payment APIs write it). It is rendered as an exact JSON number (a
Decimal: render with `dumps`), and the currency field must agree with the money's currency.
"""
from __future__ import annotations

import json
import math
import re
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (BaseModel, ConfigDict, Field, PlainValidator, AfterValidator, Strict,
                      TypeAdapter, ValidationError, ValidationInfo, WithJsonSchema, create_model,
                      model_validator)
from pydantic_core import PydanticCustomError

from lwas.semantics.types import CURRENCY_EXPONENTS

from .values import Money, sorted_items

INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class BodyError(ValueError):
    """A request body (or parameter) that does not fit its LwaS type: HTTP 422.

    `errors` is a list of {"loc": [...], "msg": str, "type": str}; inputs are never included,
    so a rejected secret in a body never reaches a log or a response."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc'])) or '<body>'}: {e['msg']}"
                                   for e in errors))


def _fail(kind: str, msg: str) -> PydanticCustomError:
    return PydanticCustomError(kind, msg)


# ---------------------------------------------------------------- leaf validators

def _is_number(x: Any) -> bool:
    return type(x) is int or isinstance(x, Decimal)


def _float_refused() -> PydanticCustomError:
    return _fail("float_not_allowed", "binary floating-point input is not accepted here: send a "
                 "decimal (decode JSON with parse_float=decimal.Decimal)")


def _v_int(x: Any) -> int:
    if type(x) is int:
        n = x
    elif isinstance(x, Decimal):
        if not x.is_finite() or x.adjusted() > 18:
            raise _fail("int_range", "integer out of the 64-bit range")
        if x != x.to_integral_value():
            raise _fail("int_fraction", "expected an integer, got a number with a fraction")
        n = int(x)
    elif isinstance(x, float):
        raise _float_refused()
    else:
        raise _fail("int_type", "expected a JSON integer")
    if not INT_MIN <= n <= INT_MAX:
        raise _fail("int_range", "integer out of the 64-bit range")
    return n


def _v_float(x: Any) -> float:
    if isinstance(x, str) and x in NON_FINITE:
        return NON_FINITE[x]
    if type(x) is float:
        if math.isfinite(x):  # decoded without parse_float: harmless for an inexact type
            return x
        raise _fail("float_type", 'non-finite floats are the strings "NaN", "Infinity", "-Infinity"')
    if not _is_number(x) or (isinstance(x, Decimal) and not x.is_finite()):
        raise _fail("float_type", "expected a JSON number")
    f = float(x)
    if math.isinf(f):
        raise _fail("float_range", "number out of the float range")
    return f


def _v_truth(x: Any) -> float:
    if type(x) is float and math.isfinite(x):
        f = x
    elif _is_number(x) and not (isinstance(x, Decimal) and not x.is_finite()):
        f = float(x)
    else:
        raise _fail("truth_type", "expected a truth: a JSON number between 0 and 1")
    if not 0.0 <= f <= 1.0:
        raise _fail("truth_range", "a truth must be between 0 and 1")
    return f


def _v_bool(x: Any) -> bool:
    if type(x) is not bool:
        raise _fail("bool_type", "expected true or false")
    return x


def _v_text(x: Any) -> str:
    if not isinstance(x, str):
        raise _fail("text_type", "expected a string")
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("text_unicode", "text must be valid Unicode (no lone surrogates)") from None
    return x


_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII)


def _v_time(x: Any) -> datetime:
    if not isinstance(x, str):
        raise _fail("time_type", "expected an RFC 3339 time string")
    m = _RFC3339.fullmatch(x)
    if not m:
        raise _fail("time_format", "expected an RFC 3339 time with an offset, "
                    "e.g. 2026-11-25T22:00:00Z or 2026-11-25T23:00:00+01:00")
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    frac = frac or ""
    if frac[6:].strip("0"):
        raise _fail("time_precision", "times have microsecond precision: at most 6 fraction digits")
    if z is None and (int(oh) > 23 or int(om) > 59):
        raise _fail("time_format", "invalid UTC offset")
    try:
        offset = timedelta(0) if z else (1 if sign == "+" else -1) * timedelta(hours=int(oh), minutes=int(om))
        local = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                         int((frac[:6] or "0").ljust(6, "0")), tzinfo=timezone(offset))
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise _fail("time_value", "not a valid date and time") from None


def _enum_validator(name: str, variants: tuple[str, ...]):
    allowed = frozenset(variants)

    def check(x: Any) -> str:
        if not isinstance(x, str) or x not in allowed:
            raise _fail("enum", f"expected one of {', '.join(variants)} ({name})")
        return x
    return check


# ---------------------------------------------------------------- money

_AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _amount(x: Any) -> Decimal:
    """An exact decimal amount from a JSON integer, a Decimal or a decimal string."""
    if type(x) is int:
        return Decimal(x)
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise _fail("money_amount", "the amount must be a finite number")
        return x
    if isinstance(x, float):
        raise _float_refused()
    if isinstance(x, str):
        if len(x) > 64 or not _AMOUNT_TEXT.fullmatch(x):
            raise _fail("money_amount", 'the amount must be a decimal number or string like "99.99"')
        return Decimal(x)
    raise _fail("money_amount", "the amount must be a number or a decimal string")


def to_minor(amount: Decimal, currency: str) -> int:
    """Exact minor units of `amount` in `currency`, without Decimal arithmetic (whose context
    precision would round a 40-digit amount) and without work proportional to the exponent."""
    exp = CURRENCY_EXPONENTS[currency]
    sign, digits, e = amount.as_tuple()
    if not any(digits):
        return 0
    digits = "".join(map(str, digits))
    stripped = digits.rstrip("0")
    e += len(digits) - len(stripped)
    if e < -exp:
        raise _fail("money_precision", f"{currency} amounts have at most {exp} decimal places")
    if len(stripped) + e + exp > 19:  # >= 10**19 minor units: beyond i64
        raise _fail("money_range", "the amount is too large (minor units must fit 64 bits)")
    minor = int(stripped) * 10 ** (e + exp)
    minor = -minor if sign else minor
    if not INT_MIN <= minor <= INT_MAX:
        raise _fail("money_range", "the amount is too large (minor units must fit 64 bits)")
    return minor


def _money_model(fixed: str | None) -> type[BaseModel]:
    """Currency is declared first so the amount's validator sees it (exponent check with the
    amount's own location)."""
    codes = sorted(CURRENCY_EXPONENTS)

    def currency(x: Any) -> str:
        if not isinstance(x, str) or x not in CURRENCY_EXPONENTS:
            raise _fail("money_currency", "expected an ISO 4217 currency code with a minor unit, e.g. USD")
        if fixed is not None and x != fixed:
            raise _fail("money_currency", f"expected currency {fixed}")
        return x

    def amount(x: Any, info: ValidationInfo) -> Any:
        d = _amount(x)
        cur = info.data.get("currency")
        return to_minor(d, cur) if cur else None

    def minor(x: Any, info: ValidationInfo) -> int | None:
        if x is None:
            return None
        n = _v_int(x)
        if info.data.get("amount") is not None and n != info.data["amount"]:
            raise _fail("money_minor", "minor does not agree with amount")
        return n

    amount_schema = {"anyOf": [{"type": "number"},
                               {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "maxLength": 64}],
                     "description": "exact decimal amount; at most the currency's decimal places"}
    cur_schema = {"type": "string", "const": fixed} if fixed else {"type": "string", "enum": codes}
    fields = {
        "currency": (Annotated[str, PlainValidator(currency), WithJsonSchema(cur_schema)], ...),
        "amount": (Annotated[Any, PlainValidator(amount), WithJsonSchema(amount_schema)], ...),
        "minor": (Annotated[Any, PlainValidator(minor), WithJsonSchema(
            {"type": ["integer", "null"], "description": "minor units; optional, must agree with amount"})], None),
    }
    model = create_model(f"Money_{fixed}" if fixed else "Money",
                         __config__=ConfigDict(extra="forbid"), **fields)
    return model


def _to_money(m: BaseModel) -> Money:
    return Money(m.amount, m.currency)


# ---------------------------------------------------------------- building types

_SCHEMAS = {
    "int": {"type": "integer", "minimum": INT_MIN, "maximum": INT_MAX},
    "float": {"anyOf": [{"type": "number"}, {"type": "string", "enum": list(NON_FINITE)}]},
    "truth": {"type": "number", "minimum": 0, "maximum": 1},
    "bool": {"type": "boolean"},
    "text": {"type": "string"},
    "time": {"type": "string", "format": "date-time"},
    "unit": {"type": "null"},
}
_LEAVES = {"int": _v_int, "float": _v_float, "truth": _v_truth, "bool": _v_bool,
           "text": _v_text, "time": _v_time}


JSON_FIELD_DEPTH = 64
_DOUBLE_MAX = Decimal("1.7976931348623157e308")


def _json_number(v: Any) -> Any:
    """A number of a `json` field in its canonical form: integral values below 1e21 as ints
    (`2.0`, `2`, `2e0` are all 2), others as the shortest exact Decimal (`2.50` is 2.5, `1e300`
    and `10e299` are 1E+300): one text per value, never longer than the input. Numbers a double
    cannot hold (beyond ±1.8e308, which JSON readers turn into Infinity) are refused, like
    non-finite ones: the same rule as for `float` fields."""
    if type(v) is bool:
        return v
    if isinstance(v, float) or (isinstance(v, Decimal) and not v.is_finite()):
        raise _fail("json_number", "numbers must be finite decimals (no NaN or Infinity)")
    if type(v) is int:
        if abs(v) > _DOUBLE_MAX:
            raise _fail("json_number", "number out of the range of a double (about ±1.8e308)")
        return v
    if abs(v) > _DOUBLE_MAX:
        raise _fail("json_number", "number out of the range of a double (about ±1.8e308)")
    sign, digits, exp = v.as_tuple()
    digits = "".join(map(str, digits))
    stripped = digits.rstrip("0")
    if not stripped:
        return 0
    exp += len(digits) - len(stripped)
    if exp >= 0 and len(stripped) + exp <= 21:  # below 1e21, where JavaScript writes integers in full
        return (-1 if sign else 1) * int(stripped) * 10 ** exp
    return Decimal((sign, tuple(map(int, stripped)), exp))  # 1E+308, not 309 digits: no blow-up


def _json_text(s: Any) -> str:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("text_unicode", "text must be valid Unicode (no lone surrogates)") from None
    return s


def _canonical_json(v: Any, depth: int = 0) -> Any:
    if depth > JSON_FIELD_DEPTH:
        raise _fail("json_depth", f"JSON nested deeper than {JSON_FIELD_DEPTH} levels")
    if isinstance(v, dict):
        return {_json_text(k): _canonical_json(w, depth + 1) for k, w in v.items()}
    if isinstance(v, list):
        return [_canonical_json(w, depth + 1) for w in v]
    if isinstance(v, str):
        return _json_text(v)
    if v is None:
        return v
    if isinstance(v, (int, float, Decimal)):
        return _json_number(v)
    raise _fail("json_type", "expected a JSON value")


def _v_json(x: Any) -> str:
    """Any JSON value (numbers as decoded: int or Decimal), kept as canonical text: sorted keys,
    no spaces, numbers in one canonical exact form (`_json_number`), valid Unicode only. So equal
    documents are equal texts (and equal ledger bytes): a retry that writes `2.0` where the
    first request wrote `2` is the same content."""
    import simplejson

    return simplejson.dumps(_canonical_json(x), use_decimal=True, sort_keys=True, separators=(",", ":"),
                            ensure_ascii=False)


_JSON = Annotated[Any, PlainValidator(_v_json), WithJsonSchema({"description": "any JSON value"})]


def _v_unit(x: Any) -> None:
    if x is not None:
        raise _fail("unit_type", "expected null")
    return None


_LEAVES["unit"] = _v_unit
_lock = threading.RLock()
_types: dict[str, Any] = {}
_models: dict[str, type[BaseModel]] = {}
_adapters: dict[str, TypeAdapter] = {}


def _key(desc: Any) -> str:
    return json.dumps(desc, sort_keys=True, separators=(",", ":"))


def model_name(record_name: str) -> str:
    """A schema/model name from a record name ("economy.State" -> "economy_State")."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", record_name) or "Record"
    return name if not name[0].isdigit() else "R_" + name


def _type(desc: Any) -> Any:
    """The annotated Python type validating `desc` (cached)."""
    k = _key(desc)
    with _lock:
        if k in _types:
            return _types[k]
        if isinstance(desc, str):
            if desc not in _LEAVES:
                raise TypeError(f"unknown TypeDesc {desc!r}")
            t = Annotated[Any, PlainValidator(_LEAVES[desc]), WithJsonSchema(_SCHEMAS[desc])]
        elif "money" in desc and "in" in desc:  # flat: the record's validator builds the object
            t = Annotated[_money_model(desc["money"]), AfterValidator(_to_money),
                          WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "maxLength": 64}],
                                          "description": f"exact decimal amount in the currency of "
                                                         f"`{desc['in']}`"})]
        elif "money" in desc:
            t = Annotated[_money_model(desc["money"]), AfterValidator(_to_money)]
        elif "array" in desc:
            t = Annotated[list[_type(desc["array"])], Strict()]
        elif "map" in desc and desc["map"] == "text":
            t = Annotated[dict[str, _type(desc["value"])], Strict()]
        elif "map" in desc:
            t = Annotated[list[tuple[_type(desc["map"]), _type(desc["value"])]], Strict(),
                          AfterValidator(_pairs)]
        elif "enum" in desc:
            vs = tuple(desc["variants"])
            t = Annotated[Any, PlainValidator(_enum_validator(desc["enum"], vs)),
                          WithJsonSchema({"type": "string", "enum": list(vs), "title": desc["enum"]})]
        elif "record" in desc:
            t = Annotated[_record_model(desc), AfterValidator(_record_value)]
        else:
            raise TypeError(f"unknown TypeDesc {desc!r}")
        _types[k] = t
        return t


def _record_model(desc: dict) -> type[BaseModel]:
    """Fields get internal names (f0, f1...) and the LwaS names as aliases, so a field called
    `json`, `model_config` or `_x` cannot clash with pydantic; errors and schemas use aliases."""
    k = _key(desc)
    with _lock:
        if k in _models:
            return _models[k]
        as_json = set(desc.get("json", ()))
        fields = {f"f{i}": (_JSON if name in as_json else _type(t), Field(..., alias=name))
                  for i, (name, t) in enumerate(desc["fields"])}
        flat = [(name, t["in"]) for name, t in desc["fields"] if isinstance(t, dict) and "in" in t]
        validators = {"flat_money": model_validator(mode="before")(_flat_money(flat))} if flat else None
        m = create_model(model_name(desc["record"]), __config__=ConfigDict(extra="forbid"),
                         __validators__=validators, **fields)
        m.__lwas_fields__ = [name for name, _ in desc["fields"]]
        _models[k] = m
        return m


def _flat_money(flat: list[tuple[str, str]]):
    """Before validation: `amount: 99.99` with `currency: "USD"` becomes the money object."""

    def build(cls, obj: Any) -> Any:
        if not isinstance(obj, dict):
            return obj
        out = dict(obj)
        for name, cur in flat:  # always a bare amount: an object here is refused by `_amount`
            if name in out:
                if isinstance(out.get(cur), str):
                    out[name] = {"amount": out[name], "currency": out[cur]}
                else:
                    out[name] = {"amount": out[name]}  # reported: currency missing
        return out
    return build


def _pairs(pairs: list) -> dict:
    """A map given as [key, value] pairs: a key given twice is refused, not silently dropped."""
    out: dict = {}
    for i, (k, v) in enumerate(pairs):
        if k in out:
            raise PydanticCustomError("duplicate_key", "key {key} is given twice (pair {index})",
                                      {"key": json.dumps(k) if isinstance(k, (str, int, bool)) else str(k),
                                       "index": i})
        out[k] = v
    return out


def _record_value(m: BaseModel) -> dict:
    return dict(zip(type(m).__lwas_fields__, m.__dict__.values()))  # __dict__ is in field order


def request_model(desc: dict) -> type[BaseModel]:
    """The pydantic model of a record TypeDesc (cached per desc). Its fields hold LwaS values."""
    if not isinstance(desc, dict) or "record" not in desc:
        raise TypeError("request_model needs a record TypeDesc")
    return _record_model(desc)


_by_id: dict[int, tuple[Any, TypeAdapter]] = {}


def _adapter(desc: Any) -> TypeAdapter:
    """Per-request fast path by identity (the service holds its descs for its lifetime, and
    TypeDescs are never mutated); the canonical JSON key shares models between equal descs."""
    hit = _by_id.get(id(desc))
    if hit is not None and hit[0] is desc:
        return hit[1]
    k = _key(desc)
    with _lock:
        if k not in _adapters:
            _adapters[k] = TypeAdapter(_type(desc))
        if len(_by_id) < 10_000:
            _by_id[id(desc)] = (desc, _adapters[k])  # holds desc, so its id is not reused
        return _adapters[k]


def _clean(e: ValidationError) -> list[dict]:
    return [{"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in e.errors(include_url=False, include_input=False, include_context=False)]


# ---------------------------------------------------------------- public API

def parse_value(desc: Any, obj: Any, *, text: bool = False) -> Any:
    """The LwaS value of a decoded JSON value, or BodyError. With `text=True`, `obj` is a string
    from a URL path or query and scalars are read from their text (int from decimal digits,
    float/truth from a decimal, bool from true/false, time, enum and text as is)."""
    if text:
        obj = _from_text(desc, obj)
    try:
        return _adapter(desc).validate_python(obj)
    except ValidationError as e:
        raise BodyError(_clean(e)) from None


def parse_body(desc: dict, obj: Any) -> dict:
    """The record value (dict in declaration order) of a decoded JSON body, or BodyError."""
    if not isinstance(desc, dict) or "record" not in desc:
        raise TypeError("parse_body needs a record TypeDesc")
    try:
        return parse_value(desc, obj)
    except BodyError as e:
        flat = {name: t["in"] for name, t in desc["fields"] if isinstance(t, dict) and "in" in t}
        if not flat:
            raise
        for err in e.errors:  # a flat field's errors belong to the JSON fields the client wrote
            loc = err["loc"]
            if len(loc) == 2 and loc[0] in flat:
                err["loc"] = [loc[0]] if loc[1] == "amount" else [flat[loc[0]]] if loc[1] == "currency" else loc
        seen, unique = set(), []
        for err in e.errors:
            k = (tuple(err["loc"]), err["type"])
            if k not in seen:
                seen.add(k)
                unique.append(err)
        e.errors[:] = unique
        raise


_INT_TEXT = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_NUM_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _from_text(desc: Any, s: Any) -> Any:
    if not isinstance(s, str):
        raise TypeError("text parameters are strings")
    if desc == "int":
        if not _INT_TEXT.fullmatch(s):
            raise BodyError([{"loc": [], "msg": "expected a decimal integer", "type": "int_type"}])
        return int(s)
    if desc in ("float", "truth"):
        if s in NON_FINITE and desc == "float":
            return s
        if len(s) > 400 or not _NUM_TEXT.fullmatch(s):
            raise BodyError([{"loc": [], "msg": "expected a decimal number", "type": f"{desc}_type"}])
        return Decimal(s)
    if desc == "bool":
        if s not in ("true", "false"):
            raise BodyError([{"loc": [], "msg": "expected true or false", "type": "bool_type"}])
        return s == "true"
    if desc in ("text", "time") or (isinstance(desc, dict) and "enum" in desc):
        return s
    raise TypeError(f"{desc!r} cannot be read from text")


def _fmt_time(t: datetime) -> str:
    t = t.astimezone(timezone.utc)
    base = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    return f"{base}.{t.microsecond:06d}Z" if t.microsecond else base + "Z"


def money_json(m: Money) -> dict:
    exp = CURRENCY_EXPONENTS[m.currency]
    units, frac = divmod(abs(m.minor), 10 ** exp)
    amount = f"{'-' if m.minor < 0 else ''}{units}" + (f".{frac:0{exp}d}" if exp else "")
    return {"amount": amount, "currency": m.currency, "minor": m.minor}


def _exact(m: Money) -> Decimal:
    """The amount as an exact Decimal with the currency's decimals (rendered as a JSON number)."""
    return Decimal(m.minor).scaleb(-CURRENCY_EXPONENTS.get(m.currency, 2))


# ---------------------------------------------------------------- request bodies

MAX_BODY_DEPTH = 100  # arrays and objects nested in a request body; far below Python's recursion limit


class JsonRefused(ValueError):
    """A request body that is not JSON as the runtime accepts it (HTTP 400 `malformed_json`)."""


def _no_duplicates(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise JsonRefused(f"the key {json.dumps(k)[:80]} appears twice in one object")
            seen.add(k)
    return out


def _no_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not JSON (non-finite floats are the strings \"NaN\", \"Infinity\", \"-Infinity\")")


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_OPEN_CLOSE = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in `raw` (brackets inside strings do not count), without
    decoding it; when the body has at most MAX_BODY_DEPTH brackets, their count (a bound that is
    enough). Cheap when the body has few brackets, linear in the brackets otherwise, and it stops
    counting past MAX_BODY_DEPTH."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_BODY_DEPTH:
        return raw.count(b"[") + raw.count(b"{")
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS).translate(_OPEN_CLOSE)
    depth = top = 0
    for b in brackets:
        depth += b - 1
        if depth > top:
            top = depth
            if top > MAX_BODY_DEPTH:
                break
    return top


def decode_json(raw: bytes) -> Any:
    """A request body as the runtime reads it: UTF-8 without a byte order mark, nested at most
    MAX_BODY_DEPTH levels (checked on the bytes, before any recursive decoding), numbers with a
    fraction or exponent as exact Decimals, no NaN/Infinity literals, and no object with the same
    key twice (json.loads would keep the last one silently). JsonRefused otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonRefused(f"the body is not UTF-8 (byte {e.start})") from None
    if text.startswith("\ufeff"):
        raise JsonRefused("the body starts with a byte order mark: send UTF-8 without one")
    if json_depth(raw) > MAX_BODY_DEPTH:
        raise JsonRefused(f"the body nests arrays and objects deeper than {MAX_BODY_DEPTH} levels")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant,
                          object_pairs_hook=_no_duplicates)
    except JsonRefused:
        raise
    except (ValueError, RecursionError) as e:
        raise JsonRefused(f"the request body is not JSON: {e}") from None


def _parse_json(text: str, name: str) -> Any:
    import simplejson

    try:
        return simplejson.loads(text, use_decimal=True) if text else None
    except ValueError:
        raise ValueError(f"`{name}` is declared json but holds text that is not JSON") from None


def dumps(obj: Any) -> bytes:
    """Compact JSON where Decimals are exact numbers (the stdlib encoder cannot write them)."""
    import simplejson

    return simplejson.dumps(obj, use_decimal=True, ensure_ascii=False, separators=(",", ":"),
                            allow_nan=False).encode("utf-8")


def to_json(desc: Any, value: Any) -> Any:
    """A JSON-able Python object for an LwaS value (see the module docstring for the forms)."""
    if isinstance(desc, str):
        if desc == "float":
            if math.isnan(value):
                return "NaN"
            if math.isinf(value):
                return "Infinity" if value > 0 else "-Infinity"
            return float(value)
        if desc == "truth":
            return float(value)
        if desc == "time":
            return _fmt_time(value)
        if desc == "unit":
            return None
        return value  # int, bool, text
    if "money" in desc:
        return money_json(value) if "in" not in desc else _exact(value)
    if "array" in desc:
        return [to_json(desc["array"], v) for v in value]
    if "map" in desc:
        vd = desc["value"]
        if desc["map"] == "text":
            return {k: to_json(vd, v) for k, v in sorted_items(desc, value)}
        kd = desc["map"]
        return [[to_json(kd, k), to_json(vd, v)] for k, v in sorted_items(desc, value)]
    if "enum" in desc:
        return value
    if "record" in desc:
        out = {name: to_json(t, value[name]) for name, t in desc["fields"]}
        for name in desc.get("json", ()):
            out[name] = _parse_json(value[name], name)
        for name, t in desc["fields"]:
            if isinstance(t, dict) and "in" in t and value[t["in"]] != value[name].currency:
                raise ValueError(f"`{name}` is in {value[name].currency} but `{t['in']}` says "
                                 f"{value[t['in']]!r}")
        return out
    raise TypeError(f"unknown TypeDesc {desc!r}")


def _inline(node: Any, defs: dict) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = _inline(defs[node["$ref"].rsplit("/", 1)[1]], defs)
            rest = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def json_schema(desc: Any) -> dict:
    """A self-contained JSON Schema (2020-12, as OpenAPI 3.1 uses) for a TypeDesc: references are
    inlined, because a "#/$defs/..." embedded in an OpenAPI document would resolve against the
    document root. TypeDescs are trees (no recursive records), so inlining terminates."""
    s = _adapter(desc).json_schema(mode="validation")
    return _inline(s, s.get("$defs", {}))

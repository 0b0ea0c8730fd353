"""Types of LwaS values, as the checker, the code generator and the language server see them.

Built-in types are singletons (compare them with `is`): INT, FLOAT, BOOL, TRUTH, TEXT, TIME,
UNIT (the "result" of a function without `-> T`) and ERROR (the type of an expression that
already produced a diagnostic: compatible with everything, so one mistake is reported once).

`MoneyT(currency)` carries the currency when it is known statically (`12.50 USD` is
`MoneyT("USD")`); `MoneyT(None)` (the `MONEY` singleton, what a `money` annotation means) is a
currency known only at run time. Use `money_t(code)` to get the interned instance.

`ArrayT(elem)` and `MapT(key, value)` compare structurally. `RecordT` and `EnumT` are nominal: one instance per
declaration, compared by identity; their members are filled in after creation so that types
may refer to each other in any order.

`TypeVar` appears only in built-in signatures (lwas.semantics.builtins): `len(xs: [T]) -> int`,
`abs(x: N) -> N` for N in int, float, money.

`CURRENCY_EXPONENTS` is ISO 4217 (list one, amendment 179): every active currency and fund
code that has a minor unit, with its exponent (USD 2, JPY 0, KWD 3, CLF 4). Precious metals,
XDR, test and "no currency" codes have no minor unit and are not money here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Type:
    """Base class of every type."""

    __slots__ = ()

    def __str__(self) -> str:  # pragma: no cover - every subclass overrides it
        return "?"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class PrimT(Type):
    """A built-in scalar type (a singleton per name)."""

    name: str

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"PrimT({self.name})"


INT = PrimT("int")
FLOAT = PrimT("float")
BOOL = PrimT("bool")
TRUTH = PrimT("truth")
TEXT = PrimT("text")
TIME = PrimT("time")
UNIT = PrimT("()")
ERROR = PrimT("{error}")

# The built-in type names a program may write (`money` is MoneyT(None)).
PRIMITIVE_NAMES: dict[str, Type] = {
    "int": INT, "float": FLOAT, "bool": BOOL, "truth": TRUTH, "text": TEXT, "time": TIME,
    "json": TEXT,  # text holding a canonical JSON document; a record field so typed takes any JSON
}


@dataclass(frozen=True, slots=True, repr=False)
class MoneyT(Type):
    """Money in integer minor units; `currency` is the ISO 4217 code when known statically."""

    currency: str | None = None

    def __str__(self) -> str:
        return "money" if self.currency is None else f"money ({self.currency})"

    def __repr__(self) -> str:
        return f"MoneyT({self.currency})"


MONEY = MoneyT(None)
_MONEY_CACHE: dict[str | None, MoneyT] = {None: MONEY}


def money_t(currency: str | None) -> MoneyT:
    """The interned MoneyT for a currency (None: unknown until run time)."""
    t = _MONEY_CACHE.get(currency)
    if t is None:
        t = _MONEY_CACHE[currency] = MoneyT(currency)
    return t


@dataclass(frozen=True, slots=True, repr=False)
class ArrayT(Type):
    elem: Type

    def __str__(self) -> str:
        return f"[{self.elem}]"

    def __repr__(self) -> str:
        return f"ArrayT({self.elem!r})"


@dataclass(frozen=True, slots=True, repr=False)
class MapT(Type):
    """`{K: V}`: keys of an ordered type (int, text, time, bool or an enum: MAP_KEYS), iterated
    in ascending key order; compares structurally like ArrayT."""

    key: Type
    value: Type

    def __str__(self) -> str:
        return f"{{{self.key}: {self.value}}}"

    def __repr__(self) -> str:
        return f"MapT({self.key!r}, {self.value!r})"


def map_key_ok(t: Type) -> bool:
    """Whether a map may be keyed by t: int, text, time, bool or an enum (ordered, exact)."""
    return t is INT or t is TEXT or t is TIME or t is BOOL or t.__class__ is EnumT


@dataclass(eq=False, repr=False)
class RecordT(Type):
    """A declared record. `fields` (name -> type, in declaration order) is filled by the checker."""

    name: str  # as declared
    module: str  # the declaring module's name
    decl: Any  # syntax.RecordDecl
    fields: dict[str, Type] = field(default_factory=dict)
    currency_fields: dict[str, str] = field(default_factory=dict)  # `amount: money in currency`
    json_fields: list[str] = field(default_factory=list)  # fields declared `json`
    # `field: T = value`: the default's plain value form (lwas.abi), for ledger entries written
    # before the field existed and for record literals that leave the field out
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"

    def field_index(self, name: str) -> int:
        """Position of a field in declaration order (the code generator's struct layout)."""
        for i, f in enumerate(self.fields):
            if f == name:
                return i
        raise KeyError(name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"RecordT({self.qualified})"


@dataclass(eq=False, repr=False)
class EnumT(Type):
    """A declared enum. `variants` are the names in declaration order (the tag is the index)."""

    name: str
    module: str
    decl: Any  # syntax.EnumDecl
    variants: tuple[str, ...] = ()
    index: dict[str, int] = field(default_factory=dict)  # variant name -> tag

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"EnumT({self.qualified})"


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class TypeVar(Type):
    """A placeholder in a built-in's signature; `bound` lists what it may stand for
    (`ANY_MONEY` stands for every MoneyT). An empty bound accepts any type."""

    name: str
    bound: tuple[Type, ...] = ()

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"TypeVar({self.name})"


ANY_MONEY = MONEY  # in a TypeVar bound, MONEY stands for money of any currency


@dataclass(frozen=True, slots=True)
class Signature:
    """The signature of a function, rule or (instantiated) built-in; for a record construction,
    the fields as parameters and the record as result."""

    params: tuple[tuple[str, Type], ...]
    ret: Type

    @property
    def param_types(self) -> tuple[Type, ...]:
        return tuple(t for _, t in self.params)

    def __str__(self) -> str:
        ps = ", ".join(f"{n}: {t}" for n, t in self.params)
        return f"({ps})" if self.ret is UNIT else f"({ps}) -> {self.ret}"


@dataclass(frozen=True, slots=True)
class MoneyValue:
    """A compile-time money value: integer minor units of a currency."""

    minor: int
    currency: str

    def __str__(self) -> str:
        exp = CURRENCY_EXPONENTS.get(self.currency, 2)
        sign = "-" if self.minor < 0 else ""
        whole, frac = divmod(abs(self.minor), 10 ** exp)
        return f"{sign}{whole}.{frac:0{exp}d} {self.currency}" if exp else f"{sign}{whole} {self.currency}"


def is_numeric(t: Type) -> bool:
    return t is INT or t is FLOAT


def type_name(t: Type) -> str:
    """How messages quote a type: `int`, `[float]`, `money (USD)`."""
    return str(t)


class Unsupported(Exception):
    """A construct the native code generator does not compile (yet); `span` is where.

    Defined here, below the back end, so that `type_desc` can raise it without the checker
    importing the back end; lwas.backend.ir.Unsupported is this same class."""

    def __init__(self, message: str, span=None):
        super().__init__(message)
        self.message = message
        self.span = span


def type_desc(t: Type):
    """The TypeDesc (lwas.abi) of a checked type. Record fields with another JSON form carry
    it: {"money": ..., "in": "currency"} for `amount: money in currency`, and the record lists
    its `json` text fields under "json"."""
    if t is INT or t is FLOAT or t is BOOL or t is TRUTH or t is TEXT or t is TIME:
        return t.name
    if t is UNIT:
        return "unit"
    c = t.__class__
    if c is MoneyT:
        return {"money": t.currency}
    if c is ArrayT:
        return {"array": type_desc(t.elem)}
    if c is MapT:
        return {"map": type_desc(t.key), "value": type_desc(t.value)}
    if c is EnumT:
        return {"enum": t.name, "variants": list(t.variants)}
    if c is RecordT:
        flat = t.currency_fields
        desc = {"record": t.name, "fields": [[n, {**type_desc(ft), "in": flat[n]} if n in flat else type_desc(ft)]
                                             for n, ft in t.fields.items()]}
        if t.json_fields:
            desc["json"] = list(t.json_fields)
        if t.defaults:
            desc["defaults"] = dict(t.defaults)
        return desc
    raise Unsupported(f"values of type `{t}` cannot cross the native boundary")


INT_MIN = -(2 ** 63)
INT_MAX = 2 ** 63 - 1

# ISO 4217 list one (amendment 179): code -> exponent of the minor unit.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2,
    "BND": 2, "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2,
    "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4, "CLP": 0,
    "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0,
    "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2,
    "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2,
    "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2,
    "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2,
    "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2,
    "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2, "MVR": 2, "MWK": 2,
    "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
    "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2,
    "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2,
    "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2,
    "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
    "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2,
    "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2, "UYW": 4, "UZS": 2, "VED": 2,
    "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XCG": 2, "XOF": 0,
    "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
}

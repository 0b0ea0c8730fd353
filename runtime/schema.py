"""Ledger schema evolution: which layout wrote each entry, and whether a program can read them.

Entry payloads are positional (lwas.runtime.ledger.encode_value): they are read with the layout
of the program that wrote them. Every entry names that program, the SHA-512 digest of its signed
artifact (in the entry header, under the chain hash and the signatures), and the store keeps, per
ledger, each artifact's layout:

    layouts (ledger, artifact, layout)     layout = canonical JSON {"entry": TypeDesc, "key": field}

A service registers its own artifact's layouts when it starts (`start_service`, inside its start
transaction, before it can write), so every entry it appends is described; entries written
before layouts were recorded (by an older runtime) are taken to be in the layout of the first
program that starts on them with this runtime, after checking that every one of them reads that
way (the layout is recorded on that first start). `layout_scans (ledger, upto, seen)` is a
cache: the entries below `upto` have been attributed, and `seen` names the first entry (seq,
key) of each artifact met in that stretch; so a start reads only the entries appended since the
last one.

A program reads an entry written with another layout by converting the value (`Plan`):

- a record field the program added is filled with its default (`field: T = value`: the
  TypeDesc's "defaults"; value forms as lwas.abi describes them); fields may be reordered, and the
  record renamed; nested records, arrays and maps are converted element by element;
- an enum may gain variants; `money (USD)` may become `money` (any currency).

Anything else is refused before the service serves (`SchemaError`, naming the ledger, the field
and the first entry that cannot be read), and reported by `lwasc ledger check DB FILE`: a field
removed or retyped (the entries hold it), a field added without a default, a variant removed
that entries use, a currency fixed that entries do not have, the ledger keyed by another field.
A change that the entries do not contradict (a variant no entry uses removed) is accepted. Only
layouts that wrote at least one entry count, so a version that was served but never appended
constrains nothing.

The entry bytes never change: equal values under one layout are equal bytes, and an old entry
keeps its bytes, its leaf hash, its proofs and its checkpoints.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from lwas.runtime.ledger import decode_entry, decode_value, encode_value
from lwas.runtime.values import Money, micros_to_time

_ART = slice(20, 84)  # the artifact digest in an entry's header (lwas.runtime.ledger.HEADER)
_SHORT = 16  # hex digits of an artifact digest shown in messages


class SchemaError(ValueError):
    """The program cannot read (or extend) a ledger in the store: raised before serving."""

    def __init__(self, problems: list["Problem"]):
        self.problems = problems
        super().__init__("\n".join(p.text() for p in problems))


class Unreadable(ValueError):
    """An old value that the new layout cannot hold (a removed variant it uses, ...)."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path, self.reason = path, reason


# ------------------------------------------------------------------------------ type text


def type_text(t) -> str:
    """A TypeDesc as LwaS writes the type."""
    if isinstance(t, str):
        return t
    if "money" in t:
        return "money" + (f" ({t['money']})" if t["money"] else "")
    if "array" in t:
        return f"[{type_text(t['array'])}]"
    if "map" in t:
        return f"{{{type_text(t['map'])}: {type_text(t['value'])}}}"
    if "enum" in t:
        return t["enum"]
    if "record" in t:
        return t["record"]
    return str(t)


def _kind(t) -> str:
    if isinstance(t, str):
        return t
    for k in ("money", "array", "map", "enum", "record"):
        if k in t:
            return k
    raise ValueError(f"unknown type {t!r}")


# ------------------------------------------------------------------------------ value forms


def from_value_form(desc, form):
    """The runtime value (lwas.runtime.values) of a value form (lwas.abi: a default); ValueError
    if the form is not a value of desc."""
    v = _form(desc, form)
    encode_value(desc, v)  # every check the ledger makes: ranges, currencies, variants
    return v


def _form(desc, f):
    if isinstance(desc, str):
        if desc == "time":
            if type(f) is not int:
                raise ValueError(f"time expected (µs since the epoch), got {f!r}")
            try:
                return micros_to_time(f)
            except OverflowError:
                raise ValueError(f"time {f} µs is out of range") from None
        if desc in ("float", "truth") and type(f) is int:
            return float(f)
        return f  # int, float, truth, bool, text, unit: the form is the value
    if "money" in desc:
        if not isinstance(f, (list, tuple)) or len(f) != 2:
            raise ValueError(f"money expected as [minor, currency], got {f!r}")
        return Money(f[0], f[1])
    if "array" in desc:
        if not isinstance(f, list):
            raise ValueError(f"array expected, got {f!r}")
        return [_form(desc["array"], x) for x in f]
    if "map" in desc:
        if isinstance(f, dict):  # `{}`; text keys may also be written as an object
            pairs = list(f.items())
        elif isinstance(f, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in f):
            pairs = f
        else:
            raise ValueError(f"map expected as [[key, value], ...], got {f!r}")
        out = {}
        for k, x in pairs:
            key = _form(desc["map"], k)
            if key in out:
                raise ValueError(f"duplicate map key {k!r}")
            out[key] = _form(desc["value"], x)
        return out
    if "enum" in desc:
        return f
    if "record" in desc:
        if not isinstance(f, dict):
            raise ValueError(f"record {desc['record']} expected, got {f!r}")
        defaults = desc.get("defaults") or {}
        extra = set(f) - {n for n, _ in desc["fields"]}
        if extra:
            raise ValueError(f"record {desc['record']} has no field {sorted(extra)[0]}")
        out = {}
        for n, t in desc["fields"]:
            if n in f:
                out[n] = _form(t, f[n])
            elif n in defaults:
                out[n] = _form(t, defaults[n])
            else:
                raise ValueError(f"record {desc['record']}: no value for field {n}")
        return out
    raise ValueError(f"unknown type {desc!r}")


# ------------------------------------------------------------------------------ conversion plans


@dataclass
class Change:
    """A difference between a writer's and the reader's layout that the entries forbid."""
    path: str  # the field, from the entry record: "memo", "meta.note", "items[].qty"
    what: str  # "was removed", ...
    record: str | None  # the record (in the reader's program) that declares the field
    field: str | None  # its name there (None: point at the record)
    help: str | None = None
    label: str = ""  # what to say under the field (or record) in the source


def _sub(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _copier(value) -> Callable[[], Any]:
    if isinstance(value, (list, dict)):
        return lambda: copy.deepcopy(value)
    return lambda: value


class Plan:
    """How to read values written with layout `old` as values of `new`.

    `convert` is None when the value needs nothing (the bytes decode to the new value as they are
    read with `old`); `scan` says whether some values may still be refused (a removed variant,
    a narrowed currency); `problems` are the changes no value of `old` survives; `changes` the
    accepted ones, in words."""

    def __init__(self, old, new):
        self.problems: list[Change] = []
        self.changes: list[str] = []
        self.owners: dict[str, tuple] = {}  # path of a value check -> (record, field)
        self.scan = False
        self.convert = self._plan(old, new, "", None)

    def _bad(self, path, what, record, fld, help=None, label=""):
        self.problems.append(Change(path, what, record, fld, help, label))

    def _plan(self, old, new, path: str, owner):
        """owner: (record name, field name) of the field at `path` in the new program."""
        rec, fld = owner or (None, None)
        if _kind(old) != _kind(new):
            self._bad(path, f"was retyped from `{type_text(old)}` to `{type_text(new)}`", rec, fld,
                      f"keep `{fld or path}: {type_text(old)}` (the entries hold it); to change its type, "
                      f"add a new field with a default and write that one",
                      f"entries hold `{type_text(old)}` here")
            return None
        kn = _kind(new)
        if isinstance(new, str):
            return None
        if kn == "money":
            return self._money(old["money"], new["money"], path, owner)
        if kn == "enum":
            return self._enum(old, new, path, owner)
        if kn == "array":
            inner = self._plan(old["array"], new["array"], path + "[]", owner)
            return None if inner is None else (lambda v: [inner(x) for x in v])
        if kn == "map":
            ck = self._plan(old["map"], new["map"], path + "{key}", owner)
            cv = self._plan(old["value"], new["value"], path + "{value}", owner)
            if ck is None and cv is None:
                return None
            ck, cv = ck or _same, cv or _same
            return lambda v: {ck(k): cv(x) for k, x in v.items()}
        return self._record(old, new, path)

    def _money(self, co, cn, path, owner):
        if cn is None or co == cn:
            if co is not None and cn is None:
                self.changes.append(f"`{path}` takes any currency (was {co})")
            return None
        rec, fld = owner or (None, None)
        if co is not None:
            self._bad(path, f"was retyped from `money ({co})` to `money ({cn})`", rec, fld,
                      f"keep `money ({co})`, or declare it `money` (any currency)", f"entries hold {co} here")
            return None
        self.scan = True
        self.owners[path] = owner or (None, None)

        def conv(v):
            if v.currency != cn:
                raise Unreadable(path, f"holds an amount in {v.currency}, and `{path}` is now `money ({cn})`")
            return v
        return conv

    def _enum(self, old, new, path, owner):
        gone = [v for v in old["variants"] if v not in new["variants"]]
        added = [v for v in new["variants"] if v not in old["variants"]]
        name = new["enum"]
        if added:
            self.changes.append(", ".join(f"`{name}::{v}`" for v in added) + f" added (`{path}`)")
        if not gone:
            return None
        self.scan = True
        self.owners[path] = owner or (None, None)
        gone_set = frozenset(gone)

        def conv(v):
            if v in gone_set:
                raise Unreadable(path, f"holds the variant `{name}::{v}`, which `{name}` no longer has")
            return v
        return conv

    def _record(self, old, new, path):
        name = new["record"]
        of = {n: t for n, t in old["fields"]}
        nf = new["fields"]
        names = {n for n, _ in nf}
        defaults = new.get("defaults") or {}
        for n, t in old["fields"]:
            if n not in names:
                self._bad(_sub(path, n), f"was removed, and the entries hold it (`{type_text(t)}`)", name, None,
                          f"keep `{n}: {type_text(t)}` in `{name}`: entries written with it must stay readable",
                          f"`{name}` has no field `{n}` any more")
        steps = []
        changed = [n for n, _ in old["fields"]] != [n for n, _ in nf]
        for n, t in nf:
            sub = _sub(path, n)
            if n in of:
                c = self._plan(of[n], t, sub, (name, n))
                changed |= c is not None
                steps.append((n, None, c))
            elif n in defaults:
                try:
                    value = from_value_form(t, defaults[n])
                except (ValueError, TypeError) as e:
                    self._bad(sub, f"has a default that is not a `{type_text(t)}` ({e})", name, n,
                              label="bad default")
                    continue
                self.changes.append(f"`{sub}` added, default {json.dumps(defaults[n], ensure_ascii=False)}")
                steps.append((n, _copier(value), None))
                changed = True
            else:
                self._bad(sub, "was added without a default, and the entries do not have it", name, n,
                          f"give it a default: `{n}: {type_text(t)} = ...` (entries written without it "
                          f"read that value)", "added without a default")
        if not changed:
            return None

        def conv(v):
            out = {}
            for n, fill, c in steps:
                out[n] = fill() if fill is not None else (v[n] if c is None else c(v[n]))
            return out
        return conv


def _same(x):
    return x


# ------------------------------------------------------------------------------ layouts


def layout_of(spec: dict) -> dict:
    """The layout a ledger spec (a service description's ledger) writes entries with."""
    return {"entry": spec["entry"], "key": spec["key"]}


def layout_text(layout: dict) -> str:
    from lwas.backend.artifact import canonical_json

    return canonical_json(layout).decode("utf-8")


def _select(db, sql: str, args=()) -> list:
    """A SELECT on a store (this thread's connection, inside its transaction if one is open) or
    on a store transaction (lwas.runtime.store)."""
    if hasattr(db, "cur"):
        db.cur.execute(sql.replace("?", db.mark), args)
        return db.cur.fetchall()
    return db._query(sql.replace("?", db.MARK), args)


def _insert(tx, sql: str, args) -> None:
    tx.cur.execute(sql.replace("?", tx.mark), args)


def stored_layouts(db, ledger: str) -> dict[bytes, dict]:
    """artifact digest -> layout, as recorded for `ledger`."""
    return {bytes.fromhex(a): json.loads(t)
            for a, t in _select(db, "SELECT artifact, layout FROM layouts WHERE ledger = ?", (ledger,))}


def all_layouts(db) -> dict[str, dict[str, dict]]:
    """ledger -> artifact (hex) -> layout, for every ledger (backups)."""
    out: dict[str, dict[str, dict]] = {}
    for ledger, a, t in _select(db, "SELECT ledger, artifact, layout FROM layouts ORDER BY ledger, artifact"):
        out.setdefault(ledger, {})[a] = json.loads(t)
    return out


def add_layouts(tx, ledger: str, layouts: dict[str, dict]) -> None:
    """Record layouts (artifact hex -> layout) of `ledger`; one already recorded must be equal."""
    have = {a.hex(): l for a, l in stored_layouts(tx, ledger).items()}
    for a, layout in sorted(layouts.items()):
        if a in have:
            if have[a] != layout:
                raise ValueError(f"ledger {ledger!r}: artifact {a[:_SHORT]}… is recorded with another layout")
            continue
        _insert(tx, "INSERT INTO layouts (ledger, artifact, layout) VALUES (?, ?, ?)",
                (ledger, a, layout_text(layout)))


def _scans(db, ledger: str) -> tuple[int, dict[bytes, tuple[int, str]]]:
    """(entries attributed so far, artifact -> its first entry (seq, key))."""
    upto, firsts = 0, {}
    for u, seen in _select(db, "SELECT upto, seen FROM layout_scans WHERE ledger = ? ORDER BY upto", (ledger,)):
        upto = max(upto, u)
        for a, (seq, key) in json.loads(seen).items():
            firsts.setdefault(bytes.fromhex(a), (seq, key))
    return upto, firsts


# ------------------------------------------------------------------------------ checking a ledger


@dataclass
class Problem:
    """One reason a program cannot serve a ledger, with the first entry that shows it."""
    ledger: str
    what: str  # the sentence after "ledger `x`: "
    seq: int | None = None
    key: str | None = None
    artifact: bytes | None = None
    help: str | None = None
    record: str | None = None  # where to point in the program's source
    field: str | None = None
    label: str = ""

    def entry(self) -> str:
        if self.seq is None:
            return ""
        by = f" (written by artifact {self.artifact.hex()[:_SHORT]}…)" if self.artifact else ""
        return f"first entry that cannot be read: seq {self.seq}, key {self.key!r}{by}"

    def text(self) -> str:
        out = f"ledger `{self.ledger}`: {self.what}"
        if self.seq is not None:
            out += f"\n  = note: {self.entry()}"
        if self.help:
            out += f"\n  = help: {self.help}"
        return out


@dataclass
class LedgerReport:
    name: str
    entries: int = 0
    artifacts: int = 0  # artifacts that wrote entries
    changes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    register: dict[str, dict] = field(default_factory=dict)  # artifact hex -> layout to record
    scanned: tuple[int, dict] | None = None  # (upto, seen) to record


class LedgerReader:
    """Reads a ledger's payloads as values of the program's entry type, whatever layout wrote them."""

    def __init__(self, name: str, layout: dict, layouts: dict[bytes, dict], store=None):
        self.name, self.layout, self.desc = name, layout, layout["entry"]
        self.layouts = dict(layouts)
        self.store = store  # to look up artifacts that started after us
        self._plans: dict[bytes, tuple | None] = {}
        self._native = None  # entry_reader(desc), built on first use
        self._natives: dict = {}  # artifact -> how native() reads its entries

    def _plan_for(self, artifact: bytes):
        layout = self.layouts.get(artifact)
        if layout is None and self.store is not None:
            self.layouts.update(stored_layouts(self.store, self.name))
            layout = self.layouts.get(artifact)
        if layout is None or layout == self.layout:
            return None  # ours, or written before layouts were recorded: the program's layout
        plan = Plan(layout["entry"], self.desc)
        if plan.problems or layout["key"] != self.layout["key"]:
            p = plan.problems[0] if plan.problems else None
            what = f"`{p.path}` {p.what}" if p else f"keyed by `{layout['key']}`, not `{self.layout['key']}`"
            raise SchemaError([Problem(self.name, f"entries written by artifact {artifact.hex()[:_SHORT]}… "
                                                  f"cannot be read: {what}")])
        return None if plan.convert is None else (layout["entry"], plan.convert)

    def native(self, artifact: bytes, payload: bytes):
        """The entry as the `on` block takes it: read straight into its ctypes record when it
        is in the program's own layout (lwas.runtime.transcode), else converted as a Python value."""
        read = self._natives.get(artifact)
        if read is None:
            read = self._natives[bytes(artifact)] = self._native_for(bytes(artifact))
        return read(payload)

    def _native_for(self, artifact: bytes):
        """How native() reads the entries `artifact` wrote: transcoded, or converted."""
        if artifact not in self._plans:
            self._plans[artifact] = self._plan_for(artifact)
        if self._plans[artifact] is not None:
            return lambda payload: self.decode(artifact, payload)
        if self._native is None:
            from lwas.runtime.transcode import entry_reader

            self._native = entry_reader(self.desc)
        return self._native

    def decode(self, artifact: bytes, payload: bytes):
        artifact = bytes(artifact)
        try:
            plan = self._plans[artifact]
        except KeyError:
            plan = self._plans[artifact] = self._plan_for(artifact)
        if plan is None:
            return decode_value(self.desc, payload)
        try:
            return plan[1](decode_value(plan[0], payload))
        except Unreadable as e:
            raise SchemaError([Problem(self.name, f"an entry written by artifact {artifact.hex()[:_SHORT]}… "
                                                  f"cannot be read: `{e.path}` {e.reason}")]) from None


class Layouts:
    """The readers of a service's ledgers, in the order of its ledger specs."""

    def __init__(self, readers: list[LedgerReader]):
        self.readers = readers

    def decode(self, ledger: int, artifact: bytes, payload: bytes):
        """The value of an entry payload of ledger `ledger` (an index) written by `artifact`."""
        return self.readers[ledger].decode(artifact, payload)

    def native(self, ledger: int, artifact: bytes, payload: bytes):
        """The entry of ledger `ledger` in the form its `on` block takes (LedgerReader.native)."""
        return self.readers[ledger].native(artifact, payload)


def survey(db, spec: dict, digest: bytes | None) -> LedgerReport:
    """Whether the program whose ledger spec is `spec` (and whose artifact is `digest`, when
    known) can read every entry of that ledger in `db` (a store or a store transaction)."""
    name = spec["name"]
    cur = layout_of(spec)
    layouts = stored_layouts(db, name)
    upto, firsts = _scans(db, name)
    report = LedgerReport(name)
    if digest is not None and digest in layouts and layouts[digest] != cur:
        report.problems.append(Problem(name, f"artifact {digest.hex()[:_SHORT]}… is recorded with another "
                                             "layout of this ledger (the store does not belong to this program)"))
        return report
    # entries since the last scan: which artifacts wrote them; unrecorded ones must read as ours
    fresh: dict[bytes, tuple[int, str]] = {}
    legacy_bad = None
    size = upto
    for seq, key, data in db.read(name, upto - 1):
        data = bytes(data)
        size = seq + 1
        art = data[_ART]
        if art not in firsts and art not in fresh:
            fresh[art] = (seq, key)
        if art not in layouts and legacy_bad is None:
            try:
                decode_value(cur["entry"], decode_entry(data).payload)
            except ValueError as e:
                legacy_bad = Problem(
                    name, f"entries written before this runtime recorded layouts do not read as "
                          f"`{type_text(cur['entry'])}` of this program ({e})", seq, key, art,
                    "serve the ledger once with the program that wrote these entries (its layout is "
                    "then recorded), then start this version", cur["entry"].get("record"))
    if legacy_bad is not None:
        report.problems.append(legacy_bad)
    seen = {**firsts, **fresh}
    report.entries = size
    report.artifacts = len(seen)
    if size > upto:
        report.scanned = (size, {a.hex(): list(v) for a, v in fresh.items()})
    for a in seen:
        if a not in layouts:
            report.register[a.hex()] = cur
    if digest is not None and digest not in layouts:
        report.register[digest.hex()] = cur
    # every other layout that wrote entries: statically, then (if needed) value by value
    found: dict[tuple, Problem] = {}
    scan: dict[bytes, tuple] = {}
    rec = type_text(cur["entry"])
    for art, (seq, key) in sorted(seen.items(), key=lambda kv: kv[1][0]):
        layout = layouts.get(art, cur)
        if layout == cur:
            continue
        if layout["key"] != cur["key"]:
            found.setdefault(("key",), Problem(
                name, f"its entries are keyed by `{layout['key']}`, this program keys it by `{cur['key']}`",
                seq, key, art, f"keep `by {layout['key']}`: a ledger's key cannot change (declare a new ledger)"))
        plan = Plan(layout["entry"], cur["entry"])
        for c in plan.problems:
            found.setdefault((c.path, c.what), Problem(name, f"field `{c.path}` of `{rec}` {c.what}", seq, key, art,
                                                        c.help, c.record, c.field, c.label))
        for ch in plan.changes:
            if ch not in report.changes:
                report.changes.append(ch)
        if plan.scan and not plan.problems:
            scan[art] = (layout["entry"], plan.convert, plan.owners)
    if scan:
        for seq, key, data in db.read(name, -1):
            data = bytes(data)
            hit = scan.get(data[_ART])
            if hit is None:
                continue
            try:
                hit[1](decode_value(hit[0], decode_entry(data).payload))
            except Unreadable as e:
                owner, fld = hit[2].get(e.path, (None, None))
                found.setdefault((e.path, e.reason), Problem(
                    name, f"field `{e.path}` of `{rec}` {e.reason}", seq, key, data[_ART],
                    "keep what the entries use (the variant, the currency) in the type", owner, fld,
                    "entries hold a value this type no longer has"))
            except ValueError as e:
                found.setdefault(("decode",), Problem(name, f"an entry does not read with its recorded layout ({e})",
                                                      seq, key, data[_ART]))
    report.problems.extend(sorted(found.values(), key=lambda p: (p.seq if p.seq is not None else -1)))
    return report


def record(tx, report: LedgerReport) -> None:
    """Write what a survey found (inside the start transaction): new layouts and the scan."""
    if report.register:
        add_layouts(tx, report.name, report.register)
    if report.scanned is not None:
        upto, seen = report.scanned
        _insert(tx, "INSERT INTO layout_scans (ledger, upto, seen) VALUES (?, ?, ?)",
                (report.name, upto, json.dumps(seen, sort_keys=True, separators=(",", ":"), ensure_ascii=False)))


def prepare(tx, specs: list[dict], digest: bytes, store=None) -> Layouts:
    """At service start, inside its store transaction and before any entry is read: check that
    this program (artifact `digest`) can read every ledger, record its layouts, and return the
    readers. Raises SchemaError (nothing recorded) when a ledger cannot be served."""
    reports = [survey(tx, spec, digest) for spec in specs]
    problems = [p for r in reports for p in r.problems]
    if problems:
        raise SchemaError(problems)
    for r in reports:
        record(tx, r)
    return Layouts([LedgerReader(spec["name"], layout_of(spec),
                                 {**stored_layouts(tx, spec["name"])}, store) for spec in specs])


def start_service(service, tx) -> None:
    """Service.start's hook (lwas.runtime.host): sets service.layouts, or raises SchemaError."""
    service.layouts = prepare(tx, service.ledger_specs, service.digest, service.store)


# ------------------------------------------------------------------------------ `lwasc ledger check`


def _program(path: str, pubkeys: list[str]):
    """(service descriptions, artifact digest or None, sources, compiled program or None), or a
    str: the rendered reason the file cannot be checked (exit 1) — or raises OSError."""
    from lwas.backend.artifact import MAGIC, ArtifactError, verify
    from lwas.backend.keys import KeyFileError, trusted_keys

    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(MAGIC):
        try:
            art = verify(data, trusted_keys(pubkeys))
        except (ArtifactError, KeyFileError) as e:
            return f"error: cannot load `{path}`: {e}"
        return art.manifest.get("services") or [], hashlib.sha512(data).digest(), {}, None
    from lwas.syntax.diagnostics import render_all
    from lwas.driver import check_file

    c = check_file(path)
    if not c.ok:
        return render_all(c.diagnostics, c.sources)
    return c.services, None, c.sources, c.program


def _span(program, services: list[dict], p: Problem, ledger_names: dict):
    """Where a problem points in the source: the field, else the record, else the ledger."""
    from lwas.syntax import tree as ast
    from lwas.syntax.source import Span

    if program is not None:
        if p.record is not None:
            short = p.record.rsplit(".", 1)[-1]
            mods = sorted(program.modules, key=lambda m: not m.is_root)
            for m in mods:
                decl = m.items.get(short)
                if isinstance(decl, ast.RecordDecl):
                    for f in decl.fields:
                        if f.name == p.field:
                            return f.span, p.label
                    return decl.name_span, p.label
        decl = ledger_names.get(p.ledger)
        if decl is not None:
            return decl.name_span, p.label or "this ledger"
    for svc in services:
        if any(l["name"] == p.ledger for l in svc["ledgers"]):
            return Span(svc.get("file", "?"), svc.get("line", 0), 1, svc.get("line", 0), 1), ""
    return Span("?", 0, 0, 0, 0), ""


def _ledger_decls(program) -> dict:
    from lwas.syntax import tree as ast

    out = {}
    if program is None:
        return out
    for m in program.modules:
        for it in m.tree.items:
            if isinstance(it, ast.ServiceDecl):
                for mem in it.members:
                    if isinstance(mem, ast.LedgerDecl):
                        out.setdefault(mem.name, mem)
    return out


def check_store(db, services: list[dict], digest: bytes | None) -> tuple[list[LedgerReport], list[str]]:
    """Survey every ledger of the program's services in the store (read only): the reports and
    the names of stored ledgers the program does not declare."""
    from lwas.runtime.store import _LEDGERS

    reports = [survey(db, spec, digest) for svc in services for spec in svc["ledgers"]]
    declared = {r.name for r in reports}
    stored = [r[0] for r in _select(db, _LEDGERS)]
    return reports, [n for n in stored if n not in declared]


def check_command(db: str, path: str, pubkeys: list[str] | None = None, colour: bool = False,
                  out=None) -> int:
    """`lwasc ledger check DB FILE`: 0 the program can serve every ledger, 1 it cannot (or the
    file does not compile), 2 the store or the file cannot be opened."""
    from lwas.syntax.diagnostics import Diagnostic, render
    from lwas.runtime.store import open_store

    out = out or sys.stdout
    try:
        got = _program(path, pubkeys or [])
    except OSError as e:
        print(f"error: cannot read `{path}`: {e.strerror or e}", file=sys.stderr)
        return 2
    if isinstance(got, str):
        print(got, file=sys.stderr)
        return 1
    services, digest, sources, program = got
    if not services:
        print(f"error: `{path}` declares no service: it has no ledger to check", file=sys.stderr)
        return 1
    try:
        store = open_store(db, create=False)
    except Exception as e:  # a missing file, an unreachable server, a bad URL
        print(f"error: cannot open ledger store {db}: {e}", file=sys.stderr)
        return 2
    try:  # outside the writers' lock: a running service is not held up by a long first scan
        reports, undeclared = check_store(store, services, digest)
    except Exception as e:  # noqa: BLE001 - a store that is not a ledger store, a lost connection
        print(f"error: cannot read ledger store {db}: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    decls = _ledger_decls(program)
    problems = [p for r in reports for p in r.problems]
    blocks = []
    for p in problems:
        span, label = _span(program, services, p, decls)
        notes = (p.entry(),) if p.seq is not None else ()
        blocks.append(render(Diagnostic("", f"ledger `{p.ledger}`: {p.what}", span, label=label,
                                        notes=notes, help=p.help), sources, colour))
    lines = []
    for r in reports:
        if r.problems:
            continue
        if r.entries == 0:
            lines.append(f"ok: ledger `{r.name}`: no entries yet")
            continue
        how = "; ".join(r.changes) if r.changes else ("the same layout" if r.artifacts <= 1 else "compatible layouts")
        lines.append(f"ok: ledger `{r.name}`: {r.entries} entries ({r.artifacts} program version"
                     f"{'s' if r.artifacts != 1 else ''}) readable: {how}")
    for n in undeclared:
        lines.append(f"note: ledger `{n}` is in the store but not in this program: its entries are kept, not served")
    text = "\n".join(lines)
    if problems:
        bad = len({p.ledger for p in problems})
        blocks.append(f"error: {bad} ledger{'s' if bad != 1 else ''} cannot be served by `{path}` "
                      f"({len(problems)} problem{'s' if len(problems) != 1 else ''})")
        if text:
            print(text, file=out)
        print("\n\n".join(blocks), file=out)
        return 1
    print(text, file=out)
    print(f"compatible: `{path}` can serve {len(reports)} ledger{'s' if len(reports) != 1 else ''} "
          f"({sum(r.entries for r in reports)} entries)", file=out)
    return 0

"""Ledger schema evolution (lwas.runtime.schema): a new program version serves an existing ledger
when it adds a field with a default, a variant or a ledger; it is refused before serving, naming
the ledger, the field and the first entry that cannot be read, when it removes or retypes a field
the entries hold, adds one without a default, or removes a variant entries use — at start and by
`lwasc ledger check`. Entry bytes never change: verify, export, import and compare keep working."""
from __future__ import annotations

import base64
import copy
import hashlib
import math
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwas.tools.cli import main as lwasc
from lwas.driver import compile_source
from lwas.backend.keys import generate, public_pem
from lwas.runtime.backup import compare_stores, export_archive, import_archives, read_archive
from lwas.runtime.host import Service
from lwas.runtime.ledger import Ledger, append_batch, decode_entry, decode_value, encode_value
from lwas.runtime.loader import load_verified
from lwas.runtime.schema import (LedgerReader, Plan, SchemaError, check_store, from_value_form, layout_of,
                                 prepare, stored_layouts)
from lwas.runtime.store import open_store
from lwas.runtime.values import EPOCH, Money, time_to_micros
from lwas.runtime.verify import verify_store
from postgres import postgres_url  # noqa: F401  (session fixture: a throwaway PostgreSQL cluster)

KEY = generate()

V1 = '''module shop

enum Kind { Deposit, Withdrawal }

record Transfer {
  id: text
  amount: money
  kind: Kind
}

record Totals {
  count: int
  last: text
}

service shop {
  ledger transfers: Transfer by id
  state count: int = 0
  state last: text = ""

  on transfers(t) {
    state.count += 1
    state.last = t.id
  }

  post "/t" (t: Transfer) -> text {
    append transfers(t)
    return t.id
  }

  get "/totals" -> Totals {
    return Totals(count: state.count, last: state.last)
  }
}
'''

# version 2: a field with a default, a variant and a ledger
V2 = (V1.replace("  kind: Kind\n}", '  kind: Kind\n  memo: text = "none"\n}')
        .replace("Withdrawal }", "Withdrawal, Fee }")
        .replace("state.last = t.id\n", 'state.last = t.id + ":" + t.memo\n')
        .replace("record Totals {", "record Note {\n  id: text\n  body: text\n}\n\nrecord Totals {")
        .replace("  ledger transfers: Transfer by id\n",
                 "  ledger transfers: Transfer by id\n  ledger notes: Note by id\n")
        .replace('  get "/totals"', '  post "/n" (n: Note) -> text {\n    append notes(n)\n    return n.id\n  }\n\n'
                 '  get "/totals"'))

REFUSED = {  # version -> (source, what the refusal says, the first entry it names)
    "removed": (V1.replace("  kind: Kind\n", ""),
                "field `kind` of `Transfer` was removed, and the entries hold it", "seq 0, key 't0'"),
    "retyped": (V1.replace("amount: money", "amount: int"),
                "field `amount` of `Transfer` was retyped from `money` to `int`", "seq 0, key 't0'"),
    "no-default": (V1.replace("  kind: Kind\n}", "  kind: Kind\n  extra: int\n}"),
                   "field `extra` of `Transfer` was added without a default", "seq 0, key 't0'"),
    "variant-removed": (V1.replace("{ Deposit, Withdrawal }", "{ Deposit }"),
                        "field `kind` of `Transfer` holds the variant `Kind::Withdrawal`, which `Kind` no "
                        "longer has", "seq 1, key 't1'"),
}

_built: dict[str, tuple] = {}


def build(src: str):
    """(service description, native program, artifact digest, artifact bytes), compiled once."""
    if src not in _built:
        c = compile_source(src, "shop.lwas", key=KEY)
        assert c.ok, [f"{d.code} {d.message}" for d in c.diagnostics]
        art, program = load_verified(c.artifact, [KEY.public_key()])
        _built[src] = (art.manifest["services"][0], program, hashlib.sha512(c.artifact).digest(), c.artifact)
    return _built[src]


def route(desc: dict, method: str, path: str) -> dict:
    return next(r for r in desc["routes"] if r["method"] == method and r["path"] == path)


class Served:
    """One version of the program serving a store (started: ledgers checked and replayed)."""

    def __init__(self, src: str, db: str):
        self.desc, self.program, self.digest, _ = build(src)
        self.store = open_store(db)
        self.svc = Service(self.program, self.desc, self.store, KEY, self.digest, settings={})
        try:
            self.svc.start()
        except BaseException:
            self.store.close()
            raise

    def transfer(self, tid: str, minor: int, kind: str = "Deposit", **extra) -> str:
        body = {"id": tid, "amount": Money(minor, "USD"), "kind": kind, **extra}
        return self.svc.call(route(self.desc, "POST", "/t"), (body,)).response

    def totals(self) -> dict:
        return self.svc.read(route(self.desc, "GET", "/totals"), ())

    def close(self) -> None:
        self.svc.stop()
        self.store.close()


def serve_v1(db: str, kinds=("Deposit", "Withdrawal", "Deposit")) -> None:
    s = Served(V1, db)
    try:
        for i, kind in enumerate(kinds):
            assert s.transfer(f"t{i}", 100 * i + 1, kind) == f"t{i}"
    finally:
        s.close()


def layouts_rows(db: str) -> list:
    with sqlite3.connect(db) as c:
        return sorted(c.execute("SELECT ledger, artifact, layout FROM layouts").fetchall())


def check_cli(db: str, path, capsys, *more) -> tuple[int, str]:
    code = lwasc(["ledger", "check", str(db), str(path), "--color", "never", *more])
    out = capsys.readouterr()
    return code, out.out + out.err


# ------------------------------------------------------------------------------ accepted changes


def test_a_field_with_a_default_a_variant_and_a_ledger_are_accepted(tmp_path, capsys):
    """Version 2 of a program (real syntax: `memo: text = "none"`, the variant `Fee`, the ledger
    `notes`) serves version 1's ledger: old entries read the default, new ones hold memo, and a
    restart replays both; `lwasc ledger check` agrees."""
    db = str(tmp_path / "l.db")
    serve_v1(db)
    src = tmp_path / "shop.lwas"
    src.write_text(V2)
    code, text = check_cli(db, src, capsys)
    assert code == 0, text
    assert "ok: ledger `transfers`: 3 entries (1 program version) readable: `Kind::Fee` added (`kind`); " \
           "`memo` added, default \"none\"" in text, text
    assert "ok: ledger `notes`: no entries yet" in text and text.rstrip().endswith("(3 entries)"), text
    s = Served(V2, db)
    try:
        assert s.totals() == {"count": 3, "last": "t2:none"}  # t2 was written without memo
        assert s.transfer("t3", 7, "Fee", memo="late fee") == "t3"
        assert s.totals() == {"count": 4, "last": "t3:late fee"}
        out = s.svc.call(route(s.desc, "POST", "/n"), ({"id": "n1", "body": "hello"},))
        assert out.entries == [("notes", 0, "n1")]
        reader = s.svc.layouts.readers[0]
        old = decode_entry(s.svc.ledgers[0].entry(1))
        assert reader.decode(old.artifact, old.payload) == {
            "id": "t1", "amount": Money(101, "USD"), "kind": "Withdrawal", "memo": "none"}
    finally:
        s.close()
    s = Served(V2, db)  # a restart replays entries of both versions
    try:
        assert s.totals() == {"count": 4, "last": "t3:late fee"}
    finally:
        s.close()
    v1_digest, v2_digest = build(V1)[2], build(V2)[2]
    assert {(l, a) for l, a, _ in layouts_rows(db)} == {
        ("transfers", v1_digest.hex()), ("transfers", v2_digest.hex()), ("notes", v2_digest.hex())}


def test_a_variant_no_entry_uses_may_be_removed(tmp_path):
    db = str(tmp_path / "l.db")
    serve_v1(db, kinds=("Deposit", "Deposit"))
    src, _, _ = REFUSED["variant-removed"]
    s = Served(src, db)
    try:
        assert s.totals() == {"count": 2, "last": "t1"}
    finally:
        s.close()


def test_a_version_that_wrote_nothing_constrains_nothing(tmp_path):
    """Version 2 is served but appends nothing: going back to version 1 (no memo) is fine."""
    db = str(tmp_path / "l.db")
    serve_v1(db)
    Served(V2, db).close()
    s = Served(V1, db)
    try:
        assert s.totals() == {"count": 3, "last": "t2"}
    finally:
        s.close()


# ------------------------------------------------------------------------------ refused changes


@pytest.mark.parametrize("change", sorted(REFUSED))
def test_an_incompatible_version_is_refused_before_serving(change, tmp_path, capsys):
    """At start (nothing recorded, nothing replayed) and by `lwasc ledger check` (exit 1, rustc-like
    output pointing into the source), naming the ledger, the field and the first unreadable entry."""
    db = str(tmp_path / "l.db")
    serve_v1(db)
    src, what, first = REFUSED[change]
    before = layouts_rows(db)
    with pytest.raises(SchemaError) as e:
        Served(src, db)
    msg = str(e.value)
    assert msg.startswith(f"ledger `transfers`: {what}"), msg
    assert f"\n  = note: first entry that cannot be read: {first} (written by artifact {build(V1)[2].hex()[:16]}…)" \
        "\n  = help: " in msg, msg
    assert layouts_rows(db) == before  # a refused start records nothing
    path = tmp_path / "shop.lwas"
    path.write_text(src)
    code, text = check_cli(db, path, capsys)
    assert code == 1, text
    assert text.startswith(f"error: ledger `transfers`: {what}"), text
    assert " --> " in text and f"shop.lwas:" in text and "^" in text, text  # points into the source
    assert f"= note: first entry that cannot be read: {first}" in text and "= help: " in text, text
    assert text.rstrip().endswith("error: 1 ledger cannot be served by `" + str(path) + "` (1 problem)"), text
    s = Served(V1, db)  # the version that wrote the ledger still serves it
    try:
        assert s.totals()["count"] == 3
    finally:
        s.close()


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    db = str(tmp_path / "l.db")
    serve_v1(db)
    src = V1.replace("  kind: Kind\n}", "  extra: int\n}").replace("amount: money", "amount: text")
    path = tmp_path / "shop.lwas"
    path.write_text(src)
    code, text = check_cli(db, path, capsys)
    assert code == 1
    for what in ("`kind` of `Transfer` was removed", "`amount` of `Transfer` was retyped from `money` to `text`",
                 "`extra` of `Transfer` was added without a default"):
        assert what in text, text
    assert "(3 problems)" in text


def test_check_an_artifact_and_its_errors(tmp_path, capsys):
    """FILE may be a signed artifact (like `lwasc serve`); a missing store or file is exit 2, a
    source that does not compile exit 1."""
    db = str(tmp_path / "l.db")
    serve_v1(db)
    art, pub = tmp_path / "shop.lwasart", tmp_path / "k.pub"
    pub.write_bytes(public_pem(KEY))
    art.write_bytes(build(V2)[3])
    code, text = check_cli(db, art, capsys, "--pubkey", str(pub))
    assert code == 0 and "compatible: " in text, text
    art.write_bytes(build(REFUSED["removed"][0])[3])
    code, text = check_cli(db, art, capsys, "--pubkey", str(pub))
    assert code == 1, text
    # no source at hand: the service's place in the manifest, no snippet
    assert "--> shop.lwas:" in text and "first entry that cannot be read: seq 0, key 't0'" in text, text
    art.write_bytes(build(V2)[3][:-1] + b"\x00")  # the signature no longer verifies
    code, text = check_cli(db, art, capsys, "--pubkey", str(pub))
    assert code == 1 and "bad signature" in text, text
    art.write_bytes(build(V2)[3])
    code, text = check_cli(str(tmp_path / "missing.db"), art, capsys, "--pubkey", str(pub))
    assert code == 2 and "cannot open ledger store" in text
    code, text = check_cli(db, tmp_path / "nope.lwas", capsys)
    assert code == 2 and "cannot read" in text
    bad = tmp_path / "bad.lwas"
    bad.write_text("record R { x: nope }\n")
    code, text = check_cli(db, bad, capsys)
    assert code == 1 and "error[" in text


def test_evolution_on_postgresql(postgres_url, tmp_path, capsys):
    """The same rules on a PostgreSQL store (the layouts live in the same transaction as the rows)."""
    import uuid

    import psycopg

    name = "s_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.replace("/lwas?", f"/{name}?")
    serve_v1(url)
    src, what, first = REFUSED["variant-removed"]
    with pytest.raises(SchemaError, match=f"ledger `transfers`: {what}"):
        Served(src, url)
    s = Served(V2, url)
    try:
        assert s.totals() == {"count": 3, "last": "t2:none"}
        s.transfer("t3", 1, "Fee", memo="pg")
    finally:
        s.close()
    path = tmp_path / "shop.lwas"
    path.write_text(REFUSED["removed"][0])
    code, text = check_cli(url, path, capsys)
    assert code == 1 and "field `kind` of `Transfer` was removed" in text, text
    path.write_text(V2)
    code, text = check_cli(url, path, capsys)
    assert code == 0 and "4 entries (2 program versions)" in text, text
    store = open_store(url)
    try:
        assert set(stored_layouts(store, "transfers")) == {build(V1)[2], build(V2)[2]}
    finally:
        store.close()


# ------------------------------------------------------------------------------ older ledgers


def write_like_the_previous_runtime(db: str, src: str, n: int = 3) -> None:
    """Entries appended as lwasc did before layouts were recorded: LWE1 rows and checkpoints
    only, the payload encoded with the program's entry type."""
    desc, _, digest, _ = build(src)
    spec = desc["ledgers"][0]
    store = open_store(db)
    try:
        ledger = Ledger(spec["name"], f"lwas/{desc['name']}/{spec['name']}", KEY)
        for i in range(n):
            value = {"id": f"t{i}", "amount": Money(100 * i + 1, "USD"), "kind": "Deposit"}
            append_batch(store, ledger, [(value["id"], encode_value(spec["entry"], value))], 1_000 + i, digest)
    finally:
        store.close()
    with sqlite3.connect(db) as c:  # the store of the previous runtime has no layouts
        c.execute("DELETE FROM layouts")
        c.execute("DELETE FROM layout_scans")


def test_an_lwe1_ledger_of_the_previous_runtime_stays_readable(tmp_path):
    """Entries without recorded layouts read as the first program that starts on them (checked
    entry by entry, then recorded); after that the program may change."""
    db = str(tmp_path / "l.db")
    write_like_the_previous_runtime(db, V1)
    with sqlite3.connect(db) as c:
        first = c.execute("SELECT entry FROM entries WHERE seq = 0").fetchone()[0]
    assert first[:4] == b"LWE1" and first[20:84] == build(V1)[2]
    assert decode_entry(first).payload == encode_value("text", "t0") + (1).to_bytes(8, "big") + b"USD" + \
        (7).to_bytes(2, "big") + b"Deposit"
    # the new version cannot tell which layout wrote them: it says what to do
    with pytest.raises(SchemaError, match=r"(?s)written before this runtime recorded layouts do not read as "
                                          r"`Transfer` of this program .*seq 0, key 't0'.*serve the ledger once "
                                          r"with the program that wrote these entries"):
        Served(V2, db)
    s = Served(V1, db)  # the program that wrote them: recorded on this first start
    try:
        assert s.totals() == {"count": 3, "last": "t2"}
        s.transfer("t3", 5)
    finally:
        s.close()
    assert [(l, a) for l, a, _ in layouts_rows(db)] == [("transfers", build(V1)[2].hex())]
    s = Served(V2, db)
    try:
        assert s.totals() == {"count": 4, "last": "t3:none"}
    finally:
        s.close()


def test_the_start_reads_only_new_entries(tmp_path):
    db = str(tmp_path / "l.db")
    serve_v1(db)
    s = Served(V1, db)
    s.transfer("t3", 1)
    s.close()
    Served(V1, db).close()
    Served(V1, db).close()  # nothing new: nothing read, nothing recorded
    with sqlite3.connect(db) as c:
        scans = c.execute("SELECT upto, seen FROM layout_scans ORDER BY upto").fetchall()
    assert [u for u, _ in scans] == [3, 4]  # the second start attributed 0..2, the third 3
    assert f'"{build(V1)[2].hex()}":[0,"t0"]' in scans[0][1] and scans[1][1] == "{}"


# ------------------------------------------------------------------------------ the runtime's own descs


def test_a_desc_changed_under_the_runtime(tmp_path):
    """The entry type the runtime sees, changed by hand (as the compiler writes it): a field
    with a default and a variant are added; the reader converts version 1's entries."""
    db = str(tmp_path / "l.db")
    serve_v1(db)
    desc, _, digest, _ = build(V1)
    spec = copy.deepcopy(desc["ledgers"][0])
    entry = spec["entry"]
    entry["fields"].insert(1, ["tags", {"array": "text"}])
    entry["fields"].append(["when", "time"])
    entry["fields"].append(["fee", {"money": None}])
    dict(entry["fields"])["kind"]["variants"].append("Fee")
    entry["defaults"] = {"tags": ["a", "b"], "when": 1_000_000, "fee": [250, "USD"]}
    store = open_store(db)
    try:
        with store.transaction() as tx:
            layouts = prepare(tx, [spec], b"\x02" * 64, store)
        rows = list(store.read("transfers"))
        e = decode_entry(rows[1][2])
        assert layouts.decode(0, e.artifact, e.payload) == {
            "id": "t1", "tags": ["a", "b"], "amount": Money(101, "USD"), "kind": "Withdrawal",
            "when": datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc), "fee": Money(250, "USD")}
        assert stored_layouts(store, "transfers")[b"\x02" * 64] == layout_of(spec)
        del entry["defaults"]["when"]
        with store.transaction() as tx:
            with pytest.raises(SchemaError, match=r"field `when` of `Transfer` was added without a default"):
                prepare(tx, [spec], b"\x03" * 64, store)
    finally:
        store.close()


def test_a_reader_follows_a_version_that_started_after_it(tmp_path):
    """Several processes on one store: entries of an artifact registered after this reader was
    made are read through the store's layouts; those it cannot read stop its catch-up."""
    db = str(tmp_path / "l.db")
    desc1, _, d1, _ = build(V1)
    desc2, _, d2, _ = build(V2)
    store = open_store(db)
    try:
        with store.transaction() as tx:
            v2 = prepare(tx, [desc2["ledgers"][0]], d2, store)  # version 2 starts first, writes nothing
        with store.transaction() as tx:
            prepare(tx, [desc1["ledgers"][0]], d1, store)  # then version 1 starts, and writes
        ledger = Ledger("transfers", "lwas/shop/transfers", KEY)
        value = {"id": "t0", "amount": Money(1, "USD"), "kind": "Deposit"}
        append_batch(store, ledger, [("t0", encode_value(desc1["ledgers"][0]["entry"], value))], 1, d1)
        e = decode_entry(ledger.entry(0))
        assert v2.decode(0, e.artifact, e.payload) == {**value, "memo": "none"}
        v1 = LedgerReader("transfers", layout_of(desc1["ledgers"][0]), {}, store)
        value2 = {**value, "id": "t1", "memo": "m"}
        payload = encode_value(desc2["ledgers"][0]["entry"], value2)
        with pytest.raises(SchemaError, match=r"ledger `transfers`: entries written by artifact [0-9a-f]{16}… "
                                              r"cannot be read: `memo` was removed"):
            v1.decode(d2, payload)
    finally:
        store.close()


# ------------------------------------------------------------------------------ audit and backups


def test_verify_export_import_and_compare_after_evolution(tmp_path, capsys):
    db = str(tmp_path / "l.db")
    serve_v1(db)
    s = Served(V2, db)
    try:
        s.transfer("t3", 9, "Fee", memo="m")
    finally:
        s.close()
    report = verify_store(db, KEY.public_key())
    assert report.ok and report.entries == 4, report.text()
    pub = tmp_path / "k.pub"
    pub.write_bytes(public_pem(KEY))
    assert lwasc(["ledger", "verify", db, "--pubkey", str(pub)]) == 0
    archive = str(tmp_path / "full.lwasarchive")
    export_archive(db, archive, KEY.public_key())
    layouts = read_archive(archive).header["layouts"]
    assert set(layouts["transfers"]) == {build(V1)[2].hex(), build(V2)[2].hex()}
    restored = str(tmp_path / "restored.db")
    assert import_archives([archive], restored, KEY.public_key()) == {"ledgers": 1, "entries": 4}
    assert layouts_rows(restored) == [r for r in layouts_rows(db) if r[0] == "transfers"]  # `notes` has no entries
    assert compare_stores(db, restored)[0]
    s = Served(V2, restored)  # the restored store reads as the original
    try:
        assert s.totals() == {"count": 4, "last": "t3:m"}
    finally:
        s.close()
    capsys.readouterr()
    # a replica whose layouts disagree is not consistent, though its entries are equal
    with sqlite3.connect(restored) as c:
        c.execute("UPDATE layouts SET layout = replace(layout, '\"none\"', '\"other\"')")
    ok, lines = compare_stores(db, restored)
    assert not ok and "A and B record different entry layouts" in lines[0], lines


def test_an_archive_layout_that_does_not_decode_is_refused(tmp_path):
    from lwas.runtime.backup import BackupError, _write_archive

    db = str(tmp_path / "l.db")
    serve_v1(db)
    archive = str(tmp_path / "a.lwasarchive")
    export_archive(db, archive, KEY.public_key())
    a = read_archive(archive)
    art = build(V1)[2].hex()
    a.header["layouts"]["transfers"][art]["entry"]["fields"].append(["extra", "int"])
    records = [{**r, "data": base64.b64encode(r["data"]).decode()} if r["t"] == "entry" else r
               for r in a.records]
    _write_archive(archive, a.header, records)
    with pytest.raises(BackupError, match=r"seq 0 key 't0': the entry does not decode with the layout"):
        import_archives([archive], str(tmp_path / "r.db"), KEY.public_key())


# ------------------------------------------------------------------------------ value forms and plans


def test_value_forms_become_runtime_values():
    kind = {"enum": "Kind", "variants": ["A", "B"]}
    inner = {"record": "In", "fields": [["x", "int"], ["y", "text"]], "defaults": {"y": "dflt"}}
    cases = [("int", 3, 3), ("float", 2, 2.0), ("truth", 0.5, 0.5), ("bool", True, True), ("text", "é", "é"),
             ("time", 1, EPOCH.replace(microsecond=1)), (kind, "B", "B"), ({"money": None}, [150, "EUR"], Money(150, "EUR")),
             ({"array": "int"}, [1, 2], [1, 2]), ({"map": "text", "value": "int"}, {}, {}),
             ({"map": "int", "value": kind}, [[2, "A"], [1, "B"]], {2: "A", 1: "B"}),
             (inner, {"x": 1}, {"x": 1, "y": "dflt"}), ({"array": inner}, [{"x": 2, "y": "z"}], [{"x": 2, "y": "z"}])]
    for desc, form, value in cases:
        got = from_value_form(desc, form)
        assert got == value and type(got) is type(value), (desc, form, got)
    for desc, form in [("int", True), ("int", 1.5), ("bool", 1), ("time", "2020-01-01"), (kind, "C"),
                       ({"money": "USD"}, [1, "EUR"]), ({"money": None}, [1.5, "USD"]), ({"money": None}, 150),
                       (inner, {"y": "no x"}), (inner, {"x": 1, "z": 2}), ({"map": "int", "value": "int"}, [[1, 1], [1, 2]]),
                       ("float", math.nan)]:
        with pytest.raises(ValueError):
            from_value_form(desc, form)


def test_plans_reach_into_arrays_maps_and_nested_records():
    old_in = {"record": "Line", "fields": [["qty", "int"]]}
    new_in = {"record": "Item", "fields": [["note", "text"], ["qty", "int"]], "defaults": {"note": "-"}}
    old = {"record": "Order", "fields": [["lines", {"array": old_in}], ["by", {"map": "text", "value": old_in}]]}
    new = {"record": "Order2", "fields": [["by", {"map": "text", "value": new_in}], ["lines", {"array": new_in}]]}
    plan = Plan(old, new)
    assert not plan.problems and not plan.scan
    assert plan.changes == ["`by{value}.note` added, default \"-\"", "`lines[].note` added, default \"-\""]
    v = {"lines": [{"qty": 1}, {"qty": 2}], "by": {"a": {"qty": 3}}}
    got = plan.convert(decode_value(old, encode_value(old, v)))
    assert got == {"by": {"a": {"note": "-", "qty": 3}}, "lines": [{"note": "-", "qty": 1}, {"note": "-", "qty": 2}]}
    assert list(got) == ["by", "lines"]  # the new field order
    assert decode_value(new, encode_value(new, got)) == got
    bad = Plan(old, {"record": "Order", "fields": [["lines", {"array": {"record": "Line", "fields": [["qty", "text"]]}}],
                                                     ["by", {"map": "int", "value": old_in}]]})
    assert sorted((c.path, c.what) for c in bad.problems) == [
        ("by{key}", "was retyped from `text` to `int`"), ("lines[].qty", "was retyped from `int` to `text`")]
    assert Plan(new, new).convert is None and Plan(old, dict(old, record="Renamed")).convert is None


# ------------------------------------------------------------------------------ canonical encoding, evolved

names = st.text("abcdefgh", min_size=1, max_size=5)
scalars = st.sampled_from(["int", "float", "bool", "truth", "text", "time"]) | st.just({"money": None}) | \
    st.lists(names, min_size=1, max_size=3, unique=True).map(lambda vs: {"enum": "E", "variants": vs})
descs = st.recursive(scalars, lambda inner: inner.map(lambda t: {"array": t}) | st.tuples(
    st.sampled_from(["int", "text"]), inner).map(lambda kv: {"map": kv[0], "value": kv[1]}) | st.lists(
    st.tuples(names, inner), max_size=3, unique_by=lambda f: f[0]).map(
        lambda fs: {"record": "R", "fields": [list(f) for f in fs]}), max_leaves=6)
I64 = st.integers(-2**63, 2**63 - 1)


def values(desc):
    if desc == "int":
        return I64
    if desc in ("float", "truth"):
        return st.floats(allow_nan=False)
    if desc == "bool":
        return st.booleans()
    if desc == "text":
        return st.text(max_size=5)
    if desc == "time":
        return st.integers(-62_000_000_000_000_000, 253_000_000_000_000_000).map(
            lambda us: EPOCH + timedelta(microseconds=us))
    if "money" in desc:
        return st.builds(Money, I64, st.sampled_from(["USD", "JPY"]))
    if "enum" in desc:
        return st.sampled_from(desc["variants"])
    if "array" in desc:
        return st.lists(values(desc["array"]), max_size=3)
    if "map" in desc:
        return st.dictionaries(values(desc["map"]), values(desc["value"]), max_size=3)
    return st.fixed_dictionaries({n: values(t) for n, t in desc["fields"]})


def form_of(desc, v):
    """The value form (lwas.abi) of a runtime value: what the compiler writes as a default."""
    if desc == "time":
        return time_to_micros(v)
    if isinstance(desc, str):
        return v
    if "money" in desc:
        return [v.minor, v.currency]
    if "array" in desc:
        return [form_of(desc["array"], x) for x in v]
    if "map" in desc:
        return [[form_of(desc["map"], k), form_of(desc["value"], x)] for k, x in v.items()]
    if "enum" in desc:
        return v
    return {n: form_of(t, v[n]) for n, t in desc["fields"]}


def evolve(draw, desc):
    """desc with a field `new` (and its default) added to every record, a variant to every enum;
    and the default of the outer record's."""
    if isinstance(desc, str) or "money" in desc:
        return desc, []
    if "enum" in desc:
        return {**desc, "variants": desc["variants"] + ["Zz"]}, []
    if "array" in desc:
        return {"array": evolve(draw, desc["array"])[0]}, []
    if "map" in desc:
        return {**desc, "value": evolve(draw, desc["value"])[0]}, []
    fields = [[n, evolve(draw, t)[0]] for n, t in desc["fields"]]
    t = draw(descs)
    default = draw(values(t))
    at = draw(st.integers(0, len(fields)))
    fields.insert(at, ["new", t])
    return {"record": "R", "fields": fields, "defaults": {"new": form_of(t, default)}}, [(t, default)]


def same(a, b) -> bool:
    if isinstance(a, float):
        return isinstance(b, float) and (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@st.composite
def evolutions(draw):
    fields = draw(st.lists(st.tuples(names, descs), min_size=1, max_size=3, unique_by=lambda f: f[0]))
    old = {"record": "R", "fields": [list(f) for f in fields]}
    new, added = evolve(draw, old)
    return old, new, added[0][1], draw(values(old))


@settings(max_examples=150, deadline=None)
@given(evolutions())
def test_converted_values_are_canonical_values_of_the_new_layout(ev):
    """Bytes written with a layout, read by a program that added a field (with a default) and
    variants: the value holds the default, encodes canonically with the new layout and reads
    back the same; decoding the old bytes refuses any truncation or trailing byte."""
    old, new, default, v = ev
    b = encode_value(old, v)
    plan = Plan(old, new)
    assert not plan.problems and not plan.scan
    got = plan.convert(decode_value(old, b))
    assert same(got["new"], default)
    assert same(strip(new, got), v)  # everything else is the old value
    nb = encode_value(new, got)
    assert same(decode_value(new, nb), got) and encode_value(new, decode_value(new, nb)) == nb
    for cut in {0, len(b) // 2, len(b) - 1} & set(range(len(b))):
        with pytest.raises(ValueError):
            decode_value(old, b[:cut])
    with pytest.raises(ValueError):
        decode_value(old, b + b"\x00")


def strip(desc, v):
    """v without the fields `evolve` added (at any depth)."""
    if isinstance(desc, str) or "money" in desc or "enum" in desc:
        return v
    if "array" in desc:
        return [strip(desc["array"], x) for x in v]
    if "map" in desc:
        return {k: strip(desc["value"], x) for k, x in v.items()}
    return {n: strip(t, v[n]) for n, t in desc["fields"] if n != "new"}


@settings(max_examples=150, deadline=None)
@given(evolutions(), st.binary(max_size=48))
def test_old_layout_garbage_is_refused_or_canonical(ev, junk):
    """Whatever the store holds, a payload is either refused or the one encoding of its value."""
    old, new, _, _ = ev
    try:
        v = decode_value(old, junk)
    except ValueError:
        return
    assert encode_value(old, v) == junk
    got = Plan(old, new).convert(v)
    assert decode_value(new, encode_value(new, got)) is not None


def test_check_store_names_undeclared_ledgers(tmp_path):
    db = str(tmp_path / "l.db")
    serve_v1(db)
    desc, _, digest, _ = build(V1)
    other = copy.deepcopy(desc)
    other["ledgers"][0]["name"] = "payments"
    store = open_store(db)
    try:
        reports, undeclared = check_store(store, [other], digest)
    finally:
        store.close()
    assert undeclared == ["transfers"] and [r.name for r in reports] == ["payments"] and not reports[0].problems

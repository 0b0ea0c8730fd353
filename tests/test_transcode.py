"""Entry payloads read straight into memory form (lwas.runtime.transcode) agree with the two-step
reference: lwas.runtime.ledger.decode_value, then the native encoders. Same value for every
payload both accept, a ValueError wherever either refuses, never anything else."""
from __future__ import annotations

import ctypes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwas.runtime.ledger import decode_value, encode_value
from lwas.runtime.nativevalues import _Call, _encoder, ctype, to_python
from lwas.runtime.transcode import entry_reader
from lwas.runtime.values import Money
from test_ledger import descs, same, values

records = descs.map(lambda d: d if "record" in d else {"record": "E", "fields": [["x", d], ["k", "text"]]})


@st.composite
def entries(draw):
    desc = draw(records)
    return desc, draw(values(desc))


def reference(desc, payload: bytes):
    """decode_value, then the memory form the native encoders give, read back as Python."""
    v = decode_value(desc, payload)
    call = _Call()
    try:
        m = _encoder(desc)(call, v)
    except (TypeError, OverflowError) as e:
        raise ValueError(str(e)) from None
    return to_python(desc, m)


def transcoded(read, desc, payload: bytes):
    ref = read(payload)
    return to_python(desc, ctype(desc).from_address(ref.address))


def outcome(f, *args):
    try:
        return "ok", f(*args)
    except ValueError:
        return "refused", None


@settings(max_examples=300, deadline=None)
@given(entries())
def test_same_record_as_decode_then_encode(e):
    desc, v = e
    payload = encode_value(desc, v)
    read = entry_reader(desc)
    want, got = outcome(reference, desc, payload), outcome(transcoded, read, desc, payload)
    assert want[0] == got[0]
    assert same(got[1], want[1])
    for cut in {0, len(payload) // 2, len(payload) - 1} & set(range(len(payload))):
        with pytest.raises(ValueError):
            read(payload[:cut])
    with pytest.raises(ValueError):
        read(payload + b"\x00")


@settings(max_examples=300, deadline=None)
@given(records, st.binary(max_size=48))
def test_garbage_is_refused_exactly_when_the_reference_refuses_it(desc, junk):
    want, got = outcome(reference, desc, junk), outcome(transcoded, entry_reader(desc), desc, junk)
    assert want[0] == got[0]
    assert same(got[1], want[1])


TX = {"record": "Tx", "fields": [["id", "text"], ["amount", {"money": None}], ["when", "time"],
                                 ["kind", {"enum": "K", "variants": ["In", "Out"]}], ["ok", "bool"],
                                 ["p", "truth"], ["note", "text"]]}


def tx(**over):
    from datetime import datetime, timezone
    v = {"id": "t1", "amount": Money(1999, "EUR"), "when": datetime(2026, 1, 2, tzinfo=timezone.utc),
         "kind": "Out", "ok": True, "p": 0.5, "note": "héllo"}
    return {**v, **over}


def test_each_refusal_names_its_reason():
    read = entry_reader(TX)
    good = encode_value(TX, tx())
    assert transcoded(read, TX, good) == tx()
    at_kind = 4 + 2 + 11 + 8  # id, amount, when
    cases = {
        "not a variant": good[:at_kind + 2] + b"Up!" + good[at_kind + 5:],
        "bool byte": good[:at_kind + 5] + b"\x02" + good[at_kind + 6:],
        "unknown currency code": good[:4 + 2 + 8] + b"XYZ" + good[4 + 2 + 11:],
        "not a currency code": good[:4 + 2 + 8] + b"eur" + good[4 + 2 + 11:],
        "truth must be in [0, 1]": encode_value(TX, tx(p=1.5)),
        "trailing bytes": good + b"\x00",
        "utf-8": good[:-2] + b"\xff\xfe",
    }
    for reason, payload in cases.items():
        with pytest.raises(ValueError, match=r"(?i)" + reason.replace("[", r"\[").replace("]", r"\]")):
            read(payload)


def test_a_record_stays_valid_until_the_next_read_and_text_points_into_the_reader_buffer():
    read = entry_reader(TX)
    a = read(encode_value(TX, tx(id="first")))
    rec = ctype(TX).from_address(a.address)
    assert ctypes.string_at(rec.id.ptr, rec.id.len) == b"first"
    big = tx(note="x" * 10_000)  # outgrows the buffer: a new one, the record still reads right
    b = read(encode_value(TX, big))
    assert transcoded(read, TX, encode_value(TX, big)) == big
    assert b.address != 0

"""Snapshot state bytes made and read by native code (lwas.backend.snapgen, lwas.runtime.snapcodec)
against the independent Python encoder (lwas.runtime.ledger.encode_value / decode_value):

- for any state value, the native encoding of the kept state is byte for byte encode_value's;
- decoding those bytes natively into a new heap gives the same value back;
- bytes that are not a state (cut short, trailing, damaged) are refused with the Python
  decoder's reason, and the committed state is left as it was.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import compile_loaded
from lwas.runtime.ledger import decode_value, encode_value
from lwas.runtime.state import KeptState
from lwas.runtime.values import Money

SOURCE = """module snapcodec

enum Kind { Credit, Debit, Held }

record Line {
  note: text
  amount: money
  when: time
  kind: Kind
  ok: bool
  p: truth
  x: float
  tags: [text]
}

record Book {
  lines: {int: Line}
  limits: [money]
}

record E {
  id: text
}

service snapcodec {
  ledger es: E by id

  state n: int = 0
  state label: text = ""
  state total: money = 0.00 USD
  state books: {text: Book} = {}
  state by_kind: {Kind: [int]} = {}
  state seen: {time: bool} = {}
  state flags: [bool] = []

  on es(e) {
    state.n += 1
  }
}
"""

USD = st.builds(Money, st.integers(-10**15, 10**15), st.just("USD"))
MONEY = st.builds(Money, st.integers(-2**63, 2**63 - 1), st.sampled_from(["USD", "EUR", "JPY", "KWD"]))
TIMES = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))
KINDS = st.sampled_from(["Credit", "Debit", "Held"])
LINES = st.fixed_dictionaries({
    "note": st.text(max_size=8), "amount": MONEY, "when": TIMES, "kind": KINDS, "ok": st.booleans(),
    "p": st.floats(0, 1), "x": st.floats(allow_nan=False), "tags": st.lists(st.text(max_size=3), max_size=3)})
BOOKS = st.fixed_dictionaries({"lines": st.dictionaries(st.integers(-2**63, 2**63 - 1), LINES, max_size=4),
                               "limits": st.lists(MONEY, max_size=3)})
STATES = st.fixed_dictionaries({
    "n": st.integers(-2**63, 2**63 - 1), "label": st.text(max_size=10), "total": USD,
    "books": st.dictionaries(st.text(max_size=5), BOOKS, max_size=4),
    "by_kind": st.dictionaries(KINDS, st.lists(st.integers(-9, 9), max_size=3), max_size=3),
    "seen": st.dictionaries(TIMES, st.booleans(), max_size=40),
    "flags": st.lists(st.booleans(), max_size=5)})


@pytest.fixture(scope="module")
def built():
    b = compile_loaded(SOURCE, "snapcodec.lwas")
    return b.program, b.desc


@settings(max_examples=150, deadline=None)
@given(STATES)
def test_native_bytes_are_encode_values_and_read_back(built, value):
    program, desc = built
    kept = KeptState(program, desc)
    assert kept.codec is not None  # the artifact carries the native codec
    kept.restore(value)
    data = kept.encoded(kept.committed)
    assert data == encode_value(desc["state"], value)
    again = KeptState(program, desc)
    again.restore_encoded(data)
    assert again.value() == decode_value(desc["state"], data)
    assert encode_value(desc["state"], again.value()) == data
    kept.close()
    again.close()


def test_bytes_that_are_not_a_state_are_refused_with_the_reason(built):
    program, desc = built
    kept = KeptState(program, desc)
    value = {"n": 3, "label": "x", "total": Money(100, "USD"), "books": {"a": {"lines": {}, "limits": []}},
             "by_kind": {"Held": [1]}, "seen": {}, "flags": [True]}
    kept.restore(value)
    good = kept.encoded(kept.committed)
    target = KeptState(program, desc)
    before = target.value()
    kind_at = good.index(b"Held")
    unsorted = encode_value(desc["state"], {**value, "by_kind": {"Credit": [], "Debit": []}})
    unsorted = unsorted.replace(b"\x00\x06Credit\x00\x00\x00\x00\x00\x05Debit",
                                b"\x00\x05Debit\x00\x00\x00\x00\x00\x06Credit")
    for bad, reason in [(good[:-1], "truncated|requires a buffer|bad encoding|exceeds the remaining"),
                        (good + b"\x00", "trailing"),
                        (good[:kind_at] + b"Hole" + good[kind_at + 4:], "not a variant"),
                        (unsorted, "out of order")]:
        with pytest.raises(ValueError, match=reason):
            target.restore_encoded(bad)
        assert target.value() == before  # nothing moved
    kept.close()
    target.close()

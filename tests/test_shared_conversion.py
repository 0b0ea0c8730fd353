"""A guarded route converts its arguments to native form once, for its guards and its handler
(lwas.runtime.host: Service._shares_conversion); the guards still decide and the handler still
sees the same values."""
from __future__ import annotations

import pytest

from helpers import BANK, Running, compile_loaded
from lwas.runtime import nativevalues as native
from lwas.runtime.host import GuardRefused
from lwas.runtime.values import Money


def _batch(n: int, tag: str, amount: str = "1.00") -> dict:
    return {"transfers": [{"id": f"{tag}-{k}", "account": "a", "kind": "Deposit",
                           "amount": Money(int(float(amount) * 100), "USD")} for k in range(n)]}


def test_guards_and_handler_share_one_conversion(tmp_path, monkeypatch):
    b = compile_loaded(BANK.read_text(), str(BANK))
    route = next(r for r in b.desc["routes"] if r["path"] == "/transfers/batch")
    assert route["guards"]
    seen = []
    real = native._Call.to_native

    def counting(self, desc, v):
        if isinstance(desc, dict) and desc.get("record") == "Batch":
            seen.append(id(self))
        return real(self, desc, v)

    monkeypatch.setattr(native._Call, "to_native", counting)
    with Running(b, tmp_path / "l.db") as r:
        out = r.svc.call(route, (_batch(50, "ok"),))
        assert out.ledger == "created" and out.response["count"] == 50
        assert out.response["balance"] == Money(5000, "USD")
        assert len(seen) == 1  # one conversion served the guard and the handler
        with pytest.raises(GuardRefused, match="all_plausible"):  # the guard still decides
            r.svc.call(route, (_batch(3, "bad", "0.00"),))
        assert len(seen) == 2
        out = r.svc.call(route, (_batch(2, "more"),))
        assert out.response["count"] == 2 and out.response["balance"] == Money(5200, "USD")

"""Every ```lwas block in the docs and the README is checked, so the docs never rot.

```lwas                 checks clean on its own
```lwas continues       checks clean together with the blocks before it in the file
```lwas reject E0203    stands alone and must be rejected with that code
"""
from __future__ import annotations

import re

import pytest

from helpers import ROOT
import lwas

FENCE = re.compile(r"^```lwas([^\n]*)\n(.*?)^```", re.M | re.S)


def _blocks():
    # docs/contract.md has its own conventions (accepted blocks build on each other) and its
    # own tests (test_typecheck, test_evaluate)
    docs = [p for p in (ROOT / "docs").glob("*.md") if p.name != "contract.md"]
    for path in sorted([ROOT / "README.md", *docs]):
        text = path.read_text(encoding="utf-8")
        program = ""
        for m in FENCE.finditer(text):
            info, body = m.group(1).split(), m.group(2)
            line = text.count("\n", 0, m.start()) + 2
            if info[:1] == ["reject"]:
                yield pytest.param(body, info[1], id=f"{path.name}:{line}")
                continue
            program = (program + "\n" + body) if info[:1] == ["continues"] else body
            yield pytest.param(program, None, id=f"{path.name}:{line}")


BLOCKS = list(_blocks())


def test_docs_have_examples():
    assert len(BLOCKS) >= 15


@pytest.mark.parametrize("source, code", BLOCKS)
def test_doc_block(source, code):
    diags = lwas.check(source, "doc.lwas")
    errors = [d for d in diags if d.severity == "error"]
    if code is None:
        assert errors == [], [f"{d.code} {d.message} at {d.span}" for d in errors]
    else:
        assert code in {d.code for d in errors}, [f"{d.code} {d.message}" for d in errors]

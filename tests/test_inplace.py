"""State maps written in place (lwas.backend.inplace, lwas.backend.mapgen.insert_owned, lwas.runtime.state):

- which fields the analysis leaves owned, and which uses make one shared;
- values stay values: a service whose `on` block keeps an old version of one map (shared) and
  writes others in place gives, live (request by request, in batches, with refused requests in
  between) and after a replay (a fold under one edit number), the state of a Python model;
- a request that fails after its owned inserts leaves no trace, in a batch with others.
"""
from __future__ import annotations

import threading

import pytest

from helpers import compile_loaded, compile_ok
from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.backend.inplace import owned_fields
from lwas.runtime.host import Service
from lwas.runtime.snapshot import Policy
from lwas.runtime.store import open_store


def owned(src: str) -> set[str]:
    c = compile_ok(src)
    fns = [it for m in c.program.modules for it in m.tree.items]
    ((rec, idx),) = owned_fields(fns, c.checked).items()
    names = list(rec.fields)
    return {names[i] for i in idx}


def service(on: str, route: str = "") -> str:
    return f"""module t
record E {{
  id: text
  k: int
}}
service t {{
  ledger es: E by id
  state n: int = 0
  state a: {{int: int}} = {{}}
  state b: {{int: int}} = {{}}
  on es(e) {{
{on}
  }}
{route}
}}
"""


@pytest.mark.parametrize("on, route, want", [
    ("    state.a[e.k] = get(state.a, e.k, 0) + 1\n    state.b[e.k] = len(state.b)", "", {"a", "b"}),
    ("    state.a[e.k] += 1\n    if e.k in state.b { delete state.b[e.k] }", "", {"a", "b"}),
    ("    let old = state.a\n    state.a[e.k] = len(old)", "", {"b"}),
    ("    for k in state.a { state.n += k }\n    state.a[e.k] = 1", "", {"b"}),
    ("    state.b = state.a\n    state.a[e.k] = 1", "", {"b"}),  # a's nodes would be b's too
    ("    state.a = {}\n    state.a[e.k] = 1", "", {"a", "b"}),
    ("    let s = state\n    state.a[e.k] = s.n", "", set()),
    ("    state.n += keys(state.a)[0] + len(values(state.b)) + len(first(state.a, 2))", "", {"a", "b"}),
    # the check spans every writer: a route that keeps an old version shares the field
    ("    state.a[e.k] = 1", '  post "/x" (e: E) -> int {\n    let keep = state.a\n    append es(e)\n'
                            '    return len(keep)\n  }', {"b"}),
    # readers may do anything: they never write
    ("    state.a[e.k] = 1", '  get "/x" -> int {\n    var m = state.a\n    m[1] = 2\n    return len(m)\n  }',
     {"a", "b"}),
])
def test_which_state_maps_are_owned(on, route, want):
    assert owned(service(on, route)) == want


SOURCE = """module alias

record E {
  id: text
  k: int
  v: int
}

record Out {
  n: int
  a: {int: int}
  b: {int: int}
  prev: {int: int}
  lens: {int: int}
}

service alias {
  ledger es: E by id

  state n: int = 0
  state a: {int: int} = {}
  state b: {int: int} = {}
  state prev: {int: int} = {}
  state lens: {int: int} = {}

  on es(e) {
    state.n += 1
    state.a[e.k] = get(state.a, e.k, 0) + e.v
    let before = state.b
    state.b[e.k] = e.v
    state.prev = before
    state.lens[state.n] = len(before) * 1000 + get(before, e.k, -1)
  }

  post "/e" (e: E) -> int {
    append es(e)
    let z = e.v % 7
    return 100 / z
  }

  get "/out" -> Out {
    return Out(n: state.n, a: state.a, b: state.b, prev: state.prev, lens: state.lens)
  }
}
"""


class Model:
    def __init__(self):
        self.n, self.a, self.b, self.prev, self.lens = 0, {}, {}, {}, {}

    def apply(self, e: dict) -> None:
        self.n += 1
        self.a[e["k"]] = self.a.get(e["k"], 0) + e["v"]
        before = dict(self.b)
        self.b[e["k"]] = e["v"]
        self.prev = before
        self.lens[self.n] = len(before) * 1000 + before.get(e["k"], -1)

    def out(self) -> dict:
        return {"n": self.n, "a": self.a, "b": self.b, "prev": self.prev, "lens": self.lens}


@pytest.fixture(scope="module")
def built():
    b = compile_loaded(SOURCE, "alias.lwas")
    return b.key, b.program, b.desc, b.digest


def start(built, db: str) -> Service:
    key, program, desc, digest = built
    svc = Service(program, desc, open_store(db), key, digest, settings={}, snapshots=Policy(0, 0))
    svc.start()
    return svc


def route(desc, method: str, path: str) -> dict:
    return next(r for r in desc["routes"] if r["method"] == method and r["path"] == path)


def events(n: int) -> list[dict]:
    """Keys that repeat (writes over existing nodes) and run in order (rotations), values of
    which one in seven makes the route fault after its append."""
    return [{"id": f"e{i}", "k": (i * 7) % 23 if i % 3 else i, "v": i} for i in range(n)]


def test_live_batches_and_a_replay_give_the_model_state(built, tmp_path):
    key, program, desc, digest = built
    post, out = route(desc, "POST", "/e"), route(desc, "GET", "/out")
    model = Model()
    db = str(tmp_path / "alias.db")
    svc = start(built, db)
    try:
        evs = events(400)
        for e in evs[:150]:  # one at a time
            try:
                svc.call(post, (e,))
            except LwasRuntimeError as fault:
                assert fault.kind == "div_zero" and e["v"] % 7 == 0
                continue
            model.apply(e)
        assert svc.read(out, ()) == model.out()
        # the rest queued at once: the writer takes them in batches, faults among them
        done, left, lock = threading.Event(), [len(evs) - 150], threading.Lock()
        faults = []

        def finished(r, e):
            if isinstance(r, LwasRuntimeError):
                faults.append(e["id"])
            with lock:
                left[0] -= 1
                if not left[0]:
                    done.set()
        for e in evs[150:]:
            svc.submit(post, (e,), lambda r, e=e: finished(r, e))
        assert done.wait(60)
        for e in evs[150:]:
            if e["id"] not in faults:
                model.apply(e)
        assert sorted(faults) == sorted(e["id"] for e in evs[150:] if e["v"] % 7 == 0)
        live = svc.read(out, ())
        assert live == model.out()
    finally:
        svc.stop()
        svc.store.close()
    again = start(built, db)  # a fold of every entry under one edit number
    try:
        assert again.replayed == model.n
        assert again.read(out, ()) == model.out()
    finally:
        again.stop()
        again.store.close()

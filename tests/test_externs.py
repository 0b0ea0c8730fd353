"""`extern fn` (calls to the runtime's connectors) and `signed` webhook routes: where they may
appear (E0407, E0403), what the manifest says about them, the native calling convention (checked
against the reference evaluator), binding at start, and how external routes commit."""
from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings, strategies as st

from helpers import compile_loaded, compile_ok
from lwas.driver import check_source
from lwas.errors import RuntimeError as LwasRuntimeError
from lwas.backend.keys import generate
from lwas.runtime.externs import BindError, bind_connectors
from lwas.runtime.native import hosted
from lwas.runtime.store import open_store
from lwas.runtime.values import Money

HEAD = """
record Reply {
  ok: bool
  status: int
  retry: bool
  error: text
}
record Note {
  id: text
  n: int
}
extern fn post(url: text, key: text, body: Note) -> Reply = "http.post_json"
"""


def codes(src: str) -> list[str]:
    return [d.code for d in check_source(src, "main.lwas").diagnostics if d.severity == "error"]


@pytest.mark.parametrize("where,body", [
    ("fn", 'fn f() -> bool = post("u", "k", Note(id: "a", n: 1)).ok\n'),
    ("test", 'test "t" {\n  assert post("u", "k", Note(id: "a", n: 1)).ok\n}\n'),
    ("on", 'service s {\n  ledger notes: Note by id\n  state n: int = 0\n'
           '  on notes(x) {\n    if post("u", "k", x).ok {\n      state.n += 1\n    }\n  }\n}\n'),
    ("guard", 'rule r(ok: bool) = ok\nservice s {\n  ledger notes: Note by id\n'
              '  post "/n" (x: Note) -> Note requires r(post("u", "k", x).ok) >= 1.0 {\n    return x\n  }\n}\n'),
    ("state", 'service s {\n  state ok: bool = post("u", "k", Note(id: "a", n: 1)).ok\n}\n'),
])
def test_externs_are_refused_outside_routes_and_timers(where, body):
    assert codes(HEAD + body) == ["E0407"], where


def test_externs_are_allowed_in_routes_and_timers_and_the_manifest_says_so():
    src = HEAD + """
service s {
  ledger notes: Note by id
  get "/ping" -> Reply {
    return post("http://127.0.0.1:9", "", Note(id: "p", n: 0))
  }
  post "/n" (x: Note) -> Note {
    append notes(x)
    return x
  }
  post "/send" (x: Note) -> Reply {
    return post("http://127.0.0.1:9", "", x)
  }
  every "1s" {
    let r = post("http://127.0.0.1:9", "", Note(id: "t", n: 0))
  }
}
"""
    c = compile_ok(src, "main.lwas", generate())
    desc = c.services[0]
    assert {r["path"]: r["external"] for r in desc["routes"]} == {"/ping": True, "/n": False, "/send": True}
    assert [t["external"] for t in desc["timers"]] == [True]
    [x] = c.native.describe()["externs"]
    assert (x["name"], x["binding"]) == ("post", "http.post_json")
    assert [p["name"] for p in x["params"]] == ["url", "key", "body"]


def test_signed_routes_need_a_known_signer_and_a_body():
    base = 'record E {\n  id: text\n}\nrecord A {\n  ok: bool\n}\nservice s {\n  %s\n}\n'
    assert codes(base % 'post "/w" (e: E) -> A signed "paypal" {\n    return A(ok: true)\n  }') == ["E0403"]
    assert codes(base % 'get "/w" -> A signed "stripe" {\n    return A(ok: true)\n  }') == ["E0403"]
    assert codes(base % 'post "/w" (e: E) -> A signed "stripe" {\n    return A(ok: true)\n  }') == []
    # `signed` is a keyword only there: a function may still be called so
    assert codes('fn signed(x: int) -> int = x\nfn extern(x: int) -> int = signed(x)\n') == []


# ---------------------------------------------------------------- the native calling convention

ECHO = """
record Echo {
  text: text
  n: int
  flag: bool
  amount: money
  label: text
}
record Out {
  text: text
  n: int
  flag: bool
}
extern fn echo(e: Echo, k: int, label: text) -> Out = "test.echo"
service s {
  post "/call" (e: Echo) -> Out {
    let o = echo(e, 3, e.label)
    if o.flag {
      return Out(text: o.text + "/" + text(o.n), n: o.n + 1, flag: true)
    }
    return o
  }
}
"""
ROUTE = "s$route$0"


def _echo(e, k, label):
    """What the connector does (the same in both hosts): the evaluator's and native's results
    must then agree on everything the program computes from it."""
    return {"text": f"{label}:{e['text']}:{e['amount'].minor}{e['amount'].currency}", "n": e["n"] * k,
            "flag": e["flag"]}


@pytest.fixture(scope="module")
def echo_program():
    from lwas.tools.evaluate import MemoryHost, evaluator_for

    program = compile_loaded(ECHO, "echo.lwas").program
    ev = evaluator_for(ECHO, "echo.lwas")
    ev.host = MemoryHost()
    ev.host.externs["test.echo"] = _echo

    class Host:
        externs = program.described["externs"]
        keep: list = []
        failure = None

        def extern(self, index, args):
            assert self.externs[index]["binding"] == "test.echo"
            return _echo(*args)

    return program, ev, Host


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=40), n=st.integers(-2**31, 2**31), flag=st.booleans(),
       minor=st.integers(-10**9, 10**9), label=st.text(max_size=10))
def test_native_extern_calls_agree_with_the_evaluator(echo_program, text, n, flag, minor, label):
    program, ev, Host = echo_program
    e = {"text": text, "n": n, "flag": flag, "amount": Money(minor, "JPY"), "label": label}
    with hosted(Host()):
        native = program.call(ROUTE, program.call("s$init"), e)
    assert native == ev.call(ROUTE, ev.call("s$init"), e)
    assert native["response"]["text"].startswith(f"{label}:{text}:{minor}JPY")


def test_a_failing_connector_is_a_host_fault_at_the_declaration(echo_program):
    program, _, Host = echo_program

    class Broken(Host):
        def extern(self, index, args):
            raise OSError("connection reset")

    host = Broken()
    with hosted(host), pytest.raises(LwasRuntimeError) as e:
        program.call(ROUTE, program.call("s$init"), {"text": "x", "n": 1, "flag": True, "amount": Money(1, "JPY"),
                                                     "label": "l"})
    assert e.value.kind == "host" and "test.echo" in e.value.message
    assert e.value.position.line == 14  # the `extern fn` line
    assert isinstance(host.failure, OSError)


# ---------------------------------------------------------------- binding at start

@pytest.mark.parametrize("decl,why", [
    ('extern fn f(u: text) -> Reply = "nope.nothing"', "no connector 'nope.nothing'"),
    ('extern fn f(u: text, k: text) -> Reply = "http.post_json"', "takes (text, text, record)"),
    ('record Bad {\n  ok: bool\n  surprise: text\n}\nextern fn f(u: text, k: text, b: Reply) -> Bad = "http.post_json"',
     "result field `surprise: text`"),
])
def test_binding_refuses_what_the_runtime_cannot_provide(decl, why):
    src = "record Reply {\n  ok: bool\n}\n" + decl + "\n"
    c = compile_ok(src, "bind.lwas", generate())
    with pytest.raises(BindError, match=why.replace("(", r"\(").replace(")", r"\)")) as e:
        bind_connectors(c.native.describe()["externs"], env={})
    assert "bind.lwas:" in str(e.value)


def test_lwasc_serve_refuses_an_unbindable_program_without_a_traceback(tmp_path):
    src = tmp_path / "bad.lwas"
    src.write_text('record Reply {\n  ok: bool\n}\nextern fn f(u: text) -> Reply = "nope.nothing"\n'
                   'service s {\n  get "/x" -> Reply {\n    return f("u")\n  }\n}\n')
    r = subprocess.run([sys.executable, "-m", "lwas.tools.cli", "serve", str(src), "--port", "0",
                        "--db", str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LWAS_API_KEYS": "k" * 24 + ":admin",
                            "LWAS_KEY_DIR": str(tmp_path)})
    assert r.returncode != 0
    assert "no connector 'nope.nothing'" in r.stderr and "Traceback" not in r.stderr


# ---------------------------------------------------------------- external routes commit as they go

class _Sink(http.server.BaseHTTPRequestHandler):
    got: list = []

    def do_POST(self):
        _Sink.got.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_an_external_route_keeps_the_appends_made_before_a_fault(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    src = HEAD + """
record Sent {
  note: Note
  status: int
}
service s {
  ledger sent: Sent by note_id
  ledger notes: Note by id
  state count: int = 0
  on notes(x) {
    state.count += 1
  }
  post "/send" (x: Note) -> Sent {
    append notes(x)
    let r = post(config("URL"), "", x)
    let ratio = 10 / x.n
    return Sent(note: x, status: r.status + ratio)
  }
}
""".replace("ledger sent: Sent by note_id\n", "")
    b = compile_loaded(src, "ext.lwas")
    c = b.compilation
    store = open_store(str(tmp_path / "ext.db"))
    svc = b.service(store, c.services[0], settings={"URL": url.encode()})
    svc.start()
    try:
        route = c.services[0]["routes"][0]
        ok = svc.run_external(route, ({"id": "a", "n": 2},))
        assert ok.ledger == "created" and ok.response["status"] == 206
        assert _Sink.got[-1] == {"id": "a", "n": 2}
        with pytest.raises(LwasRuntimeError) as e:  # 10 / 0 after the append and the call
            svc.run_external(route, ({"id": "b", "n": 0},))
        assert e.value.kind == "div_zero"
        assert svc.by_name["notes"].size == 2 and svc.state["count"] == 2  # b stays: it was sent
        again = svc.run_external(route, ({"id": "a", "n": 2},))
        assert again.ledger == "exists" and svc.state["count"] == 2
    finally:
        svc.stop()
        store.close()
        httpd.shutdown()


def test_ledger_has_asks_the_ledger_natively_and_in_the_evaluator(tmp_path):
    src = """
record Note {
  id: text
  n: int
}
record Seen {
  before: bool
  after: bool
}
service s {
  ledger notes: Note by id
  post "/n" (x: Note) -> Seen {
    let before = ledger_has(notes, x.id)
    append notes(x)
    return Seen(before: before, after: ledger_has(notes, x.id))
  }
}
"""
    b = compile_loaded(src, "has.lwas")
    c = b.compilation
    store = open_store(str(tmp_path / "has.db"))
    svc = b.service(store, c.services[0], settings={})
    svc.start()
    try:
        route = c.services[0]["routes"][0]
        assert svc.call(route, ({"id": "a", "n": 1},)).response == {"before": False, "after": True}
        assert svc.call(route, ({"id": "a", "n": 1},)).response == {"before": True, "after": True}
    finally:
        svc.stop()
        store.close()
    from lwas.tools.evaluate import MemoryHost, evaluator_for

    ev = evaluator_for(src, "has.lwas")
    ev.host = MemoryHost({0: "id"})
    state = ev.call("s$init")
    assert ev.call("s$route$0", state, {"id": "a", "n": 1})["response"] == {"before": False, "after": True}
    assert ev.call("s$route$0", state, {"id": "a", "n": 1})["response"] == {"before": True, "after": True}
    bad = src.replace("ledger_has(notes, x.id)", "ledger_has(nowhere, x.id)", 1)
    assert codes(bad) == ["E0401"]

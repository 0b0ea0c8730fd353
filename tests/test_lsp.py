"""End-to-end tests of the language server (lwas.lsp.server), driving the real process over
stdio with pytest-lsp. Positions are checked in UTF-16 code units, as LSP counts them."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

WORK = Path(tempfile.mkdtemp(prefix="lwas-lsp-"))
STDLIB = Path(__file__).resolve().parent.parent / "stdlib"

CHAIN = """\
axiom truth = 1.0
axiom decree = 0.4 requires truth
axiom law = 0.6 requires decree
axiom justice = 0.9 requires law, truth
"""

UNICODE = 'const G: text = "héllo 🌍"; const B: int = nope\n'

FEATURES = """\
import std.stats

/// The root of all axioms.
axiom truth = 1.0
axiom freedom = 0.8 requires truth
axiom hope = 0.5..0.9 requires truth
axiom care requires freedom, hope

enum Kind { Payment, Refund }

/// A transaction.
record Tx {
  /// How much.
  amount: money
  kind: Kind
}

/// Whether it is valid.
rule valid(tx: Tx) -> truth =
  tx.amount > 0.00 USD requires care

fn average(xs: [float]) -> float {
  let m = stats.mean(xs)
  let label = "héllo 🌍"
  assert label != ""
  return m
}
"""


def uri(name: str) -> str:
    return (WORK / name).as_uri()


def pos(text: str, needle: str, nth: int = 0, delta: int = 0) -> T.Position:
    """The LSP position (UTF-16) of the nth occurrence of needle (+delta code points)."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    i += delta
    line = text.count("\n", 0, i)
    start = text.rfind("\n", 0, i) + 1
    return T.Position(line=line, character=len(text[start:i].encode("utf-16-le")) // 2)


async def wait_diagnostics(client: LanguageClient, u: str, timeout: float = 30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while u not in client.diagnostics:
        if loop.time() > end:
            raise TimeoutError(f"no diagnostics for {u}")
        await asyncio.sleep(0.01)
    return client.diagnostics[u]


async def open_doc(client: LanguageClient, name: str, text: str):
    (WORK / name).write_text(text, encoding="utf-8")
    u = uri(name)
    client.diagnostics.pop(u, None)
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        text_document=T.TextDocumentItem(uri=u, language_id="lwas", version=1, text=text)))
    return await wait_diagnostics(client, u)


@pytest_lsp.fixture(scope="module", loop_scope="module",
                    config=ClientServerConfig(server_command=[sys.executable, "-m", "lwas.lsp.server"]))
async def client(lsp_client: LanguageClient):
    result = await lsp_client.initialize_session(T.InitializeParams(
        capabilities=T.ClientCapabilities(), root_uri=WORK.as_uri()))
    lsp_client.init_result = result
    await open_doc(lsp_client, "chain.lwas", CHAIN)
    await open_doc(lsp_client, "unicode.lwas", UNICODE)
    await open_doc(lsp_client, "features.lwas", FEATURES)
    yield lsp_client
    await lsp_client.shutdown_session()


def cli_json(name: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "lwas", "check", "--format", "json", str(WORK / name)],
                         capture_output=True, text=True, check=False).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def utf16_col(text: str, line: int, col: int) -> int:
    """1-based (line, code-point col) -> 0-based UTF-16 col."""
    s = text.split("\n")[line - 1][:col - 1]
    return len(s.encode("utf-16-le")) // 2


# ---------------------------------------------------------------- diagnostics

async def test_diagnostics_match_lwasc_check(client: LanguageClient):
    diags = client.diagnostics[uri("chain.lwas")]
    expected = cli_json("chain.lwas")
    assert [d.code for d in diags] == [e["code"] for e in expected] == ["E0203", "E0203"]
    for d, e in zip(diags, expected):
        assert d.message.splitlines()[0] == e["message"]
        assert d.source == "lwasc"
        assert d.severity == T.DiagnosticSeverity.Error
        assert (d.range.start.line, d.range.start.character) == (e["line"] - 1, e["column"] - 1)
        assert (d.range.end.line, d.range.end.character) == (e["end_line"] - 1, e["end_column"] - 1)
        assert f"help: {e['help']}" in d.message
    # the chain: justice -> law -> decree, each axiom as related information
    justice = diags[1]
    assert justice.message.startswith("axiom `justice` (0.9) is more certain than its premises allow (at most 0.4)")
    rel = [(r.location.uri, r.location.range.start.line, r.location.range.start.character, r.message)
           for r in justice.related_information]
    assert rel == [(uri("chain.lwas"), 2, 6, "law = 0.6"), (uri("chain.lwas"), 1, 6, "decree = 0.4")]


async def test_diagnostic_positions_are_utf16(client: LanguageClient):
    (d,) = client.diagnostics[uri("unicode.lwas")]
    (e,) = cli_json("unicode.lwas")
    assert d.code == e["code"] == "E0101"
    assert e["column"] == 43  # code points
    assert d.range.start == T.Position(line=0, character=43)  # é is 1 unit, 🌍 is 2: one more
    assert d.range.end == T.Position(line=0, character=47)
    assert d.range.start == pos(UNICODE, "nope")


async def test_pull_diagnostics(client: LanguageClient):
    report = await client.text_document_diagnostic_async(
        T.DocumentDiagnosticParams(text_document=T.TextDocumentIdentifier(uri=uri("chain.lwas"))))
    assert report.kind == "full"
    assert [d.code for d in report.items] == ["E0203", "E0203"]
    clean = await client.text_document_diagnostic_async(
        T.DocumentDiagnosticParams(text_document=T.TextDocumentIdentifier(uri=uri("features.lwas"))))
    assert list(clean.items) == []


async def test_diagnostics_follow_edits(client: LanguageClient):
    name = "edit.lwas"
    assert await open_doc(client, name, UNICODE) != []
    u = uri(name)
    client.diagnostics.pop(u, None)
    fixed = UNICODE.replace("nope", "7")
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        text_document=T.VersionedTextDocumentIdentifier(uri=u, version=2),
        content_changes=[T.TextDocumentContentChangeWholeDocument(text=fixed)]))
    assert list(await wait_diagnostics(client, u)) == []
    # an incremental change (UTF-16 range) that breaks it again
    client.diagnostics.pop(u, None)
    p = pos(fixed, "7")
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        text_document=T.VersionedTextDocumentIdentifier(uri=u, version=3),
        content_changes=[T.TextDocumentContentChangePartial(
            range=T.Range(start=p, end=T.Position(line=p.line, character=p.character + 1)), text="gone")]))
    (d,) = await wait_diagnostics(client, u)
    assert d.message.startswith("cannot find `gone`")
    assert d.range.start == p


# ---------------------------------------------------------------- hover

async def hover_text(client, name: str, text: str, needle: str, nth: int = 0, delta: int = 0) -> str:
    h = await client.text_document_hover_async(T.HoverParams(
        text_document=T.TextDocumentIdentifier(uri=uri(name)), position=pos(text, needle, nth, delta)))
    assert h is not None, needle
    return h.contents.value


async def test_hover_axiom_truths_and_chain(client: LanguageClient):
    text = await hover_text(client, "chain.lwas", CHAIN, "law", 0)
    assert "axiom law = 0.6" in text
    assert "declared truth: 0.6" in text
    assert "premises allow at most: 0.4" in text
    assert "bounded by the chain: law (0.6) -> decree (0.4)" in text
    care = await hover_text(client, "features.lwas", FEATURES, "care", 0)
    assert "effective truth: 0.5" in care
    assert "holds its weakest premise: care (0.5) -> hope (0.5)" in care
    root = await hover_text(client, "features.lwas", FEATURES, "truth", 1)  # the declaration
    assert "effective truth: 1.0" in root and "The root of all axioms." in root


async def test_hover_rule_types_and_docs(client: LanguageClient):
    rule = await hover_text(client, "features.lwas", FEATURES, "valid(")
    assert "rule valid(tx: Tx) -> truth" in rule
    assert "capped at: 0.5" in rule and "Whether it is valid." in rule
    assert "bounded by the chain: valid -> care (0.5) -> hope (0.5)" in rule
    m = await hover_text(client, "features.lwas", FEATURES, "return m", 0, 7)
    assert "let m: float" in m
    label = await hover_text(client, "features.lwas", FEATURES, "label !=")
    assert "let label: text" in label
    field = await hover_text(client, "features.lwas", FEATURES, "tx.amount", 0, 3)
    assert "Tx.amount: money" in field and "How much." in field
    mean = await hover_text(client, "features.lwas", FEATURES, "mean(xs)")
    assert "fn mean(xs: [float]) -> float" in mean and "std.stats" in mean
    ty = await hover_text(client, "features.lwas", FEATURES, "Tx) ->")
    assert "record Tx" in ty and "A transaction." in ty


# ---------------------------------------------------------------- navigation

async def test_definition_local_and_stdlib(client: LanguageClient):
    (loc,) = await client.text_document_definition_async(T.DefinitionParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "Tx) ->")))
    assert loc.uri == uri("features.lwas") and loc.range.start == pos(FEATURES, "Tx {")
    (loc,) = await client.text_document_definition_async(T.DefinitionParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "mean(xs)", 0, 2)))
    stats = (STDLIB / "stats.lwas").resolve()
    assert Path(T.Location(uri=loc.uri, range=loc.range).uri.removeprefix("file://")).resolve() == stats
    line = stats.read_text(encoding="utf-8").split("\n")[loc.range.start.line]
    assert line[loc.range.start.character:loc.range.end.character] == "mean"
    assert "fn mean(" in line
    # `stats` itself goes to the module file
    (loc,) = await client.text_document_definition_async(T.DefinitionParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "stats.mean")))
    assert Path(loc.uri.removeprefix("file://")).resolve() == stats


async def test_references(client: LanguageClient):
    refs = await client.text_document_references_async(T.ReferenceParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "truth", 1),
        context=T.ReferenceContext(include_declaration=True)))
    got = sorted((r.range.start.line, r.range.start.character) for r in refs)
    assert got == [(3, 6), (4, 29), (5, 31)]
    refs = await client.text_document_references_async(T.ReferenceParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "m = stats"),
        context=T.ReferenceContext(include_declaration=False)))
    assert [(r.range.start.line, r.range.start.character) for r in refs] == [(25, 9)]


async def test_document_symbols(client: LanguageClient):
    syms = await client.text_document_document_symbol_async(T.DocumentSymbolParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas"))))
    assert [s.name for s in syms] == ["truth", "freedom", "hope", "care", "Kind", "Tx", "valid", "average"]
    tx = syms[5]
    assert tx.kind == T.SymbolKind.Struct and [c.name for c in tx.children] == ["amount", "kind"]
    assert tx.range.start.line == 11 and tx.range.end.line == 15
    assert syms[2].detail == "0.5..0.9"


# ---------------------------------------------------------------- completion

async def complete(client, name: str, text: str, line: int, character: int) -> dict:
    res = await client.text_document_completion_async(T.CompletionParams(
        text_document=T.TextDocumentIdentifier(uri=uri(name)), position=T.Position(line=line, character=character)))
    items = res.items if isinstance(res, T.CompletionList) else res
    return {i.label: i for i in items}


async def change(client, name: str, text: str, version: int) -> None:
    u = uri(name)
    client.diagnostics.pop(u, None)
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        text_document=T.VersionedTextDocumentIdentifier(uri=u, version=version),
        content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)]))
    await wait_diagnostics(client, u)


async def test_completion(client: LanguageClient):
    name = "complete.lwas"
    await open_doc(client, name, FEATURES)
    # after `stats.`: the module's members, with signatures and docs
    typed = FEATURES.replace("  return m\n", "  let s = stats.\n  return m\n")
    await change(client, name, typed, 2)
    p = pos(typed, "stats.\n", 0, 6)
    items = await complete(client, name, typed, p.line, p.character)
    assert "mean" in items and "median" in items and "valid" not in items
    assert items["mean"].detail == "fn mean(xs: [float]) -> float"
    # after `tx.`: the record's fields
    typed = FEATURES.replace("tx.amount > 0.00 USD", "tx. > 0.00 USD")
    await change(client, name, typed, 3)
    p = pos(typed, "tx. ", 0, 3)
    items = await complete(client, name, typed, p.line, p.character)
    assert set(items) == {"amount", "kind"}
    assert items["amount"].detail == "amount: money"
    # a value after `return`: expression keywords, items, locals in scope, imports, built-ins
    p = pos(FEATURES, "return m", 0, 7)
    items = await complete(client, "features.lwas", FEATURES, p.line, p.character)
    for label in ("match", "not", "true", "average", "valid", "Tx", "stats", "m", "xs", "label", "len"):
        assert label in items, label
    assert "let" not in items and "return" not in items  # `return let` is not LwaS
    assert items["m"].detail == "let m: float"
    assert "fn average(xs: [float]) -> float" == items["average"].detail
    # Kind. -> variants
    typed = FEATURES.replace("  return m\n", "  let k = Kind.\n  return m\n")
    await change(client, name, typed, 4)
    p = pos(typed, "Kind.\n", 0, 5)
    items = await complete(client, name, typed, p.line, p.character)
    assert set(items) == {"Payment", "Refund"}


SHOP = """\
record Tx {
  id: text
  amount: int
}

service shop {
  ledger txs: Tx by id
  state total: int = 0

  on txs(tx) {
    state.total += tx.amount
  }

  post "/tx" (tx: Tx) -> int {
    append txs(tx)
    return state.total
  }

  get "/total" -> int {
    for i in 0..3 {
      let t = now()
    }
    return state.total
  }

  every "10s" {
    let c = cpu_percent()
  }
}

fn plain(n: int) -> int {
  let k = n + 1
  return k
}
"""

ITEM_KEYWORDS = {"import", "pub", "axiom", "const", "fn", "rule", "record", "enum", "test", "service", "extern"}
STATEMENT_KEYWORDS = {"let", "var", "if", "while", "for", "return", "assert", "match"}
HOST = {"now", "config", "config_int", "ledger_root", "ledger_has", "idempotency_key", "cpu_percent",
        "ram_used_gb", "ram_total_gb", "uptime_secs"}


async def test_completion_after_import_std_lists_the_standard_library(client: LanguageClient):
    text = "import std.\nimport std.stats\n\nfn f() -> int = 1\n"
    diags = await open_doc(client, "imports.lwas", text)
    # the line that ends early is reported where it ends, not as the end of the file
    (d,) = [d for d in diags if d.code == "E0001"]
    assert d.message.splitlines()[0] == "expected a module name after `std.`"
    assert (d.range.start.line, d.range.start.character) == (0, 11)
    stdlib = {p.stem for p in STDLIB.glob("*.lwas")}
    items = await complete(client, "imports.lwas", text, 0, 11)
    assert set(items) == stdlib and {"stats", "money", "time"} <= stdlib
    assert items["stats"].detail == "module std.stats"
    assert "statistics" in items["stats"].documentation.value
    # mid-word, after the complete `import std.stats`: the same modules, nothing else
    items = await complete(client, "imports.lwas", text, 1, 13)
    assert set(items) == stdlib
    items = await complete(client, "imports.lwas", text, 1, len("import std.stats"))
    assert set(items) == stdlib
    # after `import `: `std` and the modules beside the document, never the document itself
    items = await complete(client, "imports.lwas", text, 1, 7)
    assert {"std", "chain", "features"} <= set(items) and "imports" not in items
    assert "fn" not in items and "len" not in items


async def test_completion_in_a_function_body(client: LanguageClient):
    await open_doc(client, "shop.lwas", SHOP)
    p = pos(SHOP, "return k")  # a statement starts here
    items = await complete(client, "shop.lwas", SHOP, p.line, p.character)
    assert not [label for label in items if "$" in label]  # `append$`, `now$`, ... cannot be typed
    assert STATEMENT_KEYWORDS <= set(items)
    assert not {"module", "import", "axiom", "fn", "pub"} & set(items)  # item keywords: top level only
    assert {"k", "n", "plain", "Tx", "len", "abs"} <= set(items)
    assert items["len"].detail.startswith("len(xs: [T]) -> int")
    assert not {"break", "continue"} & set(items)  # not in a loop
    # host calls read the host: the checker refuses them in functions (E0101), so none here
    assert not HOST & set(items)


async def test_completion_offers_the_documented_host_calls_in_handlers(client: LanguageClient):
    await open_doc(client, "shop.lwas", SHOP)
    for needle in ("return state.total", "let c"):  # a mutating route's handler, a timer
        p = pos(SHOP, needle)
        items = await complete(client, "shop.lwas", SHOP, p.line, p.character)
        assert HOST <= set(items), needle
        assert not [label for label in items if "$" in label]
        assert "append" in items and "return" in items
    assert items["now"].detail == "now() -> time"
    assert items["config"].detail == "config(name: text) -> text"
    assert items["cpu_percent"].detail == "cpu_percent() -> float"
    assert "sampled" in items["cpu_percent"].documentation.value
    # a `get` route reads the host but cannot append; inside its loop `break` is valid
    p = pos(SHOP, "let t")
    items = await complete(client, "shop.lwas", SHOP, p.line, p.character)
    assert {"now", "config", "break", "continue"} <= set(items) and "append" not in items
    # an `on` block is replayed from the ledger: no host calls, no `append`, no `return`
    p = pos(SHOP, "state.total +=")
    items = await complete(client, "shop.lwas", SHOP, p.line, p.character)
    assert not HOST & set(items) and not {"append", "return"} & set(items)
    assert "let" in items and "tx" in items
    # where a member starts: the member keywords, nothing else
    p = pos(SHOP, "get \"/total\"")
    items = await complete(client, "shop.lwas", SHOP, p.line, p.character)
    assert set(items) == {"ledger", "state", "on", "get", "post", "put", "patch", "delete", "every"}


async def test_completion_at_the_top_level_offers_item_keywords(client: LanguageClient):
    text = "// a new file\n\n"
    await open_doc(client, "top.lwas", text)
    items = await complete(client, "top.lwas", text, 2, 0)
    assert set(items) == ITEM_KEYWORDS | {"module"}
    # after other items `module` is an error (E0106): not offered; no statements, no names
    p = pos(SHOP, "fn plain")
    items = await complete(client, "shop.lwas", SHOP, p.line, p.character)
    assert set(items) == ITEM_KEYWORDS
    items = await complete(client, "shop.lwas", SHOP, len(SHOP.splitlines()), 0)  # after the last item
    assert set(items) == ITEM_KEYWORDS


async def test_completion_follows_the_syntax(client: LanguageClient):
    text = "enum Kind { Payment, Refund }\nfn f(k: Kind, x: int) -> int {\n  // a comment \n  let s = \"a \"\n}\n"
    await open_doc(client, "syntax.lwas", text)
    # a type: primitive types and the module's records and enums, no values
    p = pos(text, "Kind, x")
    items = await complete(client, "syntax.lwas", text, p.line, p.character)
    assert {"int", "float", "money", "text", "Kind"} <= set(items) and not {"len", "f", "let"} & set(items)
    # a name being declared: nothing to offer
    p = pos(text, "x: int", 0, 0)
    assert await complete(client, "syntax.lwas", text, p.line, p.character) == {}
    # inside a comment or a text literal: nothing
    p = pos(text, "comment", 0, 0)
    assert await complete(client, "syntax.lwas", text, p.line, p.character) == {}
    p = pos(text, "a \"", 0, 2)
    assert await complete(client, "syntax.lwas", text, p.line, p.character) == {}


async def test_host_call_table_matches_the_service_stage():
    from lwas.lsp.completion import HOST_CALLS
    from lwas.semantics.service import HOST_CALLS as STAGE

    assert set(HOST_CALLS) == set(STAGE) == HOST


async def test_incremental_parser_knows_a_chunk_cut_short_mid_file_from_the_last():
    from lwas.lsp.incremental import IncrementalParser
    from lwas.syntax.source import SourceFile

    big = "".join(f"fn f{i}() -> int = {i}\n" for i in range(3000))  # past the whole-file fallback
    inc = IncrementalParser()
    _, (d,) = inc.parse(SourceFile("big.lwas", big + "import std.\nfn tail() -> int = 1\n"))
    assert not d.end_of_input and d.labels[0].span.line == 3002
    _, (d,) = inc.parse(SourceFile("big.lwas", big + "import std.\n"))  # the same chunk, now the last
    assert d.end_of_input and d.message == "unexpected end of file"


async def test_incremental_parser_applies_the_depth_limit_and_the_bidi_warning():
    """As parse_module does (lwas.syntax.nesting, lwas.syntax.bidi): a large file is parsed chunk by chunk,
    and a too-deep item must still be refused before the analysis recurses on it."""
    from lwas.lsp.incremental import IncrementalParser
    from lwas.syntax.nesting import MAX_DEPTH
    from lwas.syntax.parse import parse_module
    from lwas.syntax.source import SourceFile

    big = "".join(f"fn f{i}() -> int = {i}\n" for i in range(3000))
    deep = "fn deep() -> int = " + " + ".join(["1"] * (MAX_DEPTH + 10)) + "\n"
    text = big + deep + "// \u202e a comment\nfn tail() -> int = 1\n"
    tree, diags = IncrementalParser().parse(SourceFile("big.lwas", text))
    want_tree, want = parse_module(SourceFile("big.lwas", text))
    assert sorted(d.code for d in diags) == sorted(d.code for d in want) == ["E0006", "W0105"]
    assert [i.name for i in tree.items] == [i.name for i in want_tree.items]
    assert "deep" not in {i.name for i in tree.items} and "tail" in {i.name for i in tree.items}


# ---------------------------------------------------------------- rename

async def test_rename_and_clash(client: LanguageClient):
    edit = await client.text_document_rename_async(T.RenameParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "m = stats"),
        new_name="avg"))
    edits = edit.changes[uri("features.lwas")]
    assert sorted((e.range.start.line, e.range.start.character, e.new_text) for e in edits) == \
        [(22, 6, "avg"), (25, 9, "avg")]
    edit = await client.text_document_rename_async(T.RenameParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "hope", 0),
        new_name="faith"))
    assert len(edit.changes[uri("features.lwas")]) == 2
    with pytest.raises(Exception, match="clashes with let `label`"):
        await client.text_document_rename_async(T.RenameParams(
            text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "m = stats"),
            new_name="label"))
    with pytest.raises(Exception, match="clashes with `freedom`"):
        await client.text_document_rename_async(T.RenameParams(
            text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "hope", 0),
            new_name="freedom"))
    with pytest.raises(Exception, match="another module"):
        await client.text_document_rename_async(T.RenameParams(
            text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")), position=pos(FEATURES, "mean(xs)"),
            new_name="average2"))


# ---------------------------------------------------------------- tokens, folding, hints

async def test_semantic_tokens(client: LanguageClient):
    res = await client.text_document_semantic_tokens_full_async(T.SemanticTokensParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas"))))
    data = list(res.data)
    legend = client.init_result.capabilities.semantic_tokens_provider.legend
    toks, line, col = [], 0, 0
    for k in range(0, len(data), 5):
        dl, dc, n, tt, mods = data[k:k + 5]
        line, col = line + dl, (col + dc if dl == 0 else dc)
        toks.append((line, col, n, legend.token_types[tt]))
    lines = FEATURES.split("\n")
    words = {(lines[l][c:c + n], ty) for l, c, n, ty in toks}
    assert ("stats", "namespace") in words
    assert ("Tx", "type") in words and ("valid", "function") in words and ("mean", "function") in words
    assert ("amount", "property") in words and ("xs", "parameter") in words and ("label", "variable") in words
    # on the line after the emoji, columns are UTF-16: `label` in `assert label` is at 9
    assert (24, 9, 5, "variable") in toks


async def test_folding_ranges(client: LanguageClient):
    res = await client.text_document_folding_range_async(T.FoldingRangeParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas"))))
    spans = {(r.start_line, r.end_line) for r in res}
    assert (11, 15) in spans  # record Tx
    assert (21, 26) in spans  # fn average


async def test_inlay_hints(client: LanguageClient):
    res = await client.text_document_inlay_hint_async(T.InlayHintParams(
        text_document=T.TextDocumentIdentifier(uri=uri("features.lwas")),
        range=T.Range(start=T.Position(line=0, character=0), end=T.Position(line=40, character=0))))
    hints = [(h.position.line, h.position.character, h.label) for h in res]
    assert (6, 33, "effective 0.5") in hints  # care, after `requires freedom, hope`
    assert (3, 17, "effective 1.0") in hints
    assert (22, 7, ": float") in hints and (23, 11, ": text") in hints


# ---------------------------------------------------------------- code actions and formatting

async def test_quick_fix_lowers_the_axiom(client: LanguageClient):
    diags = client.diagnostics[uri("chain.lwas")]
    law = diags[0]
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        text_document=T.TextDocumentIdentifier(uri=uri("chain.lwas")), range=law.range,
        context=T.CodeActionContext(diagnostics=[law])))
    (act,) = actions
    assert act.kind == T.CodeActionKind.QuickFix and "0.4" in act.title
    assert act.title == "Lower `law` to 0.4 (what its premises allow)" and act.is_preferred
    assert list(act.diagnostics) == [law]
    (e,) = act.edit.changes[uri("chain.lwas")]
    assert e.new_text == "0.4" and e.range.start == pos(CHAIN, "0.6") and e.range.end == pos(CHAIN, "0.6", 0, 3)
    # applying it leaves justice (which rests on law) to fix next
    fixed = CHAIN.replace("law = 0.6", "law = 0.4")
    await change(client, "chain.lwas", fixed, 2)
    assert [d.message.splitlines()[0] for d in client.diagnostics[uri("chain.lwas")]] == [
        "axiom `justice` (0.9) is more certain than its premises allow (at most 0.4)"]
    await change(client, "chain.lwas", CHAIN, 3)


async def test_quick_fixes_come_from_the_diagnostics_data_not_their_wording(client: LanguageClient):
    """The published diagnostic carries the compiler's suggestions in `data`; a code action
    request maps them back, whatever the message says, and offers nothing without them."""
    law, justice = client.diagnostics[uri("chain.lwas")]
    (sugg,) = law.data["suggestions"]
    assert sugg["message"] == "lower `law` to 0.4 (what its premises allow)" and sugg["applicability"] == "machine"
    assert sugg["uri"] == uri("chain.lwas")
    assert sugg["edit"]["newText"] == "0.4"

    async def titles(*diags: T.Diagnostic, only=None) -> list[str]:
        acts = await client.text_document_code_action_async(T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(uri=uri("chain.lwas")), range=law.range,
            context=T.CodeActionContext(diagnostics=list(diags), only=only)))
        return [a.title for a in acts or ()]

    reworded = T.Diagnostic(range=law.range, message="something else entirely", code="E0203", data=law.data)
    assert await titles(reworded) == ["Lower `law` to 0.4 (what its premises allow)"]
    assert await titles(T.Diagnostic(range=law.range, message=law.message, code="E0203")) == []
    assert await titles(law, only=[T.CodeActionKind.Refactor]) == []
    # one action per diagnostic asked about: both axioms of the chain at once
    assert await titles(law, justice) == ["Lower `law` to 0.4 (what its premises allow)",
                                          "Lower `justice` to 0.4 (what its premises allow)"]


async def test_formatting(client: LanguageClient):
    try:
        from lwas.syntax.format import format_source
    except ImportError:
        pytest.skip("lwas.syntax.format is not there yet")
    messy = "axiom   truth=1.0\n"
    await open_doc(client, "fmt.lwas", messy)
    edits = await client.text_document_formatting_async(T.DocumentFormattingParams(
        text_document=T.TextDocumentIdentifier(uri=uri("fmt.lwas")),
        options=T.FormattingOptions(tab_size=2, insert_spaces=True)))
    expected = format_source(messy, str(WORK / "fmt.lwas"))
    if expected == messy:
        assert not edits
    else:
        (e,) = edits
        assert e.new_text == expected


def apply_edit(text: str, e: T.TextEdit) -> str:
    """text with one LSP edit applied (UTF-16 positions; ASCII here)."""
    lines = text.split("\n")
    off = lambda p: sum(len(l) + 1 for l in lines[:p.line]) + p.character  # noqa: E731
    return text[:off(e.range.start)] + e.new_text + text[off(e.range.end):]


async def fixes(client, name: str, code: str):
    d = next(d for d in client.diagnostics[uri(name)] if d.code == code)
    return await client.text_document_code_action_async(T.CodeActionParams(
        text_document=T.TextDocumentIdentifier(uri=uri(name)), range=d.range,
        context=T.CodeActionContext(diagnostics=[d])))


MISSING = """module demo
import std.time

enum Light { Red, Amber, Green }

fn go(l: Light) -> int = match l {
  Red => 0
}

fn wait(l: Light) -> int = match l { Red => 2 }

fn avg(xs: [float]) -> float = stats.mean(xs)

fn soon() -> int = time.seconds(1)
"""


async def test_quick_fixes_add_the_missing_import_and_match_arms(client: LanguageClient):
    diags = await open_doc(client, "missing.lwas", MISSING)
    assert sorted(d.code for d in diags) == ["E0101", "E0305", "E0305"]
    (imp,) = await fixes(client, "missing.lwas", "E0101")
    assert imp.title == "Add `import std.stats`" and imp.is_preferred
    arms = [imp.edit.changes[uri("missing.lwas")][0]]
    for d in [d for d in diags if d.code == "E0305"]:
        acts = await client.text_document_code_action_async(T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(uri=uri("missing.lwas")), range=d.range,
            context=T.CodeActionContext(diagnostics=[d])))
        (act,) = acts
        assert act.title == "Add the missing arms `Amber`, `Green`"
        assert not act.is_preferred  # each new arm copies the first arm's result: to be edited
        arms.append(act.edit.changes[uri("missing.lwas")][0])
    text = MISSING
    for e in sorted(arms, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = apply_edit(text, e)  # bottom up: each edit's position is in the original text
    assert text.splitlines()[:3] == ["module demo", "import std.time", "import std.stats"]
    assert "  Red => 0\n  Amber => 0\n  Green => 0\n}" in text
    assert "match l { Red => 2, Amber => 2, Green => 2 }" in text
    await change(client, "missing.lwas", text, 2)
    assert list(client.diagnostics[uri("missing.lwas")]) == []  # every fix applied: the file compiles


async def test_workspace_symbols(client: LanguageClient):
    syms = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query="just"))
    names = {(s.name, s.location.uri) for s in syms}
    assert ("justice", uri("chain.lwas")) in names
    assert all("just" in s.name.lower() for s in syms)
    everything = await client.workspace_symbol_async(T.WorkspaceSymbolParams(query=""))
    assert len(everything) > len(syms)

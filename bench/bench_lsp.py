"""Re-check latency of the language server: didChange -> publishDiagnostics on a ~5,000-line file.

Starts the real server (`python -m lwas.lsp.server`) over stdio, opens a generated program
(bench/gen.py), then types into a function in the middle of the file: each edit is a
didChange (incremental, UTF-16 range) and the time is measured until the diagnostics for that
version arrive. Every third edit inserts a line (every later item moves down), the others
change a number on a line (every later item moves right). Prints the median and p90, then
the server's stage timings for the same kind of edit measured in-process.

    python bench/bench_lsp.py [--lines 5000] [--edits 30]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lsprotocol import types as T  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from gen import program  # noqa: E402


def _edits(text: str, n: int):
    """(range, new text) edits typed into a function near the middle of the file."""
    lines = text.split("\n")
    line = next(i for i in range(len(lines) // 2, len(lines)) if lines[i].strip() == "total -= 0.25")
    cur = lines[line]
    out = []
    for k in range(n):
        if k % 3 == 2:  # a new line above it: every later item moves down one line
            out.append((T.Range(start=T.Position(line=line, character=0), end=T.Position(line=line, character=0)),
                        "      total += 1.0\n"))
            line += 1
        else:  # retype the number: later items move right, not down
            new = f"      total -= 0.{k % 10}5"
            out.append((T.Range(start=T.Position(line=line, character=0),
                                end=T.Position(line=line, character=len(cur))), new))
            cur = new
    return out


async def measure(n_lines: int, n_edits: int) -> list[float]:
    text = program(n_lines)
    path = Path(tempfile.mkdtemp(prefix="lwas-bench-lsp-")) / "big.lwas"
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    client = LanguageClient("bench", "0")
    got: dict[int, float] = {}
    waiters: dict[int, asyncio.Future] = {}

    @client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diags(params: T.PublishDiagnosticsParams) -> None:
        if params.uri == uri and params.version is not None:
            got[params.version] = time.perf_counter()
            fut = waiters.pop(params.version, None)
            if fut is not None and not fut.done():
                fut.set_result(params)

    await client.start_io(sys.executable, "-m", "lwas.lsp.server")
    await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities()))
    client.initialized(T.InitializedParams())
    loop = asyncio.get_running_loop()

    async def send(version: int, change) -> tuple[float, object]:
        fut = loop.create_future()
        waiters[version] = fut
        t0 = time.perf_counter()
        change()
        params = await asyncio.wait_for(fut, 120)
        return got[version] - t0, params

    t_open, params = await send(1, lambda: client.text_document_did_open(T.DidOpenTextDocumentParams(
        text_document=T.TextDocumentItem(uri=uri, language_id="lwas", version=1, text=text))))
    print(f"{text.count(chr(10)) + 1} lines; open (first full parse and check): {t_open * 1000:.0f} ms, "
          f"{len(params.diagnostics)} diagnostics")
    times = []
    for k, (rng, new) in enumerate(_edits(text, n_edits)):
        v = k + 2
        dt, params = await send(v, lambda: client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=v),
            content_changes=[T.TextDocumentContentChangePartial(range=rng, text=new)])))
        assert not params.diagnostics, params.diagnostics[:1]
        times.append(dt)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return times


def stages(n_lines: int, n_edits: int = 8) -> None:
    """Where the time goes: the server's own pipeline, in-process, per stage (median)."""
    from lwas.lsp.server import LwasServer

    ls = LwasServer()
    docs: dict = {}

    class Doc:
        def __init__(self, uri, source, version):
            self.uri, self.source, self.version = uri, source, version

    class WS:
        def get_text_document(self, uri):
            return docs[uri]

    ws = WS()
    type(ls).workspace = property(lambda self: ws)
    uri = "file:///bench/big.lwas"
    text = program(n_lines)
    docs[uri] = Doc(uri, text, 1)
    ls.analyse(uri)
    lines = text.split("\n")
    mid = next(i for i in range(len(lines) // 2, len(lines)) if lines[i].strip() == "total -= 0.25")
    per: dict[str, list[float]] = {}
    totals = []
    for k in range(n_edits):
        if k % 3 == 2:
            lines.insert(mid, "    total += 1.0")
        else:
            lines[mid] = f"      total -= 0.{k + 1}5"
        docs[uri] = Doc(uri, "\n".join(lines), k + 2)
        t0 = time.perf_counter()
        a = ls.analyse(uri)
        totals.append(time.perf_counter() - t0)
        for name, t in a.c.timings:
            per.setdefault(name, []).append(t)
    print("in-process, per stage (median of %d edits):" % n_edits)
    for name, ts in per.items():
        print(f"  {name:<10} {statistics.median(ts) * 1000:8.1f} ms")
    print(f"  {'total':<10} {statistics.median(totals) * 1000:8.1f} ms  (parser: {ls.parser.stats})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=5000)
    p.add_argument("--edits", type=int, default=30)
    args = p.parse_args()
    times = asyncio.run(measure(args.lines, args.edits))
    ms = sorted(t * 1000 for t in times)
    print(f"didChange -> publishDiagnostics over {len(ms)} edits: median {statistics.median(ms):.1f} ms, "
          f"p90 {ms[int(len(ms) * 0.9) - 1]:.1f} ms, min {ms[0]:.1f} ms, max {ms[-1]:.1f} ms")
    stages(args.lines)


if __name__ == "__main__":
    main()

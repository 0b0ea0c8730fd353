"""`lwasc test`: find the `test "name" { ... }` blocks in .lwas files, run them natively, report.

Each file is compiled to native code (no artifact, no signing) and each of its tests runs on its
own: a runtime fault fails that test and the run goes on. A failed `assert a OP b` shows the
values of `a` and `b`: the test is run once more in the reference evaluator (which agrees with
native code, a property the test suite checks), whose failing assert reports its operands.

Reports: one line per file (`.` passed, `F` failed, `E` the file does not compile), then each
failure rendered like a compile error, then `N passed, M failed`; or `--format json`; and
`--junit FILE` for CI. `-k PATTERN` keeps the tests whose `file::name` contains PATTERN
(case-insensitive).
"""
from __future__ import annotations

import json
import os
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", ".hypothesis"}


@dataclass
class Result:
    file: str
    name: str
    outcome: str  # "passed" or "failed"
    seconds: float
    kind: str | None = None  # the runtime error's kind (lwas.errors.KINDS)
    message: str | None = None
    position: dict | None = None  # {"file", "line", "col", "end_line", "end_col"}
    operands: list = field(default_factory=list)  # [[source text, value as LwaS writes it]]


@dataclass
class FileReport:
    file: str
    results: list[Result] = field(default_factory=list)
    error: str | None = None  # the rendered diagnostics when the file does not compile
    generated: list = field(default_factory=list)  # lwas.tools.generate.Finding, with --generate


def discover(paths: list[str]) -> list[Path]:
    """The .lwas files named or under the directories named, sorted, each once."""
    out: dict[Path, None] = {}
    for p in map(Path, paths or ["."]):
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
                for f in sorted(files):
                    if f.endswith(".lwas"):
                        out.setdefault(Path(root) / f, None)
        else:
            out.setdefault(p, None)
    return list(out)


def show(v) -> str:
    """A value as LwaS would write it (text quoted), for failure reports."""
    from lwas.tools.runvalues import format_value

    return format_value(v, quote_text=True)


def matches(pattern: str | None, file: str, name: str) -> bool:
    return not pattern or pattern.lower() in f"{file}::{name}".lower()


def run_file(path: Path, pattern: str | None = None, generate: bool = False, examples: int = 200) -> FileReport:
    from lwas.syntax.diagnostics import render_all
    from lwas.driver import compile_source
    from lwas.errors import RuntimeError as LwasRuntimeError
    from lwas.runtime.native import NativeProgram

    shown = str(path)
    report = FileReport(shown)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        report.error = f"error: cannot read `{shown}`: {e}"
        return report
    c = compile_source(text, shown, until="codegen")
    if not c.ok:
        report.error = render_all(c.diagnostics, c.sources)
        return report
    program = NativeProgram.from_object(c.native.object_code, c.native.describe())
    reference = None
    for name in program.tests:
        if not matches(pattern, shown, name):
            continue
        t0 = time.perf_counter()
        try:
            program.run_test(name)
            report.results.append(Result(shown, name, "passed", time.perf_counter() - t0))
        except LwasRuntimeError as e:
            r = Result(shown, name, "failed", time.perf_counter() - t0, e.kind, e.message,
                       asdict(e.position) if e.position is not None else None)
            if e.kind in ("assert", "contract"):
                reference = reference or _reference(text, shown)
                r.operands = _operands(reference, name, text)
            report.results.append(r)
    if generate:
        from lwas.tools.generate import generate as gen

        report.generated = [f for f in gen(program, c.native.describe(), examples)
                            if matches(pattern, shown, f.name)]
        if c.services:
            report.generated += [f for f in _services(text, shown, examples) if matches(pattern, shown, f.name)]
    return report


def _services(text: str, shown: str, examples: int) -> list:
    """Generated requests for the file's services, as findings (lwas.tools.generate.generate_services)."""
    from lwas.driver import compile_source
    from lwas.tools.generate import Finding, generate_services
    from lwas.backend.keys import generate as new_key

    key = new_key()  # a throwaway key: the artifact lives only for this run
    c = compile_source(text, shown, key)
    return [Finding(r.route, r.ok, r.requests, (), f"HTTP {r.status}" if not r.ok else "", r.answer,
                    f"the minimal request:\n{r.request}" if not r.ok else "")
            for r in generate_services(c.artifact, key, examples)]


def _reference(text: str, path: str):
    from lwas.tools.evaluate import evaluator_for

    return evaluator_for(text, path)


def _operands(ev, name: str, text: str) -> list:
    """[[source, value], [source, value]] of the failing comparison, from the evaluator."""
    from lwas.errors import RuntimeError as LwasRuntimeError

    try:
        ev.run_test(name)
    except LwasRuntimeError as e:
        ops = getattr(e, "operands", None)
        if ops is None:
            return []
        node = _assert_at(ev, name, e.position)
        if node is None:
            return [["left", show(ops[0])], ["right", show(ops[1])]]
        return [[_src(text, node.cond.left), show(ops[0])], [_src(text, node.cond.right), show(ops[1])]]
    except Exception:  # noqa: BLE001 - the values are a courtesy; the failure stands without them
        return []
    return []


def _assert_at(ev, name: str, pos):
    from lwas.syntax import tree as ast

    for m in ev.program.modules:
        for n in ast.walk(m.tree):
            if n.__class__ is ast.Assert and pos is not None and n.span.line == pos.line and n.span.col == pos.col:
                return n
    return None


def _src(text: str, e) -> str:
    s = e.span
    return " ".join(text[s.start:s.end].split())


# ---------------------------------------------------------------- reports

def summary(reports: list[FileReport], seconds: float) -> dict:
    results = [r for f in reports for r in f.results]
    found = [g for f in reports for g in f.generated]
    return {"passed": sum(r.outcome == "passed" for r in results) + sum(g.ok for g in found),
            "failed": sum(r.outcome == "failed" for r in results) + sum(not g.ok for g in found),
            "errors": sum(f.error is not None for f in reports), "seconds": round(seconds, 3)}


def human(reports: list[FileReport], seconds: float, colour: bool = False) -> str:
    from lwas.syntax.diagnostics import Diagnostic, render
    from lwas.errors import KINDS
    from lwas.syntax.source import SourceFile, Span

    lines = []
    for f in reports:
        marks = "E" if f.error else "".join("." if r.outcome == "passed" else "F" for r in f.results)
        marks += "".join("." if g.ok else "F" for g in f.generated)
        lines.append(f"{f.file} {marks}".rstrip())
    for f in reports:
        if f.error:
            lines += ["", f"=== {f.file}: does not compile", f.error.rstrip()]
        for r in f.results:
            if r.outcome != "failed":
                continue
            lines += ["", f"=== {f.file}: test \"{r.name}\" failed ({r.kind})"]
            p = r.position
            if p is None:
                lines.append(f"error: {r.message}")
                continue
            span = Span(p["file"], p["line"], p["col"], p.get("end_line") or p["line"], p.get("end_col") or p["col"] + 1)
            notes = tuple(f"{src} = {val}" for src, val in r.operands if src != val)
            diag = Diagnostic("", r.message, span, label=KINDS.get(r.kind, r.kind), notes=notes)
            try:
                text = Path(p["file"]).read_text(encoding="utf-8")
                sources = {p["file"]: SourceFile(p["file"], text)}
            except OSError:
                sources = {}
            lines.append(render(diag, sources, colour).rstrip())
        for g in f.generated:
            if not g.ok:
                lines += ["", f"=== {f.file}: {g.name} fails on a generated input ({g.kind})",
                          f"error: {g.message}"]
                lines += [g.test_block] if g.kind.startswith("HTTP") else ["minimal input, as a test to paste:", g.test_block]
    s = summary(reports, seconds)
    tail = f"{s['passed']} passed, {s['failed']} failed"
    if s["errors"]:
        tail += f", {s['errors']} file{'s' if s['errors'] != 1 else ''} not compiled"
    lines += ["", f"{tail} in {seconds:.2f}s"]
    return "\n".join(lines)


def to_json(reports: list[FileReport], seconds: float) -> str:
    return json.dumps({**summary(reports, seconds),
                       "files": [{"file": f.file, "error": f.error} for f in reports],
                       "tests": [asdict(r) for f in reports for r in f.results],
                       "generated": [{"file": f.file, "name": g.name, "ok": g.ok, "inputs": g.examples,
                                      "kind": g.kind or None, "message": g.message or None,
                                      "test": g.test_block or None} for f in reports for g in f.generated]},
                      indent=2)


def junit(reports: list[FileReport], seconds: float) -> bytes:
    s = summary(reports, seconds)
    root = ET.Element("testsuites", name="lwasc test", tests=str(s["passed"] + s["failed"]),
                      failures=str(s["failed"]), errors=str(s["errors"]), time=f"{seconds:.3f}")
    for f in reports:
        suite = ET.SubElement(root, "testsuite", name=f.file, tests=str(len(f.results)),
                              failures=str(sum(r.outcome == "failed" for r in f.results)),
                              errors="1" if f.error else "0",
                              time=f"{sum(r.seconds for r in f.results):.3f}")
        if f.error:
            ET.SubElement(suite, "error", message="does not compile").text = f.error
        for r in f.results:
            case = ET.SubElement(suite, "testcase", classname=f.file, name=r.name, time=f"{r.seconds:.6f}")
            if r.outcome == "failed":
                where = f"{r.position['file']}:{r.position['line']}:{r.position['col']}" if r.position else ""
                detail = "\n".join([where] + [f"{a} = {b}" for a, b in r.operands])
                ET.SubElement(case, "failure", message=r.message or "", type=r.kind or "").text = detail
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def main(paths: list[str], pattern: str | None = None, fmt: str = "human", junit_path: str | None = None,
         colour: bool = False, generate: bool = False, examples: int = 200) -> int:
    """0 every test passed (and every file compiled), 1 otherwise."""
    t0 = time.perf_counter()
    files = discover(paths)
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        print(f"error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    reports = [run_file(p, pattern, generate, examples) for p in files]
    seconds = time.perf_counter() - t0
    print(to_json(reports, seconds) if fmt == "json" else human(reports, seconds, colour))
    if junit_path:
        Path(junit_path).write_bytes(junit(reports, seconds))
    s = summary(reports, seconds)
    return 0 if not s["failed"] and not s["errors"] else 1

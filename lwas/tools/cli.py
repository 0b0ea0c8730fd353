"""`lwasc`: the command-line driver. Heavy modules are imported inside commands so that
`lwasc --version` starts fast.

Exit codes: 0 ok (warnings allowed), 1 errors in the input, 2 usage, 101 internal error.
"""
from __future__ import annotations

import argparse
import sys

from lwas import __version__

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 101


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2, as argparse does, with our wording
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


_SERVE_LOGS = """\
logs:
  --log-format json     one JSON object per record on stderr, access log included (for log
                        shippers, journald, kubectl logs)
  --log-format console  plain lines on stderr, warnings and errors only (for a person at a terminal)
  --log-format auto     console when stderr is a terminal, json otherwise: systemd units, containers
                        and pipes keep getting JSON (the default; LWAS_LOG_FORMAT sets it too)
  --log-file FILE       every record as JSON lines in FILE as well, whatever stderr shows
                        (`make run` keeps one per service in var/log/)
"""


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lwasc", description="The LwaS compiler.")
    p.add_argument("--version", action="version", version=f"lwasc {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks for internal errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("check", help="parse and check programs, report diagnostics")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--format", choices=["human", "json"], default="human")
    c.add_argument("--timings", action="store_true", help="print the time of each compiler stage")
    c.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    e = sub.add_parser("explain", help="print the long explanation of a diagnostic code")
    e.add_argument("code")

    g = sub.add_parser("graph", help="print the axiom dependency graph as Graphviz DOT")
    g.add_argument("file")
    g.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    k = sub.add_parser("keygen", help="write an Ed25519 signing key pair: OUT (private, 0600) and OUT.pub")
    k.add_argument("out", metavar="OUT")
    k.add_argument("--force", action="store_true", help="overwrite an existing key file")

    b = sub.add_parser("build", help="compile a program to a signed artifact (or IR, assembly, object, .so)")
    b.add_argument("file", metavar="FILE")
    b.add_argument("-o", dest="output", metavar="OUT", required=True)
    b.add_argument("--key", metavar="KEY", help="PEM private key (default: $LWAS_SIGNING_KEY, else the dev key)")
    b.add_argument("-O", dest="opt", choices=["0", "2"], default="2", help="-O0 or -O2 (default)")
    b.add_argument("--emit", choices=["artifact", "lir", "ir", "asm", "obj", "shared"], default="artifact",
                   help="what to write: the signed artifact (default), LwaS's own IR after lowering (lir), "
                        "LLVM IR (ir), assembly, an object file or a shared library with its C header")
    b.add_argument("--no-contracts", action="store_true",
                   help="release build: leave out the `requires`/`ensures` checks of functions and rules")
    b.add_argument("--timings", action="store_true", help="print the time of each compiler stage")
    b.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    v = sub.add_parser("verify", help="check an artifact's signature and print its manifest")
    v.add_argument("artifact", metavar="ARTIFACT")
    v.add_argument("--pubkey", metavar="PUB", action="append", default=[],
                   help="trusted public key (repeatable; default: the user's trusted set)")

    r = sub.add_parser("run", help="run `main` (or --entry) of a program or a signed artifact")
    r.add_argument("file", metavar="FILE|ARTIFACT")
    r.add_argument("args", nargs="*", metavar="ARGS")
    r.add_argument("--entry", default="main", metavar="NAME")
    r.add_argument("--pubkey", metavar="PUB", action="append", default=[])
    r.add_argument("-O", dest="opt", choices=["0", "2"], default="2")
    r.add_argument("--timings", action="store_true")
    r.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    s = sub.add_parser("serve", help="serve the program's services over HTTP with a signed ledger",
                       description="Serve the program's services over HTTP with a signed ledger.",
                       epilog=_SERVE_LOGS, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("file", metavar="FILE|ARTIFACT")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--db", default="lwas-ledger.db", metavar="URL",
                   help="SQLite file (default lwas-ledger.db) or postgresql://... URL")
    s.add_argument("--key", metavar="KEY", help="PEM private key that signs checkpoints (and a source "
                                                 "file's artifact); default: $LWAS_SIGNING_KEY, else the dev key")
    s.add_argument("--workers", type=int, default=1, metavar="N")
    s.add_argument("--pubkey", metavar="PUB", action="append", default=[],
                   help="also trust this public key for the artifact (repeatable)")
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    s.add_argument("--log-format", choices=["auto", "console", "json"], default=None,
                   help="what stderr shows (default: $LWAS_LOG_FORMAT, else auto; see below)")
    s.add_argument("--log-file", metavar="FILE", default=None,
                   help="also write every record, access log included, as JSON lines to FILE "
                        "(default: $LWAS_LOG_FILE)")
    s.add_argument("--quiet", action="store_true",
                   help="print no start lines (a created development key is still printed)")

    t = sub.add_parser("test", help="run the `test` blocks of .lwas files (and generated tests)")
    t.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: .)")
    t.add_argument("-k", dest="pattern", metavar="PATTERN", help="only tests whose FILE::NAME contains PATTERN")
    t.add_argument("--format", choices=["human", "json"], default="human")
    t.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    t.add_argument("--generate", action="store_true",
                   help="also test every function and rule on inputs generated from its types")
    t.add_argument("--examples", type=int, default=200, metavar="N", help="inputs per function (--generate)")
    t.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    fm = sub.add_parser("fmt", help="format .lwas files in the one LwaS style (--check, --diff)", add_help=False)
    fm.add_argument("args", nargs=argparse.REMAINDER)

    db = sub.add_parser("dashboard", help="a live web page for the economy, payment and telemetry services",
                        add_help=False)
    db.add_argument("args", nargs=argparse.REMAINDER)

    rp = sub.add_parser("repl", help="an interactive session: each entry compiled natively and run")
    rp.add_argument("--history", metavar="FILE", help="history file (default: $LWAS_HISTORY, else ~/.lwas_history)")
    rp.add_argument("--load", metavar="FILE", action="append", default=[], help="load a file's items first")
    rp.add_argument("--color", choices=["auto", "always", "never"], default="auto")

    lg = sub.add_parser("ledger", help="audit a service ledger")
    lsub = lg.add_subparsers(dest="ledger_command", metavar="COMMAND", parser_class=_Parser, required=True)
    lv = lsub.add_parser("verify", help="recompute the hash chain, Merkle roots and checkpoint signatures")
    lv.add_argument("db", metavar="DB|URL")
    lv.add_argument("--pubkey", metavar="PUB", required=True, help="the service's public key (PEM)")
    lv.add_argument("--format", choices=["human", "json"], default="human")
    lv.add_argument("--jobs", type=int, default=None, metavar="N",
                    help="processes for large ledgers (default: the cores this process may use; 1: one)")
    le = lsub.add_parser("export", help="write a self-verifying backup archive of every ledger")
    le.add_argument("db", metavar="DB|URL")
    le.add_argument("-o", "--output", required=True, metavar="FILE", help="the archive to write")
    le.add_argument("--pubkey", metavar="PUB", required=True, help="the service's public key (PEM)")
    le.add_argument("--since", metavar="ARCHIVE",
                    help="incremental: only what follows this previous archive, with a consistency proof")
    li = lsub.add_parser("import", help="restore a full archive and its incrementals into an empty store")
    li.add_argument("archives", nargs="+", metavar="ARCHIVE")
    li.add_argument("--db", required=True, metavar="URL", help="empty SQLite file or postgresql://... URL")
    li.add_argument("--pubkey", metavar="PUB", help="require the archives to be signed by this key (PEM)")
    lc = lsub.add_parser("compare", help="check that, per ledger, one store is a prefix of the other")
    lc.add_argument("a", metavar="A")
    lc.add_argument("b", metavar="B")
    lk = lsub.add_parser("check", help="can this program serve the ledgers in the store? (their entry types)")
    lk.add_argument("db", metavar="DB|URL")
    lk.add_argument("file", metavar="FILE|ARTIFACT", help="the program: a .lwas source or a signed artifact")
    lk.add_argument("--pubkey", metavar="PUB", action="append", default=[],
                    help="also trust this public key for the artifact (repeatable)")
    lk.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command in ("dashboard", "fmt"):  # their own parsers read every option
        args.args, extra = extra + args.args, []
    if extra:  # `run FILE --entry f 1 2`: arguments after an option belong to the program
        cut = extra.index("--") if "--" in extra else len(extra)
        head, tail = extra[:cut], extra[cut + 1:]
        if args.command != "run" or any(x.startswith("-") and not _is_number(x) for x in head):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.args = args.args + head + tail
    if args.command is None:
        _parser().print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        if args.debug:
            raise
        from lwas.driver import InternalError

        what = f" {exc}" if isinstance(exc, InternalError) else f": {type(exc).__name__}: {exc}"
        print(f"error: internal compiler error{what}\n"
              "note: this is a bug in lwasc, not in your program; please report it with the input file\n"
              "note: run with --debug for the traceback", file=sys.stderr)
        return EXIT_INTERNAL


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read(path: str, args=None) -> str | None:
    """The file's text, or None after reporting why not (not UTF-8: E0005, with its position)."""
    from lwas.syntax.source import SourceError, read_source

    try:
        return read_source(path)
    except SourceError as e:
        if args is not None and getattr(args, "format", None) == "json" and e.diagnostic is not None:
            from lwas.syntax.diagnostics import to_json_lines

            print(to_json_lines([e.diagnostic], {path: e.source}))
        else:
            print(e.render(_colour(args) if args is not None else False), file=sys.stderr)
        return None


def _colour(args) -> bool:
    from lwas.syntax.diagnostics import use_colour

    return {"always": True, "never": False}.get(args.color, use_colour(sys.stderr))


def cmd_check(args) -> int:
    from lwas.syntax.diagnostics import render_all, to_json_lines
    from lwas.driver import check_source, format_timings

    failed = False
    for path in args.files:
        text = _read(path, args)
        if text is None:
            failed = True
            continue
        c = check_source(text, path)
        diags = c.diagnostics
        if args.format == "json":
            out = to_json_lines(diags, c.sources)
            if out:
                print(out)
        elif diags:
            print(render_all(diags, c.sources, _colour(args)), file=sys.stderr)
        if args.timings:
            print(format_timings(c, text.count("\n") + 1), file=sys.stderr)
        failed |= not c.ok
    return EXIT_ERRORS if failed else EXIT_OK


def cmd_explain(args) -> int:
    from lwas.syntax.codes import CODES, explain

    text = explain(args.code)
    if text is None:
        print(f"error: no such diagnostic code `{args.code}`; known codes: {', '.join(CODES)}", file=sys.stderr)
        return EXIT_USAGE
    print(text, end="")
    return EXIT_OK


def cmd_graph(args) -> int:
    from lwas.syntax.diagnostics import render_all
    from lwas.driver import check_source
    from lwas.semantics.graph import to_dot

    text = _read(args.file, args)
    if text is None:
        return EXIT_ERRORS
    c = check_source(text, args.file)
    if c.diagnostics:
        print(render_all(c.diagnostics, c.sources, _colour(args)), file=sys.stderr)
    if c.truth is None:  # the program did not get as far as the truth checker
        return EXIT_ERRORS
    print(to_dot(c.program, c.truth))  # violations are drawn in red
    return EXIT_OK if c.ok else EXIT_ERRORS


def _read_bytes(path: str) -> bytes | None:
    """The file's bytes, or None after saying why it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        _fail(f"cannot read `{path}`: {e.strerror or e}")
        return None


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERRORS


def cmd_keygen(args) -> int:
    import os

    from lwas.backend.keys import key_id, load_private, write_keypair

    if os.path.exists(args.out) and not args.force:
        return _fail(f"`{args.out}` exists; pass --force to overwrite it")
    priv, pub = write_keypair(args.out)
    print(f"wrote {priv} (private, keep it secret) and {pub}; key id {key_id(load_private(priv))}",
          file=sys.stderr)
    return EXIT_OK


def _report(c, args) -> None:
    from lwas.syntax.diagnostics import render_all

    if c.diagnostics:
        print(render_all(c.diagnostics, c.sources, _colour(args)), file=sys.stderr)


def _emit_stage(what: str, box: list):
    """A back-end stage that renders the IR as LLVM IR or assembly into `box`."""
    from lwas.driver import report_unsupported, unsupported_types

    def stage(c) -> None:
        from lwas.backend import codegen

        try:
            box.append((codegen.llvm_ir if what == "ir" else codegen.assembly)(c.ir, c.opt_level))
        except unsupported_types() as exc:
            report_unsupported(c, exc)
    return stage


def _link_shared(obj: bytes, out: str) -> str | None:
    """Link an object into a shared library with the system `cc`; an error message or None."""
    import os
    import shutil
    import subprocess
    import tempfile

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return "no C compiler (`cc`) found to link a shared library"
    with tempfile.TemporaryDirectory() as d:
        o = os.path.join(d, "program.o")
        with open(o, "wb") as f:
            f.write(obj)
        r = subprocess.run([cc, "-shared", "-o", out, o], capture_output=True, text=True)
    return None if r.returncode == 0 else f"`{cc} -shared` failed:\n{r.stderr.strip()}"


def cmd_build(args) -> int:
    from pathlib import Path

    from lwas.driver import Stage, compile_source, format_timings
    from lwas.backend.keys import KeyFileError, signing_key

    text = _read(args.file, args)
    if text is None:
        return EXIT_ERRORS
    opt = int(args.opt)
    key = None
    if args.emit == "artifact":
        try:
            key, note = signing_key(args.key)
        except KeyFileError as e:
            return _fail(str(e))
        if note:
            print(note, file=sys.stderr)
    box: list = []
    until, then = {"artifact": ("artifact", ()), "obj": ("codegen", ()), "shared": ("codegen", ()),
                   "lir": ("lower", ()),
                   "ir": ("lower", (Stage("emit-ir", _emit_stage("ir", box), True),)),
                   "asm": ("lower", (Stage("emit-asm", _emit_stage("asm", box), True),))}[args.emit]
    c = compile_source(text, args.file, key, opt, until=until, then=then, contracts=not args.no_contracts)
    _report(c, args)
    if args.timings:
        print(format_timings(c, text.count("\n") + 1), file=sys.stderr)
    if not c.ok:
        return EXIT_ERRORS
    out = Path(args.output)
    try:
        if args.emit == "artifact":
            out.write_bytes(c.artifact)
        elif args.emit in ("ir", "asm"):
            out.write_text(box[0], encoding="utf-8")
        elif args.emit == "lir":
            from lwas.backend.irprint import format_program

            out.write_text(format_program(c.ir), encoding="utf-8")
        elif args.emit == "obj":
            out.write_bytes(c.native.object_code)
        else:
            from lwas.backend.artifact import rename_files, display_names
            from lwas.backend.cheader import header

            problem = _link_shared(c.native.object_code, str(out))
            if problem:
                return _fail(problem)
            guard = "LWAS_" + "".join(ch if ch.isalnum() else "_" for ch in out.stem.upper()) + "_H"
            described = rename_files(c.native.describe(),
                                      display_names({m.name: m.path for m in c.program.modules}, args.file))
            out.with_suffix(".h").write_text(header(described, guard), encoding="utf-8")
    except OSError as e:
        return _fail(f"cannot write `{out}`: {e.strerror or e}")
    return EXIT_OK


def cmd_verify(args) -> int:
    from lwas.backend.artifact import ArtifactError, host_triple, same_target, summary, verify
    from lwas.backend.keys import KeyFileError, load_public, trusted_keys

    data = _read_bytes(args.artifact)
    if data is None:
        return EXIT_ERRORS
    try:
        keys = [load_public(k) for k in args.pubkey] if args.pubkey else trusted_keys()
        art = verify(data, keys)
    except (ArtifactError, KeyFileError) as e:
        return _fail(f"`{args.artifact}` does not verify: {e}")
    print(summary(art))
    here = host_triple()
    runs = "yes" if same_target(art.manifest["triple"], here) else f"no (this machine is {here})"
    print(f"runs here:     {runs}")
    print(f"signature:     OK (Ed25519 by key id {art.key_id})")
    return EXIT_OK


def _program_for_source(args, path: str, text: str, timings: list):
    """Compile (or fetch from the cache) and load a source file, signed with the dev key."""
    import hashlib
    import os
    import tempfile
    import time

    from lwas.backend.artifact import ArtifactError, canonical_json, compiler_id, host_triple
    from lwas.driver import FRONT_END, Compilation, run, source_digests
    from lwas.backend.keys import cache_dir, dev_key, key_id
    from lwas.runtime.loader import load_verified
    from lwas.syntax.source import SourceFile

    key, created = dev_key()
    if created:
        from lwas.backend.keys import config_dir

        print(f"note: created a development signing key at {config_dir() / 'dev.key'} (key id {key_id(key)})",
              file=sys.stderr)
    c = run(Compilation(SourceFile(path, text), opt_level=int(args.opt), key=key), until=FRONT_END)
    timings.extend(c.timings)
    _report(c, args)
    if not c.ok:
        return c, None
    t0 = time.perf_counter()
    ident = canonical_json({"sources": source_digests(c), "compiler": compiler_id(), "opt": c.opt_level,
                            "key": key_id(key), "triple": host_triple(), "root": os.path.basename(path)})
    cached = cache_dir() / (hashlib.sha256(ident).hexdigest() + ".lwasart")
    if cached.exists():
        try:
            art, program = load_verified(cached.read_bytes(), [key.public_key()])
            timings.append(("cache hit", time.perf_counter() - t0))
            return c, (art, program)
        except (ArtifactError, OSError):
            pass  # a damaged cache entry is rebuilt
    c.timings.clear()
    seen = len(c.sink.items)
    run(c, start="lower")
    timings.extend(c.timings)
    if not c.ok:
        from lwas.syntax.diagnostics import render_all

        print(render_all(c.sink.items[seen:], c.sources, _colour(args)), file=sys.stderr)
        return c, None
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp.")
    with os.fdopen(fd, "wb") as f:
        f.write(c.artifact)
    os.replace(tmp, cached)
    t0 = time.perf_counter()
    loaded = load_verified(c.artifact, [key.public_key()])
    timings.append(("load", time.perf_counter() - t0))
    return c, loaded


def cmd_run(args) -> int:
    import time

    from lwas.backend.artifact import MAGIC, ArtifactError, signature_text
    from lwas.errors import RuntimeError as LwasRuntimeError
    from lwas.backend.keys import KeyFileError, load_public, trusted_keys
    from lwas.tools.runvalues import BadArgument, format_value, parse

    data = _read_bytes(args.file)
    if data is None:
        return EXIT_ERRORS
    timings: list = []
    local_paths: dict[str, str] = {}  # for a source file: artifact file names -> the paths given
    try:
        if data.startswith(MAGIC):
            from lwas.runtime.loader import load_verified

            t0 = time.perf_counter()
            art, program = load_verified(data, [load_public(k) for k in args.pubkey] + trusted_keys())
            timings.append(("load", time.perf_counter() - t0))
        else:
            from lwas.syntax.source import SourceError, decode_source

            try:
                text = decode_source(data, args.file)
            except SourceError as e:
                print(e.render(_colour(args)), file=sys.stderr)
                return _fail(f"`{args.file}` is neither an LwaS artifact nor UTF-8 source text")
            c, loaded = _program_for_source(args, args.file, text, timings)
            if loaded is None:
                return EXIT_ERRORS
            art, program = loaded
            from lwas.backend.artifact import display_names

            names = display_names({m.name: m.path for m in c.program.modules}, args.file)
            local_paths = {shown: path for path, shown in names.items()}
    except (ArtifactError, KeyFileError) as e:
        return _fail(f"cannot load `{args.file}`: {e}")
    finally:
        if args.timings and timings:
            total = sum(t for _, t in timings)
            rows = [f"{n:<10} {t * 1000:9.2f} ms" for n, t in timings] + [f"{'total':<10} {total * 1000:9.2f} ms"]
            print("\n".join(rows), file=sys.stderr)
    exports = [e for e in art.native.get("exports", []) if e["kind"] in ("fn", "rule")]
    entry = next((e for e in exports if e["name"] == args.entry), None)
    if entry is None:
        names = ", ".join(e["name"] for e in exports) or "none"
        return _fail(f"no function `{args.entry}` to run (functions and rules: {names}); choose one with --entry")
    params = entry["params"]
    if len(args.args) != len(params):
        print(f"error: `{signature_text(entry)}` takes {len(params)} argument(s), got {len(args.args)}",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        values = [parse(a, p["type"]) for a, p in zip(args.args, params)]
    except BadArgument as e:
        print(f"error: bad argument: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = program.call(entry["name"], *values)
    except LwasRuntimeError as e:
        print(_render_fault(e, local_paths, _colour(args)), file=sys.stderr)
        return EXIT_ERRORS
    if entry["result"] != "unit":
        print(format_value(result))
    return EXIT_OK


def _render_fault(e, local_paths: dict, colour: bool) -> str:
    """A runtime fault like a compile error: message, position, and the source line when the
    file is at hand (an artifact run elsewhere may not have it)."""
    from lwas.syntax.diagnostics import Diagnostic, render
    from lwas.errors import KINDS
    from lwas.syntax.source import SourceFile, Span

    pos = e.position
    if pos is None:
        return f"error: {e.message}"
    path = local_paths.get(pos.file, pos.file)
    span = Span(path, pos.line, pos.col, pos.end_line or pos.line, pos.end_col or pos.col + 1)
    diag = Diagnostic("", e.message, span, label=KINDS.get(e.kind, e.kind))
    text = _read_quietly(path)
    return render(diag, {path: SourceFile(path, text)} if text is not None else {}, colour)


def _read_quietly(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def cmd_serve(args) -> int:
    from lwas.backend.artifact import MAGIC
    from lwas.runtime.logs import LogSetupError, resolve_file, resolve_format
    from lwas.runtime.serve import ServeConfig, ServeError, compile_to_artifact, serve

    try:
        with open(args.file, "rb") as f:
            is_artifact = f.read(len(MAGIC)) == MAGIC
    except OSError as e:
        return _fail(f"cannot read `{args.file}`: {e.strerror or e}")
    if args.workers < 1:
        return _fail("--workers must be at least 1")
    try:
        log_format = resolve_format(args.log_format)
    except LogSetupError as e:
        return _fail(str(e))
    temp = None
    try:
        path = args.file
        if not is_artifact:
            path = temp = compile_to_artifact(args.file, args.key)
        cfg = ServeConfig(artifact=path, db=args.db, key=args.key, pubkeys=args.pubkey, host=args.host,
                          port=args.port, workers=args.workers, log_level=args.log_level, log_format=log_format,
                          log_file=resolve_file(args.log_file), source=args.file)
        serve(cfg, announce=lambda line: print(line, file=sys.stderr, flush=True), quiet=args.quiet)
    except ServeError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERRORS
    finally:
        if temp is not None:
            import os

            os.unlink(temp)
    return EXIT_OK


def cmd_ledger_export(args) -> int:
    from lwas.runtime.backup import export_command

    return export_command(args.db, args.output, args.pubkey, args.since)


def cmd_ledger_import(args) -> int:
    from lwas.runtime.backup import import_command

    return import_command(args.archives, args.db, args.pubkey)


def cmd_ledger_compare(args) -> int:
    from lwas.runtime.backup import compare_command

    return compare_command(args.a, args.b)


def cmd_ledger_check(args) -> int:
    from lwas.syntax.diagnostics import use_colour
    from lwas.runtime.schema import check_command

    colour = {"always": True, "never": False}.get(args.color, use_colour(sys.stdout))  # it reports on stdout
    return check_command(args.db, args.file, args.pubkey, colour)


def cmd_ledger(args) -> int:
    from lwas.runtime.verify import verify_command

    sub = {"export": cmd_ledger_export, "import": cmd_ledger_import, "compare": cmd_ledger_compare,
           "check": cmd_ledger_check}
    if args.ledger_command in sub:
        return sub[args.ledger_command](args)

    if args.jobs is not None and args.jobs < 1:
        return _fail("--jobs must be at least 1")
    return verify_command(args.db, args.pubkey, "json" if args.format == "json" else "text", jobs=args.jobs)


def cmd_fmt(args) -> int:
    from lwas.syntax.format import main as fmt

    return fmt(args.args)


def cmd_dashboard(args) -> int:
    from lwas.runtime.dashboard import main as dashboard

    return dashboard(args.args)


def cmd_repl(args) -> int:
    from lwas.tools.repl import main as repl

    argv = (["--history", args.history] if args.history else []) + \
        [x for f in args.load for x in ("--load", f)] + ["--color", args.color]
    return repl(argv)


def cmd_test(args) -> int:
    from lwas.tools.testing import main as run_tests

    return run_tests(args.paths, args.pattern, args.format, args.junit, _colour(args),
                     generate=args.generate, examples=args.examples)


_COMMANDS = {"test": cmd_test, "repl": cmd_repl, "dashboard": cmd_dashboard, "fmt": cmd_fmt, "check": cmd_check, "explain": cmd_explain, "graph": cmd_graph, "keygen": cmd_keygen,
             "build": cmd_build, "verify": cmd_verify, "run": cmd_run, "serve": cmd_serve,
             "ledger": cmd_ledger}


if __name__ == "__main__":
    sys.exit(main())

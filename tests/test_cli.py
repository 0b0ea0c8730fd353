"""`lwasc`: commands, output formats, colours and exit codes (0 ok, 1 input errors, 2 usage, 101 bug)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lwas import __version__
from lwas.tools.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write(tmp_path):
    def _write(text, name="prog.lwas"):
        p = tmp_path / name
        p.write_text(text)
        return str(p)
    return _write


def test_version_and_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "lwas", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"lwasc {__version__}"


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2
    assert main(["explain", "E9999"]) == 2
    assert "no such diagnostic code" in capsys.readouterr().err


def test_clean_program_exits_0_silently(write, capsys):
    assert main(["check", str(ROOT / "examples/ethics.lwas")]) == 0
    out = capsys.readouterr()
    assert out.out == "" and "error" not in out.err


def test_errors_exit_1_with_rustc_style_text(write, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    path = write("axiom truth = 1.0\naxiom too_much = 1.5 requires truth\n")
    assert main(["check", path]) == 1
    err = capsys.readouterr().err
    assert "error[E0201]" in err and f"--> {path}:2:" in err and "\x1b[" not in err
    assert "2 | axiom too_much = 1.5 requires truth" in err
    assert err.rstrip().endswith("error: could not compile: 1 error emitted")


def test_unreadable_file_is_an_input_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.lwas")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_colour_on_request_and_never_with_no_color(write, capsys, monkeypatch):
    path = write("axiom a = 1.5\n")
    main(["check", "--color", "always", path])
    assert "\x1b[1;31merror[E0201]" in capsys.readouterr().err
    monkeypatch.setenv("NO_COLOR", "1")
    main(["check", path])
    assert "\x1b[" not in capsys.readouterr().err


def test_json_format_one_object_per_line(write, capsys):
    path = write("axiom a = 1.5\naxiom b = 0.5 requires nothing\n")
    assert main(["check", "--format", "json", path]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    objs = [json.loads(l) for l in lines]
    assert [o["code"] for o in objs] == ["E0201", "E0202"]
    first = objs[0]
    for key in ("code", "severity", "message", "file", "line", "column", "end_line", "end_column",
                "labels", "notes", "help", "rendered"):
        assert key in first
    assert (first["line"], first["column"]) == (1, 11) and first["severity"] == "error"
    assert first["rendered"].startswith("error[E0201]")


def test_timings_name_every_stage(write, capsys):
    assert main(["check", "--timings", write("fn f() -> int = 1\n")]) == 0
    err = capsys.readouterr().err
    for stage in ("parse", "resolve", "check", "truth", "total", "lines/s"):
        assert stage in err


def test_explain_prints_the_long_form(capsys):
    assert main(["explain", "e0203"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("E0203: axiom is more certain than its premises") and "weakest" in out


def test_internal_error_exits_101_without_traceback(write, capsys, monkeypatch):
    def boom(*a, **k):
        raise ZeroDivisionError("simulated")
    monkeypatch.setattr("lwas.driver.check_source", boom)
    path = write("fn f() -> int = 1\n")
    assert main(["check", path]) == 101
    err = capsys.readouterr().err
    assert "internal compiler error" in err and "this is a bug" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "check", path])


def test_graph_prints_dot(capsys):
    assert main(["graph", str(ROOT / "examples/ethics.lwas")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph") and '"care" -> "freedom"' in out and '"care" -> "hope"' in out
    assert "effective 0.5" in out


def test_graph_highlights_violated_edges(write, capsys, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    path = write("axiom truth = 1.0\naxiom decree = 0.4 requires truth\naxiom law = 0.6 requires decree\n")
    assert main(["graph", path]) == 1
    out = capsys.readouterr()
    assert '"law" -> "decree" [color=red, penwidth=2];' in out.out
    assert '"decree" -> "truth";' in out.out  # not part of the violation
    assert "error[E0203]" in out.err


# ---------------------------------------------------------------- serve (the rest: tests/test_console.py)

def test_serve_help_says_where_logs_go(capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--log-format {auto,console,json}", "--log-file FILE", "$LWAS_LOG_FORMAT", "$LWAS_LOG_FILE",
                 "console when stderr is a terminal, json otherwise", "systemd units, containers and pipes keep "
                 "getting JSON", "warnings and errors only", "access log included", "--quiet"):
        assert text in out, text


@pytest.fixture
def serve_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("LWAS_API_KEYS", "LWAS_AUTH_CONFIG", "LWAS_SIGNING_KEY", "LWAS_LOG_FORMAT", "LWAS_LOG_FILE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_serve_refuses_a_program_without_a_service_before_anything_else(serve_env, capsys):
    fib = str(ROOT / "examples" / "fib.lwas")
    assert main(["serve", fib, "--port", "1", "--db", str(serve_env / "l.db")]) == 1
    err = capsys.readouterr().err
    assert f"error: `{fib}` declares no service: there is nothing to serve" in err
    assert "= help: " in err and "docs/services.md" in err and f"lwasc run {fib}" in err
    assert "serving" not in err and "API key" not in err and "lwas-serve-" not in err
    assert not (serve_env / "l.db").exists()


def test_serve_rejects_an_unknown_log_format(serve_env, capsys, monkeypatch):
    monkeypatch.setenv("LWAS_LOG_FORMAT", "yaml")
    assert main(["serve", str(ROOT / "examples" / "bank.lwas"), "--port", "1"]) == 1
    assert "error: LWAS_LOG_FORMAT must be one of auto, console, json, got 'yaml'" in capsys.readouterr().err


def test_an_internal_error_names_its_stage(write, capsys, monkeypatch):
    def boom(*a, **k):
        raise ZeroDivisionError("simulated")
    monkeypatch.setattr("lwas.semantics.typecheck.check_program", boom)
    path = write("fn f() -> int = 1\n")
    assert main(["check", path]) == 101
    err = capsys.readouterr().err
    assert "internal compiler error in stage `check`: ZeroDivisionError: simulated" in err
    assert "Traceback" not in err

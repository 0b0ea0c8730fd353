"""`lwasc keygen`, `build`, `verify` and `run`: files, modes, output and exit codes."""
from __future__ import annotations

import os
import stat

import pytest

from lwas.backend import keys
from lwas.tools.cli import main

PROG = """\
axiom truth = 1.0
axiom justice = 0.9 requires truth
enum Color { Red, Green }
fn add(a: int, b: int) -> int = a + b
fn mul(a: int, b: int) -> int = a * b
fn main() -> int = add(40, 2)
fn double(m: money) -> money = m + m
fn pick(c: Color, loud: bool) -> int = match c {
  Red => 1
  Green => 2
}
fn half(x: float) -> float = x / 2.0
rule fair(x: float) -> truth = ramp(x, 0.0, 10.0) requires justice
"""


@pytest.fixture(autouse=True)
def home(isolated_home, monkeypatch):
    """Per-test config and cache directories: never the real home."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(isolated_home)
    return isolated_home


@pytest.fixture
def prog(tmp_path):
    (tmp_path / "prog.lwas").write_text(PROG)
    return "prog.lwas"


@pytest.fixture
def keypair(tmp_path, capsys):
    assert main(["keygen", str(tmp_path / "k")]) == 0
    capsys.readouterr()
    return str(tmp_path / "k"), str(tmp_path / "k.pub")


def test_keygen_writes_pem_files_with_private_mode(tmp_path, capsys):
    assert main(["keygen", "signing"]) == 0
    priv, pub = tmp_path / "signing", tmp_path / "signing.pub"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE(pub.stat().st_mode) & 0o077 == 0o044  # public: readable by others, writable by none
    assert priv.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert pub.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    kid = keys.key_id(keys.load_public(pub))
    assert kid in capsys.readouterr().err
    assert main(["keygen", "signing"]) == 1  # never overwrites a private key silently
    assert "--force" in capsys.readouterr().err
    assert keys.key_id(keys.load_private(priv)) == kid
    assert main(["keygen", "signing", "--force"]) == 0
    assert keys.key_id(keys.load_private(priv)) != kid


def test_build_and_verify(prog, keypair, capsys):
    priv, pub = keypair
    assert main(["build", prog, "-o", "prog.lwasart", "--key", priv]) == 0
    assert capsys.readouterr().err == ""
    assert main(["verify", "prog.lwasart", "--pubkey", pub]) == 0
    out = capsys.readouterr().out
    kid = keys.key_id(keys.load_public(pub))
    for expected in ("format:        1", "compiler:      lwasc", "triple:        x86_64", f"key id:        {kid}",
                     "source digest: sha512:", "fn add(a: int, b: int) -> int", "fn double(m: money) -> money",
                     "rule fair(x: float) -> truth", "justice        declared 0.9        effective 0.9",
                     "signature:     OK"):
        assert expected in out, expected


def test_verify_fails_with_the_reason(prog, keypair, tmp_path, capsys):
    priv, pub = keypair
    assert main(["build", prog, "-o", "a.lwasart", "--key", priv]) == 0
    assert main(["keygen", "other"]) == 0
    capsys.readouterr()
    assert main(["verify", "a.lwasart", "--pubkey", "other.pub"]) == 1
    assert "bad signature" in capsys.readouterr().err
    data = bytearray((tmp_path / "a.lwasart").read_bytes())
    data[100] ^= 1
    (tmp_path / "b.lwasart").write_bytes(bytes(data))
    assert main(["verify", "b.lwasart", "--pubkey", pub]) == 1
    assert "does not verify" in capsys.readouterr().err
    (tmp_path / "c.lwasart").write_bytes(b"hello")
    assert main(["verify", "c.lwasart", "--pubkey", pub]) == 1
    assert "not an LwaS artifact" in capsys.readouterr().err
    assert main(["verify", "missing.lwasart", "--pubkey", pub]) == 1
    assert main(["verify", "a.lwasart", "--pubkey", "missing.pub"]) == 1
    assert "cannot read public key" in capsys.readouterr().err


def test_dev_key_is_created_once_and_announced(prog, home, capsys):
    assert main(["build", prog, "-o", "a.lwasart"]) == 0
    err = capsys.readouterr().err
    dev = home / "config" / "lwas" / "dev.key"
    assert "created a development signing key" in err and str(dev) in err
    assert stat.S_IMODE(dev.stat().st_mode) == 0o600
    assert main(["build", prog, "-o", "b.lwasart"]) == 0
    assert capsys.readouterr().err == ""
    assert (home / "a.lwasart").read_bytes() == (home / "b.lwasart").read_bytes()
    assert main(["verify", "a.lwasart"]) == 0  # the dev key is trusted by default


def test_signing_key_from_the_environment(prog, keypair, monkeypatch, capsys):
    priv, pub = keypair
    monkeypatch.setenv("LWAS_SIGNING_KEY", priv)
    assert main(["build", prog, "-o", "a.lwasart"]) == 0
    assert main(["verify", "a.lwasart", "--pubkey", pub]) == 0
    assert "development" not in capsys.readouterr().err


def test_emit_ir_asm_obj(prog, home):
    assert main(["build", prog, "-o", "p.ll", "--emit", "ir", "-O0"]) == 0
    assert 'define' in (home / "p.ll").read_text() and "lwas$add" in (home / "p.ll").read_text()
    assert main(["build", prog, "-o", "p.s", "--emit", "asm"]) == 0
    assert "lwas$add" in (home / "p.s").read_text()
    assert main(["build", prog, "-o", "p.o", "--emit", "obj"]) == 0
    assert (home / "p.o").read_bytes()[:4] == b"\x7fELF"
    assert not (home / "config" / "lwas" / "dev.key").exists()  # nothing signed, no key needed


def test_build_timings_and_errors(prog, home, capsys):
    assert main(["build", prog, "-o", "a.lwasart", "--timings", "-O0"]) == 0
    err = capsys.readouterr().err
    for stage in ("parse", "check", "truth", "lower", "codegen", "artifact", "total"):
        assert stage in err
    (home / "bad.lwas").write_text('fn show(x: float) -> text = text(x)\n')
    assert main(["build", "bad.lwas", "-o", "bad.lwasart"]) == 1
    assert "error[E0320]" in capsys.readouterr().err and not (home / "bad.lwasart").exists()
    assert main(["build", "nope.lwas", "-o", "x"]) == 1
    assert main(["build", prog, "-o", "x", "--key", "nope.pem"]) == 1
    assert "cannot read private key" in capsys.readouterr().err


def test_run_source_with_typed_arguments(prog, capsys):
    def run(*argv):
        code = main(["run", prog, *argv])
        return code, capsys.readouterr().out.strip()

    assert run() == (0, "42")  # main
    assert run("--entry", "add", "2", "-3") == (0, "-1")
    assert run("2", "3", "--entry", "add") == (0, "5")
    assert run("--entry", "double", "12.50 USD") == (0, "25.00 USD")
    assert run("--entry", "pick", "Green", "true") == (0, "2")
    assert run("--entry", "half", "3") == (0, "1.5")
    assert run("--entry", "fair", "5") == (0, "0.5")


def test_run_usage_errors(prog, capsys):
    assert main(["run", prog, "--entry", "add", "1"]) == 2
    assert "takes 2 argument(s), got 1" in capsys.readouterr().err
    assert main(["run", prog, "--entry", "pick", "Blue", "true"]) == 2
    assert "not a variant of Color (Red, Green)" in capsys.readouterr().err
    assert main(["run", prog, "--entry", "double", "1.999 USD"]) == 2
    assert main(["run", prog, "--entry", "nothing"]) == 1
    assert "no function `nothing`" in capsys.readouterr().err


def test_runtime_error_exits_1_with_position(prog, home, capsys):
    assert main(["run", prog, "--entry", "mul", "9223372036854775807", "2"]) == 1
    err = capsys.readouterr().err
    assert "integer overflow in `a * b`" in err and " --> prog.lwas:5:33" in err
    assert "5 | fn mul(a: int, b: int) -> int = a * b" in err  # the source line, with a caret
    assert "  |                                 ^^^^^ integer overflow" in err
    assert "Traceback" not in err
    (home / "sub").mkdir()
    (home / "sub" / "prog.lwas").write_text(PROG)
    assert main(["run", "sub/prog.lwas", "--entry", "mul", "-9223372036854775807", "3"]) == 1
    assert " --> sub/prog.lwas:5:33" in capsys.readouterr().err  # the path as given, for editors
    assert main(["build", "sub/prog.lwas", "-o", "p.lwasart"]) == 0
    assert main(["run", "p.lwasart", "--entry", "mul", "-9223372036854775807", "3"]) == 1
    assert " --> prog.lwas:5:33" in capsys.readouterr().err  # an artifact knows only its own file names


def test_second_run_hits_the_cache(prog, home, capsys):
    assert main(["run", prog, "--timings"]) == 0
    first = capsys.readouterr()
    assert first.out.strip() == "42" and "codegen" in first.err
    (cached,) = (home / "cache" / "lwas").glob("*.lwasart")
    mtime = cached.stat().st_mtime_ns
    assert main(["run", prog, "--timings"]) == 0
    second = capsys.readouterr()
    assert second.out.strip() == "42"
    assert "cache hit" in second.err and "codegen" not in second.err and "lower" not in second.err
    assert cached.stat().st_mtime_ns == mtime
    (home / "prog.lwas").write_text(PROG.replace("add(40, 2)", "add(40, 3)"))
    assert main(["run", prog, "--timings"]) == 0
    third = capsys.readouterr()
    assert third.out.strip() == "43" and "codegen" in third.err


def test_damaged_cache_entry_is_rebuilt(prog, home, capsys):
    assert main(["run", prog]) == 0
    (cached,) = (home / "cache" / "lwas").glob("*.lwasart")
    data = cached.read_bytes()
    cached.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # always a change, whatever the byte was
    assert main(["run", prog, "--timings"]) == 0
    out = capsys.readouterr()
    assert "codegen" in out.err and out.out.strip().endswith("42")


def test_run_artifact_needs_a_trusted_key(prog, keypair, home, capsys):
    priv, pub = keypair
    assert main(["build", prog, "-o", "a.lwasart", "--key", priv]) == 0
    assert main(["run", "a.lwasart"]) == 1
    assert "no trusted public keys" in capsys.readouterr().err
    assert main(["build", prog, "-o", "dev.lwasart"]) == 0  # now the dev key exists and is trusted
    assert main(["run", "a.lwasart"]) == 1
    assert "bad signature" in capsys.readouterr().err
    assert main(["run", "a.lwasart", "--pubkey", pub, "--entry", "add", "1", "2"]) == 0
    assert capsys.readouterr().out.strip() == "3"
    trusted = home / "config" / "lwas" / "trusted"
    trusted.mkdir(parents=True)
    (trusted / "ci.pub").write_bytes((home / "k.pub").read_bytes())
    assert main(["run", "a.lwasart"]) == 0
    assert capsys.readouterr().out.strip() == "42"


def test_run_artifact_built_with_the_dev_key(prog, capsys):
    assert main(["build", prog, "-o", "a.lwasart"]) == 0
    assert main(["run", "a.lwasart"]) == 0  # the dev key's public half is trusted automatically
    assert capsys.readouterr().out.strip() == "42"


def test_version_stays_light():
    import subprocess
    import sys

    code = "import sys, lwas.tools.cli; print(sorted(m for m in ('llvmlite', 'cryptography', 'lark') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.stdout.strip() == "[]"

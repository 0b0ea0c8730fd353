"""Signed artifacts: format, canonical manifest, reproducibility, and a loader that maps native
code only after the signature, the format version and the target have been checked."""
from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import lwas
from lwas.backend import artifact, keys
from lwas.backend.artifact import MAGIC, ArtifactError, canonical_json
from lwas.driver import compile_file
from lwas.runtime import loader

SOURCE = """\
axiom truth = 1.0
axiom justice = 0.9 requires truth
axiom hope = 0.5..0.9 requires truth
enum Color { Red, Green }
fn fib(n: int) -> int {
  if n < 2 {
    return n
  }
  return fib(n - 1) + fib(n - 2)
}
fn mul(a: int, b: int) -> int = a * b
fn pick(c: Color) -> int = match c {
  Red => 1
  Green => 2
}
rule fair(x: float) -> truth = ramp(x, 0.0, 10.0) requires justice
"""


pytestmark = pytest.mark.usefixtures("isolated_home")  # never the real ~/.config or ~/.cache


@pytest.fixture(scope="module")
def key():
    return keys.generate()


@pytest.fixture(scope="module")
def pub(key):
    return keys.public_pem(key)


@pytest.fixture(scope="module")
def art(key):
    return lwas.compile(SOURCE, "prog.lwas", key=key)


def _split(data: bytes):
    (n,) = struct.unpack(">I", data[10:14])
    manifest = data[14:14 + n]
    (m,) = struct.unpack(">Q", data[14 + n:22 + n])
    return manifest, data[22 + n:22 + n + m], data[22 + n + m:]


def _repack(data: bytes, key, edit=lambda m: m, version: int = artifact.FORMAT_VERSION) -> bytes:
    """Rewrite the manifest and sign it again with `key`: a well-signed but altered artifact."""
    manifest, obj, _ = _split(data)
    m = canonical_json(edit(json.loads(manifest)))
    body = MAGIC + struct.pack(">HI", version, len(m)) + m + struct.pack(">Q", len(obj)) + obj
    return body + key.sign(hashlib.sha512(body).digest())


@pytest.fixture
def mapped(monkeypatch):
    """Records every call of NativeProgram.from_object (and still calls the real one)."""
    from lwas.runtime.native import NativeProgram

    calls = []
    real = NativeProgram.from_object.__func__

    def spy(cls, object_code, described):
        calls.append(len(object_code))
        return real(cls, object_code, described)

    monkeypatch.setattr(NativeProgram, "from_object", classmethod(spy))
    return calls


# ---------------------------------------------------------------- format and manifest

def test_layout_and_canonical_manifest(art, key):
    assert art[:8] == MAGIC and struct.unpack(">H", art[8:10]) == (1,)
    manifest, obj, sig = _split(art)
    assert len(sig) == 64 and obj[:4] == b"\x7fELF"
    m = json.loads(manifest)
    assert canonical_json(m) == manifest  # canonical bytes, not whatever json.dumps gave
    assert m["format"] == 1 and m["compiler"] == f"lwasc {lwas.__version__}"
    assert m["services"] == [] and m["key_id"] == keys.key_id(key) and len(m["key_id"]) == 16
    assert m["sources"] == {"prog": {"file": "prog.lwas",
                                     "sha512": hashlib.sha512(SOURCE.encode()).hexdigest()}}
    assert m["source_digest"] == hashlib.sha512(canonical_json(m["sources"])).hexdigest()
    keys.load_public(keys.public_pem(key)).verify(sig, hashlib.sha512(art[:-64]).digest())
    native = m["native"]
    assert native["triple"] == m["triple"] and native["abi"] == 1
    exports = {e["name"]: e for e in native["exports"]}
    assert artifact.signature_text(exports["fib"]) == "fn fib(n: int) -> int"
    assert artifact.signature_text(exports["fair"]) == "rule fair(x: float) -> truth"
    axioms = {a["name"]: a for a in native["axioms"]}
    assert axioms["justice"]["declared"] == [0.9, 0.9] and axioms["justice"]["effective"] == 0.9
    assert axioms["hope"]["declared"] == [0.5, 0.9]
    assert all(s["file"] == "prog.lwas" for s in native["error_sites"]) and native["error_sites"]


def test_no_build_machine_paths(tmp_path, key):
    src = tmp_path / "deep" / "dir"
    src.mkdir(parents=True)
    (src / "prog.lwas").write_text(SOURCE)
    c = compile_file(src / "prog.lwas", key=key)
    assert c.artifact == lwas.compile(SOURCE, "prog.lwas", key=key)  # where it was built does not matter
    assert str(tmp_path).encode() not in c.artifact


def test_stdlib_modules_are_named_without_host_paths(key):
    data = lwas.compile("import std.fuzzy\nfn f(x: float) -> truth = fuzzy.triangle(x, 0.0, 1.0, 2.0)\n",
                        "m.lwas", key=key)
    m = json.loads(_split(data)[0])
    assert m["sources"]["std.fuzzy"]["file"] == "std/fuzzy.lwas"
    assert b"/work/" not in data and str(Path.home()).encode() not in data


def test_canonical_json_refuses_what_does_not_round_trip():
    assert canonical_json({"b": [1, 0.5], "a": "é"}) == '{"a":"é","b":[1,0.5]}'.encode()
    with pytest.raises(ArtifactError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ArtifactError):
        canonical_json({1: "x"})


# ---------------------------------------------------------------- loading

def test_load_runs_the_program(art, pub):
    p = lwas.load(art, trusted=[pub])
    assert p.fn.fib(30) == 832040
    assert p.truth("justice") == pytest.approx(0.9)
    assert p.call("pick", "Green") == 2
    with pytest.raises(lwas.RuntimeError) as e:
        p.fn.mul(2**62, 4)
    assert e.value.kind == "overflow" and e.value.position.file == "prog.lwas"
    assert e.value.position.line == 11


def test_every_single_byte_flip_is_rejected_before_mapping(key, pub, mapped):
    small = lwas.compile("fn one() -> int = 1\n", "one.lwas", key=key)
    assert len(small) < 4096
    trusted = [keys.load_public(pub)]
    for i in range(len(small)):
        for flip in (0x01, 0xFF):
            bad = small[:i] + bytes([small[i] ^ flip]) + small[i + 1:]
            with pytest.raises(ArtifactError) as e:
                loader.load(bad, trusted)
            assert str(e.value)  # a reason, never an empty message
    assert mapped == []
    assert loader.load(small, trusted).fn.one() == 1 and len(mapped) == 1


def test_truncated_or_extended_artifacts_are_rejected(art, pub, mapped):
    for bad in (art[:-1], art + b"\0", art[:20], b"", b"LWASART"):
        with pytest.raises(ArtifactError):
            loader.load(bad, [pub])
    assert mapped == []


def test_wrong_key(art, mapped):
    other = keys.public_pem(keys.generate())
    with pytest.raises(ArtifactError, match="bad signature.*not signed by a trusted key"):
        lwas.load(art, trusted=[other])
    with pytest.raises(ArtifactError, match="no trusted public keys"):
        lwas.load(art, trusted=[])
    assert mapped == []


def test_unknown_format_version(art, key, pub, mapped):
    resigned = _repack(art, key, version=2)  # properly signed, but a version this reader does not know
    with pytest.raises(ArtifactError, match="unsupported artifact format version 2"):
        lwas.load(resigned, trusted=[pub])
    assert mapped == []


def test_foreign_triple_is_rejected_even_when_properly_signed(art, key, pub, mapped):
    def foreign(m):
        m["triple"] = m["native"]["triple"] = "aarch64-unknown-linux-gnu"
        return m

    resigned = _repack(art, key, foreign)
    artifact.verify(resigned, [keys.load_public(pub)])  # the signature is fine ...
    with pytest.raises(ArtifactError, match="built for aarch64-unknown-linux-gnu, this machine is x86_64"):
        lwas.load(resigned, trusted=[pub])  # ... the triple check is what refuses it
    assert mapped == []


def test_abi_mismatch_is_rejected(art, key, pub, mapped):
    def newer(m):
        m["native"]["abi"] = 99
        return m

    with pytest.raises(ArtifactError, match="native ABI 99"):
        lwas.load(_repack(art, key, newer), trusted=[pub])
    assert mapped == []


def test_resigned_identical_manifest_loads(art, key, pub):
    """The test helper itself produces loadable artifacts: the rejections above are real."""
    assert _repack(art, key) == art
    assert lwas.load(_repack(art, key), trusted=[pub]).fn.fib(10) == 55


def test_same_target_ignores_only_the_vendor():
    assert artifact.same_target("x86_64-unknown-linux-gnu", "x86_64-pc-linux-gnu")
    assert not artifact.same_target("x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl")
    assert not artifact.same_target("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu")


# ---------------------------------------------------------------- reproducibility

_BUILD = """
import sys
from lwas.backend import keys
from lwas.driver import compile_file
sys.stdout.buffer.write(compile_file(sys.argv[1], key=keys.load_private(sys.argv[2])).artifact)
"""


def test_reproducible_across_processes(tmp_path, key):
    (tmp_path / "prog.lwas").write_text(SOURCE)
    (tmp_path / "k.pem").write_bytes(keys.private_pem(key))
    outs = [subprocess.run([sys.executable, "-c", _BUILD, str(path), str(tmp_path / "k.pem")],
                           capture_output=True, check=True, cwd=cwd).stdout
            for path, cwd in [(tmp_path / "prog.lwas", Path.cwd()), ("prog.lwas", tmp_path)]]
    assert outs[0] == outs[1] == lwas.compile(SOURCE, "prog.lwas", key=key)


# ---------------------------------------------------------------- API

def test_compile_errors_carry_diagnostics(key):
    with pytest.raises(lwas.CompileError) as e:
        lwas.compile("axiom a = 1.5\n", key=key)
    assert [d.code for d in e.value.diagnostics] == ["E0201"]
    with pytest.raises(lwas.CompileError) as e:
        lwas.compile('fn show(x: float) -> text = text(x)\n', key=key)
    assert [d.code for d in e.value.diagnostics] == ["E0320"]
    assert "E0320" in e.value.rendered


def test_compile_without_key_uses_the_dev_key(tmp_path):
    data = lwas.compile("fn one() -> int = 1\n")
    dev_pub = tmp_path / "config" / "lwas" / "dev.key.pub"
    assert dev_pub.exists()
    assert lwas.load(data, trusted=[dev_pub.read_bytes()]).fn.one() == 1
    assert lwas.compile("fn one() -> int = 1\n") == data  # created once, then reused


def test_context_compiles_to_an_artifact(key, pub):
    ctx = lwas.CompilationContext()
    ctx.add_axiom(lwas.Axiom(name="truth", truth_value=1.0))
    ctx.add_axiom(lwas.Axiom(name="justice", truth_value=0.7, dependencies=["truth"]))
    p = lwas.load(ctx.compile(key=key), trusted=[pub])
    assert p.truth("justice") == pytest.approx(0.7)


def test_trusted_keys_accept_pem_text_raw_bytes_and_objects(art, key):
    pk = key.public_key()
    for t in (keys.public_pem(pk), keys.public_pem(pk).decode(), keys.raw_public(pk), pk):
        assert lwas.load(art, trusted=[t]).fn.fib(5) == 5

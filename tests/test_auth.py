"""runtime/auth.py: API keys (hashed), JWTs (EdDSA/HS256, short-lived), roles, rate limits, and
secrets never showing up in messages or reprs."""
from __future__ import annotations

import base64
import hashlib
import json
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lwas.runtime.auth import (AuthError, Credentials, Principal, RateLimiter, authenticate,
                               authorize, load_credentials, make_dev_key, retry_after)

KEY_ADMIN = "lwas_test_admin_9f8e7d6c5b4a39281706"
KEY_READER = "lwas_test_reader_0a1b2c3d4e5f60718293"
HS_SECRET = "hs256-test-secret-0123456789abcdef-XYZ"
ED_PRIV = Ed25519PrivateKey.generate()
ED_PUB_PEM = ED_PRIV.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
ED_PRIV_PEM = ED_PRIV.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@pytest.fixture
def creds(tmp_path):
    cfg = tmp_path / "auth.json"
    cfg.write_text(json.dumps({
        "api_keys": [{"key_sha256": sha(KEY_READER), "role": "reader", "name": "dashboard"}],
        "jwt": {"hs256_secret": HS_SECRET, "eddsa_public_key_pem": ED_PUB_PEM},
        "read_requires_auth": False}))
    return load_credentials({"LWAS_API_KEYS": f"{KEY_ADMIN}:admin"}, cfg)


def token(claims=None, alg="EdDSA", key=None, lifetime=600, now=None, **extra):
    now = int(time.time()) if now is None else now
    body = {"sub": "alice", "role": "writer", "iat": now, "exp": now + lifetime, **(claims or {})}
    body = {k: v for k, v in body.items() if v is not None}
    key = key if key is not None else (ED_PRIV_PEM if alg == "EdDSA" else HS_SECRET)
    return jwt.encode(body, key, algorithm=alg, **extra)


def fails(creds, header, status=401, code="invalid_credentials") -> AuthError:
    with pytest.raises(AuthError) as ei:
        authenticate(creds, header)
    assert (ei.value.status, ei.value.code) == (status, code), str(ei.value)
    return ei.value


# ---------------------------------------------------------------- API keys

def test_api_keys(creds):
    assert authenticate(creds, f"Bearer {KEY_ADMIN}") == Principal("env-key-1", "admin", "api_key")
    assert authenticate(creds, f"bearer  {KEY_READER} ") == Principal("dashboard", "reader", "api_key")
    assert creds.read_requires_auth is False
    fails(creds, f"Bearer {KEY_ADMIN}x")
    fails(creds, "Bearer lwas_unknown")
    fails(creds, None, code="missing_credentials")
    fails(creds, "   ", code="missing_credentials")
    fails(creds, f"Basic {base64.b64encode(b'u:p').decode()}", code="malformed_credentials")
    fails(creds, KEY_ADMIN, code="malformed_credentials")
    fails(creds, "Bearer ", code="malformed_credentials")
    fails(creds, f"Bearer {KEY_ADMIN} extra", code="malformed_credentials")


def test_keys_are_stored_only_hashed(creds):
    def walk(o, seen=()):  # every string and bytes reachable from the object's attributes
        if isinstance(o, (str, bytes)):
            yield o
        elif isinstance(o, dict):
            for k, v in o.items():
                yield from walk(k)
                yield from walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                yield from walk(v)
        elif hasattr(o, "__dict__") or hasattr(o, "__dataclass_fields__"):
            yield from walk(vars(o) if hasattr(o, "__dict__") else
                            {f: getattr(o, f) for f in o.__dataclass_fields__})
    blobs = list(walk(vars(creds)))
    for raw in (KEY_ADMIN, KEY_READER):
        assert not any(raw in b if isinstance(b, str) else raw.encode() in b for b in blobs)
    assert hashlib.sha256(KEY_ADMIN.encode()).digest() in blobs
    assert KEY_ADMIN not in repr(creds) and HS_SECRET not in repr(creds)


def test_add_key_and_dev_key():
    c = Credentials()
    assert not c.configured
    k = make_dev_key()
    assert k.startswith("lwas_dev_") and len(k) > 40 and make_dev_key() != k
    c.add_key(k, "admin", "dev")
    assert c.configured and authenticate(c, f"Bearer {k}").id == "dev"
    c.add_key("other", "reader")
    assert authenticate(c, "Bearer other").id == f"key-{sha('other')[:12]}"


def test_bad_configuration_names_no_key(tmp_path):
    with pytest.raises(ValueError) as ei:
        load_credentials({"LWAS_API_KEYS": "sekrit-key-1:root"})
    assert "entry 1" in str(ei.value) and "sekrit" not in str(ei.value)
    with pytest.raises(ValueError):
        load_credentials({"LWAS_API_KEYS": "no-role-here"})
    with pytest.raises(ValueError, match="at least 32"):
        load_credentials({"LWAS_JWT_HS256_SECRET": "short"})
    toml = tmp_path / "auth.toml"
    toml.write_text(f'read_requires_auth = true\n[[api_keys]]\nkey_sha256 = "{sha("t")}"\nrole = "writer"\n')
    c = load_credentials({"LWAS_AUTH_CONFIG": str(toml)})
    assert authenticate(c, "Bearer t").role == "writer" and c.read_requires_auth
    (tmp_path / "bad.json").write_text(json.dumps({"api_keys": [{"key_sha256": "abc", "role": "reader"}]}))
    with pytest.raises(ValueError, match="api_keys entry 1"):
        load_credentials({}, tmp_path / "bad.json")


# ---------------------------------------------------------------- JWT

@pytest.mark.parametrize("alg", ["EdDSA", "HS256"])
def test_jwt_valid(creds, alg):
    assert authenticate(creds, f"Bearer {token(alg=alg)}") == Principal("alice", "writer", "jwt")
    assert authenticate(creds, f"Bearer {token(alg=alg, lifetime=900)}").role == "writer"


@pytest.mark.parametrize("alg", ["EdDSA", "HS256"])
def test_jwt_rejections(creds, alg):
    now = int(time.time())
    fails(creds, f"Bearer {token(alg=alg, now=now - 700, lifetime=600)}", code="token_expired")
    assert authenticate(creds, f"Bearer {token(alg=alg, now=now - 620, lifetime=600)}")  # within leeway
    fails(creds, f"Bearer {token(alg=alg, lifetime=901)}", code="token_lifetime_too_long")
    fails(creds, f"Bearer {token(alg=alg, lifetime=86400)}", code="token_lifetime_too_long")
    fails(creds, f"Bearer {token({'exp': None}, alg=alg)}")
    fails(creds, f"Bearer {token({'iat': None}, alg=alg)}")
    fails(creds, f"Bearer {token({'sub': None}, alg=alg)}")
    fails(creds, f"Bearer {token({'role': 'root'}, alg=alg)}")
    fails(creds, f"Bearer {token({'role': None}, alg=alg)}")
    fails(creds, f"Bearer {token({'iat': now + 600}, alg=alg, lifetime=0)}")  # issued in the future
    t = token(alg=alg)
    head, body, sig = t.split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["role"] = "admin"
    fails(creds, f"Bearer {head}.{base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b'=').decode()}.{sig}")
    fails(creds, f"Bearer {head}.{body}.{sig[:-4]}AAAA")


def test_jwt_wrong_key_and_algorithms(creds):
    other = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fails(creds, f"Bearer {token(key=other)}")
    fails(creds, f"Bearer {token(alg='HS256', key='x' * 40)}")
    fails(creds, f"Bearer {_none_token()}")
    fails(creds, f"Bearer {token(alg='HS512', key=HS_SECRET + 'x' * 40)}")
    fails(creds, "Bearer not.a.jwt")
    # algorithm confusion: the public key used as an HMAC secret
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    now = int(time.time())
    body = base64.urlsafe_b64encode(json.dumps(
        {"sub": "m", "role": "admin", "iat": now, "exp": now + 60}).encode()).rstrip(b"=")
    import hmac
    sig = base64.urlsafe_b64encode(hmac.new(ED_PUB_PEM.encode(), head + b"." + body, "sha256").digest()).rstrip(b"=")
    fails(creds, f"Bearer {(head + b'.' + body + b'.' + sig).decode()}")
    only_hs = load_credentials({"LWAS_JWT_HS256_SECRET": HS_SECRET})
    fails(only_hs, f"Bearer {token()}")  # EdDSA not configured
    assert authenticate(only_hs, f"Bearer {token(alg='HS256')}").id == "alice"


def _none_token() -> str:
    now = int(time.time())
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc({'sub': 'm', 'role': 'admin', 'iat': now, 'exp': now + 60})}."


def test_issuer_and_audience(tmp_path):
    cfg = tmp_path / "a.json"
    cfg.write_text(json.dumps({"jwt": {"hs256_secret": HS_SECRET, "issuer": "idp", "audience": "lwas"}}))
    c = load_credentials({}, cfg)
    assert authenticate(c, f"Bearer {token({'iss': 'idp', 'aud': 'lwas'}, alg='HS256')}").id == "alice"
    fails(c, f"Bearer {token({'iss': 'evil', 'aud': 'lwas'}, alg='HS256')}")
    fails(c, f"Bearer {token({'iss': 'idp'}, alg='HS256')}")


# ---------------------------------------------------------------- roles

def test_roles():
    for have, need, ok in [("admin", "writer", True), ("admin", "reader", True), ("writer", "writer", True),
                           ("writer", "reader", True), ("writer", "admin", False), ("reader", "writer", False),
                           ("reader", "reader", True), ("nobody", "reader", False)]:
        p = Principal("p", have, "api_key")
        if ok:
            authorize(p, need)
        else:
            with pytest.raises(AuthError) as ei:
                authorize(p, need)
            assert (ei.value.status, ei.value.code) == (403, "forbidden")
    with pytest.raises(ValueError):
        authorize(Principal("p", "admin", "jwt"), "superuser")


def test_secrets_absent_from_errors_and_principals(creds):
    secrets_ = [KEY_ADMIN, KEY_READER, HS_SECRET]
    headers = [f"Bearer {KEY_ADMIN}x", f"Bearer {KEY_READER} junk", f"Basic {KEY_ADMIN}",
               f"Bearer {token(lifetime=5000)}", f"Bearer {token(now=1_000_000)}",
               f"Bearer {token(alg='HS256', key=HS_SECRET + 'zz')}", f"Bearer {token({'role': 'x'})}"]
    for h in headers:
        with pytest.raises(AuthError) as ei:
            authenticate(creds, h)
        e = ei.value
        shown = " ".join([str(e), repr(e), e.message, e.www_authenticate(), repr(e.args)])
        tok = h.split(" ", 1)[1]
        assert all(s not in shown for s in secrets_) and tok.split(".")[-1] not in shown
        assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)  # no PyJWT chain
    for h in (f"Bearer {KEY_ADMIN}", f"Bearer {token()}", f"Bearer {token(alg='HS256')}"):
        p = authenticate(creds, h)
        assert all(s not in str(p) + repr(p) for s in secrets_ + [h.split(" ", 1)[1]])
    assert 'error="invalid_token"' in AuthError(401, "token_expired", "m").www_authenticate()


# ---------------------------------------------------------------- rate limiting

class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_rate_limiter_token_bucket():
    clock = FakeClock()
    rl = RateLimiter(rate_per_s=2, burst=3, clock=clock)
    assert [rl.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.take("a") == pytest.approx(0.5)
    assert rl.take("b") == 0.0  # per principal
    clock.t += 0.25
    assert rl.take("a") == pytest.approx(0.25)  # a refused take does not consume
    clock.t += 0.25
    assert rl.take("a") == 0.0 and rl.take("a") == pytest.approx(0.5)
    clock.t += 100
    assert [rl.take("a") for _ in range(4)][-1] > 0  # refills only up to the burst
    assert retry_after(0.01) == 1 and retry_after(1.2) == 2 and retry_after(3.0) == 3


def test_rate_limiter_forgets_full_buckets():
    clock = FakeClock()
    rl = RateLimiter(1, 1, clock=clock, max_ids=10)
    for i in range(10):
        rl.take(str(i))
    clock.t += 5
    rl.take("new")
    assert len(rl._buckets) == 1


def test_rate_limiter_thread_safe():
    clock = FakeClock()
    rl = RateLimiter(rate_per_s=1, burst=1000, clock=clock)
    allowed = []

    def work():
        allowed.append(sum(rl.take("x") == 0.0 for _ in range(500)))
    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(allowed) == 1000  # exactly the burst, across 4000 concurrent takes


def test_verified_tokens_are_cached_by_hash_until_expiry(creds, monkeypatch):
    from lwas.runtime import auth
    t = token(lifetime=300)
    assert authenticate(creds, f"Bearer {t}").id == "alice"
    assert list(creds._jwt_cache) == [hashlib.sha256(t.encode()).digest()]  # the hash, not the token
    calls = []
    monkeypatch.setattr(auth, "_by_jwt", lambda *a: calls.append(a))
    assert authenticate(creds, f"Bearer {t}").id == "alice" and not calls  # no second verification
    real = time.time
    monkeypatch.setattr(auth.time, "time", lambda: real() + 300 + 31)
    fails(creds, f"Bearer {t}", code="token_expired")

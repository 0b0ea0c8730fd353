"""Credentials, roles and rate limits of LwaS services.

Bearer tokens only: an API key (kept in memory ONLY as its SHA-256, so a heap dump or a repr
leaks nothing reusable) or a short-lived JWT (EdDSA or HS256, at most 15 minutes between iat and
exp, so a stolen token is worth little). Errors carry a status and a stable code for the HTTP
layer and never quote the presented token or a configured secret.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ROLES = {"reader": 1, "writer": 2, "admin": 3}  # each role includes the ones below it
MAX_TOKEN_LIFETIME_S = 900
LEEWAY_S = 30
MIN_HS256_SECRET_BYTES = 32  # RFC 7518 §3.2: at least the hash size
JWT_CACHE_SIZE = 10_000
MAX_JWT_HEADER_CHARS = 1024  # the base64url JOSE header of a token


class AuthError(Exception):
    """401 (who are you?) or 403 (not allowed); `code` is stable, `message` is safe to show."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, code, message)
        self.status, self.code, self.message = status, code, message

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"

    def www_authenticate(self) -> str:
        """The WWW-Authenticate header value for a 401 (RFC 6750 §3)."""
        err = "invalid_request" if self.code == "malformed_credentials" else "invalid_token"
        if self.code == "missing_credentials":
            return 'Bearer realm="lwas"'
        return f'Bearer realm="lwas", error="{err}"'


@dataclass(frozen=True)
class Principal:
    id: str  # API key name (or "key-" + a hash prefix), or the JWT "sub"
    role: str
    kind: str  # "api_key" or "jwt"


@dataclass(frozen=True)
class _Key:
    digest: bytes  # SHA-256 of the key
    role: str
    name: str


@dataclass
class Credentials:
    api_keys: list[_Key] = field(default_factory=list)
    hs256_secret: bytes | None = field(default=None, repr=False)
    eddsa_public_key: Ed25519PublicKey | None = field(default=None, repr=False)
    read_requires_auth: bool = False  # reads open unless configured (LWAS_READ_REQUIRES_AUTH=1)
    issuer: str | None = None
    audience: str | None = None
    # verified JWTs by SHA-256 of the token -> (principal, exp): clients reuse a token for up to
    # 15 minutes, and signature checks dominate the cost of a request (EdDSA ~400 us in PyJWT)
    _jwt_cache: dict[bytes, tuple[Principal, float]] = field(default_factory=dict, repr=False, compare=False)

    def add_key(self, raw_key: str, role: str, name: str | None = None) -> None:
        """Registers a key by its hash; the raw key is not kept. Keys are RFC 6750 b64tokens."""
        if not _B64TOKEN.fullmatch(raw_key):
            raise ValueError("an API key may only contain A-Z a-z 0-9 - . _ ~ + / (and trailing =)")
        self.add_key_hash(hashlib.sha256(raw_key.encode()).hexdigest(), role, name)

    def add_key_hash(self, sha256_hex: str, role: str, name: str | None = None) -> None:
        digest = bytes.fromhex(sha256_hex)
        if len(digest) != 32:
            raise ValueError("key_sha256 must be 64 hex digits")
        _check_role(role)
        self.api_keys.append(_Key(digest, role, name or f"key-{sha256_hex[:12]}"))

    @property
    def configured(self) -> bool:
        """Whether anything can authenticate (else the service should mint a dev key)."""
        return bool(self.api_keys or self.hs256_secret or self.eddsa_public_key)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")


def make_dev_key() -> str:
    """A fresh random key for a development server started with no credentials configured."""
    return "lwas_dev_" + secrets.token_urlsafe(32)


def load_credentials(env: Mapping[str, str] = os.environ, config_path: str | Path | None = None) -> Credentials:
    """Credentials from `LWAS_API_KEYS` ("key:role,key2:role"), `LWAS_JWT_HS256_SECRET`, and a JSON
    or TOML file (`config_path`, else `LWAS_AUTH_CONFIG`):
    {"api_keys": [{"key_sha256": hex, "role": ..., "name": ...}],
     "jwt": {"hs256_secret": ..., "eddsa_public_key_pem": ..., "issuer": ..., "audience": ...},
     "read_requires_auth": bool}. Error messages name entries by position, never by key."""
    creds = Credentials()
    for i, entry in enumerate(filter(None, (e.strip() for e in env.get("LWAS_API_KEYS", "").split(","))), 1):
        key, sep, role = entry.rpartition(":")
        if not sep or not key:
            raise ValueError(f"LWAS_API_KEYS entry {i}: expected key:role")
        try:
            creds.add_key(key, role.strip(), f"env-key-{i}")
        except ValueError as e:
            raise ValueError(f"LWAS_API_KEYS entry {i}: {e}") from None
    if env.get("LWAS_READ_REQUIRES_AUTH", "").strip().lower() in ("1", "true", "yes"):
        creds.read_requires_auth = True
    if env.get("LWAS_JWT_HS256_SECRET"):
        creds.hs256_secret = _hs256_secret(env["LWAS_JWT_HS256_SECRET"])
    config_path = config_path or env.get("LWAS_AUTH_CONFIG")
    if config_path:
        _apply_config(creds, _read_config(Path(config_path)))
    return creds


def _read_config(path: Path) -> dict:
    data = path.read_bytes()
    if path.suffix == ".toml":
        return tomllib.loads(data.decode())
    return json.loads(data)


def _hs256_secret(s: str) -> bytes:
    b = s.encode()
    if len(b) < MIN_HS256_SECRET_BYTES:
        raise ValueError(f"the HS256 secret must be at least {MIN_HS256_SECRET_BYTES} bytes")
    return b


def _apply_config(creds: Credentials, cfg: dict) -> None:
    for i, k in enumerate(cfg.get("api_keys", []), 1):
        try:
            creds.add_key_hash(k["key_sha256"], k["role"], k.get("name"))
        except (KeyError, ValueError, TypeError) as e:
            raise ValueError(f"api_keys entry {i}: {e}") from None
    j = cfg.get("jwt", {})
    if j.get("hs256_secret"):
        creds.hs256_secret = _hs256_secret(j["hs256_secret"])
    if j.get("eddsa_public_key_pem"):
        key = load_pem_public_key(j["eddsa_public_key_pem"].encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("eddsa_public_key_pem must be an Ed25519 public key")
        creds.eddsa_public_key = key
    creds.issuer = j.get("issuer", creds.issuer)
    creds.audience = j.get("audience", creds.audience)
    rra = cfg.get("read_requires_auth", creds.read_requires_auth)
    if not isinstance(rra, bool):
        raise ValueError("read_requires_auth must be true or false")
    creds.read_requires_auth = rra


# ---------------------------------------------------------------- authentication

def _invalid() -> AuthError:
    return AuthError(401, "invalid_credentials", "the credentials are not valid")


_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*", re.ASCII)  # RFC 6750 §2.1


def authenticate(creds: Credentials, authorization_header: str | None) -> Principal:
    """The principal of an `Authorization: Bearer <token>` header, or AuthError(401)."""
    if not authorization_header or not authorization_header.strip():
        raise AuthError(401, "missing_credentials", "an Authorization: Bearer header is required")
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise AuthError(401, "malformed_credentials", "expected Authorization: Bearer <token>")
    digest = hashlib.sha256(token.encode()).digest()
    principal = _by_key(creds, digest)
    if principal:
        return principal
    if token.count(".") == 2 and (creds.hs256_secret or creds.eddsa_public_key):
        hit = creds._jwt_cache.get(digest)
        if hit is not None:
            if time.time() <= hit[1] + LEEWAY_S:
                return hit[0]
            creds._jwt_cache.pop(digest, None)
            raise AuthError(401, "token_expired", "the token has expired")
        principal, exp = _by_jwt(creds, token)
        if len(creds._jwt_cache) >= JWT_CACHE_SIZE:
            creds._jwt_cache.clear()
        creds._jwt_cache[digest] = (principal, exp)
        return principal
    raise _invalid()


def _by_key(creds: Credentials, digest: bytes) -> Principal | None:
    found = None
    for k in creds.api_keys:  # no early exit: the time taken does not depend on which key matched
        if hmac.compare_digest(k.digest, digest):
            found = k
    return Principal(found.name, found.role, "api_key") if found else None


def _by_jwt(creds: Credentials, token: str) -> tuple[Principal, float]:
    seg = token.split(".", 1)[0]
    if len(seg) > MAX_JWT_HEADER_CHARS:  # real headers are ~40 bytes; never decode a huge one
        raise _invalid()
    try:  # the header alone picks the key; PyJWT then verifies with exactly that algorithm
        alg = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))).get("alg")
    except (ValueError, binascii.Error, AttributeError, UnicodeDecodeError, RecursionError):
        raise _invalid() from None
    if not isinstance(alg, str):  # an object or a list as `alg` is not a name (and not hashable)
        raise _invalid()
    key: Any = {"HS256": creds.hs256_secret, "EdDSA": creds.eddsa_public_key}.get(alg)
    if key is None:  # "none", RS256, an algorithm whose key is not configured...
        raise _invalid()
    try:
        claims = jwt.decode(token, key, algorithms=[alg], leeway=LEEWAY_S,
                            issuer=creds.issuer, audience=creds.audience,
                            options={"require": ["exp", "iat", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthError(401, "token_expired", "the token has expired") from None
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        raise _invalid() from None
    exp, iat = claims["exp"], claims["iat"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (exp, iat)):
        raise _invalid()
    if exp - iat > MAX_TOKEN_LIFETIME_S:
        raise AuthError(401, "token_lifetime_too_long",
                        f"tokens may live at most {MAX_TOKEN_LIFETIME_S} s (exp - iat)")
    sub, role = claims["sub"], claims.get("role")
    if not isinstance(sub, str) or not sub or role not in ROLES:
        raise _invalid()
    return Principal(sub, role, "jwt"), float(exp)


def authorize(principal: Principal, needed_role: str) -> None:
    """AuthError(403) unless the principal's role includes `needed_role` (admin > writer > reader)."""
    _check_role(needed_role)
    if ROLES.get(principal.role, 0) < ROLES[needed_role]:
        raise AuthError(403, "forbidden", f"this needs the {needed_role} role")


# ---------------------------------------------------------------- rate limiting

class RateLimiter:
    """A token bucket per principal id: `burst` requests at once, refilled at `rate_per_s`."""

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic,
                 max_ids: int = 100_000):
        if not (math.isfinite(rate_per_s) and math.isfinite(burst) and rate_per_s > 0 and burst >= 1):
            raise ValueError("rate_per_s must be finite and > 0, and burst finite and >= 1")
        self.rate, self.burst, self.clock, self.max_ids = rate_per_s, float(burst), clock, max_ids
        self._buckets: dict[str, tuple[float, float]] = {}  # id -> (tokens, time of last update)
        self._lock = threading.Lock()

    def take(self, id: str, cost: float = 1.0) -> float:
        """0.0 if allowed (and the cost is taken), else the seconds to wait before retrying."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= cost:
                self._set(id, tokens - cost, now)
                return 0.0
            self._set(id, tokens, now)
            return (cost - tokens) / self.rate

    def _set(self, id: str, tokens: float, now: float) -> None:
        if id not in self._buckets and len(self._buckets) >= self.max_ids:
            # forget buckets that are full again: they are indistinguishable from new ones
            full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst]
            for k in full:
                del self._buckets[k]
        self._buckets[id] = (tokens, now)


def retry_after(wait_s: float) -> int:
    """The Retry-After header value (whole seconds, at least 1) for a wait from `take`."""
    return max(1, math.ceil(wait_s))

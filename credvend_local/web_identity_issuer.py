"""A throwaway OpenID Connect issuer that STS web identity can trust, for tests: signs
tokens, serves its discovery document and JWKS on a loopback port.

Why: the LocalStack STS rules (credvend_local/plugin/credvend_localstack/web_identity.py)
judge AssumeRoleWithWebIdentity as AWS does, so tests need tokens a real issuer signed,
tokens it did not (another key under the same kid), and an issuer STS can fetch keys
from. IAM registers only https:// provider URLs, so the issuer URL is
``https://127.0.0.1:PORT/PATH``; the STS rules fetch loopback issuers over plain HTTP,
which is what this server speaks. (credvend's own OIDC caller routes have their issuer
for tests elsewhere; this one is shaped for IAM OIDC providers and STS.)

The private keys live in this process only; nothing here is a credential of anything real.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
TAGS_CLAIM = "https://aws.amazon.com/tags"
STS_AUDIENCE = "sts.amazonaws.com"

_RSA_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "RS256": hashes.SHA256,
    "RS384": hashes.SHA384,
    "RS512": hashes.SHA512,
}
# alg -> (hash, JWK curve name, byte length of each of r and s)
_EC: dict[str, tuple[Callable[[], hashes.HashAlgorithm], str, int]] = {
    "ES256": (hashes.SHA256, "P-256", 32),
    "ES384": (hashes.SHA384, "P-384", 48),
    "ES512": (hashes.SHA512, "P-521", 66),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64(value: int, length: int | None = None) -> str:
    return b64url(value.to_bytes(length or (value.bit_length() + 7) // 8, "big"))


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign(claims: Mapping[str, Any], key: PrivateKey, alg: str = "RS256", kid: str | None = "key-1") -> str:
    """A compact JWS of `claims`, signed with `key` under `alg` (RS* or ES*)."""
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
    if alg in _RSA_HASHES:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(f"{alg} needs an RSA key")
        signature = key.sign(signing_input, padding.PKCS1v15(), _RSA_HASHES[alg]())
    elif alg in _EC:
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{alg} needs an EC key")
        hash_type, _, size = _EC[alg]
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hash_type())))
        signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        raise ValueError(f"unsupported alg {alg}")
    return f"{signing_input.decode()}.{b64url(signature)}"


def unsigned(claims: Mapping[str, Any]) -> str:
    """An `alg: none` token: what stock LocalStack accepted and AWS never does."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def public_jwk(key: PrivateKey, kid: str = "key-1", alg: str = "RS256") -> dict[str, Any]:
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {"kty": "RSA", "kid": kid, "alg": alg, "use": "sig", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_numbers()
        _, curve, size = _EC[alg]
        x, y = _int_b64(point.x, size), _int_b64(point.y, size)
        return {"kty": "EC", "kid": kid, "alg": alg, "use": "sig", "crv": curve, "x": x, "y": y}
    raise TypeError("RSA or EC keys only")


class LoopbackIssuer:
    """An issuer at ``https://127.0.0.1:PORT/<path>`` (served over plain HTTP on that port).

    `mint(...)` signs a token with the published key; `keys` can be replaced to rotate or
    to publish nothing. Use as a context manager, or call `start()` / `stop()`.
    """

    def __init__(self, path: str | None = None, kid: str = "key-1") -> None:
        self.path = "/" + (path or f"issuer-{uuid.uuid4().hex[:8]}").strip("/")
        self.kid = kid
        self.key = new_rsa_key()
        self.keys: list[dict[str, Any]] = [public_jwk(self.key, kid)]
        self.requests: list[str] = []  # paths fetched, in order
        self.provider_arn: str | None = None  # for tests that register it with IAM
        self._server: http.server.ThreadingHTTPServer | None = None
        self._port: int | None = None  # kept after stop(): the URL stays meaningful

    @property
    def port(self) -> int:
        assert self._port is not None, "start() the issuer first"
        return self._port

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.path}"

    @property
    def provider_url(self) -> str:
        """The IAM OIDC provider's URL without its scheme: condition keys are `<this>:sub`."""
        return self.url.removeprefix("https://")

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
        }

    def claims(self, sub: str = "alice", lifetime: int = 300, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "aud": STS_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        claims.update(extra)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, sub: str = "alice", lifetime: int = 300, key: PrivateKey | None = None, **extra: Any) -> str:
        """A token for `sub`, signed with the published key unless `key` says otherwise."""
        return sign(self.claims(sub, lifetime, **extra), key or self.key, kid=self.kid)

    def start(self) -> LoopbackIssuer:
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                documents = {
                    f"{issuer.path}/.well-known/openid-configuration": issuer.discovery(),
                    f"{issuer.path}/.well-known/jwks.json": {"keys": issuer.keys},
                }
                document = documents.get(self.path)
                body = json.dumps(document if document is not None else {"message": "Not Found"}).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, name="loopback-issuer", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

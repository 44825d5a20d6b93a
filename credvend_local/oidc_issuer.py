"""A local OpenID Connect issuer for tests: keys made per run, discovery and JWKS on loopback.

credvend's OIDC routes (CONTRACT §10) verify tokens against an issuer's JWKS. This issuer
lets tests (credvend's own, and service teams' integration tests against `make local`) mint
real, signed tokens shaped like GitHub Actions' and Kubernetes' ones, and the forgeries a
verifier must refuse:

    with LocalOidcIssuer() as issuer:               # http://127.0.0.1:<free port>
        policy_issuers = {"github": {"url": issuer.url, "audiences": ["credvend"]}}
        token = issuer.github_token(repository="acme/app", environment="prod")
        token = issuer.kubernetes_token(namespace="ci", service_account="deployer")
        bad = issuer.forge("alg_none", issuer.github_claims(repository="acme/app"))

The RSA private key lives in this process only and is never written anywhere. Minted
tokens are secrets too: do not print them. ``python -m credvend_local.oidc_issuer`` serves
an issuer until interrupted and writes a token file (see ``main``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

DEFAULT_AUDIENCE = "credvend"
TOKEN_LIFETIME_SECONDS = 300
FORGERIES = (
    "other_key_same_kid",  # signed by a key the issuer never published, under the real kid
    "alg_none",  # unsigned
    "hs256_public_key",  # HMAC with the issuer's public key (PEM) as the secret: key confusion
    "expired",
    "nbf_future",
    "wrong_aud",
    "wrong_iss",
    "garbage",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(document: Mapping[str, Any]) -> str:
    return _b64(json.dumps(document, separators=(",", ":")).encode())


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalOidcIssuer:
    """An OIDC issuer on ``http://127.0.0.1:<port>``; ``stop()`` (or the context manager) ends it.

    ``available = False`` makes discovery and JWKS answer 503 (an issuer that is down);
    ``jwks_requests`` counts JWKS fetches.
    """

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self._key = _new_key()
        self.kid = secrets.token_hex(8)
        self.available = True
        self.jwks_requests = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not issuer.available:
                    self._send(503, {"error": "unavailable"})
                elif self.path == "/.well-known/openid-configuration":
                    self._send(200, issuer.discovery_document())
                elif self.path == "/.well-known/jwks.json":
                    issuer.jwks_requests += 1
                    self._send(200, issuer.jwks())
                else:
                    self._send(404, {"error": "not found"})

            def _send(self, status: int, document: Mapping[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: test output stays readable

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"oidc-issuer-{self.port}", daemon=True)
        self._thread.start()

    # -- lifecycle ---------------------------------------------------------------------
    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalOidcIssuer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what the issuer publishes -----------------------------------------------------------
    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "nbf", "jti"],
        }

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def rotate(self) -> None:
        """A new key under a new kid (the old one is no longer published)."""
        self._key, self.kid = _new_key(), secrets.token_hex(8)

    # -- tokens -----------------------------------------------------------------------------
    def _times(self, lifetime: int = TOKEN_LIFETIME_SECONDS) -> dict[str, int]:
        now = int(time.time())
        return {"iat": now, "nbf": now, "exp": now + lifetime}

    def github_claims(
        self,
        *,
        repository: str = "acme/app",
        environment: str | None = "prod",
        ref: str = "refs/heads/main",
        audience: str | list[str] = DEFAULT_AUDIENCE,
        **extra: Any,
    ) -> dict[str, Any]:
        """Claims shaped like a GitHub Actions ID token (token.actions.githubusercontent.com)."""
        owner = repository.split("/", 1)[0]
        sub = f"repo:{repository}:environment:{environment}" if environment else f"repo:{repository}:ref:{ref}"
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": sub,
            "aud": audience,
            "jti": secrets.token_hex(8),
            "ref": ref,
            "ref_type": "branch",
            "repository": repository,
            "repository_id": "123456789",
            "repository_owner": owner,
            "repository_owner_id": "987654",
            "repository_visibility": "private",
            "run_id": "4242",
            "run_number": "7",
            "run_attempt": "1",
            "actor": "octocat",
            "workflow": "deploy",
            "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
            "event_name": "push",
            "runner_environment": "github-hosted",
            **self._times(),
        }
        if environment:
            claims["environment"] = environment
        claims.update(extra)
        return claims

    def kubernetes_claims(
        self,
        *,
        namespace: str = "default",
        service_account: str = "default",
        audience: str | list[str] = DEFAULT_AUDIENCE,
        **extra: Any,
    ) -> dict[str, Any]:
        """Claims shaped like a projected Kubernetes service-account token."""
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "aud": [audience] if isinstance(audience, str) else audience,
            "jti": secrets.token_hex(8),
            "kubernetes.io": {
                "namespace": namespace,
                "node": {"name": "node-1", "uid": "6d3c5c1e-0000-4000-8000-000000000001"},
                "pod": {"name": f"{service_account}-7d9f8", "uid": "6d3c5c1e-0000-4000-8000-000000000002"},
                "serviceaccount": {"name": service_account, "uid": "6d3c5c1e-0000-4000-8000-000000000003"},
            },
            **self._times(),
        }
        claims.update(extra)
        return claims

    def mint(self, claims: Mapping[str, Any], *, headers: Mapping[str, Any] | None = None) -> str:
        """``claims`` signed RS256 by the issuer's published key (kid in the header)."""
        return jwt.encode(dict(claims), self._key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})

    def github_token(self, **claims: Any) -> str:
        return self.mint(self.github_claims(**claims))

    def kubernetes_token(self, **claims: Any) -> str:
        return self.mint(self.kubernetes_claims(**claims))

    def forge(self, kind: str, claims: Mapping[str, Any]) -> str:
        """A token a verifier must refuse (``FORGERIES``), otherwise built from ``claims``."""
        claims = dict(claims)
        if kind == "other_key_same_kid":
            return jwt.encode(claims, _new_key(), algorithm="RS256", headers={"kid": self.kid})
        if kind == "alg_none":
            return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': self.kid})}.{_segment(claims)}."
        if kind == "hs256_public_key":
            # PyJWT refuses to do this itself (it will not use a public key as an HMAC secret),
            # which is exactly the point: build it by hand, as an attacker would.
            secret = self._key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': self.kid})}.{_segment(claims)}"
            signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{_b64(signature)}"
        if kind == "expired":
            now = int(time.time())
            return self.mint({**claims, "iat": now - 900, "nbf": now - 900, "exp": now - 600})
        if kind == "nbf_future":
            now = int(time.time())
            return self.mint({**claims, "iat": now, "nbf": now + 600, "exp": now + 900})
        if kind == "wrong_aud":
            return self.mint({**claims, "aud": "someone-else"})
        if kind == "wrong_iss":
            # Signed by the real key, but claiming another issuer: must match no issuer (or the wrong one).
            return self.mint({**claims, "iss": "https://evil.example.com"})
        if kind == "garbage":
            return "eyJhbGciOiJSUzI1NiJ9.bm90LWpzb24.c2lnbmF0dXJl"
        raise ValueError(f"unknown forgery {kind!r}; one of {', '.join(FORGERIES)}")


def write_token_file(path: Path, token: str) -> Path:
    """Mode 0600, no trailing newline (botocore rejects a token with one), replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    os.replace(temporary, path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Serve an issuer; keep a fresh token of the chosen shape in ``--token-file``."""
    parser = argparse.ArgumentParser(prog="python -m credvend_local.oidc_issuer", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kind", choices=("github", "kubernetes"), default="github")
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    parser.add_argument("--claim", action="append", default=[], metavar="NAME=VALUE", help="extra/override claim")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.claim)
    with LocalOidcIssuer(port=args.port) as issuer:
        print(json.dumps({"issuer": issuer.url, "token_file": str(args.token_file)}), flush=True)
        try:
            while True:
                claims = (issuer.github_claims if args.kind == "github" else issuer.kubernetes_claims)(
                    audience=args.audience
                )
                write_token_file(args.token_file, issuer.mint({**claims, **extra}))
                time.sleep(TOKEN_LIFETIME_SECONDS / 2)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())

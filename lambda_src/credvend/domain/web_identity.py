"""The ``web_identity`` issuer: sign a token as credvend's OIDC issuer, exchange it with STS.

Loaded only when a ``web_identity`` role is vended or a discovery route is asked for. The
signing key is a port (KMS in the function, ``credvend.adapters.kms``); its public key is
read once per container and kept, with the JWK and ``kid`` derived from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from credvend.domain.formats import AssumedRole
from credvend.domain.issuers import BeforeCall, IssueRequest, StsPort
from credvend.domain.web_identity_token import (
    discovery_document,
    encode_token,
    jwks_document,
    rsa_jwk,
    token_claims,
)


class SigningKeyPort(Protocol):
    """The issuer's key. Implementations raise ``credvend.domain.errors``."""

    def public_key_der(self) -> bytes:
        """The public key as a DER SubjectPublicKeyInfo (KMS GetPublicKey)."""
        ...

    def sign_rs256(self, message: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 over ``message``: the JWS signature."""
        ...


class WebIdentityIssuer:
    def __init__(
        self,
        *,
        issuer: str,
        key: SigningKeyPort,
        sts: StsPort,
        published: Sequence[SigningKeyPort] = (),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``published``: keys the JWKS lists besides ``key`` (the old or the next key during a
        rotation), so tokens signed with either verify while relying parties' caches turn over."""
        self.issuer = issuer.rstrip("/")
        self._key = key
        self._sts = sts
        self._published = tuple(published)
        self._wall_clock = wall_clock
        self._jwk: dict[str, str] | None = None
        self._published_jwks: list[dict[str, str]] | None = None

    def jwk(self, *, before_call: BeforeCall | None = None) -> dict[str, str]:
        """The public JWK (one GetPublicKey per container)."""
        if self._jwk is None:
            if before_call is not None:
                before_call()
            self._jwk = rsa_jwk(self._key.public_key_der())
        return self._jwk

    def discovery(self) -> dict[str, Any]:
        return discovery_document(self.issuer)

    def jwks(self) -> dict[str, Any]:
        if self._published_jwks is None:
            self._published_jwks = [rsa_jwk(key.public_key_der()) for key in self._published]
        keys = [self.jwk()]
        keys += [jwk for jwk in self._published_jwks if jwk["kid"] != keys[0]["kid"]]
        return jwks_document(keys)

    def issue(self, request: IssueRequest, *, before_call: BeforeCall) -> AssumedRole:
        kid = self.jwk(before_call=before_call)["kid"]
        claims = token_claims(
            issuer=self.issuer,
            caller=request.caller,
            source_identity=request.naming.source_identity,
            tags=request.naming.tags,
            request_id=request.request_id,
            now=int(self._wall_clock()),
        )
        before_call()
        token = encode_token(claims, kid=kid, sign=self._key.sign_rs256)
        before_call()
        return self._sts.assume_role_with_web_identity(
            role_arn=request.role_arn,
            session_name=request.naming.session_name,
            web_identity_token=token,
            duration_seconds=request.duration_seconds,
        )

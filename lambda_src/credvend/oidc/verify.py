"""Verify an OIDC bearer token (CONTRACT §10) with PyJWT.

Why PyJWT (with ``cryptography``): the most used JOSE library in Python, maintained, typed,
small (one pure-Python wheel; ``cryptography`` brings abi3 manylinux wheels for x86_64 and
aarch64); it checks ``exp``/``nbf``/``iat``/``iss``/``aud`` with a leeway and required
claims, enforces minimum RSA key sizes, and refuses PEM/SSH public keys as HMAC secrets. We
do not lean on that last guard alone: the algorithm list comes from the policy (asymmetric
only, checked at load), each key is built for the token's algorithm from its JWK by that
algorithm's own class (an RSA JWK never becomes an HMAC secret), and ``decode`` gets exactly
one algorithm. Everything read before the signature is checked is named ``unverified_``.

Every failure of the token is ``Unauthenticated`` with one message and the reason for the
audit log; an issuer whose keys cannot be fetched is ``UpstreamUnavailable`` (503).
"""

from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jwt
import jwt.utils
from jwt.algorithms import get_default_algorithms

from credvend.domain.authorize import OidcIdentity
from credvend.domain.errors import Unauthenticated, UpstreamUnavailable
from credvend.oidc.jwks import Fetch, IssuerKeys, JwksUnavailable, http_fetch
from credvend_policy import IssuerSpec

LEEWAY_SECONDS = 60  # clock skew allowed on exp, nbf and iat (CONTRACT §10: at most 60 s)
MAX_TOKEN_CHARS = 16 * 1024
MAX_SUBJECT_CHARS = 1024
# Required in every token: who issued it, for whom, about whom, until when. ``iat`` (checked
# when present: not in the future) is required only with ``max_token_age_seconds``, which
# needs it; ``exp`` alone bounds a token's life otherwise.
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp")
# The signature may be empty here (``alg: none``): the algorithm check rejects it with its reason.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)bearer[ \t]+")
_ALGORITHMS = get_default_algorithms()
# A key type fit for each algorithm family; a JWK of another type is never used with it.
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}

# PyJWT's exceptions, most specific first, to the reasons the audit line records.
_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.InvalidKeyError, "unusable_key"),
    (jwt.InvalidIssuedAtError, "invalid_iat"),
)


def rejected(reason: str) -> Unauthenticated:
    return Unauthenticated(reason=f"token_{reason}")


def bearer_token(
    unverified_headers: Mapping[str, Any] | None, unverified_multi_headers: Mapping[str, Any] | None
) -> str:
    """The token in the ``Authorization`` header (any case), as ``Bearer <jwt>`` or the bare
    JWT (what the SDKs' container provider sends). No header, or more than one: rejected."""
    # Anything but a mapping is no headers at all (the event's shape is checked after the
    # token, so that a request without a valid token is a 401 whatever else is wrong with it).
    if not isinstance(unverified_multi_headers, Mapping):
        unverified_multi_headers = {}
    if not isinstance(unverified_headers, Mapping):
        unverified_headers = {}
    values: list[object] = []
    for name, value in unverified_multi_headers.items():
        if isinstance(name, str) and name.lower() == "authorization":
            values.extend(value if isinstance(value, list) else [value])
    if not values:  # an event without multiValueHeaders (test rigs, other front ends)
        headers = unverified_headers
        values = [v for n, v in headers.items() if isinstance(n, str) and n.lower() == "authorization"]
    if not values:
        raise rejected("missing")
    if len(values) > 1:
        raise rejected("ambiguous")
    unverified_value = values[0]
    if not isinstance(unverified_value, str):
        raise rejected("malformed")
    unverified_value = unverified_value.strip()
    if len(unverified_value) > MAX_TOKEN_CHARS:
        raise rejected("too_large")
    scheme = _BEARER.match(unverified_value)
    unverified_token = unverified_value[scheme.end() :] if scheme else unverified_value
    if not _COMPACT_JWS.fullmatch(unverified_token):
        raise rejected("malformed")
    return unverified_token


def _peek(unverified_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims, decoded but NOT verified: only to pick the issuer and the key."""
    header_b64, claims_b64, _ = unverified_token.split(".")
    try:
        unverified_header = json.loads(jwt.utils.base64url_decode(header_b64))
        unverified_claims = json.loads(jwt.utils.base64url_decode(claims_b64))
    except (ValueError, binascii.Error, RecursionError):
        raise rejected("malformed") from None
    if not isinstance(unverified_header, dict) or not isinstance(unverified_claims, dict):
        raise rejected("malformed")
    return unverified_header, unverified_claims


class OidcVerifier:
    """The policy's issuers and their keys, for one container."""

    def __init__(
        self,
        issuers: Mapping[str, IssuerSpec],
        *,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = dict(issuers)
        self._by_url = {spec.url: name for name, spec in issuers.items()}
        self._keys = {name: IssuerKeys(spec, fetch=fetch, clock=clock) for name, spec in issuers.items()}
        self._prepared: dict[tuple[str, str | None, str], Any] = {}
        self._wall_clock = wall_clock
        self._jwt = jwt.PyJWT({"verify_signature": True})

    def keys(self, issuer: str) -> IssuerKeys:
        return self._keys[issuer]

    def verify(self, unverified_token: str) -> OidcIdentity:
        unverified_header, unverified_claims = _peek(unverified_token)
        unverified_iss = unverified_claims.get("iss")
        name = self._by_url.get(unverified_iss) if isinstance(unverified_iss, str) else None
        if name is None:
            raise rejected("unknown_issuer")  # and no fetch: only the policy's issuers are ever asked
        spec = self._issuers[name]
        unverified_alg = unverified_header.get("alg")
        if not isinstance(unverified_alg, str) or unverified_alg not in spec.algorithms:
            raise rejected("algorithm_not_allowed")
        if "crit" in unverified_header or "b64" in unverified_header:
            # RFC 7515 §4.1.11: extensions we do not implement must not be ignored; ID tokens use none.
            raise rejected("critical_header")
        unverified_kid = unverified_header.get("kid")
        if unverified_kid is not None and not isinstance(unverified_kid, str):
            raise rejected("malformed")
        key = self._key(name, unverified_kid, unverified_alg)
        try:
            claims: dict[str, Any] = self._jwt.decode(
                unverified_token,
                key=key,
                algorithms=[unverified_alg],  # one, from the policy's list (checked above)
                audience=list(spec.audiences),
                issuer=spec.url,
                leeway=LEEWAY_SECONDS,
                options={
                    "enforce_minimum_key_length": True,
                    "require": [*REQUIRED_CLAIMS, *(("iat",) if spec.max_token_age_seconds is not None else ())],
                },
            )
        except jwt.PyJWTError as exc:
            reason = next((reason for kind, reason in _REASONS if isinstance(exc, kind)), "invalid")
            raise rejected(reason) from None
        # RFC 7519 §2: exp, nbf and iat are NumericDates (JSON numbers). PyJWT reads them with
        # int(), which also takes "99999999999" or true; STS and strict verifiers refuse those.
        for time_claim in ("exp", "nbf", "iat"):
            value = claims.get(time_claim)
            if time_claim in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise rejected("invalid_time_claim")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise rejected("invalid_subject")
        if spec.max_token_age_seconds is not None:
            # iat is then required, and checked by PyJWT as a number not in the future (leeway).
            age = self._wall_clock() - float(claims["iat"])
            if age > spec.max_token_age_seconds + LEEWAY_SECONDS:
                raise rejected("too_old")
        return OidcIdentity(issuer=name, subject=subject, claims=MappingProxyType(claims))

    def _key(self, issuer: str, kid: str | None, alg: str) -> Any:
        """The issuer's public key for ``kid``, built for ``alg`` (cached once built)."""
        cache_key = (issuer, kid, alg)
        try:
            jwk = self._keys[issuer].jwk_for(kid)
        except JwksUnavailable as exc:
            raise UpstreamUnavailable(reason=f"jwks_{exc.reason}") from None
        if jwk is None:
            raise rejected("unknown_key")
        cached = self._prepared.get(cache_key)
        if cached is not None and cached[0] is jwk:
            return cached[1]
        if jwk.get("kty") != _KEY_TYPES.get(alg[:2]) or jwk.get("alg", alg) != alg:
            raise rejected("key_algorithm_mismatch")
        try:
            key = _ALGORITHMS[alg].from_jwk(dict(jwk))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            raise rejected("unusable_key") from None
        self._prepared[cache_key] = (jwk, key)
        return key

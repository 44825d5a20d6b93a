"""credvend as its own OpenID Connect issuer (CONTRACT §9): the token, the key, the discovery.

Pure: claims, JWS encoding, the JWK of the signing key and the discovery document are
built here from plain values; the signature itself comes from a ``sign`` function (KMS in
the function, ``credvend.adapters.kms``), so the private key never leaves KMS and tests
sign with a local key.

A token is a secret (anyone holding it may exchange it for the role's credentials until it
expires), so it leaves this module only as a ``SecretStr``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from credvend_policy.trust import STS_AUDIENCE

ALGORITHM = "RS256"
TOKEN_LIFETIME_SECONDS = 300  # §9: exp at most 300 s after iat; STS needs the token only for one call
SOURCE_IDENTITY_CLAIM = "https://aws.amazon.com/source_identity"
TAGS_CLAIM = "https://aws.amazon.com/tags"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
CLAIMS_SUPPORTED = (
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    SOURCE_IDENTITY_CLAIM,
    TAGS_CLAIM,
)

_compact = json.JSONEncoder(separators=(",", ":"), sort_keys=False, ensure_ascii=True).encode


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_claims(
    *,
    issuer: str,
    caller: str,
    source_identity: str,
    tags: tuple[tuple[str, str], ...],
    request_id: str,
    now: int,
) -> dict[str, Any]:
    """The claims of one vend's token: exactly §9's, nothing else.

    ``sub`` is the caller's name as written in the policy (trust policies match it with
    ``<issuer>:sub``); the source-identity and tags claims are how AssumeRoleWithWebIdentity
    sets SourceIdentity and session tags (it has no parameters for them).
    """
    return {
        "iss": issuer,
        "sub": caller,
        "aud": STS_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_SECONDS,
        "jti": request_id,
        SOURCE_IDENTITY_CLAIM: source_identity,
        TAGS_CLAIM: {
            "principal_tags": {key: [value] for key, value in tags},
            "transitive_tag_keys": [],
        },
    }


def encode_token(claims: dict[str, Any], *, kid: str, sign: Callable[[bytes], bytes]) -> SecretStr:
    """The compact JWS ``header.claims.signature``; ``sign`` returns the RSASSA-PKCS1-v1_5
    SHA-256 signature of the bytes it is given (the JWS signing input)."""
    header = {"alg": ALGORITHM, "typ": "JWT", "kid": kid}
    signing_input = f"{b64url(_compact(header).encode())}.{b64url(_compact(claims).encode())}"
    signature = sign(signing_input.encode("ascii"))
    return SecretStr(f"{signing_input}.{b64url(signature)}")


# -- the public key ------------------------------------------------------------------------

_RSA_ENCRYPTION_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1


class KeyFormatError(ValueError):
    """The public key is not a DER SubjectPublicKeyInfo of an RSA key."""


def _der_element(data: bytes, offset: int, tag: int) -> tuple[bytes, int]:
    """The content of the DER element of ``tag`` at ``offset``, and the offset after it."""
    if offset + 2 > len(data) or data[offset] != tag:
        raise KeyFormatError(f"expected DER tag 0x{tag:02x} at {offset}")
    length = data[offset + 1]
    offset += 2
    if length & 0x80:  # long form: the next (length & 0x7f) bytes are the length
        size = length & 0x7F
        if size == 0 or size > 4 or offset + size > len(data):
            raise KeyFormatError("bad DER length")
        length = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    end = offset + length
    if end > len(data):
        raise KeyFormatError("DER element runs past the end")
    return data[offset:end], end


def rsa_public_numbers(spki_der: bytes) -> tuple[int, int]:
    """(n, e) of a DER SubjectPublicKeyInfo holding an RSA key, as KMS GetPublicKey returns it.

    SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING { 0, SEQUENCE { INTEGER n, INTEGER e } } }
    """
    spki, end = _der_element(spki_der, 0, 0x30)
    if end != len(spki_der):
        raise KeyFormatError("trailing bytes after the key")
    algorithm, offset = _der_element(spki, 0, 0x30)
    oid, _ = _der_element(algorithm, 0, 0x06)
    if oid != _RSA_ENCRYPTION_OID:
        raise KeyFormatError("not an RSA key")
    bits, _ = _der_element(spki, offset, 0x03)
    if not bits or bits[0] != 0:
        raise KeyFormatError("bad BIT STRING")
    rsa_key, _ = _der_element(bits[1:], 0, 0x30)
    modulus, offset = _der_element(rsa_key, 0, 0x02)
    exponent, _ = _der_element(rsa_key, offset, 0x02)
    n, e = int.from_bytes(modulus, "big"), int.from_bytes(exponent, "big")
    if n <= 0 or e <= 0:
        raise KeyFormatError("RSA numbers must be positive")
    return n, e


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def rsa_jwk(spki_der: bytes) -> dict[str, str]:
    """The public JWK of the signing key. ``kid`` is its RFC 7638 thumbprint: a stable
    function of the key, so the same key always has the same id and a new key a new one."""
    n, e = rsa_public_numbers(spki_der)
    members = {"e": _uint(e), "kty": "RSA", "n": _uint(n)}  # RFC 7638: required members, sorted
    thumbprint = hashlib.sha256(_compact(members).encode()).digest()
    kid = b64url(thumbprint)
    return {"kty": "RSA", "kid": kid, "alg": ALGORITHM, "use": "sig", "n": members["n"], "e": members["e"]}


# -- discovery -----------------------------------------------------------------------------


def discovery_document(issuer: str) -> dict[str, Any]:
    """``/.well-known/openid-configuration``: what STS reads to find the keys."""
    return {
        "issuer": issuer,
        "jwks_uri": f"{issuer}{JWKS_PATH}",
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "claims_supported": list(CLAIMS_SUPPORTED),
    }


def jwks_document(keys: list[dict[str, str]]) -> dict[str, Any]:
    """``/.well-known/jwks.json``: every key a current token may be signed with."""
    return {"keys": keys}

"""web_identity issuance (CONTRACT §9) through the handler: KMS-signed tokens, STS
AssumeRoleWithWebIdentity, the discovery routes, and the failures of each upstream.

The signing key is a local RSA key behind the same port as KMS (``LocalRsaKey``), so every
token a test sees is checked with ``cryptography`` exactly as STS would check it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import ANY
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from credvend import handler as handler_module
from credvend.adapters.sts import BotoSts
from credvend.domain.errors import Throttled, UpstreamError, UpstreamUnavailable
from credvend.domain.web_identity_token import (
    JWKS_PATH,
    KeyFormatError,
    b64url,
    rsa_jwk,
    rsa_public_numbers,
    token_claims,
)
from credvend.settings import Settings
from credvend_policy import PolicyError, parse_policy, trust_policy_document
from tests.unit.conftest import ACCOUNT, BILLING_SESSION, StsStub, assume_role_response, invoke, rest_event

ISSUER = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1"
LONG_WEB = f"arn:aws:iam::{ACCOUNT}:role/LongWeb"
REPORTS = f"arn:aws:iam::{ACCOUNT}:role/ReportsReader"

WEB_POLICY = f"""
version: 1
roles:
  long-web:
    create: true
    max_session_duration: 43200
    issuance: web_identity
  reports-reader:
    create: true
    max_session_duration: 14400
callers:
  billing-api:
    iam_principals: [arn:aws:iam::{ACCOUNT}:role/billing-api-task]
    grants:
      - role: long-web
        max_duration_seconds: 43200
      - role: reports-reader
        max_duration_seconds: 43200
"""


class LocalRsaKey:
    """The SigningKeyPort on a local key; counts calls like KMS would be billed."""

    def __init__(self, key_size: int = 2048) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self.sign_calls = 0
        self.public_key_calls = 0
        self.error: Exception | None = None

    def public_key_der(self) -> bytes:
        self.public_key_calls += 1
        if self.error is not None:
            raise self.error
        return self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_rs256(self, message: bytes) -> bytes:
        self.sign_calls += 1
        if self.error is not None:
            raise self.error
        return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())


def b64decode(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(token: str, key: LocalRsaKey) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of ``token`` after checking its RS256 signature (raises if bad)."""
    header, claims, signature = token.split(".")
    key.private.public_key().verify(
        b64decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return json.loads(b64decode(header)), json.loads(b64decode(claims))


class WebStub(StsStub):
    """The stubbed STS, also answering AssumeRoleWithWebIdentity and keeping the tokens it got."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []
        self.client.meta.events.register(
            "provide-client-params.sts.AssumeRoleWithWebIdentity", self._keep_token, unique_id="keep-token"
        )

    def _keep_token(self, params: dict[str, Any], **_: Any) -> None:
        self.tokens.append(params["WebIdentityToken"])

    def web(self, role_arn: str, *, duration: int, session_name: str = "billing-api") -> None:
        response = assume_role_response(role_arn, session_name, duration=duration)
        response.pop("SourceIdentity")
        response |= {"SubjectFromWebIdentityToken": "billing-api", "SourceIdentity": "billing-api"}
        expected = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "WebIdentityToken": ANY,
            "DurationSeconds": duration,
        }
        self.stubber.add_response("assume_role_with_web_identity", response, expected)


@pytest.fixture
def web_policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(WEB_POLICY)
    return path


@pytest.fixture
def key() -> LocalRsaKey:
    return LocalRsaKey()


def wire(
    monkeypatch: pytest.MonkeyPatch, policy_file: Path, key: LocalRsaKey | None, *, issuer: bool = True
) -> WebStub:
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED", "CREDVEND_ISSUER", "CREDVEND_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    if issuer:
        monkeypatch.setenv("CREDVEND_ISSUER", ISSUER + "/")  # a trailing slash is not part of the issuer
        monkeypatch.setenv("CREDVEND_SIGNING_KEY", "alias/credvend-issuer")
    stub = WebStub()
    sts = BotoSts(client=stub.client, unsigned_client=stub.client)
    handler_module.reset_runtime(settings=Settings.from_env(), sts=sts, signing_key=key)
    return stub


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch, web_policy_file: Path, key: LocalRsaKey) -> WebStub:
    return wire(monkeypatch, web_policy_file, key)


def vend(role: str, duration: int | None = None, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    body: dict[str, Any] = {"role": role} | ({"duration_seconds": duration} if duration else {})
    return invoke(rest_event("POST", "/credentials", body=body, **kwargs))


# -- the policy ----------------------------------------------------------------------------


def test_issuance_defaults_to_assume_role_and_a_role_may_override_it() -> None:
    policy = parse_policy(WEB_POLICY)
    assert policy.defaults.issuance == "assume_role"
    assert policy.issuance_of("long-web") == "web_identity"
    assert policy.issuance_of("reports-reader") == "assume_role"
    flipped = parse_policy(WEB_POLICY.replace("version: 1", "version: 1\ndefaults:\n  issuance: web_identity"))
    assert flipped.issuance_of("reports-reader") == "web_identity"


@pytest.mark.parametrize(
    ("role_lines", "defaults", "path"),
    [
        ("    issuance: web_identity\n", "", "roles.partner.issuance"),
        ("", "defaults:\n  issuance: web_identity\n", "roles.partner.external_id"),
    ],
)
def test_external_id_and_web_identity_is_a_policy_error_with_its_path(
    role_lines: str, defaults: str, path: str
) -> None:
    text = (
        "version: 1\n" + defaults + "roles:\n  partner:\n    arn: arn:aws:iam::210987654321:role/P\n"
        "    external_id: shared-id\n" + role_lines
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert [where for where, _ in caught.value.problems] == [path]
    assert "ExternalId" in caught.value.problems[0][1]


def test_unknown_issuance_is_refused_with_its_path() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(WEB_POLICY.replace("issuance: web_identity", "issuance: oidc"))
    assert caught.value.problems[0][0] == "roles.long-web.issuance"


def test_web_identity_trust_policy_names_the_provider_audience_callers_and_identities() -> None:
    policy = parse_policy(WEB_POLICY)
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/abc123.execute-api.eu-west-1.amazonaws.com/v1"
    document = trust_policy_document(
        policy, "long-web", vending_role_arn="arn:aws:iam::1:role/unused", issuer=ISSUER, oidc_provider_arn=provider
    )
    (statement,) = document["Statement"]
    assert statement["Principal"] == {"Federated": provider}
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity", "sts:TagSession"]
    host = "abc123.execute-api.eu-west-1.amazonaws.com/v1"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{host}:aud": "sts.amazonaws.com",
            f"{host}:sub": ["billing-api"],
            "sts:SourceIdentity": ["billing-api"],
        },
        "NumericLessThanEqualsIfExists": {"sts:DurationSeconds": 43200},
    }
    with pytest.raises(ValueError, match="web_identity"):
        trust_policy_document(policy, "long-web", vending_role_arn="arn:aws:iam::1:role/unused")
    # assume_role roles keep their document whatever else is given
    other = trust_policy_document(policy, "reports-reader", vending_role_arn="arn:aws:iam::1:role/fn", issuer=ISSUER)
    assert other["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::1:role/fn"}


# -- the token and the key -----------------------------------------------------------------


def test_claims_are_exactly_the_contracts() -> None:
    claims = token_claims(
        issuer=ISSUER,
        caller="billing-api",
        source_identity="billing-api",
        tags=(("credvend:caller", "billing-api"), ("credvend:request-id", "req-1")),
        request_id="req-1",
        now=1_800_000_000,
    )
    assert claims == {
        "iss": ISSUER,
        "sub": "billing-api",
        "aud": "sts.amazonaws.com",
        "iat": 1_800_000_000,
        "nbf": 1_800_000_000,
        "exp": 1_800_000_300,
        "jti": "req-1",
        "https://aws.amazon.com/source_identity": "billing-api",
        "https://aws.amazon.com/tags": {
            "principal_tags": {"credvend:caller": ["billing-api"], "credvend:request-id": ["req-1"]},
            "transitive_tag_keys": [],
        },
    }


@pytest.mark.parametrize("key_size", [2048, 3072, 4096])
def test_public_numbers_from_der_match_cryptography(key_size: int) -> None:
    key = LocalRsaKey(key_size)
    numbers = key.private.public_key().public_numbers()
    assert rsa_public_numbers(key.public_key_der()) == (numbers.n, numbers.e)


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638 §3.1's example key and thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5h"
        "ajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    n_int = int.from_bytes(b64decode(n), "big")
    der = (
        rsa.RSAPublicNumbers(65537, n_int)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    jwk = rsa_jwk(der)
    assert jwk == {"kty": "RSA", "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "alg": "RS256", "use": "sig",
                   "n": n, "e": "AQAB"}  # fmt: skip


def test_a_key_that_is_not_rsa_der_is_refused() -> None:
    ec_der = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    good = LocalRsaKey().public_key_der()
    for bad in (ec_der, good[:-1], good + b"\x00", b"", b"\x30\x81", b"\x30\x85\x01\x00\x00\x00\x00"):
        with pytest.raises(KeyFormatError):
            rsa_public_numbers(bad)


# -- vending through the handler -----------------------------------------------------------


def test_web_identity_grants_twelve_hours_with_a_verifiable_token(web: WebStub, key: LocalRsaKey) -> None:
    web.web(LONG_WEB, duration=43200)
    before = int(time.time())
    status, _, body = vend("long-web", 43200)
    assert status == 200, body
    grant = body["Grant"]
    assert grant["GrantedDurationSeconds"] == 43200
    assert grant["LimitedBy"] == []
    assert grant["Issuance"] == "web_identity"
    assert grant["RoleArn"] == LONG_WEB
    # no GetCallerIdentity was queued: web identity never asks whether it is role chaining
    web.assert_done()
    (token,) = web.tokens
    header, claims = verify_jwt(token, key)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": rsa_jwk(key.public_key_der())["kid"]}
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "billing-api"
    assert claims["aud"] == "sts.amazonaws.com"
    assert claims["jti"] == body["RequestId"] == "req-0001"
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 300
    assert claims["https://aws.amazon.com/source_identity"] == grant["SourceIdentity"] == "billing-api"
    assert claims["https://aws.amazon.com/tags"]["principal_tags"]["credvend:request-id"] == ["req-0001"]
    assert token not in json.dumps(body)


def test_a_tampered_token_would_not_verify(web: WebStub, key: LocalRsaKey) -> None:
    web.web(LONG_WEB, duration=3600)
    assert vend("long-web")[0] == 200
    header, claims, signature = web.tokens[0].split(".")
    forged = b64url(json.dumps(json.loads(b64decode(claims)) | {"sub": "someone-else"}).encode())
    with pytest.raises(InvalidSignature):
        verify_jwt(f"{header}.{forged}.{signature}", key)


def test_the_public_key_is_read_once_per_container(web: WebStub, key: LocalRsaKey) -> None:
    for index in range(3):
        web.web(LONG_WEB, duration=3600)
        assert vend("long-web", request_id=f"req-{index}")[0] == 200
    assert (key.public_key_calls, key.sign_calls) == (1, 3)
    assert len(set(web.tokens)) == 3


def test_assume_role_roles_are_still_capped_by_role_chaining(web: WebStub) -> None:
    web.identity()
    web.assume(REPORTS, duration=3600)
    status, _, body = vend("reports-reader", 43200)
    assert status == 200, body
    assert body["Grant"]["Issuance"] == "assume_role"
    assert body["Grant"]["GrantedDurationSeconds"] == 3600
    assert body["Grant"]["LimitedBy"] == ["role_chaining"]
    web.assert_done()


def test_every_format_carries_web_identity_credentials(web: WebStub) -> None:
    for fmt in ("credential_process", "container"):
        web.web(LONG_WEB, duration=3600)
        status, _, body = invoke(rest_event("GET", "/credentials/long-web", query={"format": fmt}))
        assert status == 200, body
        assert body["Expiration"] == "2026-11-23T16:35:57Z"


def test_without_issuer_settings_web_identity_fails_and_assume_role_works(
    monkeypatch: pytest.MonkeyPatch, web_policy_file: Path, key: LocalRsaKey, caplog: pytest.LogCaptureFixture
) -> None:
    stub = wire(monkeypatch, web_policy_file, key, issuer=False)
    status, _, body = vend("long-web", 43200)
    assert (status, body["Error"]["Code"]) == (500, "InternalError")
    assert any(getattr(record, "reason", None) == "web_identity_not_configured" for record in caplog.records)
    assert key.sign_calls == 0  # and no AssumeRole was tried instead: the stubber has nothing queued
    stub.identity()
    stub.assume(REPORTS, duration=3600)
    assert vend("reports-reader", 43200)[0] == 200
    stub.assert_done()
    # nor is the service an issuer: no discovery documents
    assert invoke(rest_event("GET", JWKS_PATH, user_arn=None))[0] == 404


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidIdentityToken", 502),
        ("ExpiredTokenException", 502),
        ("AccessDenied", 502),
        ("IDPCommunicationError", 502),
        ("IDPRejectedClaim", 502),
        ("Throttling", 429),
    ],
)
def test_sts_refusals_map_to_the_error_table_without_sts_message(
    web: WebStub, code: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    message = f"Not authorized: arn:aws:iam::{ACCOUNT}:role/credvend-fn-role said no ({code})"
    web.error("assume_role_with_web_identity", code, message)
    got, headers, body = vend("long-web")
    assert got == status
    assert "credvend-fn-role" not in json.dumps(body)
    if status == 429:
        assert headers["Retry-After"] == "1"
    else:
        assert body["Error"]["Code"] == "UpstreamError"
        assert any(getattr(record, "reason", None) == code for record in caplog.records)  # the reason is logged


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Throttled(retry_after_seconds=1), 429, "Throttled"),
        (UpstreamUnavailable(), 503, "UpstreamUnavailable"),
        (UpstreamError(upstream_code="kms:AccessDeniedException"), 502, "UpstreamError"),
    ],
)
def test_kms_failures_map_to_the_error_table(
    web: WebStub, key: LocalRsaKey, error: Exception, status: int, code: str
) -> None:
    key.error = error
    got, headers, body = vend("long-web")
    assert (got, body["Error"]["Code"]) == (status, code)
    if status == 429:
        assert headers["Retry-After"] == "1"
    web.assert_done()  # STS was never called without a token


# -- the KMS adapter -----------------------------------------------------------------------


def kms_stub() -> Any:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("kms", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def test_kms_adapter_signs_the_digest_and_reads_the_public_key(key: LocalRsaKey) -> None:
    import hashlib

    from credvend.adapters.kms import KmsSigningKey

    client, stubber = kms_stub()
    message = b"header.claims"
    signature = key.sign_rs256(message)
    stubber.add_response(
        "sign",
        {"KeyId": "k", "Signature": signature, "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"},
        {
            "KeyId": "alias/x",
            "Message": hashlib.sha256(message).digest(),
            "MessageType": "DIGEST",
            "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256",
        },
    )
    stubber.add_response(
        "get_public_key", {"KeyId": "k", "PublicKey": key.public_key_der(), "KeySpec": "RSA_2048"}, {"KeyId": "alias/x"}
    )
    adapter = KmsSigningKey("alias/x", client=client)
    assert adapter.sign_rs256(message) == signature
    assert adapter.public_key_der() == key.public_key_der()
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "http", "expected"),
    [
        ("ThrottlingException", 400, Throttled),
        ("KMSInternalException", 500, UpstreamUnavailable),
        ("AccessDeniedException", 400, UpstreamError),
        ("DisabledException", 400, UpstreamError),
    ],
)
def test_kms_adapter_translates_errors(code: str, http: int, expected: type[Exception]) -> None:
    from credvend.adapters.kms import KmsSigningKey

    client, stubber = kms_stub()
    stubber.add_client_error("sign", service_error_code=code, service_message="secret detail", http_status_code=http)
    with pytest.raises(expected) as caught:
        KmsSigningKey("alias/x", client=client).sign_rs256(b"m")
    assert "secret detail" not in str(caught.value)


def test_kms_adapter_unreachable_is_unavailable() -> None:
    import boto3

    from credvend.adapters.kms import KmsSigningKey

    client = boto3.client("kms", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://kms.example")

    client.meta.events.register("before-call.kms.Sign", unreachable)
    with pytest.raises(UpstreamUnavailable):
        KmsSigningKey("alias/x", client=client).sign_rs256(b"m")


def test_the_web_identity_sts_client_does_not_sign(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore import UNSIGNED

    from credvend.adapters.sts import _default_client

    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert _default_client(unsigned=True).meta.config.signature_version is UNSIGNED
    assert _default_client().meta.config.signature_version is not UNSIGNED


# -- discovery -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/.well-known/jwks.json"])
def test_discovery_routes_are_public_and_cacheable(web: WebStub, key: LocalRsaKey, path: str) -> None:
    status, headers, body = invoke(rest_event("GET", path, user_arn=None))
    assert status == 200, body
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Content-Type"] == "application/json"
    if path.endswith("jwks.json"):
        (jwk,) = body["keys"]
        assert jwk == rsa_jwk(key.public_key_der())
        assert set(jwk) == {"kty", "kid", "alg", "use", "n", "e"}
    else:
        assert body == {
            "issuer": ISSUER,
            "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": [
                "iss", "sub", "aud", "iat", "nbf", "exp", "jti",
                "https://aws.amazon.com/source_identity", "https://aws.amazon.com/tags",
            ],
        }  # fmt: skip
    web.assert_done()


def test_the_token_kid_is_in_the_jwks(web: WebStub) -> None:
    web.web(LONG_WEB, duration=3600)
    assert vend("long-web")[0] == 200
    _, _, jwks = invoke(rest_event("GET", "/.well-known/jwks.json", user_arn=None))
    header = json.loads(b64decode(web.tokens[0].split(".")[0]))
    assert header["kid"] in {jwk["kid"] for jwk in jwks["keys"]}


@pytest.mark.parametrize(
    "event",
    [
        rest_event("POST", "/credentials", body={"role": "long-web"}, user_arn=None),
        rest_event("GET", "/credentials/long-web", user_arn=None),
        rest_event("POST", "/.well-known/jwks.json", user_arn=None),  # not the public method
        rest_event("GET", "/.well-known/other", user_arn=None),
    ],
)
def test_every_other_route_still_requires_an_identity(web: WebStub, event: dict[str, Any]) -> None:
    status, _, body = invoke(event)
    assert (status, body["Error"]["Code"]) == (401, "Unauthenticated")


def test_a_public_resource_never_reaches_the_vend_routes(web: WebStub) -> None:
    """Even an event whose resource claims a discovery route but whose path is a vend route
    (no gateway sends that) is not served without an identity."""
    event = rest_event("GET", "/credentials/long-web", user_arn=None)
    event["resource"] = "/.well-known/jwks.json"
    status, _, body = invoke(event)
    assert status in (401, 404)
    assert "Credentials" not in body


def test_signed_callers_may_read_discovery_too(web: WebStub) -> None:
    assert invoke(rest_event("GET", "/.well-known/jwks.json", user_arn=BILLING_SESSION))[0] == 200


# -- cold start ----------------------------------------------------------------------------


def test_an_assume_role_vend_never_imports_the_issuer_modules(web_policy_file: Path) -> None:
    """What only web_identity needs (KMS adapter, token encoding) is loaded only by it."""
    script = f"""
import sys
from tests.unit.conftest import StsStub, invoke, rest_event
from credvend import handler
from credvend.adapters.sts import BotoSts
from credvend.settings import Settings
import os
os.environ.update(CREDVEND_POLICY_FILE={str(web_policy_file)!r}, CREDVEND_ISSUER={ISSUER!r},
                  CREDVEND_SIGNING_KEY="alias/x")
stub = StsStub()
stub.identity()
stub.assume({REPORTS!r}, duration=3600)
handler.reset_runtime(settings=Settings.from_env(), sts=BotoSts(client=stub.client))
body = {{"role": "reports-reader", "duration_seconds": 43200}}
status, _, body = invoke(rest_event("POST", "/credentials", body=body))
assert status == 200, body
loaded = sorted(m for m in sys.modules if m.startswith(("credvend.adapters.kms", "credvend.domain.web_identity",
                                                         "cryptography")))
print("LOADED=" + ",".join(loaded))
"""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={"PYTHONPATH": f"{root}/lambda_src:{root}", "PATH": "/usr/bin:/bin", "AWS_REGION": "eu-west-1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "LOADED=\n" in result.stdout


def test_during_a_rotation_the_jwks_lists_both_keys_and_tokens_use_the_signing_one() -> None:
    from credvend.domain.web_identity import WebIdentityIssuer

    old, new = LocalRsaKey(), LocalRsaKey()
    issuer = WebIdentityIssuer(issuer=ISSUER, key=new, sts=None, published=[old, new])  # type: ignore[arg-type]
    kids = [jwk["kid"] for jwk in issuer.jwks()["keys"]]
    assert kids == [rsa_jwk(new.public_key_der())["kid"], rsa_jwk(old.public_key_der())["kid"]]
    assert issuer.jwk() == rsa_jwk(new.public_key_der())


def test_published_keys_setting_is_a_comma_separated_list() -> None:
    settings = Settings.from_env({"CREDVEND_PUBLISHED_KEYS": " alias/old , ,arn:aws:kms:eu-west-1:1:key/x"})
    assert settings.published_keys == ("alias/old", "arn:aws:kms:eu-west-1:1:key/x")
    assert Settings.from_env({}).published_keys == ()


def test_a_web_identity_trust_policy_over_budget_drops_the_lists_but_keeps_aud_and_a_source_identity() -> None:
    from credvend_policy.trust import WIDEST_ISSUER, trust_policy

    callers = "\n".join(
        f"  caller-{index:03d}:\n    iam_principals: [arn:aws:iam::{ACCOUNT}:role/c{index}]\n"
        "    grants:\n      - role: long-web\n"
        for index in range(80)
    )
    policy = parse_policy(WEB_POLICY.split("callers:")[0] + "callers:\n" + callers)
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/abc123.execute-api.eu-west-1.amazonaws.com/v1"
    budgeted = trust_policy(
        policy,
        "long-web",
        vending_role_arn="",
        issuer=ISSUER,
        oidc_provider_arn=provider,
        measured_issuer=WIDEST_ISSUER,
    )
    assert budgeted.lists_dropped
    assert budgeted.size <= 2048
    (statement,) = budgeted.document["Statement"]
    host = "abc123.execute-api.eu-west-1.amazonaws.com/v1"
    assert statement["Condition"] == {
        "Null": {"sts:SourceIdentity": "false"},
        "StringEquals": {f"{host}:aud": "sts.amazonaws.com"},
        "NumericLessThanEqualsIfExists": {"sts:DurationSeconds": 43200},
    }
    few = trust_policy(parse_policy(WEB_POLICY), "long-web", vending_role_arn="", issuer=ISSUER,
                       oidc_provider_arn=provider, measured_issuer=WIDEST_ISSUER)  # fmt: skip
    assert not few.lists_dropped

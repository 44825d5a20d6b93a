"""web_identity issuance on the deployed stack (CONTRACT §9): credvend signs a token as its own
OIDC issuer with the stack's KMS key, STS exchanges it for 12 hours, the discovery routes are
public and only they; and STS itself refuses tokens that are not credvend's own.

The refusals need an STS that verifies tokens as AWS does (the LocalStack fidelity plugin's
web identity rules); against one that accepts any token they are skipped, saying so.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from credvend.domain.web_identity_token import encode_token, rsa_jwk, token_claims
from credvend_local.identities import REGION, admin_client, client_with
from credvend_local.sigv4 import describe, signed_request

pytestmark = pytest.mark.e2e
TWELVE_HOURS = 43200
WEB_ROLE = "batch-writer"
WEB_ROLE_ARN = "arn:aws:iam::000000000000:role/BatchWriter"


def _expires_in(expiration: str) -> float:
    return (dt.datetime.fromisoformat(expiration.replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)).total_seconds()


@pytest.fixture(scope="module")
def issuer(deployment) -> str:
    return str(deployment.outputs["IssuerUrl"])


@pytest.fixture(scope="module")
def signing_key(endpoint: str, deployment) -> str:
    """The KMS key the function signs with (from its environment, as the stack set it)."""
    function = admin_client("lambda", endpoint).get_function_configuration(
        FunctionName=deployment.outputs["FunctionName"]
    )
    return str(function["Environment"]["Variables"]["CREDVEND_SIGNING_KEY"])


def _unsigned_sts(endpoint: str) -> Any:
    return boto3.client("sts", endpoint_url=endpoint, region_name=REGION, config=Config(signature_version=UNSIGNED))


def _mint(
    endpoint: str, key_id: str, *, iss: str, sub: str = "e2e-user", age: int = 0, sign: Any = None, kid: str = ""
) -> str:
    """A token as credvend would mint it (the function's own claims builder), signed with
    the stack's KMS key unless ``sign`` is given; ``age`` seconds in the past."""
    kms = admin_client("kms", endpoint)
    if not kid:
        kid = rsa_jwk(kms.get_public_key(KeyId=key_id)["PublicKey"])["kid"]
    claims = token_claims(
        issuer=iss,
        caller=sub,
        source_identity=sub,
        tags=(("credvend:caller", sub), ("credvend:request-id", "e2e-mint")),
        request_id="e2e-mint",
        now=int(time.time()) - age,
    )

    def kms_sign(message: bytes) -> bytes:
        response = kms.sign(
            KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
        )
        return bytes(response["Signature"])

    return encode_token(claims, kid=kid, sign=sign or kms_sign).get_secret_value()


def _exchange(endpoint: str, token: str, *, role_arn: str = WEB_ROLE_ARN, duration: int = 3600) -> dict[str, Any]:
    response: dict[str, Any] = _unsigned_sts(endpoint).assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="e2e-probe", WebIdentityToken=token, DurationSeconds=duration
    )
    return response


@pytest.fixture(scope="module")
def strict_sts(endpoint: str, deployment) -> None:
    """Skip unless STS verifies web identity tokens (a token that is not even a JWS must fail)."""
    try:
        _exchange(endpoint, "not.a.token")
    except ClientError:
        return
    pytest.skip("this LocalStack's STS accepts any web identity token (the fidelity plugin's web identity rules "
                "are not installed), so STS-side refusals cannot be tested against it")  # fmt: skip


def test_twelve_hours_on_a_web_identity_role_is_granted_and_works(api_url, callers, endpoint) -> None:
    response = signed_request(
        "POST", f"{api_url}/credentials", callers.user, body={"role": WEB_ROLE, "duration_seconds": TWELVE_HOURS}
    )
    assert response.status_code == 200, describe(response)
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    grant = body["Grant"]
    assert grant["Issuance"] == "web_identity"
    assert grant["RequestedDurationSeconds"] == TWELVE_HOURS
    assert grant["GrantedDurationSeconds"] == TWELVE_HOURS
    assert grant["LimitedBy"] == []
    assert grant["SourceIdentity"] == "e2e-user"
    assert TWELVE_HOURS - 120 < _expires_in(body["Credentials"]["Expiration"]) <= TWELVE_HOURS + 60
    identity = client_with("sts", endpoint, body["Credentials"]).get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::000000000000:assumed-role/BatchWriter/e2e-user"
    # no token in the answer, in any field
    assert "eyJ" not in response.text


def test_the_same_ask_on_an_assume_role_role_is_still_one_hour(api_url, callers) -> None:
    response = signed_request(
        "POST",
        f"{api_url}/credentials",
        callers.user,
        body={"role": "reports-reader", "duration_seconds": TWELVE_HOURS},
    )
    assert response.status_code == 200, describe(response)
    grant = response.json()["Grant"]
    assert grant["Issuance"] == "assume_role"
    assert grant["GrantedDurationSeconds"] == 3600
    assert grant["LimitedBy"] == ["role_chaining"]


def test_the_session_carries_the_callers_source_identity(api_url, callers, sts_journal, strict_sts) -> None:
    with sts_journal.watch() as sent:
        response = signed_request("GET", f"{api_url}/credentials/{WEB_ROLE}", callers.user)
    assert response.status_code == 200, describe(response)
    # what the function sent STS: one web identity call, the caller's source identity from the token
    assert [(e["operation"], e["role_arn"], e["source_identity"], e["subject"], e["outcome"]) for e in sent] == [
        ("AssumeRoleWithWebIdentity", WEB_ROLE_ARN, "e2e-user", "e2e-user", "allowed")
    ]


# -- discovery -----------------------------------------------------------------------------


def test_discovery_answers_without_a_signature(api_url, issuer) -> None:
    response = signed_request("GET", f"{api_url}/.well-known/openid-configuration", None)
    assert response.status_code == 200, describe(response)
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    document = response.json()
    assert document["issuer"] == issuer
    assert document["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_the_jwks_is_the_stacks_kms_public_key(api_url, endpoint, signing_key) -> None:
    response = signed_request("GET", f"{api_url}/.well-known/jwks.json", None)
    assert response.status_code == 200, describe(response)
    (jwk,) = response.json()["keys"]
    der = admin_client("kms", endpoint).get_public_key(KeyId=signing_key)["PublicKey"]
    assert jwk == rsa_jwk(der)
    assert (jwk["alg"], jwk["use"], jwk["kty"]) == ("RS256", "sig", "RSA")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/credentials"), ("GET", f"/credentials/{WEB_ROLE}"), ("GET", "/credentials/reports-reader")],
)
def test_every_iam_route_still_refuses_an_unsigned_request(api_url, method: str, path: str) -> None:
    body = {"role": WEB_ROLE} if method == "POST" else None
    response = signed_request(method, f"{api_url}{path}", None, body=body)
    # API Gateway's refusal, in the contract's shape (its gateway responses, CONTRACT §12)
    assert response.status_code == 401, describe(response)
    assert response.json()["Error"] == {"Code": "Unauthenticated", "Message": "Missing Authentication Token"}


# -- what STS itself refuses ---------------------------------------------------------------


def test_a_token_credvend_would_mint_is_accepted(endpoint, issuer, signing_key, strict_sts) -> None:
    """The control for the refusals below: the same minting, nothing wrong, is exchanged."""
    response = _exchange(endpoint, _mint(endpoint, signing_key, iss=issuer), duration=TWELVE_HOURS)
    assert _expires_in(response["Credentials"]["Expiration"].isoformat()) > TWELVE_HOURS - 120


def test_sts_refuses_a_token_signed_by_another_key(endpoint, issuer, signing_key, strict_sts) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign(message: bytes) -> bytes:
        return other.sign(message, padding.PKCS1v15(), hashes.SHA256())

    token = _mint(endpoint, signing_key, iss=issuer, sign=sign)  # the real kid, a foreign signature
    with pytest.raises(ClientError) as refused:
        _exchange(endpoint, token)
    assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"


def test_sts_refuses_an_expired_token(endpoint, issuer, signing_key, strict_sts) -> None:
    token = _mint(endpoint, signing_key, iss=issuer, age=3600)
    with pytest.raises(ClientError) as refused:
        _exchange(endpoint, token)
    assert refused.value.response["Error"]["Code"] == "ExpiredTokenException"


def test_sts_refuses_a_caller_not_granted_the_role(endpoint, issuer, signing_key, strict_sts) -> None:
    token = _mint(endpoint, signing_key, iss=issuer, sub="audit-bot")  # a real caller, not granted batch-writer
    with pytest.raises(ClientError) as refused:
        _exchange(endpoint, token)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_sts_refuses_an_issuer_with_no_provider(endpoint, issuer, signing_key, strict_sts) -> None:
    elsewhere = "https://nosuchapi0" + issuer[issuer.index(".execute-api") :]  # same shape, no provider
    token = _mint(endpoint, signing_key, iss=elsewhere)
    with pytest.raises(ClientError) as refused:
        _exchange(endpoint, token)
    assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"

"""Unit tests for the AssumeRoleWithWebIdentity rules of the LocalStack STS plugin.

Pure and fast: no LocalStack. Tokens are signed here with keys generated per test module
(`cryptography`), the IAM OIDC provider, the role and the issuer's JWKS are fakes. Each
test names the AWS rule it pins down. (The same rules inside a running LocalStack:
test_web_identity.py.)
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

# the plugin package (credvend_local/plugin, on pytest's pythonpath) is installed only into LocalStack's venv
from credvend_localstack import iam_policy_eval as iam
from credvend_localstack import web_identity as wi
from credvend_localstack.journal import AssumeRoleJournal
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from credvend_local.sts_journal import StsJournal
from credvend_local.web_identity_issuer import PrivateKey, b64url, sign
from credvend_local.web_identity_issuer import public_jwk as jwk

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
ISSUER = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
PROVIDER_URL = "abc123.execute-api.us-east-1.amazonaws.com/prod"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{PROVIDER_URL}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/reports-reader"
AUDIENCE = "sts.amazonaws.com"
NOW = 1_800_000_000
JWKS_URI = f"{ISSUER}/.well-known/jwks.json"
MAX_SESSION = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."


# ---------------------------------------------------------------------------- keys


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 290,
        "jti": "req-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# ---------------------------------------------------------------------------- the world


def trust_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def federated(actions: list[str], condition: dict[str, Any] | None = None, provider: str = PROVIDER_ARN) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Federated": provider}, "Action": actions}
    if condition is not None:
        statement["Condition"] = condition
    return statement


SUB_ALICE = {"StringEquals": {f"{PROVIDER_URL}:aud": AUDIENCE, f"{PROVIDER_URL}:sub": "alice"}}
ALL_ACTIONS = ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity", "sts:TagSession"]


class World:
    """The IAM and issuer state a verdict depends on, each piece replaceable by a test."""

    def __init__(self, key: PrivateKey) -> None:
        self.providers = {PROVIDER_ARN: wi.OidcProvider(PROVIDER_ARN, PROVIDER_URL, (AUDIENCE,))}
        self.roles = {
            ROLE_ARN: iam.TargetRole(
                ROLE_ARN, trust_policy(federated(ALL_ACTIONS, SUB_ALICE)), max_session_duration=43200
            )
        }
        self.documents: dict[str, Any] = {
            f"{ISSUER}/.well-known/openid-configuration": {"issuer": ISSUER, "jwks_uri": JWKS_URI},
            JWKS_URI: {"keys": [jwk(key)]},
        }
        self.fetched: list[str] = []
        self.clock = 0.0
        self.cache = wi.JwksCache(self.fetch, lambda url: url, ttl=60, clock=lambda: self.clock)

    def fetch(self, url: str) -> Any:
        self.fetched.append(url)
        if url not in self.documents:
            raise wi.IdpUnreachable(f"{url}: nothing there")
        return self.documents[url]

    def judge(
        self, token: str, duration: int | None = None, session: str = "alice", role: str = ROLE_ARN
    ) -> wi.Verdict:
        return wi.judge(
            wi.WebIdentityRequest(role, session, token, duration),
            lookup_role=self.roles.get,
            lookup_provider=self.providers.get,
            keys=self.cache.keys,
            now=NOW,
        )

    def set_trust(self, *statements: dict[str, Any], max_session: int = 43200) -> None:
        self.roles[ROLE_ARN] = iam.TargetRole(ROLE_ARN, trust_policy(*statements), max_session_duration=max_session)


@pytest.fixture
def world(key: rsa.RSAPrivateKey) -> World:
    return World(key)


def refusal(verdict: wi.Verdict) -> tuple[str, str, int]:
    assert verdict.grant is None and verdict.refusal is not None
    return verdict.refusal.code, verdict.refusal.message, verdict.refusal.status


def invalid(message: str) -> tuple[str, str, int]:
    return ("InvalidIdentityToken", message, 400)


# ---------------------------------------------------------------------------- granted


def test_a_valid_token_gets_the_twelve_hours_the_role_allows(world: World, key: rsa.RSAPrivateKey) -> None:
    verdict = world.judge(sign(claims(), key), duration=43200)
    assert verdict.refusal is None and verdict.grant is not None
    grant = verdict.grant
    assert (grant.duration_seconds, grant.subject, grant.audience, grant.issuer) == (43200, "alice", AUDIENCE, ISSUER)
    assert grant.provider.arn == PROVIDER_ARN and verdict.principal == PROVIDER_ARN


def test_without_duration_seconds_the_session_lasts_an_hour(world: World, key: rsa.RSAPrivateKey) -> None:
    grant = world.judge(sign(claims(), key)).grant
    assert grant is not None and grant.duration_seconds == 3600


@pytest.mark.parametrize("alg", ["RS384", "RS512"])
def test_other_rsa_algorithms_aws_accepts(world: World, key: rsa.RSAPrivateKey, alg: str) -> None:
    world.documents[JWKS_URI] = {"keys": [jwk(key, alg=alg)]}
    assert world.judge(sign(claims(), key, alg=alg)).grant is not None


@pytest.mark.parametrize(
    ("alg", "curve"), [("ES256", ec.SECP256R1()), ("ES384", ec.SECP384R1()), ("ES512", ec.SECP521R1())]
)
def test_ecdsa_algorithms_aws_accepts(world: World, alg: str, curve: ec.EllipticCurve) -> None:
    ec_key = ec.generate_private_key(curve)
    world.documents[JWKS_URI] = {"keys": [jwk(ec_key, alg=alg)]}
    assert world.judge(sign(claims(), ec_key, alg=alg)).grant is not None


def test_an_audience_list_passes_when_one_of_them_is_a_client_id(world: World, key: rsa.RSAPrivateKey) -> None:
    grant = world.judge(sign(claims(aud=["someone-else", AUDIENCE]), key)).grant
    assert grant is not None and grant.audience == AUDIENCE


def test_a_token_without_kid_is_checked_against_every_key(
    world: World, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    world.documents[JWKS_URI] = {"keys": [jwk(other_key, kid="old"), jwk(key, kid="new")]}
    assert world.judge(sign(claims(), key, kid=None)).grant is not None


# ---------------------------------------------------------------------------- parameters


def test_duration_outside_900_to_43200_is_a_validation_error(world: World, key: rsa.RSAPrivateKey) -> None:
    code, message, status = refusal(world.judge(sign(claims(), key), duration=899))
    assert (code, status) == ("ValidationError", 400)
    assert "Value '899' at 'durationSeconds' failed to satisfy constraint" in message


def test_bad_session_names_are_validation_errors(world: World, key: rsa.RSAPrivateKey) -> None:
    code, message, _ = refusal(world.judge(sign(claims(), key), session="has space"))
    assert code == "ValidationError" and "roleSessionName" in message
    assert refusal(world.judge(sign(claims(), key), session="x"))[0] == "ValidationError"


def test_a_validation_error_never_echoes_the_token(world: World) -> None:
    token = "x" * 20001
    code, message, _ = refusal(world.judge(token))
    assert code == "ValidationError" and token not in message and "webIdentityToken" in message


# ---------------------------------------------------------------------------- the token's shape


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "abc.def",
        "a.b.c.d",
        "!!!.???.sig",
        f"{b64url(b'not json')}.{b64url(b'{}')}.sig",
        f"{b64url(b'[1]')}.{b64url(b'{}')}.sig",
        f"{b64url(json.dumps({'alg': 'RS256'}).encode())}..sig",
    ],
)
def test_anything_but_a_compact_jws_is_not_a_valid_jwt(world: World, token: str) -> None:
    assert refusal(world.judge(token)) == invalid(wi.NOT_A_JWT)


def test_alg_none_is_refused(world: World) -> None:
    unsigned = f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(claims()).encode())}."
    assert refusal(world.judge(unsigned)) == invalid(wi.unsupported_alg_message("none"))


def test_hmac_tokens_are_refused_even_keyed_with_the_public_key(world: World, key: rsa.RSAPrivateKey) -> None:
    # the classic confusion: HS256 "signed" with the published RSA key as the HMAC secret
    head = b64url(json.dumps({"alg": "HS256", "kid": "key-1"}).encode())
    body = b64url(json.dumps(claims()).encode())
    mac = hmac.HMAC(json.dumps(jwk(key)).encode(), hashes.SHA256())
    mac.update(f"{head}.{body}".encode())
    code, _, _ = refusal(world.judge(f"{head}.{body}.{b64url(mac.finalize())}"))
    assert code == "InvalidIdentityToken"


def test_critical_header_extensions_are_refused(world: World, key: rsa.RSAPrivateKey) -> None:
    # a correctly signed token whose header demands an extension (RFC 7515 crit) no verifier here knows
    head = b64url(json.dumps({"alg": "RS256", "kid": "key-1", "crit": ["b64"], "b64": False}).encode())
    body = b64url(json.dumps(claims()).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert refusal(world.judge(f"{head}.{body}.{b64url(signature)}")) == invalid(wi.NOT_A_JWT)


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp"])
def test_required_claims(world: World, key: rsa.RSAPrivateKey, claim: str) -> None:
    token = sign(claims(**{claim: None}), key)
    assert refusal(world.judge(token)) == invalid(wi.missing_claim_message(claim))


# ---------------------------------------------------------------------------- provider and audience


def test_an_issuer_without_a_provider_is_refused(world: World, key: rsa.RSAPrivateKey) -> None:
    issuer = "https://def456.execute-api.us-east-1.amazonaws.com/prod"
    token = sign(claims(iss=issuer), key)
    assert refusal(world.judge(token)) == invalid(f"No OpenIDConnect provider found in your account for {issuer}")


def test_the_provider_must_be_in_the_roles_account(world: World, key: rsa.RSAPrivateKey) -> None:
    other_role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/reports-reader"
    world.roles[other_role] = world.roles[ROLE_ARN]
    assert refusal(world.judge(sign(claims(), key), role=other_role)) == invalid(wi.no_provider_message(ISSUER))


def test_an_http_issuer_never_has_a_provider(world: World, key: rsa.RSAPrivateKey) -> None:
    issuer = ISSUER.replace("https://", "http://")
    assert refusal(world.judge(sign(claims(iss=issuer), key))) == invalid(wi.no_provider_message(issuer))


def test_an_audience_not_in_the_client_ids_is_refused(world: World, key: rsa.RSAPrivateKey) -> None:
    assert refusal(world.judge(sign(claims(aud="sts.amazon.com"), key))) == invalid("Incorrect token audience")


def test_provider_and_audience_come_before_the_keys_are_fetched(world: World, key: rsa.RSAPrivateKey) -> None:
    world.judge(sign(claims(aud="someone-else"), key))
    assert world.fetched == []


# ---------------------------------------------------------------------------- signature


def test_a_token_signed_by_another_key_with_the_same_kid_is_refused(world: World, other_key: rsa.RSAPrivateKey) -> None:
    assert refusal(world.judge(sign(claims(), other_key))) == invalid(wi.BAD_SIGNATURE)


def test_changed_claims_break_the_signature(world: World, key: rsa.RSAPrivateKey) -> None:
    head, _, signature = sign(claims(), key).split(".")
    forged_body = b64url(json.dumps(claims(sub="mallory")).encode())
    assert refusal(world.judge(f"{head}.{forged_body}.{signature}")) == invalid(wi.BAD_SIGNATURE)


def test_a_key_for_another_algorithm_does_not_verify(world: World, key: rsa.RSAPrivateKey) -> None:
    world.documents[JWKS_URI] = {"keys": [jwk(key, alg="RS512")]}
    assert refusal(world.judge(sign(claims(), key, alg="RS256"))) == invalid(wi.BAD_SIGNATURE)


def test_an_unreachable_jwks_is_an_idp_communication_error(world: World, key: rsa.RSAPrivateKey) -> None:
    del world.documents[JWKS_URI]
    assert refusal(world.judge(sign(claims(), key))) == ("IDPCommunicationError", wi.KEY_UNAVAILABLE, 400)


def test_a_discovery_document_without_jwks_uri_is_an_idp_communication_error(
    world: World, key: rsa.RSAPrivateKey
) -> None:
    world.documents[f"{ISSUER}/.well-known/openid-configuration"] = {"issuer": ISSUER}
    assert refusal(world.judge(sign(claims(), key)))[0] == "IDPCommunicationError"


def test_an_unknown_kid_fetches_the_keys_again_once(
    world: World, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    assert world.judge(sign(claims(), key)).grant is not None
    # the issuer rotates: the new key is published after the set was cached
    world.documents[JWKS_URI] = {"keys": [jwk(key), jwk(other_key, kid="key-2")]}
    before = len(world.fetched)
    assert world.judge(sign(claims(), other_key, kid="key-2")).grant is not None
    assert len(world.fetched) == before + 2  # discovery + JWKS, once
    # a kid nobody publishes costs one refetch and is then refused
    before = len(world.fetched)
    assert refusal(world.judge(sign(claims(), other_key, kid="key-3"))) == invalid(wi.BAD_SIGNATURE)
    assert len(world.fetched) == before + 2


def test_the_key_set_is_cached_briefly(world: World, key: rsa.RSAPrivateKey) -> None:
    for _ in range(3):
        assert world.judge(sign(claims(), key)).grant is not None
    assert len(world.fetched) == 2
    world.clock += 61
    assert world.judge(sign(claims(), key)).grant is not None
    assert len(world.fetched) == 4


# ---------------------------------------------------------------------------- times


def test_an_expired_token_gets_awss_expired_token_exception(world: World, key: rsa.RSAPrivateKey) -> None:
    exp = NOW - 1
    assert refusal(world.judge(sign(claims(exp=exp, iat=NOW - 400, nbf=NOW - 400), key))) == (
        "ExpiredTokenException",
        f"Token expired: current date/time {NOW} must be before the expiration date/time{exp}",
        400,
    )


def test_a_token_expires_at_its_exp(world: World, key: rsa.RSAPrivateKey) -> None:
    assert refusal(world.judge(sign(claims(exp=NOW), key)))[0] == "ExpiredTokenException"


def test_an_expired_token_with_a_bad_signature_is_refused_for_the_signature(
    world: World, other_key: rsa.RSAPrivateKey
) -> None:
    assert refusal(world.judge(sign(claims(exp=NOW - 1), other_key))) == invalid(wi.BAD_SIGNATURE)


def test_a_token_before_its_nbf_is_refused(world: World, key: rsa.RSAPrivateKey) -> None:
    assert refusal(world.judge(sign(claims(nbf=NOW + 60), key))) == invalid(wi.not_yet_valid_message(NOW, NOW + 60))


def test_a_token_issued_in_the_future_is_refused(world: World, key: rsa.RSAPrivateKey) -> None:
    assert world.judge(sign(claims(iat=NOW + 60, nbf=None), key)).grant is not None  # clock skew
    assert refusal(world.judge(sign(claims(iat=NOW + 3600, nbf=None), key)))[0] == "InvalidIdentityToken"


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
def test_timestamps_must_be_integers(world: World, key: rsa.RSAPrivateKey, claim: str) -> None:
    value = {"exp": NOW + 290.5, "nbf": NOW - 10.5, "iat": "1800000000"}[claim]
    assert refusal(world.judge(sign(claims(**{claim: value}), key))) == invalid(wi.BAD_TIMESTAMP)


# ---------------------------------------------------------------------------- trust policy


DENIED = ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_a_sub_the_trust_policy_does_not_name_is_denied(world: World, key: rsa.RSAPrivateKey) -> None:
    assert refusal(world.judge(sign(claims(sub="mallory"), key))) == DENIED


def test_string_like_on_sub(world: World, key: rsa.RSAPrivateKey) -> None:
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], {"StringLike": {f"{PROVIDER_URL}:sub": "team-*"}}))
    assert world.judge(sign(claims(sub="team-a"), key)).grant is not None
    assert refusal(world.judge(sign(claims(sub="other"), key))) == DENIED


def test_the_aud_condition_key(world: World, key: rsa.RSAPrivateKey) -> None:
    world.providers[PROVIDER_ARN] = wi.OidcProvider(PROVIDER_ARN, PROVIDER_URL, (AUDIENCE, "other-client"))
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], {"StringEquals": {f"{PROVIDER_URL}:aud": AUDIENCE}}))
    assert world.judge(sign(claims(), key)).grant is not None
    assert refusal(world.judge(sign(claims(aud="other-client"), key))) == DENIED


def test_only_the_federated_provider_principal_is_trusted(world: World, key: rsa.RSAPrivateKey) -> None:
    other_provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], provider=other_provider))
    assert refusal(world.judge(sign(claims(), key))) == DENIED
    world.set_trust(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }
    )
    assert refusal(world.judge(sign(claims(), key))) == DENIED


def test_the_action_must_be_assume_role_with_web_identity(world: World, key: rsa.RSAPrivateKey) -> None:
    world.set_trust(federated(["sts:AssumeRole"]))
    assert refusal(world.judge(sign(claims(), key))) == DENIED


def test_an_explicit_deny_wins(world: World, key: rsa.RSAPrivateKey) -> None:
    deny = {**federated(["sts:AssumeRoleWithWebIdentity"], SUB_ALICE), "Effect": "Deny"}
    world.set_trust(federated(ALL_ACTIONS), deny)
    assert refusal(world.judge(sign(claims(), key))) == DENIED


def test_a_missing_role_is_denied_like_an_untrusting_one(world: World, key: rsa.RSAPrivateKey) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:role/nope"
    assert refusal(world.judge(sign(claims(), key), role=missing)) == DENIED


def test_a_forged_token_learns_nothing_about_the_role(world: World, other_key: rsa.RSAPrivateKey) -> None:
    missing = f"arn:aws:iam::{ACCOUNT}:role/nope"
    assert refusal(world.judge(sign(claims(), other_key), role=missing)) == invalid(wi.BAD_SIGNATURE)


def test_an_unreadable_trust_policy_fails_closed(world: World, key: rsa.RSAPrivateKey) -> None:
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], {"StringFancy": {f"{PROVIDER_URL}:sub": "alice"}}))
    assert refusal(world.judge(sign(claims(), key))) == DENIED


# LocalStack's CloudFormation rewrites a whole execute-api URL string (the provider's Url) into
# its own form, but not the same URL inside a trust policy's condition keys
REWRITTEN_URL = "abc123.execute-api.localhost.localstack.cloud:4566/prod"
REWRITTEN_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{REWRITTEN_URL}"


@pytest.mark.parametrize(
    ("prefix", "names"),
    [
        (REWRITTEN_URL, True),
        ("abc123.execute-api.us-east-1.amazonaws.com/prod", True),
        ("abc123.execute-api.us-east-1.localhost.localstack.cloud/prod", True),
        ("abc123.execute-api.us-east-1.amazonaws.com/other", False),
        ("xyz789.execute-api.us-east-1.amazonaws.com/prod", False),
        ("abc123.execute-api.us-east-1.amazonaws.com.evil.example/prod", False),
        ("token.actions.githubusercontent.com", False),
    ],
)
def test_condition_keys_name_a_provider_localstack_rewrote(prefix: str, names: bool) -> None:
    assert wi.names_provider(prefix, REWRITTEN_URL) is names


def test_a_provider_localstack_did_not_rewrite_is_named_exactly() -> None:
    assert not wi.names_provider("abc123.execute-api.eu-west-1.amazonaws.com/prod", PROVIDER_URL)
    policy = trust_policy(federated(["sts:AssumeRoleWithWebIdentity"], SUB_ALICE))
    assert wi.align_provider_keys(policy, PROVIDER_URL) == policy


def test_a_stacks_trust_policy_reads_as_on_aws_after_localstacks_rewriting(
    world: World, key: rsa.RSAPrivateKey
) -> None:
    issuer = f"https://{REWRITTEN_URL}"
    world.providers[REWRITTEN_ARN] = wi.OidcProvider(REWRITTEN_ARN, REWRITTEN_URL, (AUDIENCE,))
    world.documents[f"{issuer}/.well-known/openid-configuration"] = {"jwks_uri": JWKS_URI}
    aws_shaped = "abc123.execute-api.us-east-1.amazonaws.com/prod"
    condition = {"StringEquals": {f"{aws_shaped}:aud": AUDIENCE, f"{aws_shaped}:sub": "alice"}}
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], condition, provider=REWRITTEN_ARN))
    assert world.judge(sign(claims(iss=issuer), key)).grant is not None
    assert refusal(world.judge(sign(claims(iss=issuer, sub="mallory"), key))) == DENIED
    other_api = {"StringEquals": {"xyz789.execute-api.us-east-1.amazonaws.com/prod:sub": "alice"}}
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], other_api, provider=REWRITTEN_ARN))
    assert refusal(world.judge(sign(claims(iss=issuer), key))) == DENIED


# ---------------------------------------------------------------------------- source identity & tags


def test_the_source_identity_claim_needs_set_source_identity(world: World, key: rsa.RSAPrivateKey) -> None:
    token = sign(claims(**{wi.SOURCE_IDENTITY_CLAIM: "alice"}), key)
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], SUB_ALICE))
    assert refusal(world.judge(token)) == DENIED
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity"], SUB_ALICE))
    verdict = world.judge(token)
    assert verdict.grant is not None and verdict.grant.source_identity == "alice" == verdict.source_identity


def test_the_source_identity_condition_key_comes_from_the_claim(world: World, key: rsa.RSAPrivateKey) -> None:
    condition = {"StringEquals": {"sts:SourceIdentity": "alice"}}
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity"], condition))
    assert world.judge(sign(claims(**{wi.SOURCE_IDENTITY_CLAIM: "alice"}), key)).grant is not None
    assert refusal(world.judge(sign(claims(**{wi.SOURCE_IDENTITY_CLAIM: "bob"}), key))) == DENIED
    assert refusal(world.judge(sign(claims(), key))) == DENIED  # absent key: the condition fails


@pytest.mark.parametrize("value", ["a", "x" * 65, "aws:alice", "has space", 42])
def test_a_malformed_source_identity_claim_is_refused(world: World, key: rsa.RSAPrivateKey, value: Any) -> None:
    token = sign(claims(**{wi.SOURCE_IDENTITY_CLAIM: value}), key)
    assert refusal(world.judge(token)) == invalid(wi.BAD_SOURCE_IDENTITY)


def tags(principal: dict[str, Any], transitive: list[str] | None = None) -> dict[str, Any]:
    return {wi.TAGS_CLAIM: {"principal_tags": principal, "transitive_tag_keys": transitive or []}}


def test_the_tags_claim_needs_tag_session(world: World, key: rsa.RSAPrivateKey) -> None:
    token = sign(claims(**tags({"credvend:caller": ["alice"], "credvend:request-id": ["r1"]})), key)
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], SUB_ALICE))
    assert refusal(world.judge(token)) == DENIED
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity", "sts:TagSession"], SUB_ALICE))
    grant = world.judge(token).grant
    assert grant is not None and grant.tags is not None
    assert dict(grant.tags.tags) == {"credvend:caller": "alice", "credvend:request-id": "r1"}


def test_an_empty_tags_claim_still_needs_tag_session(world: World, key: rsa.RSAPrivateKey) -> None:
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"], SUB_ALICE))
    assert refusal(world.judge(sign(claims(**tags({})), key))) == DENIED


def test_request_tag_and_tag_keys_conditions(world: World, key: rsa.RSAPrivateKey) -> None:
    condition = {
        "StringEquals": {"aws:RequestTag/team": "blue"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
    }
    world.set_trust(federated(["sts:AssumeRoleWithWebIdentity"]), federated(["sts:TagSession"], condition))
    assert world.judge(sign(claims(**tags({"team": ["blue"]})), key)).grant is not None
    assert refusal(world.judge(sign(claims(**tags({"team": ["red"]})), key))) == DENIED
    assert refusal(world.judge(sign(claims(**tags({"team": ["blue"], "x": ["y"]})), key))) == DENIED


@pytest.mark.parametrize(
    "claim",
    [
        "not an object",
        {"principal_tags": {"team": ["a", "b"]}},
        {"principal_tags": {"team": ["x" * 257]}},
        {"principal_tags": {"aws:team": ["a"]}},
        {"principal_tags": {"Team": ["a"], "team": ["b"]}},
        {"principal_tags": {f"k{i}": ["v"] for i in range(51)}},
        {"principal_tags": {"team": ["a"]}, "transitive_tag_keys": ["other"]},
        {"principal_tags": {"team": ["a"]}, "unknown": []},
    ],
)
def test_a_malformed_tags_claim_is_refused(world: World, key: rsa.RSAPrivateKey, claim: Any) -> None:
    assert refusal(world.judge(sign(claims(**{wi.TAGS_CLAIM: claim}), key))) == invalid(wi.BAD_TAGS)


# ---------------------------------------------------------------------------- duration


def test_more_than_the_roles_max_session_duration_is_a_validation_error(world: World, key: rsa.RSAPrivateKey) -> None:
    world.set_trust(federated(ALL_ACTIONS, SUB_ALICE), max_session=7200)
    assert refusal(world.judge(sign(claims(), key), duration=7201)) == ("ValidationError", MAX_SESSION, 400)
    grant = world.judge(sign(claims(), key), duration=7200).grant
    assert grant is not None and grant.duration_seconds == 7200


def test_there_is_no_role_chaining_cap(world: World, key: rsa.RSAPrivateKey) -> None:
    # the call is unsigned: whoever sends the token, it is never a chained session
    grant = world.judge(sign(claims(), key), duration=43200).grant
    assert grant is not None and grant.duration_seconds == 43200 > iam.ROLE_CHAINING_LIMIT


# ---------------------------------------------------------------------------- what is recorded


def test_a_verdict_carries_no_token(world: World, key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> None:
    for token in (sign(claims(), key), sign(claims(), other_key), sign(claims(exp=NOW - 5), key)):
        verdict = world.judge(token)
        assert token not in repr(verdict)
        assert token.split(".")[2] not in repr(verdict)


def test_the_journal_records_web_identity_decisions() -> None:
    journal = AssumeRoleJournal()
    journal.record(
        caller_arn=PROVIDER_ARN,
        role_arn=ROLE_ARN,
        role_session_name="alice",
        duration_seconds=43200,
        source_identity="alice",
        operation=wi.OPERATION,
        subject="alice",
    )
    journal.record(
        caller_arn="x", role_arn=ROLE_ARN, role_session_name="s", duration_seconds=None, source_identity=None
    )
    first, second = journal.snapshot()["entries"]
    assert (first["operation"], first["subject"], first["outcome"]) == ("AssumeRoleWithWebIdentity", "alice", "allowed")
    assert (second["operation"], second["subject"]) == ("AssumeRole", None)


def test_the_e2e_journal_reader_counts_web_identity_calls_with_the_stacks_issuer_as_the_functions() -> None:
    function_role = f"arn:aws:iam::{ACCOUNT}:role/credvend-fn"
    entry = {"operation": "AssumeRoleWithWebIdentity", "caller_arn": PROVIDER_ARN}
    assert StsJournal("http://x", function_role, issuer_provider_arn=PROVIDER_ARN).is_function(entry)
    assert not StsJournal("http://x", function_role).is_function(entry)
    other = {**entry, "caller_arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/elsewhere.example"}
    assert not StsJournal("http://x", function_role, issuer_provider_arn=PROVIDER_ARN).is_function(other)
    session = {"caller_arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/credvend-fn/credvend-fn"}
    assert StsJournal("http://x", function_role, issuer_provider_arn=PROVIDER_ARN).is_function(session)


# ---------------------------------------------------------------------------- where keys are fetched from

GATEWAY = "http://127.0.0.1:4599"


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        (
            "https://abc123.execute-api.us-east-1.amazonaws.com/prod/.well-known/jwks.json",
            f"{GATEWAY}/_aws/execute-api/abc123/prod/.well-known/jwks.json",
        ),
        (
            "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/.well-known/openid-configuration",
            f"{GATEWAY}/_aws/execute-api/abc123/v1/.well-known/openid-configuration",
        ),
        (
            "https://abc123.execute-api.localhost.localstack.cloud:4566/prod/.well-known/jwks.json",
            f"{GATEWAY}/_aws/execute-api/abc123/prod/.well-known/jwks.json",
        ),
        (
            "https://abc123.execute-api.us-east-1.localhost.localstack.cloud/prod/.well-known/jwks.json",
            f"{GATEWAY}/_aws/execute-api/abc123/prod/.well-known/jwks.json",
        ),
        ("https://127.0.0.1:8443/issuer/.well-known/jwks.json", "http://127.0.0.1:8443/issuer/.well-known/jwks.json"),
        ("http://localhost:9000/keys", "http://localhost:9000/keys"),
    ],
)
def test_resolve_fetch_url(url: str, resolved: str) -> None:
    assert wi.resolve_fetch_url(url, GATEWAY) == resolved


@pytest.mark.parametrize(
    "url",
    [
        "https://token.actions.githubusercontent.com/.well-known/openid-configuration",
        "http://abc123.execute-api.us-east-1.amazonaws.com/prod/.well-known/jwks.json",  # STS needs https
        "https://abc123.execute-api.us-east-1.amazonaws.com/",  # no stage
        "https://abc123.execute-api.us-east-1.amazonaws.com.evil.example/prod/keys",
        "file:///etc/passwd",
        "ftp://127.0.0.1/keys",
    ],
)
def test_other_issuers_are_unreachable(url: str) -> None:
    with pytest.raises(wi.IdpUnreachable):
        wi.resolve_fetch_url(url, GATEWAY)


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    routes: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = routes.get(self.path, (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


def test_fetch_json_takes_200_json_only(http_server: tuple[str, dict[str, tuple[int, bytes]]]) -> None:
    base, routes = http_server
    routes["/ok"] = (200, b'{"keys": []}')
    routes["/html"] = (200, b"<html>")
    routes["/gone"] = (500, b'{"keys": []}')
    assert wi.fetch_json(f"{base}/ok") == {"keys": []}
    for path in ("/html", "/gone", "/missing"):
        with pytest.raises(wi.IdpUnreachable):
            wi.fetch_json(f"{base}{path}")


def test_fetch_json_of_a_closed_port_is_unreachable() -> None:
    with pytest.raises(wi.IdpUnreachable):
        wi.fetch_json("http://127.0.0.1:9/keys", timeout=2)


# ---------------------------------------------------------------------------- the evaluator's Federated principal


def test_federated_principals_name_web_identity_callers_only() -> None:
    web = iam.Caller(arn=PROVIDER_ARN, account=ACCOUNT, principal_type="WebIdentityUser", principal_arn=PROVIDER_ARN)
    root = iam.Caller(
        arn=f"arn:aws:iam::{ACCOUNT}:root",
        account=ACCOUNT,
        principal_type="Account",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:root",
    )
    assert iam.principal_matches({"Federated": PROVIDER_ARN}, web)
    assert not iam.principal_matches({"Federated": PROVIDER_ARN}, root)
    assert not iam.principal_matches({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, web)
    assert not iam.principal_matches({"AWS": "*"}, web)
    assert iam.principal_matches("*", web)

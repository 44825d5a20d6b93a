"""OIDC callers through the handler (CONTRACT §10): real tokens from a local issuer, every
forgery refused with 401 and zero STS calls, 403 for no or two matching callers, 503 when
the issuer's keys cannot be fetched."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from credvend import handler as handler_module
from credvend.domain.formats import AssumedRole, Credentials
from credvend.settings import Settings
from credvend_local.oidc_issuer import FORGERIES, LocalOidcIssuer
from tests.unit.conftest import ACCOUNT, BILLING_SESSION, FUNCTION_ROLE_SESSION, FakeLambdaContext, rest_event

ONE_MESSAGE = "The request carries no verified caller identity."


class CountingSts:
    """An STS port that records every call (the hidden checks count them too)."""

    max_call_seconds = 7.0

    def __init__(self) -> None:
        self.assume_calls: list[dict[str, Any]] = []
        self.identity_calls = 0

    @property
    def calls(self) -> int:
        return len(self.assume_calls) + self.identity_calls

    def caller_identity_arn(self) -> str:
        self.identity_calls += 1
        return FUNCTION_ROLE_SESSION

    def assume_role(
        self, *, role_arn: str, session_name: str, tags: Sequence[tuple[str, str]], **kw: Any
    ) -> AssumedRole:
        self.assume_calls.append({"role_arn": role_arn, "session_name": session_name, "tags": dict(tags), **kw})
        secret = SecretStr("vended-secret-key-value")
        token = SecretStr("vended-session-token-value")
        role_name = role_arn.rsplit("/", 1)[1]
        return AssumedRole(
            Credentials("ASIAVENDED", secret, token, datetime(2030, 1, 1, tzinfo=UTC)),
            f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{session_name}",
            f"AROA:{session_name}",
        )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def github() -> Iterator[LocalOidcIssuer]:
    with LocalOidcIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def kubernetes() -> Iterator[LocalOidcIssuer]:
    with LocalOidcIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def offline_url() -> str:
    return f"http://127.0.0.1:{_closed_port()}"


def oidc_policy(github: str, kubernetes: str, offline: str) -> str:
    return f"""
version: 1
roles:
  deployer:
    create: true
    max_session_duration: 14400
  reports-reader:
    create: true
  nobodys-role:
    create: true
issuers:
  github:
    url: {github}
    audiences: [credvend, sts.amazonaws.com]
  kubernetes:
    url: {kubernetes}
    audiences: [credvend]
    max_token_age_seconds: 3600
  offline:
    url: {offline}
    audiences: [credvend]
callers:
  deploy-prod:
    oidc:
      - issuer: github
        claims:
          sub: "repo:acme/app:environment:prod"
          repository_owner: acme
    grants:
      - role: deployer
        max_duration_seconds: 7200
  shared-main:
    oidc:
      - issuer: github
        claims: {{sub: "repo:acme/shared:ref:refs/heads/*"}}
    grants: [{{role: reports-reader}}]
  shared-any:
    oidc:
      - issuer: github
        claims: {{sub: "repo:acme/shared:*"}}
    grants: [{{role: reports-reader}}]
  k8s-deployer:
    iam_principals: [arn:aws:iam::{ACCOUNT}:role/billing-api-task]
    oidc:
      - issuer: kubernetes
        claims: {{sub: "system:serviceaccount:ci:deploy?r"}}
    grants:
      - role: reports-reader
  offline-caller:
    oidc:
      - issuer: offline
        claims: {{sub: "anyone-at-all"}}
    grants: [{{role: reports-reader}}]
"""


@pytest.fixture
def sts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    github: LocalOidcIssuer,
    kubernetes: LocalOidcIssuer,
    offline_url: str,
) -> CountingSts:
    github.available = kubernetes.available = True
    policy = tmp_path / "policy.yaml"
    policy.write_text(oidc_policy(github.url, kubernetes.url, offline_url))
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy))
    fake = CountingSts()
    handler_module.reset_runtime(settings=Settings.from_env(), sts=fake)
    return fake


def oidc_event(
    method: str,
    path: str,
    *,
    token: str | None,
    body: dict[str, Any] | str | None = None,
    query: dict[str, str] | None = None,
    header: str = "Authorization",
    bearer: bool = True,
    user_arn: str | None = None,
) -> dict[str, Any]:
    """What API Gateway sends for a method with no authorization: identity fields null."""
    event = rest_event(method, path, body=body, query=query, user_arn=user_arn)
    if path.startswith("/oidc/credentials/"):
        event["resource"] = event["requestContext"]["resourcePath"] = "/oidc/credentials/{role}"
        event["pathParameters"] = {"role": path.rsplit("/", 1)[1]}
    if token is not None:
        value = f"Bearer {token}" if bearer else token
        event["headers"][header] = value
        event["multiValueHeaders"][header] = [value]
    return event


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    result = handler_module.handler(event, FakeLambdaContext())
    return result["statusCode"], json.loads(result["body"])


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The decision lines logged since the last call (their structured fields)."""
    fields = [name for name in ("issuer", "subject", "principal_arn", "caller", "outcome", "reason")]
    lines = [
        {name: getattr(record, name, None) for name in fields}
        for record in caplog.records
        if record.getMessage() == "credential vend decision"
    ]
    caplog.clear()
    return lines


# -- tokens that vend -----------------------------------------------------------------------


def test_github_token_vends_with_subject_in_audit_and_tags(
    sts: CountingSts, github: LocalOidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = github.github_token(repository="acme/app", environment="prod")
    status, body = call(
        oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer", "duration_seconds": 43200})
    )

    assert status == 200, body
    grant = body["Grant"]
    assert grant["Caller"] == "deploy-prod"
    assert grant["SourceIdentity"] == "deploy-prod"
    assert grant["GrantedDurationSeconds"] == 3600  # the same clamping as the IAM routes
    assert grant["LimitedBy"] == ["role_chaining"]
    assert len(sts.assume_calls) == 1
    assert sts.assume_calls[0]["tags"] == {
        "credvend:caller": "deploy-prod",
        "credvend:request-id": "req-0001",
        "credvend:subject": "repo:acme/app:environment:prod",
    }
    (line,) = audit_lines(caplog)
    assert line["outcome"] == "vended"
    assert line["issuer"] == "github"
    assert line["subject"] == "repo:acme/app:environment:prod"
    assert line["principal_arn"] is None
    assert token not in json.dumps(line)


def test_get_route_container_format_with_a_bare_token_and_any_header_case(
    sts: CountingSts, kubernetes: LocalOidcIssuer
) -> None:
    token = kubernetes.kubernetes_token(namespace="ci", service_account="deployer")
    event = oidc_event(
        "GET",
        "/oidc/credentials/reports-reader",
        token=token,
        query={"format": "container"},
        header="authorization",
        bearer=False,  # what AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) makes an SDK send
    )
    status, body = call(event)

    assert status == 200, body
    assert set(body) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn", "AccountId"}
    assert sts.assume_calls[0]["tags"]["credvend:subject"] == "system:serviceaccount:ci:deployer"


def test_long_subject_is_cut_to_256_in_the_session_tag(sts: CountingSts, kubernetes: LocalOidcIssuer) -> None:
    # A sub the glob accepts, then padded by a claim the matcher ignores? No: sub itself is long.
    long_sub = "system:serviceaccount:ci:deployer"
    token = kubernetes.kubernetes_token(namespace="ci", service_account="deployer")
    status, _ = call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "reports-reader"}))
    assert status == 200
    assert sts.assume_calls[0]["tags"]["credvend:subject"] == long_sub
    from credvend.domain.naming import name_session

    naming = name_session("{caller}", caller="c", role="r", request_id="q", subject="s" * 1000)
    assert dict(naming.tags)["credvend:subject"] == "s" * 256


def test_jwks_is_cached_per_container(sts: CountingSts, github: LocalOidcIssuer) -> None:
    before = github.jwks_requests
    for _ in range(3):
        token = github.github_token(repository="acme/app", environment="prod")
        assert call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer"}))[0] == 200
    assert github.jwks_requests - before == 1


# -- every forgery: 401, one message, zero STS calls -------------------------------------------------


@pytest.mark.parametrize("kind", FORGERIES)
def test_forgeries_are_401_with_zero_sts_calls(
    sts: CountingSts, github: LocalOidcIssuer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = github.forge(kind, github.github_claims(repository="acme/app", environment="prod"))
    status, body = call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer"}))

    assert status == 401, (kind, body)
    assert body["Error"] == {"Code": "Unauthenticated", "Message": ONE_MESSAGE}
    assert sts.calls == 0
    (line,) = audit_lines(caplog)
    assert line["outcome"] == "denied"
    assert line["reason"].startswith("token_"), line["reason"]
    assert token not in caplog.text


def test_forgery_reasons_are_told_apart_in_the_audit_line(
    sts: CountingSts, github: LocalOidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    claims = github.github_claims(repository="acme/app", environment="prod")
    reasons = {}
    for kind in FORGERIES:
        call(oidc_event("POST", "/oidc/credentials", token=github.forge(kind, claims), body={"role": "deployer"}))
        (line,) = audit_lines(caplog)
        reasons[kind] = line["reason"]
    assert reasons == {
        "other_key_same_kid": "token_bad_signature",
        "alg_none": "token_algorithm_not_allowed",
        "hs256_public_key": "token_algorithm_not_allowed",
        "expired": "token_expired",
        "nbf_future": "token_not_yet_valid",
        "wrong_aud": "token_wrong_audience",
        "wrong_iss": "token_unknown_issuer",
        "garbage": "token_malformed",
    }
    assert sts.calls == 0


def test_hs256_with_the_public_key_is_refused_even_if_the_policy_listed_hmac(github: LocalOidcIssuer) -> None:
    # The loader refuses HS* (tests/unit/test_policy_loader.py); this proves the verifier's own
    # guard too: an RSA JWK is never turned into an HMAC secret.
    from credvend.domain.errors import Unauthenticated
    from credvend.oidc.verify import OidcVerifier
    from credvend_policy import IssuerSpec

    spec = IssuerSpec.model_construct(
        url=github.url,
        audiences=("credvend",),
        algorithms=("RS256", "HS256"),
        jwks_uri=None,
        max_token_age_seconds=None,
    )
    verifier = OidcVerifier({"github": spec})
    token = github.forge("hs256_public_key", github.github_claims())
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    assert caught.value.reason == "token_key_algorithm_mismatch"


def test_claims_in_the_past_future_and_age(
    sts: CountingSts, github: LocalOidcIssuer, kubernetes: LocalOidcIssuer
) -> None:
    import time

    now = int(time.time())
    within_leeway = github.mint({**github.github_claims(repository="acme/app"), "iat": now + 30, "nbf": now + 30})
    assert call(oidc_event("POST", "/oidc/credentials", token=within_leeway, body={"role": "deployer"}))[0] == 200
    iat_future = github.mint({**github.github_claims(repository="acme/app"), "iat": now + 600})
    assert call(oidc_event("POST", "/oidc/credentials", token=iat_future, body={"role": "deployer"}))[0] == 401
    expired_within_leeway = github.mint({**github.github_claims(repository="acme/app"), "exp": now - 30})
    assert (
        call(oidc_event("POST", "/oidc/credentials", token=expired_within_leeway, body={"role": "deployer"}))[0] == 200
    )
    too_old = kubernetes.mint(
        {**kubernetes.kubernetes_claims(namespace="ci", service_account="deployer"), "iat": now - 7200}
    )
    assert call(oidc_event("POST", "/oidc/credentials", token=too_old, body={"role": "reports-reader"}))[0] == 401
    no_exp = {k: v for k, v in github.github_claims(repository="acme/app").items() if k != "exp"}
    assert call(oidc_event("POST", "/oidc/credentials", token=github.mint(no_exp), body={"role": "deployer"}))[0] == 401
    no_iat = {k: v for k, v in github.github_claims(repository="acme/app").items() if k != "iat"}
    assert call(oidc_event("POST", "/oidc/credentials", token=github.mint(no_iat), body={"role": "deployer"}))[0] == 200
    k8s = kubernetes.kubernetes_claims(namespace="ci", service_account="deployer")
    k8s_no_iat = kubernetes.mint({k: v for k, v in k8s.items() if k != "iat"})  # its issuer has a max age
    assert call(oidc_event("POST", "/oidc/credentials", token=k8s_no_iat, body={"role": "reports-reader"}))[0] == 401
    assert len(sts.assume_calls) == 3


def test_another_issuers_iss_with_this_issuers_key_is_401(
    sts: CountingSts, github: LocalOidcIssuer, kubernetes: LocalOidcIssuer
) -> None:
    claims = kubernetes.kubernetes_claims(namespace="ci", service_account="deployer")
    token = github.mint(claims)  # github's key, kubernetes' iss: not a key of that issuer
    assert call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "reports-reader"}))[0] == 401
    assert sts.calls == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20261203/us-east-1/execute-api/aws4_request"},
        {"Authorization": "Bearer " + "a" * 20000 + ".b.c"},
    ],
)
def test_no_or_unusable_authorization_header_is_401(sts: CountingSts, headers: dict[str, str]) -> None:
    event = oidc_event("POST", "/oidc/credentials", token=None, body={"role": "deployer"})
    event["headers"].update(headers)
    event["multiValueHeaders"].update({name: [value] for name, value in headers.items()})
    status, body = call(event)
    assert (status, body["Error"]["Message"]) == (401, ONE_MESSAGE)
    assert sts.calls == 0


def test_two_authorization_headers_are_401(sts: CountingSts, github: LocalOidcIssuer) -> None:
    good = github.github_token(repository="acme/app", environment="prod")
    event = oidc_event("POST", "/oidc/credentials", token=good, body={"role": "deployer"})
    event["multiValueHeaders"]["authorization"] = [f"Bearer {good}"]
    assert call(event)[0] == 401
    assert sts.calls == 0


def test_token_is_checked_before_the_body(sts: CountingSts) -> None:
    status, _ = call(oidc_event("POST", "/oidc/credentials", token=None, body="{broken"))
    assert status == 401


# -- routes and identities never mix ------------------------------------------------------------------


def test_oidc_route_never_uses_a_sigv4_identity(sts: CountingSts) -> None:
    # billing-api-task is k8s-deployer's IAM principal: on the OIDC route it counts for nothing.
    event = oidc_event(
        "POST", "/oidc/credentials", token=None, body={"role": "reports-reader"}, user_arn=BILLING_SESSION
    )
    assert call(event)[0] == 401
    assert sts.calls == 0


def test_iam_route_never_accepts_a_token(sts: CountingSts, kubernetes: LocalOidcIssuer) -> None:
    token = kubernetes.kubernetes_token(namespace="ci", service_account="deployer")
    event = oidc_event("POST", "/credentials", token=token, body={"role": "reports-reader"}, user_arn=None)
    status, body = call(event)
    assert (status, body["Error"]["Code"]) == (401, "Unauthenticated")
    assert sts.calls == 0
    # while the same caller's SigV4 principal still works on the IAM route
    event = rest_event("POST", "/credentials", body={"role": "reports-reader"}, user_arn=BILLING_SESSION)
    assert call(event)[0] == 200


# -- valid tokens that are no caller, or two ---------------------------------------------------------


def test_valid_token_matching_no_caller_is_403(
    sts: CountingSts, github: LocalOidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    for claims in (
        github.github_claims(repository="acme/app", environment="staging"),  # sub differs
        github.github_claims(repository="acme/app", environment="prod", repository_owner="evil"),  # other claim
    ):
        status, body = call(
            oidc_event("POST", "/oidc/credentials", token=github.mint(claims), body={"role": "deployer"})
        )
        assert (status, body["Error"]["Code"]) == (403, "AccessDenied")
        (line,) = audit_lines(caplog)
        assert line["reason"] == "no_matching_caller"
        assert line["subject"] == claims["sub"]
    assert sts.calls == 0


def test_valid_token_matching_two_callers_is_403(
    sts: CountingSts, github: LocalOidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    token = github.github_token(repository="acme/shared", environment=None, ref="refs/heads/main")
    status, body = call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "reports-reader"}))
    assert (status, body["Error"]["Code"]) == (403, "AccessDenied")
    assert audit_lines(caplog)[0]["reason"] == "ambiguous_caller"
    assert sts.calls == 0
    # a ref only one of the two globs accepts is that caller
    token = github.github_token(repository="acme/shared", environment="prod")
    status, body = call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "reports-reader"}))
    assert (status, body["Grant"]["Caller"]) == (200, "shared-any")


def test_role_not_granted_is_403(sts: CountingSts, github: LocalOidcIssuer) -> None:
    token = github.github_token(repository="acme/app", environment="prod")
    assert call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "nobodys-role"}))[0] == 403
    assert call(oidc_event("GET", "/oidc/credentials/no-such-role", token=token))[0] == 403
    assert sts.calls == 0


def test_bad_request_on_the_oidc_route_gets_the_iam_routes_codes(sts: CountingSts, github: LocalOidcIssuer) -> None:
    token = github.github_token(repository="acme/app", environment="prod")
    cases = [
        ({"role": "deployer", "duration_seconds": 0}, 400, "InvalidDuration"),
        ({"role": "deployer", "format": "xml"}, 400, "InvalidRequest"),
        ({"role": "deployer", "extra": 1}, 400, "InvalidRequest"),
        ("x" * 9000, 413, "PayloadTooLarge"),
    ]
    for body, status, code in cases:
        got_status, got = call(oidc_event("POST", "/oidc/credentials", token=token, body=body))
        assert (got_status, got["Error"]["Code"]) == (status, code)
    assert sts.calls == 0


# -- the issuer's keys -------------------------------------------------------------------------------


def test_jwks_unreachable_is_503_with_zero_sts_calls(
    sts: CountingSts, github: LocalOidcIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    github.available = False
    token = github.github_token(repository="acme/app", environment="prod")
    status, body = call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer"}))
    assert (status, body["Error"]["Code"]) == (503, "UpstreamUnavailable")
    assert audit_lines(caplog)[0]["reason"] == "jwks_http_503"
    github.available = True
    assert call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer"}))[0] == 200
    assert len(sts.assume_calls) == 1


def test_issuer_that_does_not_listen_is_503(sts: CountingSts, github: LocalOidcIssuer, offline_url: str) -> None:
    token = github.mint({**github.github_claims(), "iss": offline_url, "sub": "anyone-at-all"})
    status, body = call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "reports-reader"}))
    assert (status, body["Error"]["Code"]) == (503, "UpstreamUnavailable")
    assert sts.calls == 0


def test_key_rotation_is_picked_up_and_unknown_kids_refetch_at_most_every_30_s() -> None:
    from credvend.oidc.jwks import IssuerKeys
    from credvend_policy import IssuerSpec

    with LocalOidcIssuer() as issuer:
        now = [1000.0]
        spec = IssuerSpec(url=issuer.url, audiences=("credvend",))
        keys = IssuerKeys(spec, clock=lambda: now[0])
        old_kid = issuer.kid
        assert keys.jwk_for(old_kid) is not None
        assert issuer.jwks_requests == 1
        issuer.rotate()
        now[0] += 1
        assert keys.jwk_for(issuer.kid) is None  # unknown kid, but fetched 1 s ago: no new fetch
        assert keys.jwk_for("sprayed-kid") is None
        assert issuer.jwks_requests == 1
        now[0] += 30
        assert keys.jwk_for(issuer.kid) is not None  # one refetch finds the new key
        assert keys.jwk_for("sprayed-kid") is None
        assert issuer.jwks_requests == 2
        assert keys.jwk_for(old_kid) is None  # dropped by the issuer, dropped here


def test_configured_jwks_uri_skips_discovery() -> None:
    from credvend.oidc.jwks import IssuerKeys
    from credvend_policy import IssuerSpec

    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> bytes:
        fetched.append(url)
        return json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}).encode()

    spec = IssuerSpec(url="https://issuer.example.com", audiences=("a",), jwks_uri="https://keys.example.com/jwks")
    assert IssuerKeys(spec, fetch=fetch).jwk_for("k1") is not None
    assert fetched == ["https://keys.example.com/jwks"]


def test_discovery_naming_another_issuer_is_unavailable() -> None:
    from credvend.oidc.jwks import IssuerKeys, JwksUnavailable
    from credvend_policy import IssuerSpec

    def fetch(url: str, timeout: float) -> bytes:
        return json.dumps({"issuer": "https://other.example.com", "jwks_uri": "https://other.example.com/k"}).encode()

    spec = IssuerSpec(url="https://issuer.example.com", audiences=("a",))
    with pytest.raises(JwksUnavailable):
        IssuerKeys(spec, fetch=fetch).jwk_for("k1")


@pytest.mark.parametrize(
    "jwks_uri", ["http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", "http://localhost/k", "https://[::1]/k"]
)
def test_a_remote_issuers_discovery_never_points_the_function_at_its_own_loopback(jwks_uri: str) -> None:
    # Plain http is allowed for loopback issuers (local testing). A remote issuer's discovery
    # document must not use that to make the function GET its own loopback services (the
    # Lambda runtime API listens there).
    from credvend.oidc.jwks import IssuerKeys, JwksUnavailable
    from credvend_policy import IssuerSpec

    fetched: list[str] = []

    def fetch(url: str, timeout: float) -> bytes:
        fetched.append(url)
        return json.dumps({"issuer": "https://issuer.example.com", "jwks_uri": jwks_uri}).encode()

    spec = IssuerSpec(url="https://issuer.example.com", audiences=("a",))
    with pytest.raises(JwksUnavailable) as caught:
        IssuerKeys(spec, fetch=fetch).jwk_for("k1")
    assert caught.value.reason == "discovery_bad_jwks_uri"
    assert fetched == ["https://issuer.example.com/.well-known/openid-configuration"]


def test_a_loopback_issuers_discovery_may_name_a_loopback_jwks_uri() -> None:
    from credvend.oidc.jwks import IssuerKeys
    from credvend_policy import IssuerSpec

    def fetch(url: str, timeout: float) -> bytes:
        if url.endswith("/openid-configuration"):
            return json.dumps({"issuer": "http://127.0.0.1:8443", "jwks_uri": "http://127.0.0.1:8443/k"}).encode()
        return json.dumps({"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB"}]}).encode()

    spec = IssuerSpec(url="http://127.0.0.1:8443", audiences=("a",))
    assert IssuerKeys(spec, fetch=fetch).jwk_for("k1") is not None


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_a_jwks_publishing_a_private_key_verifies_nothing(algorithm: str) -> None:
    # Anyone could sign with a published private key. An RSA one also crashed PyJWT's verify
    # (a private key object has no verify()): a 500; EC and Ed25519 ones verified tokens.
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    from credvend.domain.errors import Unauthenticated
    from credvend.oidc.verify import OidcVerifier
    from credvend_policy import IssuerSpec

    key: Any
    if algorithm == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = RSAAlgorithm.to_jwk(key, as_dict=True)
    elif algorithm == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = ECAlgorithm.to_jwk(key, as_dict=True)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        jwk = OKPAlgorithm.to_jwk(key, as_dict=True)
    assert "d" in jwk

    def fetch(url: str, timeout: float) -> bytes:
        return json.dumps({"keys": [{**jwk, "kid": "k1"}]}).encode()

    url = "https://issuer.example.com"
    spec = IssuerSpec(url=url, audiences=("a",), jwks_uri=f"{url}/keys", algorithms=(algorithm,))
    claims = {"iss": url, "sub": "s", "aud": "a", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, key, algorithm=algorithm, headers={"kid": "k1"})
    with pytest.raises(Unauthenticated) as caught:
        OidcVerifier({"i": spec}, fetch=fetch).verify(token)
    assert caught.value.reason == "token_unknown_key"


def test_the_iam_path_never_imports_the_oidc_verifier() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from credvend import handler; "
        "assert 'jwt' not in sys.modules and 'cryptography' not in sys.modules and "
        "'credvend.oidc' not in sys.modules, sorted(m for m in sys.modules if 'jwt' in m or 'oidc' in m)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root / "lambda_src")


@pytest.mark.parametrize("header", [{"crit": ["exp"], "exp": 1}, {"crit": ["b64"], "b64": False}])
def test_critical_header_extensions_are_refused(
    sts: CountingSts, github: LocalOidcIssuer, header: dict[str, Any]
) -> None:
    token = github.mint(github.github_claims(repository="acme/app", environment="prod"), headers=header)
    assert call(oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer"}))[0] == 401
    assert sts.calls == 0


@pytest.mark.parametrize(
    "mangle",
    [
        {"headers": ["Authorization"], "multiValueHeaders": None},
        {"headers": None, "multiValueHeaders": {"Authorization": "not-a-list"}},
        {"headers": {"Authorization": 42}, "multiValueHeaders": {}},
        {"headers": None, "multiValueHeaders": {"Authorization": [None]}},
    ],
)
def test_odd_header_shapes_are_401_never_500(sts: CountingSts, mangle: dict[str, Any]) -> None:
    event = oidc_event("POST", "/oidc/credentials", token=None, body={"role": "deployer"})
    event.update(mangle)
    status, body = call(event)
    assert (status, body["Error"]["Code"]) == (401, "Unauthenticated")
    assert sts.calls == 0


def test_dry_run_on_the_oidc_route_issues_nothing(sts: CountingSts, github: LocalOidcIssuer) -> None:
    token = github.github_token(repository="acme/app", environment="prod")
    status, body = call(
        oidc_event("POST", "/oidc/credentials", token=token, body={"role": "deployer", "dry_run": True})
    )
    assert status == 200, body
    assert body["DryRun"] is True
    assert body["Grant"]["Caller"] == "deploy-prod"
    assert "Credentials" not in body
    assert sts.assume_calls == []
    forged = github.forge("alg_none", github.github_claims(repository="acme/app", environment="prod"))
    status, _ = call(oidc_event("POST", "/oidc/credentials", token=forged, body={"role": "deployer", "dry_run": True}))
    assert status == 401


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["digits", True, [0]])
def test_time_claims_must_be_json_numbers(
    sts: CountingSts, github: LocalOidcIssuer, caplog: pytest.LogCaptureFixture, name: str, value: object
) -> None:
    # RFC 7519 NumericDate: a string such as "99999999999" (which PyJWT's int() reads) or true
    # is refused, as STS and strict verifiers refuse it, even when the issuer signed it.
    import time

    now = int(time.time())
    claims = github.github_claims(repository="acme/app")
    claims[name] = str(now + 3600 if name == "exp" else now) if value == "digits" else value
    status, body = call(oidc_event("POST", "/oidc/credentials", token=github.mint(claims), body={"role": "deployer"}))
    assert (status, body["Error"]) == (401, {"Code": "Unauthenticated", "Message": ONE_MESSAGE})
    assert sts.calls == 0
    assert audit_lines(caplog)[-1]["outcome"] == "denied"

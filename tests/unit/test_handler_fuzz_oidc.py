"""Fuzzing the token-authenticated routes (CONTRACT §10) and the public discovery routes (§9).

The IAM routes have their own fuzz test (tests/unit/test_handler_fuzz.py). Here: genuine tokens
with mangled claims and headers, forgeries, odd Authorization headers, a SigV4 identity that
must never count, and the bodies and queries of the IAM fuzz test. Whatever the event, the answer
is JSON, 200 or a 4xx from CONTRACT §2 (the issuer's JWKS is up, so never a 5xx); only a token
signed by the issuer's published key ever gets a 200 on a vend route; STS and KMS are called only
for a 200 that is not a dry run; the discovery routes never call STS.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hypothesis
import jwt
import jwt.api_jws
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from credvend import handler as handler_module
from credvend.domain.errors import ERRORS
from credvend.domain.formats import AssumedRole, Credentials
from credvend.settings import Settings
from credvend_local.oidc_issuer import FORGERIES, LocalOidcIssuer
from tests.unit.conftest import ACCOUNT, BILLING_SESSION, FUNCTION_ROLE_SESSION, FakeLambdaContext, rest_event
from tests.unit.test_handler_fuzz import anything, bodies, json_values, pick, texts
from tests.unit.test_web_identity import LocalRsaKey

CLIENT_ERRORS = {code for code, status in ERRORS.items() if 400 <= status < 500 and status != 429}
ONE_MESSAGE = "The request carries no verified caller identity."
ALIASES = ["deployer", "web-reader", "nobodys-role", "Deployer", "x", ""]


class CountingSts:
    """Answers every call (a valid request can succeed) and counts them."""

    max_call_seconds = 7.0

    def __init__(self) -> None:
        self.calls = 0

    def _answer(self, role_arn: str, session_name: str) -> AssumedRole:
        self.calls += 1
        credentials = Credentials(
            access_key_id="ASIAFUZZ",
            secret_access_key=SecretStr("fuzz-secret"),
            session_token=SecretStr("fuzz-token"),
            expiration=datetime.now(UTC) + timedelta(hours=1),
        )
        name = role_arn.rsplit("/", 1)[-1]
        return AssumedRole(credentials, f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session_name}", "AROA:x")

    def assume_role(self, *, role_arn: str, session_name: str, **_: Any) -> AssumedRole:
        return self._answer(role_arn, session_name)

    def assume_role_with_web_identity(self, *, role_arn: str, session_name: str, **_: Any) -> AssumedRole:
        return self._answer(role_arn, session_name)

    def caller_identity_arn(self) -> str:
        self.calls += 1
        return FUNCTION_ROLE_SESSION


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalOidcIssuer]:
    with LocalOidcIssuer() as local:
        yield local


@pytest.fixture
def counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, issuer: LocalOidcIssuer
) -> Iterator[tuple[CountingSts, LocalRsaKey]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""
version: 1
roles:
  deployer:
    create: true
  web-reader:
    create: true
    max_session_duration: 43200
    issuance: web_identity
  nobodys-role:
    create: true
issuers:
  github:
    url: {issuer.url}
    audiences: [credvend]
    max_token_age_seconds: 3600
callers:
  deploy-prod:
    oidc:
      - issuer: github
        claims:
          sub: "repo:acme/app:environment:prod"
          repository_owner: acme
    grants: [{{role: deployer}}, {{role: web-reader}}]
  main-branch:
    oidc:
      - issuer: github
        claims: {{sub: "repo:acme/*:ref:refs/heads/ma?n"}}
    grants: [{{role: deployer}}]
  billing-api:
    iam_principals: [arn:aws:iam::{ACCOUNT}:role/billing-api-task]
    grants: [{{role: deployer}}, {{role: web-reader}}]
""")
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy))
    monkeypatch.setenv("CREDVEND_ISSUER", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod")
    monkeypatch.setenv("CREDVEND_SIGNING_KEY", "alias/credvend-issuer")
    sts, key = CountingSts(), LocalRsaKey()
    handler_module.reset_runtime(settings=Settings.from_env(), sts=sts, signing_key=key)
    yield sts, key


# -- tokens -------------------------------------------------------------------------------------

CLAIM_NAMES = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "repository_owner", "ref", "environment"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mint(issuer: LocalOidcIssuer, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    """Signed by the issuer's published key like ``issuer.mint``, but with any claim values
    (PyJWT's ``jwt.encode`` refuses a non-string iss; a JWS of raw bytes does not)."""
    payload = json.dumps(claims).encode()
    return jwt.api_jws.PyJWS().encode(
        payload, issuer._key, algorithm="RS256", headers={"kid": issuer.kid, **(headers or {})}
    )


@st.composite
def tokens(draw: st.DrawFn, issuer: LocalOidcIssuer) -> tuple[str | None, bool]:
    """(token, genuine): genuine when signed RS256 by the key the issuer publishes."""
    repository = draw(st.sampled_from(["acme/app", "acme/lib", "evil/app"]))
    environment = draw(st.sampled_from(["prod", None]))
    ref = draw(st.sampled_from(["refs/heads/main", "refs/heads/man", "refs/heads/mainx", "refs/tags/v1"]))
    claims = issuer.github_claims(repository=repository, environment=environment, ref=ref)
    # Forgeries carry a real caller's claims: were one accepted, it would vend.
    well_formed = issuer.github_claims(repository="acme/app", environment="prod")
    now = int(time.time())
    for name in draw(st.lists(st.sampled_from(CLAIM_NAMES), max_size=3, unique=True)):
        claims[name] = draw(
            pick(
                (2, json_values),
                (1, st.none()),
                (1, st.sampled_from([now - 7200, now + 7200, str(now + 300), True, 1e400, -1, 10**30])),
                (1, st.sampled_from([issuer.url, issuer.url + "/", "credvend", ["credvend", 1], "x" * 2000])),
            )
        )
    for name in draw(st.lists(st.sampled_from(CLAIM_NAMES), max_size=2, unique=True)):
        claims.pop(name, None)
    kind = draw(st.sampled_from(["genuine", "genuine", "genuine", "header", "forged", "forged", "text"]))
    if kind == "genuine":
        return _mint(issuer, claims), True
    if kind == "header":
        extra = draw(
            st.dictionaries(
                st.sampled_from(["kid", "typ", "crit", "b64", "jku", "x5u", "cty", "zip"]), json_values, max_size=2
            )
        )
        if not isinstance(extra.get("kid", ""), str):
            extra.pop("kid")
        try:
            return _mint(issuer, claims, extra), "crit" not in extra and "b64" not in extra
        except (TypeError, ValueError):
            return _mint(issuer, claims), True
    if kind == "forged":
        forgery = draw(st.sampled_from([*FORGERIES, "flipped", "swapped_claims"]))
        if forgery == "flipped":
            header, payload, signature = _mint(issuer, well_formed).split(".")
            return f"{header}.{payload}.{signature[::-1]}", False
        if forgery == "swapped_claims":
            header, _, signature = _mint(issuer, claims).split(".")
            other = _b64(json.dumps(well_formed).encode())
            return f"{header}.{other}.{signature}", False
        return issuer.forge(forgery, well_formed), forgery in ("expired", "nbf_future", "wrong_aud", "wrong_iss")
    return draw(
        pick((3, texts), (1, st.sampled_from(["a.b.c", "..", "e30.e30.", "Bearer", "Basic dXNlcjpwdw=="])))
    ), False


@st.composite
def oidc_events(draw: st.DrawFn, issuer: LocalOidcIssuer) -> tuple[Any, bool]:
    role = draw(
        pick((4, st.sampled_from(["deployer", "web-reader"])), (2, st.sampled_from(ALIASES)), (1, st.text(max_size=10)))
    )
    method, path = draw(
        pick(
            (5, st.sampled_from([("POST", "/oidc/credentials"), ("GET", "/oidc/credentials/{role}")])),
            (2, st.sampled_from([("GET", "/.well-known/openid-configuration"), ("GET", "/.well-known/jwks.json")])),
            (
                1,
                st.tuples(
                    st.sampled_from(["GET", "POST", "PUT", "HEAD", ""]),
                    st.sampled_from(
                        ["/oidc/", "/oidc/credentials/{role}/x", "/.well-known/", "/.well-known/jwks.json/x", "/oidc"]
                    ),
                ),
            ),
        )
    )
    event = rest_event(method, path.format(role=role), user_arn=None)
    if path == "/oidc/credentials/{role}":
        event["resource"] = "/oidc/credentials/{role}"
        event["pathParameters"] = {"role": role}
    # A SigV4 identity on the request must never stand in for a token.
    event["requestContext"]["identity"]["userArn"] = draw(pick((3, st.none()), (1, st.just(BILLING_SESSION))))
    token, genuine = draw(tokens(issuer))
    value = draw(
        pick(
            (4, st.sampled_from(["Bearer {}", "bearer {}", "{}", "Bearer  {} "])),
            (1, st.sampled_from(["Basic {}", "Bearer {}, {}"])),
        )
    )
    header = draw(
        pick((4, st.sampled_from(["Authorization", "authorization", "AUTHORIZATION"])), (1, st.just("X-Authorization")))
    )
    genuine = genuine and value in ("Bearer {}", "bearer {}", "{}", "Bearer  {} ") and header != "X-Authorization"
    if token is not None:
        written = value.format(token, token)
        event["headers"][header] = written
        event["multiValueHeaders"][header] = draw(
            pick((4, st.just([written])), (1, st.just([written, written])), (1, st.just([])))
        )
    event["body"] = draw(
        pick((3, st.just(json.dumps({"role": role}))), (1, st.just(f'{{"role":"{role}","dry_run":true}}')), (4, bodies))
    )
    query = draw(
        pick(
            (3, st.none()),
            (2, st.dictionaries(st.sampled_from(["duration_seconds", "format", "dry_run"]), texts)),
            (1, st.fixed_dictionaries({"dry_run": st.sampled_from(["true", "false", "True", "1"])})),
            (1, anything),
        )
    )
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = (
        {key: [value] for key, value in query.items()} if isinstance(query, dict) else draw(st.none() | anything)
    )
    for name in draw(pick((4, st.just([])), (1, st.lists(st.sampled_from(sorted(event)), max_size=2, unique=True)))):
        event[name] = draw(anything)
    return event, genuine


# -- the property -------------------------------------------------------------------------------


def _vend_route(event: Any) -> bool:
    return isinstance(event, dict) and isinstance(event.get("path"), str) and event["path"].startswith("/oidc/")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_oidc_and_discovery_routes_answer_json_4xx_or_200_and_only_genuine_tokens_vend(
    counting: tuple[CountingSts, LocalRsaKey], issuer: LocalOidcIssuer, data: st.DataObject
) -> None:
    sts, key = counting
    event, genuine = data.draw(pick((9, oidc_events(issuer)), (1, anything.map(lambda value: (value, False)))))
    calls_before, signs_before = sts.calls, key.sign_calls
    result = handler_module.handler(event, FakeLambdaContext())
    status = result["statusCode"]
    headers = {key: values[-1] for key, values in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    assert headers["Content-Type"] == "application/json"
    body = json.loads(result["body"])
    route = "vend" if _vend_route(event) else "other"
    hypothesis.event(f"{route} {status} {body.get('Error', {}).get('Code', '')}{' dry' if body.get('DryRun') else ''}")
    if status == 200:
        assert "Error" not in body
        if _vend_route(event):
            assert genuine, "a token not signed by the issuer's published key was accepted"
            if body.get("DryRun") is True:
                assert (sts.calls, key.sign_calls) == (calls_before, signs_before)
                assert "Credentials" not in body
            else:
                assert sts.calls > calls_before
                assert headers["Cache-Control"] == "no-store"
        else:  # a discovery document: public, never a vend
            assert sts.calls == calls_before and key.sign_calls == signs_before
            assert "keys" in body or "jwks_uri" in body
        return
    assert 400 <= status < 500, body
    assert set(body) == {"Error", "RequestId"}
    assert body["Error"]["Code"] in CLIENT_ERRORS, body
    assert ERRORS[body["Error"]["Code"]] == status
    if status == 401:
        assert body["Error"]["Message"] == ONE_MESSAGE
    assert sts.calls == calls_before and key.sign_calls == signs_before, "a refused request reached STS or KMS"

"""AssumeRoleWithWebIdentity inside a running LocalStack, judged by the STS rules plugin.

Independent of credvend: the tests run their own OpenID Connect issuer on a loopback port
(credvend_local.web_identity_issuer), register it as an IAM OIDC provider, create roles that trust
it, and check what AWS's STS would answer. Stock LocalStack grants 12 hours to any token;
these tests fail on it. (The rules one by one, without LocalStack: test_web_identity_rules.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from credvend_local.fixtures import localstack  # noqa: F401  (the session fixture that starts LocalStack)
from credvend_local.web_identity_issuer import STS_AUDIENCE, LoopbackIssuer, new_rsa_key, public_jwk, sign, unsigned

pytestmark = pytest.mark.localstack

ACCOUNT = "000000000000"
ROOT_KEYS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
JOURNAL_PATH = "/_credvend/sts/assume-role-journal"
WEB_IDENTITY_ACTIONS = ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity", "sts:TagSession"]


@pytest.fixture(scope="module")
def endpoint(localstack: Any) -> str:  # noqa: F811  (the imported fixture)
    return str(localstack.endpoint)


def client(endpoint: str, service: str, **keys: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **(keys or ROOT_KEYS))


@pytest.fixture(scope="module")
def issuer(endpoint: str) -> Iterator[LoopbackIssuer]:
    """An issuer with an IAM OIDC provider for it (client id sts.amazonaws.com)."""
    with LoopbackIssuer() as issuer:
        iam = client(endpoint, "iam")
        arn = iam.create_open_id_connect_provider(Url=issuer.url, ClientIDList=[STS_AUDIENCE], ThumbprintList=[])[
            "OpenIDConnectProviderArn"
        ]
        issuer.provider_arn = arn
        yield issuer
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


@pytest.fixture
def make_role(endpoint: str) -> Iterator[Callable[..., str]]:
    iam = client(endpoint, "iam")
    created: list[str] = []

    def make(statements: list[dict[str, Any]], max_session: int = 43200) -> str:
        name = f"webid-{uuid.uuid4().hex[:8]}"
        created.append(name)
        policy = {"Version": "2012-10-17", "Statement": statements}
        return str(
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy), MaxSessionDuration=max_session)[
                "Role"
            ]["Arn"]
        )

    yield make
    for name in created:
        iam.delete_role(RoleName=name)


def trusting(issuer: LoopbackIssuer, subs: list[str], actions: list[str] = WEB_IDENTITY_ACTIONS) -> dict[str, Any]:
    url = issuer.provider_url
    return {
        "Effect": "Allow",
        "Principal": {"Federated": issuer.provider_arn},
        "Action": actions,
        "Condition": {"StringEquals": {f"{url}:aud": STS_AUDIENCE, f"{url}:sub": subs}},
    }


def assume(endpoint: str, role: str, token: str, duration: int | None = None, session: str = "webid") -> dict:
    params: dict[str, Any] = {"RoleArn": role, "RoleSessionName": session, "WebIdentityToken": token}
    if duration is not None:
        params["DurationSeconds"] = duration
    # botocore sends AssumeRoleWithWebIdentity unsigned, as on AWS
    return dict(client(endpoint, "sts").assume_role_with_web_identity(**params))


def refused(call: Callable[[], Any]) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_valid_token_gets_twelve_hours_and_working_credentials(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    role = make_role([trusting(issuer, ["alice"])])
    token = issuer.mint("alice", **{"https://aws.amazon.com/source_identity": "alice"})
    granted = assume(endpoint, role, token, duration=43200, session="alice")

    expiration = granted["Credentials"]["Expiration"]
    lifetime = expiration - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=11, minutes=55) < lifetime <= dt.timedelta(hours=12)
    role_name = role.rsplit("/", 1)[-1]
    assert granted["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/alice"
    assert granted["SubjectFromWebIdentityToken"] == "alice"
    assert granted["Provider"] == issuer.provider_arn
    assert granted["Audience"] == STS_AUDIENCE
    assert granted["SourceIdentity"] == "alice"

    creds = granted["Credentials"]
    keys = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    assert client(endpoint, "sts", **keys).get_caller_identity()["Arn"] == granted["AssumedRoleUser"]["Arn"]


def test_the_source_identity_persists_into_chained_sessions(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    first = make_role([trusting(issuer, ["alice"])])
    # the second role admits only sessions of the first whose source identity is alice
    second = make_role(
        [
            {
                "Effect": "Allow",
                "Principal": {"AWS": first},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {"aws:SourceIdentity": "alice"}},
            }
        ]
    )
    token = issuer.mint("alice", **{"https://aws.amazon.com/source_identity": "alice"})
    creds = assume(endpoint, first, token, duration=43200)["Credentials"]
    as_first = client(
        endpoint,
        "sts",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    chained = as_first.assume_role(RoleArn=second, RoleSessionName="chained")
    assert chained["SourceIdentity"] == "alice"
    # the web identity session is a role session: chaining from it is capped at an hour
    code, _, _ = refused(lambda: as_first.assume_role(RoleArn=second, RoleSessionName="c2", DurationSeconds=43200))
    assert code == "ValidationError"


def test_a_token_signed_by_another_key_under_the_same_kid_is_refused(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    role = make_role([trusting(issuer, ["alice"])])
    forged = issuer.mint("alice", key=new_rsa_key())
    code, _, status = refused(lambda: assume(endpoint, role, forged))
    assert (code, status) == ("InvalidIdentityToken", 400)


def test_an_expired_token_is_refused(endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]) -> None:
    role = make_role([trusting(issuer, ["alice"])])
    expired = sign(issuer.claims("alice", lifetime=-60), issuer.key, kid=issuer.kid)
    code, message, status = refused(lambda: assume(endpoint, role, expired))
    assert (code, status) == ("ExpiredTokenException", 400)
    assert (
        message.startswith("Token expired: current date/time ") and "must be before the expiration date/time" in message
    )


def test_a_sub_the_trust_policy_does_not_name_is_denied(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    role = make_role([trusting(issuer, ["alice"])])
    error = refused(lambda: assume(endpoint, role, issuer.mint("mallory")))
    assert error == ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_an_issuer_with_no_provider_is_refused(endpoint: str, make_role: Callable[..., str]) -> None:
    with LoopbackIssuer() as stranger:
        role = make_role([{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRoleWithWebIdentity"}])
        error = refused(lambda: assume(endpoint, role, stranger.mint("alice")))
    assert error == ("InvalidIdentityToken", f"No OpenIDConnect provider found in your account for {stranger.url}", 400)


def test_a_token_for_another_audience_is_refused(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    role = make_role([trusting(issuer, ["alice"])])
    error = refused(lambda: assume(endpoint, role, issuer.mint("alice", aud="sts.amazon.com")))
    assert error == ("InvalidIdentityToken", "Incorrect token audience", 400)


def test_stock_localstacks_anything_goes_is_gone(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    role = make_role([trusting(issuer, ["alice"])])
    for token in (unsigned(issuer.claims("alice")), "fake-token-value", f"{issuer.mint('alice')[:-8]}AAAAAAAA"):
        code, _, _ = refused(lambda token=token: assume(endpoint, role, token))
        assert code == "InvalidIdentityToken"


def test_more_than_the_roles_max_session_duration_is_refused(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    role = make_role([trusting(issuer, ["alice"])], max_session=3600)
    error = refused(lambda: assume(endpoint, role, issuer.mint("alice"), duration=7200))
    assert error == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        400,
    )


def test_session_tags_from_the_claim_need_tag_session(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    tags = {"https://aws.amazon.com/tags": {"principal_tags": {"team": ["blue"]}, "transitive_tag_keys": []}}
    untaggable = make_role([trusting(issuer, ["alice"], ["sts:AssumeRoleWithWebIdentity"])])
    assert refused(lambda: assume(endpoint, untaggable, issuer.mint("alice", **tags)))[0] == "AccessDenied"
    taggable = make_role([trusting(issuer, ["alice"])])
    assert assume(endpoint, taggable, issuer.mint("alice", **tags))["Credentials"]


def test_an_unreachable_issuer_is_an_idp_communication_error(endpoint: str, make_role: Callable[..., str]) -> None:
    with LoopbackIssuer() as gone:
        iam = client(endpoint, "iam")
        arn = iam.create_open_id_connect_provider(Url=gone.url, ClientIDList=[STS_AUDIENCE], ThumbprintList=[])[
            "OpenIDConnectProviderArn"
        ]
        token = gone.mint("alice")
    try:  # the issuer's server is stopped now: nothing answers on its port
        role = make_role(
            [{"Effect": "Allow", "Principal": {"Federated": arn}, "Action": "sts:AssumeRoleWithWebIdentity"}]
        )
        code, _, status = refused(lambda: assume(endpoint, role, token))
        assert (code, status) == ("IDPCommunicationError", 400)
    finally:
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def test_the_journal_records_web_identity_decisions_without_the_token(
    endpoint: str, issuer: LoopbackIssuer, make_role: Callable[..., str]
) -> None:
    url = f"{endpoint}{JOURNAL_PATH}"
    role = make_role([trusting(issuer, ["alice"])])
    mark = requests.get(url, timeout=10).json()["last_seq"]
    good, bad = issuer.mint("alice"), issuer.mint("mallory")
    assume(endpoint, role, good, duration=43200, session="alice")
    refused(lambda: assume(endpoint, role, bad, session="mallory"))
    response = requests.get(url, params={"after": mark}, timeout=10)
    entries = [e for e in response.json()["entries"] if e["role_arn"] == role]
    assert [(e["operation"], e["caller_arn"], e["subject"], e["outcome"], e["error_code"]) for e in entries] == [
        ("AssumeRoleWithWebIdentity", issuer.provider_arn, "alice", "allowed", None),
        ("AssumeRoleWithWebIdentity", issuer.provider_arn, "mallory", "refused", "AccessDenied"),
    ]
    assert entries[0]["duration_seconds"] == 43200
    for token in (good, bad):
        assert token not in response.text and token.split(".")[2] not in response.text


# ---------------------------------------------------------------------------- an execute-api issuer


def mock_json_method(apigw: Any, api_id: str, resource_id: str, document: dict[str, Any]) -> None:
    """GET answering `document` from a MOCK integration: no function needed."""
    apigw.put_method(restApiId=api_id, resourceId=resource_id, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod="GET",
        type="MOCK",
        requestTemplates={"application/json": '{"statusCode": 200}'},
    )
    apigw.put_method_response(restApiId=api_id, resourceId=resource_id, httpMethod="GET", statusCode="200")
    apigw.put_integration_response(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod="GET",
        statusCode="200",
        responseTemplates={"application/json": json.dumps(document)},
    )


def test_an_execute_api_issuer_is_fetched_from_the_local_gateway(endpoint: str, make_role: Callable[..., str]) -> None:
    """The stack's issuer is its API's AWS URL, where nothing listens here: the plugin
    resolves it to LocalStack's own route for that API."""
    apigw, iam = client(endpoint, "apigateway"), client(endpoint, "iam")
    api_id = apigw.create_rest_api(name=f"issuer-{uuid.uuid4().hex[:6]}")["id"]
    issuer_url = f"https://{api_id}.execute-api.us-east-1.amazonaws.com/prod"
    key = new_rsa_key()
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    well_known = apigw.create_resource(restApiId=api_id, parentId=root, pathPart=".well-known")["id"]
    for part, document in (
        ("openid-configuration", {"issuer": issuer_url, "jwks_uri": f"{issuer_url}/.well-known/jwks.json"}),
        ("jwks.json", {"keys": [public_jwk(key)]}),
    ):
        resource = apigw.create_resource(restApiId=api_id, parentId=well_known, pathPart=part)["id"]
        mock_json_method(apigw, api_id, resource, document)
    apigw.create_deployment(restApiId=api_id, stageName="prod")
    arn = iam.create_open_id_connect_provider(Url=issuer_url, ClientIDList=[STS_AUDIENCE], ThumbprintList=[])[
        "OpenIDConnectProviderArn"
    ]
    try:
        provider_url = issuer_url.removeprefix("https://")
        role = make_role(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {f"{provider_url}:sub": "alice"}},
                }
            ]
        )
        now = int(dt.datetime.now(dt.UTC).timestamp())
        claims = {"iss": issuer_url, "sub": "alice", "aud": STS_AUDIENCE, "iat": now, "exp": now + 300}
        granted = assume(endpoint, role, sign(claims, key), duration=43200)
        assert granted["Provider"] == arn and granted["SubjectFromWebIdentityToken"] == "alice"
        # and a key the API does not publish is still refused
        forged = sign(claims, new_rsa_key())
        assert refused(lambda: assume(endpoint, role, forged))[0] == "InvalidIdentityToken"
    finally:
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        apigw.delete_rest_api(restApiId=api_id)

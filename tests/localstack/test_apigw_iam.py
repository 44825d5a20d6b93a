"""API Gateway AWS_IAM authorization (credvend_localstack.iam_auth) inside a running LocalStack.

A REST API with an AWS_IAM method and a Lambda proxy integration, called over plain HTTP with
requests + botocore's SigV4Auth, as a client of an execute-api URL would.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from botocore.credentials import Credentials

from credvend_local.fixtures import localstack  # noqa: F401 (session fixture)
from credvend_local.sigv4 import signed_request
from credvend_local.support import add_proxy_method, client, create_function, unique

pytestmark = pytest.mark.localstack

ACCOUNT = "000000000000"
MISMATCH = "The request signature we calculated does not match the signature you provided."


@dataclass
class Api:
    url: str  # .../_aws/execute-api/<id>/test/whoami
    legacy_url: str  # .../restapis/<id>/test/_user_request_/whoami
    open_url: str  # a method with authorizationType NONE
    function: str


@dataclass
class Identities:
    user: Credentials
    user_arn: str
    user_id: str
    session: Credentials
    session_arn: str
    role_id: str
    session_name: str


@pytest.fixture(scope="module")
def api(localstack) -> Api:  # noqa: F811
    function = create_function(localstack)
    function_arn = client(localstack, "lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    apigw = client(localstack, "apigateway")
    api_id = apigw.create_rest_api(name=unique("iam-api"))["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    add_proxy_method(
        apigw,
        api_id=api_id,
        parent_id=root,
        path="whoami",
        authorization="AWS_IAM",
        function_arn=function_arn,
        region=localstack.region,
    )
    add_proxy_method(
        apigw,
        api_id=api_id,
        parent_id=root,
        path="open",
        authorization="NONE",
        function_arn=function_arn,
        region=localstack.region,
    )
    items = apigw.create_resource(restApiId=api_id, parentId=root, pathPart="items")["id"]
    add_proxy_method(
        apigw,
        api_id=api_id,
        parent_id=items,
        path="{id}",
        authorization="AWS_IAM",
        function_arn=function_arn,
        region=localstack.region,
    )
    apigw.create_deployment(restApiId=api_id, stageName="test")
    client(localstack, "lambda").add_permission(
        FunctionName=function, StatementId="apigw", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com"
    )
    base = f"{localstack.endpoint}/_aws/execute-api/{api_id}/test"
    return Api(
        f"{base}/whoami",
        f"{localstack.endpoint}/restapis/{api_id}/test/_user_request_/whoami",
        f"{base}/open",
        function,
    )


@pytest.fixture(scope="module")
def identities(localstack) -> Identities:  # noqa: F811
    iam = client(localstack, "iam")
    user = iam.create_user(UserName=unique("caller"))["User"]
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    user_keys = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName=unique("caller-role"), AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    session_name = "apigw-test"
    assumed = client(localstack, "sts", user_keys).assume_role(RoleArn=role["Arn"], RoleSessionName=session_name)
    creds = assumed["Credentials"]
    return Identities(
        user=user_keys,
        user_arn=user["Arn"],
        user_id=user["UserId"],
        session=Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
        session_arn=assumed["AssumedRoleUser"]["Arn"],
        role_id=role["RoleId"],
        session_name=session_name,
    )


def message(response: requests.Response) -> str:
    return response.json().get("message") or response.json().get("Message") or ""


# --- refusals ----------------------------------------------------------------------------------


def test_unsigned_request_is_refused(api):
    response = requests.get(api.url, timeout=30)
    assert response.status_code == 403
    assert message(response) == "Missing Authentication Token"


def test_wrong_secret_is_refused(localstack, api, identities):  # noqa: F811
    wrong = Credentials(identities.user.access_key, "not-the-secret")
    response = signed_request("GET", api.url, wrong, region=localstack.region)
    assert response.status_code == 403
    assert message(response).startswith(MISMATCH)


def test_bogus_session_token_is_refused(localstack, api, identities):  # noqa: F811
    bogus = Credentials(identities.session.access_key, identities.session.secret_key, "bogus-token")
    response = signed_request("GET", api.url, bogus, region=localstack.region)
    assert response.status_code == 403
    assert message(response) == "The security token included in the request is invalid."


def test_unknown_access_key_is_refused(localstack, api):  # noqa: F811
    response = signed_request("GET", api.url, Credentials("test", "test"), region=localstack.region)
    assert response.status_code == 403
    assert message(response) == "The security token included in the request is invalid."


def test_expired_signature_is_refused(localstack, api, identities):  # noqa: F811
    ten_minutes_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=10)
    response = signed_request("GET", api.url, identities.user, region=localstack.region, at=ten_minutes_ago)
    assert response.status_code == 403
    assert message(response).startswith("Signature expired: ")


def test_tampered_request_is_refused(localstack, api, identities):  # noqa: F811
    # Signed for one query, sent with another: the signature covers the query string.
    good = signed_request("GET", f"{api.url}?duration=900", identities.user, region=localstack.region)
    assert good.status_code == 200
    headers = {k: v for k, v in good.request.headers.items()}
    response = requests.get(f"{api.url}?duration=43200", headers=headers, timeout=30)
    assert response.status_code == 403
    assert message(response).startswith(MISMATCH)


def test_wrong_region_in_scope_is_refused(api, identities):
    response = signed_request("GET", api.url, identities.user, region="eu-west-1")
    assert response.status_code == 403


# --- accepted callers ------------------------------------------------------------------------


def event_identity(response: requests.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["event_identity"]


def test_iam_user_reaches_the_function_with_its_identity(localstack, api, identities):  # noqa: F811
    identity = event_identity(signed_request("GET", f"{api.url}?b=2&a=1", identities.user, region=localstack.region))
    assert identity["userArn"] == identities.user_arn
    assert identity["caller"] == identity["user"] == identities.user_id
    assert identity["accountId"] == ACCOUNT
    assert identity["accessKey"] == identities.user.access_key


def test_role_session_reaches_the_function_with_its_identity(localstack, api, identities):  # noqa: F811
    body = json.dumps({"role": "reports-reader"}).encode()
    response = signed_request("POST", api.url, identities.session, region=localstack.region, body=body)
    identity = event_identity(response)
    role_name = identities.session_arn.split("/")[1]
    assert identity["userArn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/{identities.session_name}"
    assert identity["userArn"] == identities.session_arn
    assert identity["caller"] == identity["user"] == f"{identities.role_id}:{identities.session_name}"
    assert identity["accountId"] == ACCOUNT
    assert identity["accessKey"] == identities.session.access_key


def test_encoded_path_and_repeated_query_keys_verify(localstack, api, identities):  # noqa: F811
    # The client signs the path as sent (percent-encoded, then encoded again by SigV4 for
    # non-S3 services) and the raw query, sorted; the verifier must canonicalize the same way.
    url = api.url.replace("/whoami", "/items/a%20b%3Ac") + "?x=2&x=1&empty=&sp=a%20b"
    identity = event_identity(signed_request("GET", url, identities.user, region=localstack.region))
    assert identity["userArn"] == identities.user_arn


def test_legacy_url_form_is_verified_too(localstack, api, identities):  # noqa: F811
    assert requests.get(api.legacy_url, timeout=30).status_code == 403
    identity = event_identity(signed_request("GET", api.legacy_url, identities.user, region=localstack.region))
    assert identity["userArn"] == identities.user_arn


def test_methods_without_iam_auth_stay_open(api):
    response = requests.get(api.open_url, timeout=30)
    assert response.status_code == 200
    assert response.json()["event_identity"]["userArn"] is None

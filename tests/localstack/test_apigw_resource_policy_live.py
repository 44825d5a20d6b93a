"""API Gateway resource-policy evaluation inside a running LocalStack (apigw_policy_auth.py).

A REST API with a resource policy shaped like credvend's stack: callers' accounts allowed on
the IAM routes, everyone else explicitly denied there, anonymous callers allowed on a public
route. Called over plain HTTP, SigV4-signed, as any client of an execute-api URL would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import requests
from botocore.credentials import Credentials

from credvend_local.fixtures import localstack  # noqa: F401 (session fixture)
from credvend_local.sigv4 import signed_request
from credvend_local.support import add_proxy_method, client, create_function, unique

pytestmark = pytest.mark.localstack

ACCOUNT = "000000000000"
PARTNER = "111111111111"
STRANGER = "222222222222"


@dataclass
class Api:
    api_id: str
    iam_url: str  # AWS_IAM, a callers-only route
    public_url: str  # NONE, allowed to everyone by the policy
    closed_url: str  # NONE, not in the policy's public routes
    open_api_url: str  # AWS_IAM on an API without a resource policy


def resource_policy() -> dict:
    iam_routes = ["execute-api:/*/*/whoami"]
    accounts = [ACCOUNT, PARTNER]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
                "Action": "execute-api:Invoke",
                "Resource": iam_routes,
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": iam_routes,
                "Condition": {"StringNotEquals": {"aws:PrincipalAccount": accounts}},
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": "execute-api:/*/GET/public",
            },
        ],
    }


def rest_api(localstack, function: str, policy: dict | None) -> tuple[str, str]:  # noqa: F811
    lam, apigw = client(localstack, "lambda"), client(localstack, "apigateway")
    function_arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
    extra = {"policy": json.dumps(policy)} if policy else {}
    api_id = apigw.create_rest_api(name=unique("policy-api"), **extra)["id"]
    root = next(r["id"] for r in apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
    for path, authorization in (("whoami", "AWS_IAM"), ("public", "NONE"), ("closed", "NONE")):
        add_proxy_method(
            apigw,
            api_id=api_id,
            parent_id=root,
            path=path,
            authorization=authorization,
            function_arn=function_arn,
            region=localstack.region,
        )
    apigw.create_deployment(restApiId=api_id, stageName="test")
    return api_id, f"{localstack.endpoint}/_aws/execute-api/{api_id}/test"


@pytest.fixture(scope="module")
def api(localstack) -> Api:  # noqa: F811
    function = create_function(localstack)
    client(localstack, "lambda").add_permission(
        FunctionName=function, StatementId="apigw", Action="lambda:InvokeFunction", Principal="apigateway.amazonaws.com"
    )
    api_id, base = rest_api(localstack, function, resource_policy())
    _, open_base = rest_api(localstack, function, None)
    return Api(api_id, f"{base}/whoami", f"{base}/public", f"{base}/closed", f"{open_base}/whoami")


def role_session(localstack, account: str) -> tuple[Credentials, str]:  # noqa: F811
    """A session of a role in ``account``, assumed by that account's root."""
    root = Credentials("test" if account == ACCOUNT else account, "test")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = client(localstack, "iam", root).create_role(
        RoleName=unique("caller"), AssumeRolePolicyDocument=json.dumps(trust)
    )
    assumed = client(localstack, "sts", root).assume_role(RoleArn=role["Role"]["Arn"], RoleSessionName="task")
    keys = assumed["Credentials"]
    return Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"]), assumed["AssumedRoleUser"][
        "Arn"
    ]


def message(response: requests.Response) -> str:
    return str(response.json().get("Message") or response.json().get("message") or "")


def masked(api: Api, method: str, path: str) -> str:
    return f"arn:aws:execute-api:us-east-1:********0000:{api.api_id}/test/{method}/{path}"


def test_callers_accounts_reach_the_function(localstack, api):  # noqa: F811
    for account in (ACCOUNT, PARTNER):
        keys, arn = role_session(localstack, account)
        response = signed_request("GET", api.iam_url, keys, region=localstack.region)
        assert response.status_code == 200, response.text
        assert response.json()["event_identity"]["userArn"] == arn


def test_an_account_the_policy_does_not_name_is_denied_explicitly(localstack, api):  # noqa: F811
    keys, arn = role_session(localstack, STRANGER)
    response = signed_request("GET", api.iam_url, keys, region=localstack.region)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert response.json() == {
        "Message": f"User: {arn} is not authorized to perform: execute-api:Invoke on resource: "
        f"{masked(api, 'GET', 'whoami')} with an explicit deny"
    }


def test_another_account_needs_a_policy_that_allows_it(localstack, api):  # noqa: F811
    keys, arn = role_session(localstack, PARTNER)
    response = signed_request("GET", api.open_api_url, keys, region=localstack.region)
    assert response.status_code == 403
    assert message(response).startswith(f"User: {arn} is not authorized to perform: execute-api:Invoke")
    assert not message(response).endswith("explicit deny")
    same_account, _ = role_session(localstack, ACCOUNT)
    assert signed_request("GET", api.open_api_url, same_account, region=localstack.region).status_code == 200


def test_anonymous_callers_reach_only_the_public_route(api):
    assert requests.get(api.public_url, timeout=30).status_code == 200
    response = requests.get(api.closed_url, timeout=30)
    assert response.status_code == 403
    assert response.json() == {
        "Message": f"User: anonymous is not authorized to perform: execute-api:Invoke on resource: "
        f"{masked(api, 'GET', 'closed')}"
    }


def test_unsigned_calls_to_iam_routes_still_need_a_signature(api):
    # authentication comes before the resource policy: AWS answers "Missing Authentication Token"
    response = requests.get(api.iam_url, timeout=30)
    assert response.status_code == 403
    assert message(response) == "Missing Authentication Token"


def test_a_changed_policy_applies_from_the_next_deployment(localstack, api):  # noqa: F811
    apigw = client(localstack, "apigateway")
    closed = resource_policy()
    closed["Statement"].append(
        {"Effect": "Deny", "Principal": "*", "Action": "execute-api:Invoke", "Resource": "execute-api:/*/GET/public"}
    )
    patch = [{"op": "replace", "path": "/policy", "value": json.dumps(closed)}]
    apigw.update_rest_api(restApiId=api.api_id, patchOperations=patch)
    assert requests.get(api.public_url, timeout=30).status_code == 200  # not deployed yet
    apigw.create_deployment(restApiId=api.api_id, stageName="test")
    response = requests.get(api.public_url, timeout=30)
    assert response.status_code == 403
    assert message(response).endswith("with an explicit deny")
    patch = [{"op": "replace", "path": "/policy", "value": json.dumps(resource_policy())}]
    apigw.update_rest_api(restApiId=api.api_id, patchOperations=patch)
    apigw.create_deployment(restApiId=api.api_id, stageName="test")
    assert requests.get(api.public_url, timeout=30).status_code == 200

"""Scale, quotas and the API's resource policy, end to end on LocalStack as on AWS.

- A generated policy of 1,000 callers and 200 roles deploys as its own stack (beside the
  suite's main one) and vends for the first and the last caller. LocalStack enforces AWS's
  policy-size quotas here (credvend_localstack.quota_rules), so this deploy fails as a real
  `cdk deploy` would if any document outgrew its quota.
- A document over a quota is refused with IAM's own error.
- The gateway evaluates the API's resource policy (credvend_localstack.apigw_policy_auth):
  a caller from an account the policy does not name is refused before the function runs,
  and the policy refuses anonymous callers on the IAM routes.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any

import pytest
import requests
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from credvend_localstack.apigw_resource_policy import InvokeRequest, authorize_invoke

from credvend_local import deploy as cdk_deploy
from credvend_local.identities import admin_client, client_with, create_role_session
from credvend_local.policy_gen import caller_name, generate_policy
from credvend_local.sigv4 import describe, signed_request

pytestmark = pytest.mark.e2e

CALLERS = 1000
ROLES = 200
SCALE_STACK = "CredvendScale"
STRANGER_ACCOUNT = "999999999999"  # in no policy's callers


# --- 1,000 callers, 200 roles ------------------------------------------------------------------


@pytest.fixture(scope="module")
def scale_policy() -> dict[str, Any]:
    return generate_policy(callers=CALLERS, roles=ROLES, caller_account=cdk_deploy.LOCALSTACK_ACCOUNT)


@pytest.fixture(scope="module")
def scale_deployment(
    endpoint: str, scale_policy: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> cdk_deploy.Deployment:
    workdir = tmp_path_factory.mktemp("scale")
    policy_file = workdir / "policy.scale.json"
    policy_file.write_text(json.dumps(scale_policy))
    deployment = cdk_deploy.deploy(
        endpoint,
        policy_file=policy_file,
        workdir=workdir,
        # its own stack beside the suite's; the account-wide API Gateway logging role is
        # the main stack's
        context={"stack_name": SCALE_STACK, "api_cloudwatch_role": "false"},
    )
    print(f"\n[scale] {CALLERS} callers, {ROLES} roles: bootstrap + deploy {deployment.seconds:.0f} s")
    return deployment


def created_roles_granted_to(policy: dict[str, Any], caller: str) -> list[str]:
    aliases = [grant["role"] for grant in policy["callers"][caller]["grants"]]
    return [alias for alias in aliases if policy["roles"][alias].get("create")]


@pytest.mark.parametrize("index", [0, CALLERS - 1], ids=["first-caller", "last-caller"])
def test_a_caller_at_each_end_of_a_1000_caller_policy_gets_credentials(
    index: int, endpoint: str, scale_policy: dict[str, Any], scale_deployment: cdk_deploy.Deployment
) -> None:
    caller = caller_name(index)
    (principal,) = scale_policy["callers"][caller]["iam_principals"]
    session = create_role_session(endpoint, principal.rsplit("/", 1)[-1])
    # the first caller asks for its first role, the last caller for its last one
    created = created_roles_granted_to(scale_policy, caller)
    alias = created[0] if index == 0 else created[-1]

    response = signed_request("POST", f"{scale_deployment.api_url}/credentials", session, body={"role": alias})

    assert response.status_code == 200, describe(response)
    body = response.json()
    assert body["Grant"]["Caller"] == caller
    assert body["Grant"]["Role"] == alias
    identity = client_with("sts", endpoint, body["Credentials"]).get_caller_identity()
    assert identity["Arn"] == body["AssumedRoleUser"]["Arn"]
    assert identity["Arn"].startswith(f"arn:aws:sts::{cdk_deploy.LOCALSTACK_ACCOUNT}:assumed-role/")


# --- quotas, as AWS refuses them -------------------------------------------------------------------


def test_a_trust_policy_over_2048_characters_is_refused_as_aws_would(endpoint: str) -> None:
    principals = [f"arn:aws:iam::{cdk_deploy.LOCALSTACK_ACCOUNT}:role/svc-{i:04d}-task" for i in range(43)]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}],
    }
    document = json.dumps(trust, separators=(",", ":"))
    assert 2048 < len(document) < 2200

    with pytest.raises(ClientError) as excinfo:
        admin_client("iam", endpoint).create_role(RoleName="credvend-e2e-too-big", AssumeRolePolicyDocument=document)

    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert error["Error"]["Code"] == "LimitExceeded"
    assert error["Error"]["Message"] == "Cannot exceed quota for ACLSizePerRole: 2048"


# --- the API's resource policy at the gateway --------------------------------------------------------


def _stranger_session(endpoint: str) -> tuple[Credentials, str]:
    """A role session in an account no policy names (LocalStack keeps one store per account)."""
    iam = admin_client("iam", endpoint, account=STRANGER_ACCOUNT)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{STRANGER_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):  # a reused LocalStack
        iam.create_role(RoleName="credvend-e2e-outsider", AssumeRolePolicyDocument=json.dumps(trust))
    assumed = admin_client("sts", endpoint, account=STRANGER_ACCOUNT).assume_role(
        RoleArn=f"arn:aws:iam::{STRANGER_ACCOUNT}:role/credvend-e2e-outsider", RoleSessionName="outsider"
    )
    keys = assumed["Credentials"]
    credentials = Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
    return credentials, assumed["AssumedRoleUser"]["Arn"]


_START = re.compile(r"^START RequestId: (\S+)")


def _invocations(endpoint: str, function_name: str) -> set[str]:
    """The request ids the function has started (its START lines in CloudWatch Logs)."""
    logs = admin_client("logs", endpoint)
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{function_name}")
        messages = [event["message"] for page in pages for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return set()
    return {match[1] for message in messages if (match := _START.match(message.strip()))}


def _wait_for_invocations(endpoint: str, function_name: str, at_least: int) -> set[str]:
    # log delivery is asynchronous: wait for the calls we know ran, then look
    for _ in range(120):
        started = _invocations(endpoint, function_name)
        if len(started) >= at_least:
            return started
        time.sleep(0.25)
    return _invocations(endpoint, function_name)


def test_a_caller_from_an_account_the_policy_does_not_name_is_refused_by_the_gateway(
    endpoint: str, api_url: str, deployment: cdk_deploy.Deployment, callers: Any
) -> None:
    function_name = deployment.outputs["FunctionName"]
    # the function's log must be there to count in: one call that does reach it
    initial = _invocations(endpoint, function_name)
    signed_request("POST", f"{api_url}/credentials", callers.stranger, body={"role": "reports-reader"})
    before = _wait_for_invocations(endpoint, function_name, at_least=len(initial) + 1)
    outsider, outsider_arn = _stranger_session(endpoint)

    refused = signed_request("POST", f"{api_url}/credentials", outsider, body={"role": "reports-reader"})
    # a same-account caller outside the policy file does reach the function (which refuses it)
    reached = signed_request("POST", f"{api_url}/credentials", callers.stranger, body={"role": "reports-reader"})

    assert refused.status_code == 403
    assert refused.headers["x-amzn-ErrorType"] == "AccessDeniedException"
    api_id = api_url.split("/_aws/execute-api/", 1)[1].split("/", 1)[0]
    resource = f"arn:aws:execute-api:us-east-1:********0000:{api_id}/v1/POST/credentials"
    # API Gateway's ACCESS_DENIED, in the contract's shape (its gateway responses, CONTRACT §12)
    assert refused.json()["Error"]["Code"] == "AccessDenied"
    message = refused.json()["Error"]["Message"]
    assert message.startswith(
        f"User: {outsider_arn} is not authorized to perform: execute-api:Invoke on resource: {resource}"
    )
    assert reached.status_code == 403 and reached.json()["Error"]["Code"] == "AccessDenied"
    # the function ran once more (for the same-account caller), never for the outsider
    after = _wait_for_invocations(endpoint, function_name, at_least=len(before) + 1)
    assert len(after - before) == 1, sorted(after - before)


def test_anonymous_callers_are_refused_on_the_iam_routes(endpoint: str, api_url: str) -> None:
    for method, path in (("POST", "credentials"), ("GET", "credentials/reports-reader")):
        response = requests.request(method, f"{api_url}/{path}", timeout=30)
        # API Gateway's MISSING_AUTHENTICATION_TOKEN, in the contract's shape (CONTRACT §12)
        assert response.status_code == 401
        assert response.json()["Error"] == {"Code": "Unauthenticated", "Message": "Missing Authentication Token"}

    # and the deployed resource policy itself shuts anonymous callers out of those routes,
    # so opening a method by mistake would not open it to the internet
    api_id, stage = api_url.split("/_aws/execute-api/", 1)[1].split("/")[:2]
    escaped = admin_client("apigateway", endpoint).get_rest_api(restApiId=api_id)["policy"]
    document = json.loads(f'"{escaped}"')
    for method, path in (("POST", "/credentials"), ("GET", "/credentials/reports-reader")):
        anonymous = InvokeRequest(
            api_id=api_id,
            stage=stage,
            http_method=method,
            path=path,
            region="us-east-1",
            api_account=cdk_deploy.LOCALSTACK_ACCOUNT,
            caller=None,
        )
        refusal = authorize_invoke(document, anonymous)
        assert refusal is not None and refusal.status == 403, (method, path)
        assert refusal.message.startswith("User: anonymous is not authorized to perform: execute-api:Invoke")


def test_the_public_routes_and_only_they_answer_anonymous_callers(endpoint: str, api_url: str) -> None:
    # every method without authorization (OIDC discovery, JWKS: STS fetches them anonymously)
    # must be open to anonymous callers through the resource policy, or STS fails on AWS
    api_id = api_url.split("/_aws/execute-api/", 1)[1].split("/", 1)[0]
    apigw = admin_client("apigateway", endpoint)
    resources = apigw.get_resources(restApiId=api_id, embed=["methods"])["items"]
    open_methods = [
        (method, resource["path"])
        for resource in resources
        for method in resource.get("resourceMethods") or {}
        if apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)["authorizationType"]
        == "NONE"
    ]
    assert open_methods, "the suite's stack publishes OIDC discovery without authorization"
    for method, path in open_methods:
        response = requests.request(method, f"{api_url}{path}", timeout=30)
        if path.startswith("/oidc/"):
            # OIDC caller routes (CONTRACT §10): past the resource policy, the function itself
            # refuses a request without a token (a resource-policy refusal would be a 403)
            assert response.status_code == 401, (method, path, describe(response))
            assert response.json()["Error"]["Code"] == "Unauthenticated"
            continue
        assert response.status_code == 200, (method, path, describe(response))
    iam_only = signed_request("POST", f"{api_url}/credentials", None, body={"role": "reports-reader"})
    assert iam_only.status_code == 401  # unsigned: the gateway's Unauthenticated (CONTRACT §12)


def test_scale_policy_file_is_what_the_generator_promises(scale_policy: dict[str, Any]) -> None:
    # guards the test above: both ends exist and are LocalStack-account callers
    assert len(scale_policy["callers"]) == CALLERS and len(scale_policy["roles"]) == ROLES
    for index in (0, CALLERS - 1):
        (principal,) = scale_policy["callers"][caller_name(index)]["iam_principals"]
        assert principal.startswith(f"arn:aws:iam::{cdk_deploy.LOCALSTACK_ACCOUNT}:role/")

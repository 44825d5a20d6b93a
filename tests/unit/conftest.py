"""Shared fixtures: a test policy, API Gateway REST proxy events, a stubbed STS, and a
reset of every piece of cold-start state between tests."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from credvend import handler as handler_module
from credvend.adapters.sts import BotoSts
from credvend.settings import Settings

ACCOUNT = "123456789012"
FUNCTION_ARN = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:credvend"
FUNCTION_ROLE_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/credvend-fn-role/credvend"
IAM_USER = f"arn:aws:iam::{ACCOUNT}:user/credvend-operator"
BILLING_SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/billing-api-task/i-0abc"
BATCH_USER = f"arn:aws:iam::{ACCOUNT}:user/batch"
STRANGER = f"arn:aws:sts::{ACCOUNT}:assumed-role/someone-else/x"

TEST_POLICY = f"""
version: 1
defaults:
  duration_seconds: 3600
  session_name: "{{caller}}"
roles:
  reports-reader:
    create: true
    max_session_duration: 14400
    managed_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
  long-reader:
    create: true
    max_session_duration: 43200
  mid-reader:
    create: true
    role_name: MidReader
    max_session_duration: 14400
  partner-writer:
    arn: arn:aws:iam::210987654321:role/PartnerWriter
    max_session_duration: 3600
    external_id: a-shared-id
  nobodys-role:
    create: true
callers:
  billing-api:
    iam_principals:
      - arn:aws:iam::{ACCOUNT}:role/billing-api-task
    grants:
      - role: reports-reader
        max_duration_seconds: 7200
      - role: long-reader
        max_duration_seconds: 43200
      - role: partner-writer
      - role: mid-reader
        max_duration_seconds: 43200
  batch:
    iam_principals:
      - {BATCH_USER}
    grants:
      - role: reports-reader
        max_duration_seconds: 900
"""

# Values that must never show up in a log line.
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLE//////////sessiontokenthatmustneverbelogged=="


@dataclass
class FakeLambdaContext:
    function_name: str = "credvend"
    function_version: str = "$LATEST"
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 256
    aws_request_id: str = "lambda-request-id"
    log_group_name: str = "/aws/lambda/credvend"
    log_stream_name: str = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def rest_event(
    method: str,
    path: str,
    *,
    body: str | dict[str, Any] | None = None,
    query: dict[str, str] | None = None,
    multi_query: dict[str, list[str]] | None = None,
    user_arn: str | None = BILLING_SESSION,
    identity: dict[str, Any] | None = None,
    request_id: str = "req-0001",
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event as API Gateway sends it under IAM auth."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    resource = "/credentials/{role}" if path.startswith("/credentials/") else path
    path_parameters = {"role": path.rsplit("/", 1)[1]} if resource.endswith("{role}") else None
    if multi_query is None and query is not None:
        multi_query = {key: [value] for key, value in query.items()}
    if identity is None:
        identity = {
            "cognitoIdentityPoolId": None,
            "accountId": ACCOUNT if user_arn else None,
            "cognitoIdentityId": None,
            "caller": "AROAEXAMPLE:i-0abc" if user_arn else None,
            "sourceIp": "203.0.113.7",
            "principalOrgId": None,
            "accessKey": "ASIAEXAMPLE" if user_arn else None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": user_arn,
            "userAgent": "credvend-client/0.1",
            "user": "AROAEXAMPLE:i-0abc" if user_arn else None,
        }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": "ext-1",
            "requestTime": "23/Nov/2026:16:35:57 +0000",
            "path": f"/prod{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abc123",
            "requestTimeEpoch": 1795451757000,
            "requestId": request_id,
            "identity": identity,
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "apiId": "abc123",
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


def post(body: Any, **kwargs: Any) -> dict[str, Any]:
    """``POST /credentials`` with ``body`` (see ``rest_event`` for the rest)."""
    return rest_event("POST", "/credentials", body=body, **kwargs)


def get(role: str, query: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    """``GET /credentials/{role}`` with ``query``."""
    return rest_event("GET", f"/credentials/{role}", query=query, **kwargs)


def assume_role_response(role_arn: str, session_name: str, *, duration: int = 3600) -> dict[str, Any]:
    role_name = role_arn.rsplit("/", 1)[1]
    account = role_arn.split(":")[4]
    return {
        "Credentials": {
            "AccessKeyId": "ASIAVENDEDEXAMPLE",
            "SecretAccessKey": SECRET_KEY,
            "SessionToken": SESSION_TOKEN,
            "Expiration": datetime(2026, 11, 23, 16, 35, 57, tzinfo=UTC) + timedelta(seconds=duration - 3600),
        },
        "AssumedRoleUser": {
            "Arn": f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}",
            "AssumedRoleId": f"AROAROLEID:{session_name}",
        },
        "SourceIdentity": "billing-api",
    }


class StsStub:
    """A real botocore STS client behind a Stubber: with nothing queued, any call fails the test."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "sts", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def identity(self, arn: str = FUNCTION_ROLE_SESSION) -> None:
        self.stubber.add_response("get_caller_identity", {"UserId": "AROA:x", "Account": ACCOUNT, "Arn": arn}, {})

    def assume(
        self,
        role_arn: str,
        *,
        duration: int,
        session_name: str = "billing-api",
        source_identity: str = "billing-api",
        external_id: str | None = None,
    ) -> None:
        expected: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "SourceIdentity": source_identity,
            "DurationSeconds": duration,
            "Tags": ANY,
        }
        if external_id is not None:
            expected["ExternalId"] = external_id
        self.stubber.add_response(
            "assume_role", assume_role_response(role_arn, session_name, duration=duration), expected
        )

    def error(self, operation: str, code: str, message: str, status: int = 400, expected: Any = None) -> None:
        self.stubber.add_client_error(
            operation,
            service_error_code=code,
            service_message=message,
            http_status_code=status,
            expected_params=expected,
        )

    def assert_done(self) -> None:
        self.stubber.assert_no_pending_responses()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY)
    return path


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Iterator[None]:
    """Every test starts as a cold start: no policy, no STS client, nothing learned."""
    handler_module.reset_runtime()
    yield
    handler_module.reset_runtime()


@pytest.fixture
def sts(policy_file: Path, monkeypatch: pytest.MonkeyPatch) -> StsStub:
    """The function wired to a stubbed STS client, as after a cold start."""
    for name in ("AWS_LAMBDA_FUNCTION_NAME", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy_file))
    stub = StsStub()
    handler_module.reset_runtime(settings=Settings.from_env(), sts=BotoSts(client=stub.client))
    return stub


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


def invoke(event: dict[str, Any], context: Any = None) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Run the Lambda entry point; return (status, headers, JSON body)."""
    result = handler_module.handler(event, context or FakeLambdaContext())
    headers = {key: values[-1] for key, values in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return result["statusCode"], headers, json.loads(result["body"])

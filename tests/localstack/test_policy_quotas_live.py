"""AWS's policy-size quotas inside a running LocalStack (credvend_localstack.quota_rules).

Through boto3, as any tool would call IAM and API Gateway, and through CloudFormation, whose
resource providers call them from inside LocalStack: a stack that breaks a quota must fail.
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from credvend_local.fixtures import localstack  # noqa: F401 (session fixture)
from credvend_local.support import LAMBDA_TRUST, client, unique

pytestmark = pytest.mark.localstack

ACCOUNT = "000000000000"


def trust_policy(principals: int) -> str:
    """A trust policy naming ``principals`` roles: 45 characters each."""
    arns = [f"arn:aws:iam::{ACCOUNT}:role/caller-{i:04d}" for i in range(principals)]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": arns}, "Action": "sts:AssumeRole"}],
        },
        indent=2,  # whitespace is not counted
    )


def size(document: str) -> int:
    return sum(1 for ch in document if not ch.isspace())


def permission_policy(statements: int) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": f"Read{i:04d}",
                    "Effect": "Allow",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::bucket-{i:04d}/*",
                }
                for i in range(statements)
            ],
        }
    )


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


# --- IAM ------------------------------------------------------------------------------------------


def test_create_role_with_a_trust_policy_over_2048_is_refused(localstack):  # noqa: F811
    iam = client(localstack, "iam")
    big = trust_policy(46)
    assert 2048 < size(big) <= 2300
    with pytest.raises(ClientError) as excinfo:
        iam.create_role(RoleName=unique("big-trust"), AssumeRolePolicyDocument=big)
    assert error_of(excinfo) == ("LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048", 409)


def test_trust_policy_at_the_quota_is_accepted_and_updates_are_checked(localstack):  # noqa: F811
    iam = client(localstack, "iam")
    fitting = trust_policy(43)
    assert size(fitting) <= 2048
    name = unique("fits")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=fitting)
    with pytest.raises(ClientError) as excinfo:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust_policy(46))
    assert error_of(excinfo) == ("LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048", 409)


def test_role_inline_policies_share_10240(localstack):  # noqa: F811
    iam = client(localstack, "iam")
    name = unique("inline")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    first = permission_policy(70)
    assert 6000 < size(first) < 10240
    iam.put_role_policy(RoleName=name, PolicyName="first", PolicyDocument=first)
    iam.put_role_policy(RoleName=name, PolicyName="first", PolicyDocument=first)  # a replacement fits
    with pytest.raises(ClientError) as excinfo:
        iam.put_role_policy(RoleName=name, PolicyName="second", PolicyDocument=permission_policy(40))
    assert error_of(excinfo) == ("LimitExceeded", f"Maximum policy size of 10240 bytes exceeded for role {name}", 409)
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["first"]


def test_managed_policy_over_6144_is_refused(localstack):  # noqa: F811
    iam = client(localstack, "iam")
    with pytest.raises(ClientError) as excinfo:
        iam.create_policy(PolicyName=unique("big"), PolicyDocument=permission_policy(70))
    assert error_of(excinfo) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144", 409)
    arn = iam.create_policy(PolicyName=unique("small"), PolicyDocument=permission_policy(10))["Policy"]["Arn"]
    with pytest.raises(ClientError) as excinfo:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=permission_policy(70), SetAsDefault=True)
    assert error_of(excinfo)[:2] == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144")


# --- API Gateway ------------------------------------------------------------------------------------


def api_policy(principals: int) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/caller-{i:04d}" for i in range(principals)]},
                    "Action": "execute-api:Invoke",
                    "Resource": "execute-api:/*",
                }
            ],
        }
    )


def test_rest_api_resource_policy_over_8192_is_refused(localstack):  # noqa: F811
    apigw = client(localstack, "apigateway")
    big = api_policy(190)
    assert size(big) > 8192
    with pytest.raises(ClientError) as excinfo:
        apigw.create_rest_api(name=unique("big-policy"), policy=big)
    code, message, status = error_of(excinfo)
    assert (code, status) == ("BadRequestException", 400)
    assert "8192" in message
    api_id = apigw.create_rest_api(name=unique("small-policy"), policy=api_policy(10))["id"]
    with pytest.raises(ClientError) as excinfo:
        apigw.update_rest_api(restApiId=api_id, patchOperations=[{"op": "replace", "path": "/policy", "value": big}])
    assert error_of(excinfo)[0] == "BadRequestException"


# --- CloudFormation: a stack that breaks a quota fails, as on AWS ----------------------------------


def test_cloudformation_role_with_a_big_trust_policy_fails_the_stack(localstack):  # noqa: F811
    cfn = client(localstack, "cloudformation")
    template = {
        "Resources": {
            "Big": {
                "Type": "AWS::IAM::Role",
                "Properties": {"AssumeRolePolicyDocument": json.loads(trust_policy(46))},
            }
        }
    }
    name = unique("quota-stack")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(template))
    status = ""
    for _ in range(240):
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.5)
    assert status in ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED")
    reasons = [e.get("ResourceStatusReason") or "" for e in cfn.describe_stack_events(StackName=name)["StackEvents"]]
    assert any("Cannot exceed quota for ACLSizePerRole: 2048" in reason for reason in reasons), reasons


def test_cloudformation_refuses_a_template_with_more_than_200_outputs(localstack):  # noqa: F811
    cfn = client(localstack, "cloudformation")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {f"Out{i}": {"Value": {"Ref": "Topic"}} for i in range(203)},
    }
    with pytest.raises(ClientError) as excinfo:
        cfn.create_stack(StackName=unique("outputs"), TemplateBody=json.dumps(template, separators=(",", ":")))
    assert error_of(excinfo) == (
        "ValidationError",
        "Template format error: Number of outputs, 203, is greater than maximum allowed, 200",
        400,
    )

"""Callers for the end-to-end tests: identities created in LocalStack, as on AWS."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import boto3
from botocore.credentials import Credentials

ACCOUNT = "000000000000"
REGION = "us-east-1"
_TRUST_ACCOUNT_ROOT = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}


def admin_client(service: str, endpoint: str, *, account: str = ACCOUNT) -> Any:
    """A client acting as the root of ``account`` (LocalStack maps a 12-digit key id to its account)."""
    key = "test" if account == ACCOUNT else account
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key, aws_secret_access_key="test"
    )


def create_user(endpoint: str, name: str) -> Credentials:
    iam = admin_client("iam", endpoint)
    try:
        iam.create_user(UserName=name)
    except iam.exceptions.EntityAlreadyExistsException:  # a reused LocalStack: start from fresh keys
        for old in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=name, AccessKeyId=old["AccessKeyId"])
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def create_role_session(endpoint: str, role_name: str, session_name: str = "task-1") -> Credentials:
    """A role the account root may assume, and one session of it: what an ECS task or Lambda holds."""
    iam = admin_client("iam", endpoint)
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):  # a reused LocalStack
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(_TRUST_ACCOUNT_ROOT))
    sts = admin_client("sts", endpoint)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role_name}", RoleSessionName=session_name)[
        "Credentials"
    ]
    return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


_PRINCIPAL = re.compile(
    r"^arn:aws:iam::(?P<account>\d{12}):(?P<kind>role|user)/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})$",
    re.ASCII,
)


def create_principal_credentials(
    endpoint: str, principal_arn: str, *, session_name: str = "credvend-local", duration_seconds: int = 3600
) -> Credentials:
    """The IAM principal ``principal_arn`` (a policy's ``iam_principals`` entry), created in its
    account in LocalStack if missing, and credentials of it: a session of a role (assumed by its
    account's root, as an ECS task's or a Lambda's), or a fresh access key of a user."""
    match = _PRINCIPAL.match(principal_arn)
    if match is None:
        raise ValueError(f"{principal_arn!r} is not an IAM role or user ARN")
    account, path, name = match["account"], f"/{match['path']}", match["name"]
    iam = admin_client("iam", endpoint, account=account)
    if match["kind"] == "user":
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_user(UserName=name, Path=path)
        for old in iam.list_access_keys(UserName=name)["AccessKeyMetadata"][:-1]:  # AWS allows two keys
            iam.delete_access_key(UserName=name, AccessKeyId=old["AccessKeyId"])
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    trust = json.loads(json.dumps(_TRUST_ACCOUNT_ROOT).replace(ACCOUNT, account))
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))
    creds = admin_client("sts", endpoint, account=account).assume_role(
        RoleArn=principal_arn, RoleSessionName=session_name, DurationSeconds=duration_seconds
    )["Credentials"]
    return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def client_with(service: str, endpoint: str, credentials: Credentials | dict[str, str]) -> Any:
    """A boto3 client signed with ``credentials`` (a botocore Credentials or an STS Credentials dict)."""
    if isinstance(credentials, dict):
        key, secret, token = credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    else:
        key, secret, token = credentials.access_key, credentials.secret_key, credentials.token
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )

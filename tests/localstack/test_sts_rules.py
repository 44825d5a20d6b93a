"""The STS rules plugin inside a running LocalStack, driven through boto3.

Independent of credvend: each test creates its own roles and users (unique names, so the
session-wide LocalStack can be shared) and checks what AWS's STS would answer.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from credvend_local.fixtures import localstack  # noqa: F401  (the session fixture that starts LocalStack)

pytestmark = pytest.mark.localstack

ACCOUNT = "000000000000"  # LocalStack's account for the default test/test keys
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
CHAINING = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
MAX_SESSION = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."

Keys = dict[str, str]
ROOT_KEYS: Keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


@pytest.fixture
def client(localstack: Any) -> Callable[..., Any]:  # noqa: F811  (the imported fixture)
    def make(service: str, keys: Keys = ROOT_KEYS) -> Any:
        return boto3.client(service, endpoint_url=localstack.endpoint, region_name="us-east-1", **keys)

    return make


@pytest.fixture
def iam(client: Callable[..., Any]) -> Any:
    return client("iam")


@pytest.fixture
def unique() -> Callable[[str], str]:
    suffix = uuid.uuid4().hex[:8]
    return lambda name: f"{name}-{suffix}"


@pytest.fixture
def make_role(iam: Any, unique: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def make(
        name: str, principal: str, actions: list[str], *, max_session: int = 3600, condition: dict | None = None
    ) -> str:
        statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}
        if condition:
            statement["Condition"] = condition
        role_name = unique(name)
        created.append(role_name)
        return iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
            MaxSessionDuration=max_session,
        )["Role"]["Arn"]

    yield make
    for role_name in created:
        iam.delete_role(RoleName=role_name)


@pytest.fixture
def make_user(iam: Any, unique: Callable[[str], str]) -> Iterator[Callable[[str], tuple[str, Keys]]]:
    created: list[tuple[str, str]] = []

    def make(name: str) -> tuple[str, Keys]:
        user_name = unique(name)
        arn = iam.create_user(UserName=user_name)["User"]["Arn"]
        key = iam.create_access_key(UserName=user_name)["AccessKey"]
        created.append((user_name, key["AccessKeyId"]))
        return arn, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    yield make
    for user_name, key_id in created:
        iam.delete_access_key(UserName=user_name, AccessKeyId=key_id)
        iam.delete_user(UserName=user_name)


def session_keys(response: dict) -> Keys:
    credentials = response["Credentials"]
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }


def refused(call: Callable[[], Any]) -> dict:
    with pytest.raises(ClientError) as raised:
        call()
    return {
        "code": raised.value.response["Error"]["Code"],
        "message": raised.value.response["Error"]["Message"],
        "status": raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
    }


ASSUME = ["sts:AssumeRole"]
ASSUME_SI = ["sts:AssumeRole", "sts:SetSourceIdentity"]


def test_twelve_hours_from_a_role_session_fails_as_role_chaining(
    client: Callable[..., Any], make_role: Callable[..., str]
) -> None:
    first = make_role("first", ROOT, ASSUME, max_session=43200)
    second = make_role("second", first, ASSUME, max_session=43200)
    # long-term (root) credentials may take the full 12 hours the role allows...
    hop = client("sts").assume_role(RoleArn=first, RoleSessionName="hop", DurationSeconds=43200)
    as_first = client("sts", session_keys(hop))
    # ...a role session may not, whatever the target role allows
    error = refused(lambda: as_first.assume_role(RoleArn=second, RoleSessionName="chained", DurationSeconds=43200))
    assert error == {"code": "ValidationError", "message": CHAINING, "status": 400}
    chained = as_first.assume_role(RoleArn=second, RoleSessionName="chained", DurationSeconds=3600)
    assert chained["AssumedRoleUser"]["Arn"].endswith("/chained")


def test_user_keys_are_held_to_the_roles_max_session_duration(
    client: Callable[..., Any], make_role: Callable[..., str], make_user: Callable[[str], tuple[str, Keys]]
) -> None:
    user_arn, keys = make_user("svc")
    role = make_role("capped", user_arn, ASSUME, max_session=7200)
    sts = client("sts", keys)
    error = refused(lambda: sts.assume_role(RoleArn=role, RoleSessionName="over", DurationSeconds=7201))
    assert error == {"code": "ValidationError", "message": MAX_SESSION, "status": 400}
    for duration in (7200, 3600):
        assert sts.assume_role(RoleArn=role, RoleSessionName="within", DurationSeconds=duration)["Credentials"]


def test_principal_not_in_the_trust_policy_is_denied(
    client: Callable[..., Any], make_role: Callable[..., str], make_user: Callable[[str], tuple[str, Keys]]
) -> None:
    trusted_arn, _ = make_user("trusted")
    stranger_arn, stranger_keys = make_user("stranger")
    role = make_role("private", trusted_arn, ASSUME)
    error = refused(lambda: client("sts", stranger_keys).assume_role(RoleArn=role, RoleSessionName="nope"))
    assert error == {
        "code": "AccessDenied",
        "message": f"User: {stranger_arn} is not authorized to perform: sts:AssumeRole on resource: {role}",
        "status": 403,
    }


def test_source_identity_condition_in_the_trust_policy(
    client: Callable[..., Any], make_role: Callable[..., str], make_user: Callable[[str], tuple[str, Keys]]
) -> None:
    user_arn, keys = make_user("vendor")
    role = make_role("granted", user_arn, ASSUME_SI, condition={"StringEquals": {"sts:SourceIdentity": ["alice"]}})
    sts = client("sts", keys)
    error = refused(lambda: sts.assume_role(RoleArn=role, RoleSessionName="mallory", SourceIdentity="mallory"))
    assert error["code"] == "AccessDenied" and error["status"] == 403
    granted = sts.assume_role(RoleArn=role, RoleSessionName="alice", SourceIdentity="alice")
    assert granted["SourceIdentity"] == "alice"


def test_session_tags_need_tag_session_in_the_trust_policy(
    client: Callable[..., Any], make_role: Callable[..., str], make_user: Callable[[str], tuple[str, Keys]]
) -> None:
    user_arn, keys = make_user("tagger")
    untaggable = make_role("notags", user_arn, ASSUME)
    taggable = make_role("tags", user_arn, ["sts:AssumeRole", "sts:TagSession"])
    sts = client("sts", keys)
    tags = [{"Key": "team", "Value": "blue"}]
    error = refused(lambda: sts.assume_role(RoleArn=untaggable, RoleSessionName="tagged", Tags=tags))
    assert error == {
        "code": "AccessDenied",
        "message": f"User: {user_arn} is not authorized to perform: sts:TagSession on resource: {untaggable}",
        "status": 403,
    }
    assert sts.assume_role(RoleArn=taggable, RoleSessionName="tagged", Tags=tags)["Credentials"]


def test_source_identity_persists_into_chained_sessions(
    client: Callable[..., Any], make_role: Callable[..., str], make_user: Callable[[str], tuple[str, Keys]]
) -> None:
    user_arn, keys = make_user("origin")
    first = make_role("si-first", user_arn, ASSUME_SI)
    # the second role only admits sessions whose source identity is alice
    second = make_role("si-second", first, ASSUME_SI, condition={"StringEquals": {"aws:SourceIdentity": "alice"}})
    hop = client("sts", keys).assume_role(RoleArn=first, RoleSessionName="hop", SourceIdentity="alice")
    as_first = client("sts", session_keys(hop))
    chained = as_first.assume_role(RoleArn=second, RoleSessionName="chained")  # no SourceIdentity sent
    assert chained["SourceIdentity"] == "alice"
    # and it cannot be replaced further down the chain
    error = refused(lambda: as_first.assume_role(RoleArn=second, RoleSessionName="c2", SourceIdentity="bob"))
    assert error["code"] == "AccessDenied" and "sts:SetSourceIdentity" in error["message"]
    # the chained session carries it on: a third hop still sees alice
    third = make_role("si-third", second, ASSUME_SI, condition={"StringEquals": {"sts:SourceIdentity": "alice"}})
    again = client("sts", session_keys(chained)).assume_role(RoleArn=third, RoleSessionName="third")
    assert again["SourceIdentity"] == "alice"


JOURNAL_PATH = "/_credvend/sts/assume-role-journal"


def test_the_journal_route_shows_each_decision_without_secrets(
    localstack: Any,  # noqa: F811  (the imported fixture)
    client: Callable[..., Any],
    make_role: Callable[..., str],
    make_user: Callable[[str], tuple[str, Keys]],
) -> None:
    url = f"{localstack.endpoint}{JOURNAL_PATH}"
    user_arn, keys = make_user("journaled")
    role = make_role("journaled", user_arn, ASSUME_SI, max_session=3600)
    mark = requests.get(url, timeout=10).json()["last_seq"]
    sts = client("sts", keys)
    issued = sts.assume_role(RoleArn=role, RoleSessionName="ok", SourceIdentity="alice", DurationSeconds=900)
    refused(lambda: sts.assume_role(RoleArn=role, RoleSessionName="long", DurationSeconds=7200))

    response = requests.get(url, params={"after": mark}, timeout=10)
    assert response.status_code == 200
    entries = [e for e in response.json()["entries"] if e["role_arn"] == role]
    common = {"caller_arn": user_arn, "role_arn": role}
    assert [
        {k: e[k] for k in (*common, "role_session_name", "duration_seconds", "outcome", "error_code")} for e in entries
    ] == [
        {**common, "role_session_name": "ok", "duration_seconds": 900, "outcome": "allowed", "error_code": None},
        {
            **common,
            "role_session_name": "long",
            "duration_seconds": 7200,
            "outcome": "refused",
            "error_code": "ValidationError",
        },
    ]
    assert entries[0]["source_identity"] == "alice"
    assert entries[1]["error_message"] == MAX_SESSION
    secrets = (
        issued["Credentials"]["SecretAccessKey"],
        issued["Credentials"]["SessionToken"],
        keys["aws_secret_access_key"],
    )
    assert not any(secret in response.text for secret in secrets)

    assert requests.get(url, params={"after": "x"}, timeout=10).status_code == 400
    assert requests.delete(url, timeout=10).status_code == 204
    after_reset = requests.get(url, timeout=10).json()
    assert after_reset["entries"] == [] or all(e["seq"] > entries[-1]["seq"] for e in after_reset["entries"])

"""An assumed-role session matches the caller listed with its role ARN; users match exactly."""

from __future__ import annotations

import pytest

from credvend.domain.authorize import authorize, verified_principal_arn
from credvend.domain.errors import AccessDenied, Unauthenticated
from credvend.domain.vend import Home
from credvend_policy import (
    Arn,
    PrincipalKey,
    account_of,
    is_identity_arn,
    is_long_term_identity,
    parse_arn,
    parse_policy,
    principal_key,
)

ACCT = "123456789012"


@pytest.mark.parametrize(
    ("arn", "key"),
    [
        (f"arn:aws:iam::{ACCT}:role/billing", PrincipalKey("aws", ACCT, "role", "billing")),
        (f"arn:aws:iam::{ACCT}:role/team/ops/billing", PrincipalKey("aws", ACCT, "role", "billing")),
        (f"arn:aws:sts::{ACCT}:assumed-role/billing/i-0abc", PrincipalKey("aws", ACCT, "role", "billing")),
        (f"arn:aws:sts::{ACCT}:assumed-role/billing/user@example.com", PrincipalKey("aws", ACCT, "role", "billing")),
        (f"arn:aws-us-gov:iam::{ACCT}:role/billing", PrincipalKey("aws-us-gov", ACCT, "role", "billing")),
        (f"arn:aws:iam::{ACCT}:user/alice", PrincipalKey("aws", ACCT, "user", "alice")),
        (f"arn:aws:iam::{ACCT}:user/dev/alice", PrincipalKey("aws", ACCT, "user", "dev/alice")),
        (f"arn:aws:iam::{ACCT}:root", None),
        (f"arn:aws:sts::{ACCT}:federated-user/bob", None),
        (f"arn:aws:iam::{ACCT}:group/admins", None),
        ("arn:aws:iam::12345:role/short-account", None),
        (f"arn:aws:sts::{ACCT}:assumed-role/billing", None),
        ("billing", None),
        ("", None),
    ],
)
def test_principal_key(arn: str, key: PrincipalKey | None) -> None:
    assert principal_key(arn) == key


POLICY = parse_policy(
    f"""version: 1
roles:
  reader: {{create: true}}
  writer: {{create: true}}
callers:
  billing:
    iam_principals: [arn:aws:iam::{ACCT}:role/team/billing, arn:aws:iam::{ACCT}:user/alice]
    grants: [{{role: reader}}]
"""
)
INDEX = POLICY.callers_by_principal()


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:sts::{ACCT}:assumed-role/billing/session-1",
        f"arn:aws:sts::{ACCT}:assumed-role/billing/another",
        f"arn:aws:iam::{ACCT}:role/billing",
        f"arn:aws:iam::{ACCT}:user/alice",
    ],
)
def test_session_and_role_match_the_caller(arn: str) -> None:
    auth = authorize(POLICY, INDEX, principal_arn=arn, alias="reader")
    assert (auth.caller, auth.alias, auth.principal_arn) == ("billing", "reader", arn)
    assert auth.grant.max_duration_seconds == 3600


@pytest.mark.parametrize(
    ("arn", "alias", "reason"),
    [
        ("arn:aws:sts::999999999999:assumed-role/billing/s", "reader", "unknown_caller"),
        (f"arn:aws:sts::{ACCT}:assumed-role/billings/s", "reader", "unknown_caller"),
        (f"arn:aws:sts::{ACCT}:assumed-role/Billing/s", "reader", "unknown_caller"),  # run time: exact match
        (f"arn:aws:iam::{ACCT}:user/other/alice", "reader", "unknown_caller"),
        (f"arn:aws:iam::{ACCT}:root", "reader", "unknown_caller"),
        (f"arn:aws:sts::{ACCT}:assumed-role/billing/s", "writer", "not_granted"),
        (f"arn:aws:sts::{ACCT}:assumed-role/billing/s", "nope", "unknown_role"),
    ],
)
def test_denials_share_one_answer(arn: str, alias: str, reason: str) -> None:
    with pytest.raises(AccessDenied) as caught:
        authorize(POLICY, INDEX, principal_arn=arn, alias=alias)
    assert caught.value.reason == reason
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "AccessDenied",
        403,
        AccessDenied.default_message,
    )


@pytest.mark.parametrize("value", [None, "", 7, "billing", "arn:aws:iam::123:role/x", {"arn": "x"}])
def test_missing_or_malformed_identity_is_unauthenticated(value: object) -> None:
    with pytest.raises(Unauthenticated):
        verified_principal_arn(value)


def test_verified_identity_passes() -> None:
    arn = f"arn:aws:sts::{ACCT}:assumed-role/billing/s"
    assert verified_principal_arn(arn) == arn


# -- the one ARN parser: every partition, every caller of it ---------------------------------


@pytest.mark.parametrize(
    ("text", "arn"),
    [
        (
            f"arn:aws:lambda:eu-west-1:{ACCT}:function:credvend",
            Arn("aws", "lambda", "eu-west-1", ACCT, "function:credvend"),
        ),
        (f"arn:aws-cn:iam::{ACCT}:role/x", Arn("aws-cn", "iam", "", ACCT, "role/x")),
        (f"arn:aws-iso-b:sts::{ACCT}:assumed-role/r/s", Arn("aws-iso-b", "sts", "", ACCT, "assumed-role/r/s")),
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", None),  # no account
        (f"arn:other:iam::{ACCT}:role/x", None),
        (f"arn:aws:iam::{ACCT}:role/with space", None),
        ("", None),
    ],
)
def test_parse_arn(text: str, arn: Arn | None) -> None:
    assert parse_arn(text) == arn
    assert account_of(text) == (arn.account if arn else None)


@pytest.mark.parametrize(
    ("arn", "identity", "long_term"),
    [
        (f"arn:aws:iam::{ACCT}:user/ops/alice", True, True),
        (f"arn:aws-us-gov:iam::{ACCT}:root", True, True),
        (f"arn:aws-cn:sts::{ACCT}:assumed-role/fn/x", True, False),
        (f"arn:aws:sts::{ACCT}:federated-user/bob", True, False),
        (f"arn:aws:iam::{ACCT}:role/r", True, False),
        (f"arn:aws:lambda:eu-west-1:{ACCT}:function:f", False, False),
        ("arn:aws:iam::123:user/short-account", False, False),
    ],
)
def test_identity_kinds(arn: str, identity: bool, long_term: bool) -> None:
    assert (is_identity_arn(arn), is_long_term_identity(arn)) == (identity, long_term)


def test_home_comes_from_any_partition() -> None:
    assert Home.from_arn(f"arn:aws-cn:lambda:cn-north-1:{ACCT}:function:f") == Home("aws-cn", ACCT)
    assert Home.from_arn("not an arn") is None

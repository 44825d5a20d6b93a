"""Explicit Deny in a role's inline policies (the revocation plugin's evaluator). Pure: no LocalStack.

The documents are the ones ``credvend revoke`` writes (credvend_policy.revocation), so the
LocalStack fidelity layer is tested against exactly what the operator's command produces.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from credvend_localstack.iam_policy_eval import conditions_match
from credvend_localstack.identity_deny import Session, access_denied_code, explicit_deny, iso_time

from credvend_policy.revocation import POLICY_NAME, revocation_statement, with_revocation

ROLE = "arn:aws:iam::000000000000:role/ReportsReader"
REVOKED_AT = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)


def session(source_identity: str | None, issued: datetime | None) -> Session:
    return Session(
        arn=f"arn:aws:sts::000000000000:assumed-role/ReportsReader/{source_identity}",
        account="000000000000",
        role_arn=ROLE,
        source_identity=source_identity,
        issued_at=issued,
    )


def policies(*callers: str) -> dict[str, str]:
    document = None
    for caller in callers:
        document = with_revocation(document, revocation_statement(caller, REVOKED_AT))
    return {POLICY_NAME: json.dumps(document)}


@pytest.mark.parametrize(
    ("source_identity", "issued", "denied"),
    [
        ("e2e-user", datetime(2026, 12, 3, 7, 59, 59, 999000, tzinfo=UTC), True),  # before: revoked
        ("e2e-user", REVOKED_AT, False),  # issued at TIME: DateLessThan is strict
        ("e2e-user", datetime(2026, 12, 3, 8, 0, 1, tzinfo=UTC), False),  # the next vend works
        ("e2e-task", datetime(2026, 12, 3, 7, 0, tzinfo=UTC), False),  # another caller's session
        (None, datetime(2026, 12, 3, 7, 0, tzinfo=UTC), False),  # no SourceIdentity: the key is absent
        ("e2e-user", None, False),  # issue time unknown: the key is absent, the condition fails
    ],
)
def test_a_revocation_denies_exactly_the_callers_older_sessions(
    source_identity: str | None, issued: datetime | None, denied: bool
) -> None:
    denial = explicit_deny(policies("e2e-user"), "s3:ListBuckets", session(source_identity, issued))
    assert (denial is not None) == denied
    if denial is not None:
        assert denial.policy_name == POLICY_NAME
        assert "with an explicit deny in an identity-based policy" in denial.message
        assert "s3:ListBuckets" in denial.message


def test_every_action_of_every_service_is_denied_but_get_caller_identity() -> None:
    old = session("e2e-user", datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    for action in ("s3:GetObject", "sqs:SendMessage", "sts:AssumeRole", "iam:ListRoles", "kms:Decrypt"):
        assert explicit_deny(policies("e2e-user", "other"), action, old) is not None
    assert explicit_deny(policies("e2e-user"), "sts:GetCallerIdentity", old) is None


def test_statements_that_cannot_be_judged_here_are_skipped_and_reported() -> None:
    old = session("e2e-user", datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    reported: list[str] = []
    documents = {
        "allow": json.dumps({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        "on-a-bucket": json.dumps({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "arn:aws:s3:::b"}]}),
        "binary": json.dumps(
            {
                "Statement": [
                    {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"BinaryEquals": {"a": "b"}}}
                ]
            }
        ),
        "garbage": "not json",
    }
    assert explicit_deny(documents, "s3:GetObject", old, on_unreadable=lambda n, _: reported.append(n)) is None
    assert sorted(reported) == ["binary", "garbage"]


def test_not_action_and_url_quoted_documents() -> None:
    old = session("x", datetime(2026, 12, 3, 7, 0, tzinfo=UTC))
    # LocalStack keeps some documents URL-quoted
    quoted = quote(json.dumps({"Statement": [{"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]}))
    assert explicit_deny({"p": quoted}, "sqs:SendMessage", old) is not None
    assert explicit_deny({"p": quoted}, "s3:GetObject", old) is None


@pytest.mark.parametrize(
    ("operator", "actual", "expected", "holds"),
    [
        ("DateLessThan", "2026-12-03T07:59:59.500Z", "2026-12-03T08:00:00Z", True),
        ("DateLessThan", "2026-12-03T08:00:00Z", "2026-12-03T08:00:00Z", False),
        ("DateLessThanEquals", "2026-12-03T08:00:00Z", "2026-12-03T08:00:00Z", True),
        ("DateGreaterThan", "2026-12-03T09:00:00+01:00", "2026-12-03T07:59:00Z", True),
        ("DateEquals", "1796284800", "2026-12-03T08:00:00Z", True),
        ("DateNotEquals", "2026-12-03T08:00:00Z", "2026-12-03T08:00:00Z", False),
        ("DateLessThan", "not a date", "2026-12-03T08:00:00Z", False),
    ],
)
def test_date_condition_operators(operator: str, actual: str, expected: str, holds: bool) -> None:
    assert conditions_match({operator: {"aws:TokenIssueTime": expected}}, {"aws:TokenIssueTime": [actual]}) is holds


def test_iso_time_and_error_codes() -> None:
    assert iso_time(datetime(2026, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)) == "2026-12-03T08:00:00.123Z"
    assert access_denied_code("rest-xml") == "AccessDenied"
    assert access_denied_code("query") == "AccessDenied"
    assert access_denied_code("json") == "AccessDeniedException"

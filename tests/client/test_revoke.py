"""``credvend revoke`` (CONTRACT §11) against IAM (moto), and the revocation documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from credvend_policy.revocation import (
    POLICY_NAME,
    parse_time,
    revocation_statement,
    revocation_time,
    revocations,
    with_revocation,
    without_revocation,
)

POLICY = """\
version: 1
roles:
  reports-reader:
    create: true
    max_session_duration: 14400
  audit-reader:
    create: true
    role_name: AuditReaderRole
  partner-writer:
    arn: arn:aws:iam::210987654321:role/PartnerWriter
callers:
  billing-api:
    iam_principals: [arn:aws:iam::123456789012:role/billing-api-task]
    grants:
      - {role: reports-reader}
      - {role: audit-reader}
      - {role: partner-writer}
  batch:
    iam_principals: [arn:aws:iam::123456789012:user/batch]
    grants:
      - {role: reports-reader}
"""
TRUST = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}
)
FOREIGN = {"Sid": "SomeoneElses", "Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}


@pytest.fixture
def iam(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("CREDVEND_POLICY_FILE", str(policy))
    with mock_aws():
        client = boto3.client("iam", region_name="us-east-1")
        for name in ("ReportsReader", "AuditReaderRole"):
            client.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
        yield client


def revocation_document(iam: Any, role: str) -> dict[str, Any] | None:
    try:
        return dict(iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME)["PolicyDocument"])
    except iam.exceptions.NoSuchEntityException:
        return None


def test_revoke_denies_the_callers_sessions_on_each_granted_created_role(iam: Any, run_cli: Any) -> None:
    result = run_cli("revoke", "--caller", "billing-api", "--before", "2026-12-03T08:00:00Z")
    assert result.code == 0, result.err
    answer = json.loads(result.out)
    assert answer["SourceIdentity"] == "billing-api"
    assert answer["Before"] == "2026-12-03T08:00:00Z"
    assert {(r["Role"], r["RoleName"]) for r in answer["Revoked"]} == {
        ("reports-reader", "ReportsReader"),
        ("audit-reader", "AuditReaderRole"),
    }
    for role in ("ReportsReader", "AuditReaderRole"):
        [statement] = revocation_document(iam, role)["Statement"]  # type: ignore[index]
        assert statement["Effect"] == "Deny"
        assert (statement["Action"], statement["Resource"]) == ("*", "*")
        assert statement["Condition"] == {
            "StringEquals": {"aws:SourceIdentity": "billing-api"},
            "DateLessThan": {"aws:TokenIssueTime": "2026-12-03T08:00:00Z"},
        }
    # the external role: nothing applied, the statement printed for its owner
    [external] = answer["External"]
    assert external["RoleArn"] == "arn:aws:iam::210987654321:role/PartnerWriter"
    assert external["Statement"]["Condition"]["StringEquals"] == {"aws:SourceIdentity": "billing-api"}


def test_one_statement_per_caller_merged_with_what_is_there(iam: Any, run_cli: Any) -> None:
    iam.put_role_policy(
        RoleName="ReportsReader",
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [FOREIGN]}),
    )
    assert run_cli("revoke", "--caller", "batch", "--before", "2026-12-03T08:00:00Z").code == 0
    assert run_cli("revoke", "--caller", "billing-api", "--role", "reports-reader").code == 0
    assert run_cli("revoke", "--caller", "batch", "--before", "2026-12-03T09:30:00+01:00").code == 0

    statements = revocation_document(iam, "ReportsReader")["Statement"]  # type: ignore[index]
    assert statements[0] == FOREIGN
    by_identity = {s["Condition"]["StringEquals"]["aws:SourceIdentity"]: s for s in statements[1:]}
    assert set(by_identity) == {"batch", "billing-api"}
    assert by_identity["batch"]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2026-12-03T08:30:00Z"
    assert revocation_document(iam, "AuditReaderRole") is None  # --role: only the one named


def test_list_and_clear(iam: Any, run_cli: Any) -> None:
    run_cli("revoke", "--caller", "billing-api", "--before", "2026-12-03T08:00:00Z")
    run_cli("revoke", "--caller", "batch", "--before", "2026-12-03T08:00:05Z")
    listed = json.loads(run_cli("revoke", "--list").out)["Revocations"]
    assert sorted((r["RoleName"], r["Caller"], r["Before"]) for r in listed) == [
        ("AuditReaderRole", "billing-api", "2026-12-03T08:00:00Z"),
        ("ReportsReader", "batch", "2026-12-03T08:00:05Z"),
        ("ReportsReader", "billing-api", "2026-12-03T08:00:00Z"),
    ]

    result = run_cli("revoke", "--clear", "--caller", "billing-api")
    assert result.code == 0, result.err
    assert {c["RoleName"] for c in json.loads(result.out)["Cleared"]} == {"ReportsReader", "AuditReaderRole"}
    assert revocation_document(iam, "AuditReaderRole") is None  # nothing left: the policy is deleted
    [left] = revocation_document(iam, "ReportsReader")["Statement"]  # type: ignore[index]
    assert left["Condition"]["StringEquals"] == {"aws:SourceIdentity": "batch"}
    assert json.loads(run_cli("revoke", "--clear", "--caller", "billing-api").out)["Cleared"] == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["revoke"], "--caller"),
        (["revoke", "--caller", "nobody"], "UnknownCaller"),
        (["revoke", "--caller", "batch", "--role", "no-such"], "UnknownRole"),
        (["revoke", "--caller", "batch", "--before", "2026-12-03T08:00:00"], "InvalidTime"),
        (["revoke", "--caller", "batch", "--before", "yesterday"], "InvalidTime"),
        (["revoke", "--list", "--caller", "batch"], "--list takes no"),
        (["revoke", "--list", "--clear"], "not allowed with"),
    ],
)
def test_usage_errors(iam: Any, run_cli: Any, argv: list[str], needle: str) -> None:
    result = run_cli(*argv)
    assert result.code == 2
    assert needle in result.err
    assert result.out == ""


def test_a_caller_gone_from_the_policy_is_revoked_by_naming_its_roles(iam: Any, run_cli: Any) -> None:
    result = run_cli("revoke", "--caller", "old-job", "--role", "reports-reader")
    assert result.code == 0, result.err
    [statement] = revocation_document(iam, "ReportsReader")["Statement"]  # type: ignore[index]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceIdentity": "old-job"}


def test_a_role_that_is_not_deployed_is_a_clear_error(iam: Any, run_cli: Any) -> None:
    iam.delete_role(RoleName="AuditReaderRole")
    result = run_cli("revoke", "--caller", "billing-api")
    assert result.code == 2
    assert "NoSuchRole" in result.err and "AuditReaderRole" in result.err


# --- the documents ---------------------------------------------------------------------------


def test_revocation_time_rounds_up_to_the_next_second() -> None:
    assert revocation_time(datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)) == "2026-12-03T08:00:00Z"
    # a session issued at 08:00:00.2 must be covered by a revocation at 08:00:00.7
    assert revocation_time(datetime(2026, 12, 3, 8, 0, 0, 700000, tzinfo=UTC)) == "2026-12-03T08:00:01Z"


def test_documents_round_trip() -> None:
    before = parse_time("2026-12-03T08:00:00Z")
    document = with_revocation(None, revocation_statement("app-a", before))
    document = with_revocation(document, revocation_statement("app-b", before))
    assert [(r.source_identity, r.before) for r in revocations(document)] == [("app-a", before), ("app-b", before)]
    assert [r.source_identity for r in revocations(without_revocation(document, "app-a"))] == ["app-b"]
    assert without_revocation(without_revocation(document, "app-a"), "app-b") is None


def test_statement_ids_are_legal_and_distinct() -> None:
    before = parse_time("2026-12-03T08:00:00Z")
    sids = {revocation_statement(name, before)["Sid"] for name in ("a.b", "a-b", "ab", "x" * 64)}
    assert len(sids) == 4
    assert all(sid.isalnum() for sid in sids)

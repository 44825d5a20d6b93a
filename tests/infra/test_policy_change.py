"""Editing policy.yaml changes exactly the IAM it should, and nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.assembly import TRUST_POLICY_DIR
from tests.infra.synthesis import (
    ACCOUNT_ENV,
    BASE_POLICY,
    Synth,
    as_list,
    function_statements,
    statements_of,
    synth,
)

# One new caller granted an existing role (and the external one); one new created role.
NEW_CALLER_AND_ROLE = BASE_POLICY.replace(
    "callers:\n",
    """\
  audit-reader:
    create: true
    max_session_duration: 7200
callers:
  auditor:
    iam_principals: [arn:aws:iam::123456789012:role/auditor]
    grants:
      - role: reports-reader
      - role: audit-reader
        max_duration_seconds: 3600
      - role: partner-writer
""",
)

# Only a caller's cap changes: the service clamps it at run time; no IAM changes.
NEW_CAP = BASE_POLICY.replace("max_duration_seconds: 7200", "max_duration_seconds: 1800")


def _trust_policies(api: Synth) -> dict[str, Any]:
    """Created role name -> (trust policy, MaxSessionDuration)."""
    return {
        role.role_name: (api.stack.resolve(role.assume_role_policy_document), role.max_session_duration)
        for role in api.stack.target_roles.roles.values()
    }


def _assumable(api: Synth) -> set[str]:
    return {
        resource
        for statement in function_statements(api)
        if "sts:AssumeRole" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }


def _external(api: Synth) -> dict[str, Any]:
    folder = api.outdir / TRUST_POLICY_DIR
    return {path.name: json.loads(path.read_text()) for path in folder.iterdir()}


def _iam_resources(api: Synth) -> dict[str, Any]:
    return {
        key: value
        for key, value in api.resources.items()
        if value["Type"].startswith("AWS::IAM::") or value["Type"] == "AWS::Lambda::Permission"
    }


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(tmp_path_factory.mktemp("changed"), NEW_CALLER_AND_ROLE, environ=ACCOUNT_ENV)


def test_new_caller_is_added_to_the_trust_of_exactly_its_roles(in_account: Synth, changed: Synth) -> None:
    before, after = _trust_policies(in_account), _trust_policies(changed)
    assert set(after) - set(before) == {"AuditReader"}
    changed_roles = {name for name in before if before[name] != after[name]}
    assert changed_roles == {"ReportsReader"}
    (old,) = statements_of(before["ReportsReader"][0])
    (new,) = statements_of(after["ReportsReader"][0])
    assert as_list(new["Condition"]["StringEquals"]["sts:SourceIdentity"]) == ["auditor", "billing-api", "ci"]
    old["Condition"]["StringEquals"]["sts:SourceIdentity"] = new["Condition"]["StringEquals"]["sts:SourceIdentity"]
    assert old == new  # nothing else in the statement moved


def test_new_role_is_created_with_its_trust_and_duration(changed: Synth) -> None:
    document, max_duration = _trust_policies(changed)["AuditReader"]
    (statement,) = statements_of(document)
    assert statement["Condition"]["StringEquals"]["sts:SourceIdentity"] == ["auditor"]
    assert statement["Condition"]["NumericLessThanEqualsIfExists"] == {"sts:DurationSeconds": 7200}
    assert max_duration == 7200


def test_a_new_created_role_leaves_the_function_permissions_alone(in_account: Synth, changed: Synth) -> None:
    # Created roles are selected by the stack's tag, so the permission does not grow.
    assert function_statements(changed) == function_statements(in_account)
    role = changed.resources[changed.logical_id(changed.stack.target_roles.roles["audit-reader"])]
    tags = {tag["Key"]: tag["Value"] for tag in role["Properties"]["Tags"]}
    assert tags["credvend:stack"] == changed.stack.stack_name


def test_external_owner_sees_the_new_caller(in_account: Synth, changed: Synth) -> None:
    before, after = _external(in_account), _external(changed)
    assert set(before) == set(after) == {"partner-writer.json"}
    identities = after["partner-writer.json"]["Statement"][0]["Condition"]["StringEquals"]["sts:SourceIdentity"]
    assert identities == ["auditor", "billing-api"]  # file order


def test_a_new_cap_changes_no_iam(in_account: Synth, tmp_path) -> None:
    capped = synth(tmp_path, NEW_CAP, environ=ACCOUNT_ENV)
    assert _iam_resources(capped) == _iam_resources(in_account)
    assert _external(capped) == _external(in_account)


def _api_policy(api: Synth) -> dict[str, Any]:
    (rest_api,) = api.of_type("AWS::ApiGateway::RestApi").values()
    return rest_api["Properties"]["Policy"]


def test_a_new_caller_in_a_known_account_leaves_the_api_policy_alone(in_account: Synth, changed: Synth) -> None:
    # The API admits accounts; the function authorizes each caller by the policy file.
    assert _api_policy(changed) == _api_policy(in_account)
    assert set(changed.of_type("AWS::ApiGateway::Deployment")) == set(in_account.of_type("AWS::ApiGateway::Deployment"))


def test_a_caller_in_a_new_account_adds_exactly_that_account(in_account: Synth, tmp_path) -> None:
    elsewhere = synth(
        tmp_path,
        NEW_CALLER_AND_ROLE.replace("123456789012:role/auditor", "444455556666:role/auditor"),
        environ=ACCOUNT_ENV,
    )
    before, after = _api_policy(in_account)["Statement"], _api_policy(elsewhere)["Statement"]
    allow_before, deny_before, public_before = before  # public: the OIDC routes
    allow_after, deny_after, public_after = after
    assert public_after == public_before
    assert as_list(allow_after["Principal"]["AWS"]) == [
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::444455556666:root",
    ]
    assert deny_after["Condition"] == {"StringNotEquals": {"aws:PrincipalAccount": ["123456789012", "444455556666"]}}
    assert {key: value for key, value in allow_after.items() if key != "Principal"} == {
        key: value for key, value in allow_before.items() if key != "Principal"
    }
    assert {key: value for key, value in deny_after.items() if key != "Condition"} == {
        key: value for key, value in deny_before.items() if key != "Condition"
    }
    # API Gateway applies a resource policy only when the stage is redeployed.
    assert set(elsewhere.of_type("AWS::ApiGateway::Deployment")) != set(
        in_account.of_type("AWS::ApiGateway::Deployment")
    )

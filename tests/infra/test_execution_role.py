"""The function's own permissions: exactly the policy's roles, nothing on "*"."""

from __future__ import annotations

from typing import Any

from tests.infra.synthesis import ACCOUNT, Synth, as_list, function_statements, statements_of

POLICY_ROLE_ARNS = {
    f"arn:aws:iam::{ACCOUNT}:role/ReportsReader",
    f"arn:aws:iam::{ACCOUNT}:role/CredvendDeployer",
    f"arn:aws:iam::{ACCOUNT}:role/Dormant",
    "arn:aws:iam::210987654321:role/PartnerWriter",
}


def _sts_resources(api: Synth, action: str) -> list[Any]:
    return [
        resource
        for statement in function_statements(api)
        if action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]


def test_function_may_assume_exactly_the_policy_roles(in_account: Synth) -> None:
    for action in ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"):
        resources = _sts_resources(in_account, action)
        assert sorted(resources) == sorted(POLICY_ROLE_ARNS), action


def test_created_role_arns_are_computed_like_the_function_does_when_the_account_is_unknown(agnostic: Synth) -> None:
    def in_this_account(name: str) -> dict[str, Any]:
        return {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":role/{name}"]]
        }

    resources = _sts_resources(agnostic, "sts:AssumeRole")
    expected = [in_this_account(name) for name in ("ReportsReader", "CredvendDeployer", "Dormant")]
    expected.append("arn:aws:iam::210987654321:role/PartnerWriter")
    assert len(resources) == len(expected)
    assert all(resource in resources for resource in expected)


def test_nothing_on_star(agnostic: Synth) -> None:
    # GetCallerIdentity (role-chaining detection) needs no permission, so it gets none.
    for statement in function_statements(agnostic):
        actions = as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in actions), actions
        assert "*" not in as_list(statement["Resource"]), statement
    assert _sts_resources(agnostic, "sts:GetCallerIdentity") == []


def test_function_writes_only_its_own_log_group(agnostic: Synth) -> None:
    group_id = agnostic.logical_id(agnostic.stack.vending.log_group)
    log_statements = [
        statement
        for statement in function_statements(agnostic)
        if any(action.startswith("logs:") for action in as_list(statement["Action"]))
    ]
    assert log_statements
    for statement in log_statements:
        assert sorted(as_list(statement["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [group_id, "Arn"]}]


def test_no_identity_policy_in_the_stack_grants_sts_on_star(agnostic: Synth) -> None:
    documents = [policy["Properties"]["PolicyDocument"] for policy in agnostic.of_type("AWS::IAM::Policy").values()]
    for role in agnostic.of_type("AWS::IAM::Role").values():
        documents += [inline["PolicyDocument"] for inline in role["Properties"].get("Policies", [])]
    assert documents
    for document in documents:
        for statement in statements_of(document):
            actions = as_list(statement["Action"])
            if "*" in as_list(statement["Resource"]):
                assert not any(action.startswith("sts:") for action in actions)
            assert "sts:*" not in actions

"""The function's own permissions: exactly the policy's roles, nothing on "*"."""

from __future__ import annotations

from typing import Any

from tests.infra.synthesis import ACCOUNT, Synth, as_list, function_statements, statements_of

EXTERNAL_ROLE_ARN = "arn:aws:iam::210987654321:role/PartnerWriter"


def _sts_statements(api: Synth) -> list[dict[str, Any]]:
    return [statement for statement in function_statements(api) if "sts:AssumeRole" in as_list(statement["Action"])]


def _sts_resources(api: Synth, action: str) -> list[Any]:
    return [
        resource
        for statement in function_statements(api)
        if action in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    ]


def test_created_roles_are_selected_by_the_stack_tag(in_account: Synth) -> None:
    (tagged,) = [s for s in _sts_statements(in_account) if as_list(s["Resource"]) == [f"arn:aws:iam::{ACCOUNT}:role/*"]]
    assert sorted(as_list(tagged["Action"])) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert tagged["Condition"]["StringEquals"] == {"aws:ResourceTag/credvend:stack": "Credvend"}
    # ...and every created role carries exactly that tag.
    for role in in_account.of_type("AWS::IAM::Role").values():
        if "credvend:alias" in str(role["Properties"].get("Tags")):
            assert {"Key": "credvend:stack", "Value": "Credvend"} in role["Properties"]["Tags"]


def test_roles_in_other_accounts_are_listed_by_arn(in_account: Synth) -> None:
    for action in ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"):
        resources = _sts_resources(in_account, action)
        assert sorted(resources) == sorted([f"arn:aws:iam::{ACCOUNT}:role/*", EXTERNAL_ROLE_ARN]), action


def test_every_permission_works_only_from_inside_the_function(agnostic: Synth) -> None:
    function_id = agnostic.logical_id(agnostic.stack.vending.function)
    statements = function_statements(agnostic)
    assert statements
    for statement in statements:
        assert statement["Condition"]["ArnEquals"] == {"lambda:SourceFunctionArn": {"Fn::GetAtt": [function_id, "Arn"]}}


def test_no_dependency_cycle_between_the_function_and_its_permissions(agnostic: Synth) -> None:
    # The permissions name the function, so they must live outside the role the function needs.
    function = agnostic.resources[agnostic.logical_id(agnostic.stack.vending.function)]
    role = agnostic.resources[agnostic.function_role_id]["Properties"]
    assert "Policies" not in role
    assert "ManagedPolicyArns" not in role
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        assert not set(agnostic.of_type(kind)) & set(function.get("DependsOn", []))


def test_external_role_arns_are_split_into_managed_policies_within_quota() -> None:
    from credvend_policy.quotas import EXTERNAL_STATEMENT_OVERHEAD, MANAGED_POLICY, chunk_arns

    # 200 roles with the longest names IAM allows: too many for one policy of any kind.
    arns = [f"arn:aws-us-gov:iam::{index:012d}:role/{'r' * 60}{index:04d}" for index in range(200)]
    chunks = chunk_arns(arns, statement_overhead=EXTERNAL_STATEMENT_OVERHEAD)
    assert [arn for chunk in chunks for arn in chunk] == arns  # all of them, in order
    assert 1 < len(chunks) <= 5
    for chunk in chunks:
        listed = sum(len(arn) + 3 for arn in chunk)
        assert listed + EXTERNAL_STATEMENT_OVERHEAD <= MANAGED_POLICY


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

"""The created roles: who may assume them, how, for whom, and for how long."""

from __future__ import annotations

from typing import Any

import pytest

from credvend_policy import trust_policy_document
from tests.infra.synthesis import Synth, as_list, statements_of

# alias -> (role name, MaxSessionDuration, callers granted it), as BASE_POLICY says.
CREATED = {
    "reports-reader": ("ReportsReader", 14400, ["billing-api", "ci"]),
    "deployer": ("CredvendDeployer", 43200, ["ci"]),
    "dormant": ("Dormant", 3600, []),
}


def _role(api: Synth, alias: str) -> dict[str, Any]:
    return api.resources[api.logical_id(api.stack.target_roles.roles[alias])]["Properties"]


def test_exactly_the_create_true_roles_are_created(agnostic: Synth) -> None:
    names = {
        role["Properties"].get("RoleName")
        for role in agnostic.of_type("AWS::IAM::Role").values()
        if "CredvendVendingFunction" in str(role["Properties"]["AssumeRolePolicyDocument"])
    }
    assert names == {name for name, _, _ in CREATED.values()}


@pytest.mark.parametrize("alias", sorted(CREATED))
def test_role_name_and_max_session_duration(agnostic: Synth, alias: str) -> None:
    name, max_duration, _ = CREATED[alias]
    role = _role(agnostic, alias)
    assert role["RoleName"] == name
    assert role["MaxSessionDuration"] == max_duration


@pytest.mark.parametrize("alias", sorted(CREATED))
def test_trust_policy_admits_only_the_function_for_the_granted_callers(agnostic: Synth, alias: str) -> None:
    _, max_duration, callers = CREATED[alias]
    (statement,) = statements_of(_role(agnostic, alias)["AssumeRolePolicyDocument"])
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": {"Fn::GetAtt": [agnostic.function_role_id, "Arn"]}}
    assert sorted(as_list(statement["Action"])) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    condition = statement["Condition"]
    assert set(condition) == {"StringEquals", "NumericLessThanEqualsIfExists"}
    # A plain NumericLessThanEquals on a key AssumeRole does not carry would never match.
    assert condition["NumericLessThanEqualsIfExists"] == {"sts:DurationSeconds": max_duration}
    identities = as_list(condition["StringEquals"]["sts:SourceIdentity"])
    if callers:
        assert identities == callers
    else:  # nobody granted: a value STS can never send (':' is illegal in a SourceIdentity)
        assert identities == ["credvend:no-caller-granted"]
    assert "sts:ExternalId" not in condition["StringEquals"]


@pytest.mark.parametrize("alias", sorted(CREATED))
def test_trust_policy_is_the_shared_builders_output(agnostic: Synth, alias: str) -> None:
    principal = {"Fn::GetAtt": [agnostic.function_role_id, "Arn"]}
    expected = trust_policy_document(agnostic.policy, alias, vending_role_arn="<principal>")
    expected["Statement"][0]["Principal"]["AWS"] = principal
    assert _role(agnostic, alias)["AssumeRolePolicyDocument"] == expected


def test_managed_policies_come_from_the_policy_file(agnostic: Synth) -> None:
    assert _role(agnostic, "reports-reader")["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    assert "ManagedPolicyArns" not in _role(agnostic, "deployer")


def test_roles_in_other_accounts_are_not_created(agnostic: Synth) -> None:
    assert "partner-writer" not in agnostic.stack.target_roles.roles
    assert "PartnerWriter" not in {
        role["Properties"].get("RoleName") for role in agnostic.of_type("AWS::IAM::Role").values()
    }

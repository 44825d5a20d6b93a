"""Stack outputs and the trust policies that owners of roles in other accounts apply."""

from __future__ import annotations

import json
from typing import Any

from credvend_policy import trust_policy_document
from infra.assembly import TRUST_POLICY_DIR
from tests.infra.synthesis import ACCOUNT, Synth

FUNCTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/Credvend-VendingFunction"
PRINCIPAL_MARKER = "<function-role-arn>"


def _render(value: Any, substitutions: dict[str, str]) -> str:
    """A CloudFormation string value with its intrinsics replaced by the given texts."""
    if isinstance(value, str):
        return value
    (parts,) = [value["Fn::Join"][1]]
    return "".join(part if isinstance(part, str) else substitutions[json.dumps(part, sort_keys=True)] for part in parts)


def test_outputs_are_a_fixed_few_whatever_the_number_of_roles(agnostic: Synth) -> None:
    # Per-role outputs would need 203 of CloudFormation's 200 outputs for 200 roles.
    assert set(agnostic.outputs) == {"ApiUrl", "FunctionName", "FunctionRoleArn", "RoleArns", "TrustPolicies"}
    assert agnostic.outputs["FunctionRoleArn"]["Value"] == {"Fn::GetAtt": [agnostic.function_role_id, "Arn"]}


def test_role_arns_output_maps_each_created_alias_to_its_role(agnostic: Synth) -> None:
    ids = {alias: agnostic.logical_id(role) for alias, role in agnostic.stack.target_roles.roles.items()}
    substitutions = {
        json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}, sort_keys=True): f"<{alias}>"
        for alias, logical_id in ids.items()
    }
    mapping = json.loads(_render(agnostic.outputs["RoleArns"]["Value"], substitutions))
    assert mapping == {"reports-reader": "<reports-reader>", "deployer": "<deployer>", "dormant": "<dormant>"}


def test_trust_policies_output_is_the_shared_builders_output(agnostic: Synth) -> None:
    principal = json.dumps({"Fn::GetAtt": [agnostic.function_role_id, "Arn"]}, sort_keys=True)
    text = _render(agnostic.outputs["TrustPolicies"]["Value"], {principal: PRINCIPAL_MARKER})
    expected = trust_policy_document(agnostic.policy, "partner-writer", vending_role_arn=PRINCIPAL_MARKER)
    assert json.loads(text) == {"partner-writer": expected}


def test_trust_policy_file_is_the_shared_builders_output(in_account: Synth) -> None:
    written = json.loads((in_account.outdir / TRUST_POLICY_DIR / "partner-writer.json").read_text())
    assert written == trust_policy_document(in_account.policy, "partner-writer", vending_role_arn=FUNCTION_ROLE_ARN)
    condition = written["Statement"][0]["Condition"]
    assert condition["StringEquals"] == {"sts:SourceIdentity": ["billing-api"], "sts:ExternalId": "a-shared-id"}
    assert condition["NumericLessThanEqualsIfExists"] == {"sts:DurationSeconds": 7200}


def test_trust_policy_files_exist_only_for_roles_in_other_accounts(in_account: Synth) -> None:
    files = sorted(path.name for path in (in_account.outdir / TRUST_POLICY_DIR).iterdir())
    assert files == ["partner-writer.json"]


def test_without_an_account_the_file_says_where_the_account_goes(agnostic: Synth) -> None:
    written = json.loads((agnostic.outdir / TRUST_POLICY_DIR / "partner-writer.json").read_text())
    assert written["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::ACCOUNT_ID:role/Credvend-VendingFunction"}

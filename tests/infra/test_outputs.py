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


def test_outputs_name_the_endpoint_the_function_and_every_role(agnostic: Synth) -> None:
    assert set(agnostic.outputs) == {
        "ApiUrl",
        "FunctionName",
        "FunctionRoleArn",
        "RoleArnReportsReader",
        "RoleArnDeployer",
        "RoleArnDormant",
        "TrustPolicyPartnerWriter",
    }
    assert agnostic.outputs["FunctionRoleArn"]["Value"] == {"Fn::GetAtt": [agnostic.function_role_id, "Arn"]}
    deployer_id = agnostic.logical_id(agnostic.stack.target_roles.roles["deployer"])
    assert agnostic.outputs["RoleArnDeployer"]["Value"] == {"Fn::GetAtt": [deployer_id, "Arn"]}


def test_trust_policy_output_is_the_shared_builders_output(agnostic: Synth) -> None:
    principal = json.dumps({"Fn::GetAtt": [agnostic.function_role_id, "Arn"]}, sort_keys=True)
    text = _render(agnostic.outputs["TrustPolicyPartnerWriter"]["Value"], {principal: PRINCIPAL_MARKER})
    expected = trust_policy_document(agnostic.policy, "partner-writer", vending_role_arn=PRINCIPAL_MARKER)
    assert json.loads(text) == expected


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

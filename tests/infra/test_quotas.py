"""AWS's quotas: every generated document stays within them, or the synth says which does not.

Most checks call the pure builders (trust policies, the API's resource policy) on generated
policies of 20, 200 and 1,000 callers; one real synth of 1,000 callers and 200 roles holds
the whole template against every quota, and one shows what a synth over a quota says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from credvend_local.policy_gen import generate_policy
from credvend_policy import Policy, parse_policy
from credvend_policy.api_policy import api_resource_policy
from credvend_policy.quotas import (
    API_RESOURCE_POLICY,
    TRUST_POLICY,
    TRUST_POLICY_MAX,
    Limits,
    iam_size,
)
from credvend_policy.trust import trust_policy, within_budget
from infra.quota_checks import estimate, template_findings
from tests.infra.synthesis import ACCOUNT_ENV, Synth, statements_of, synth

# The longest execution-role ARN a stack can have (stack names: 40 characters at most).
LONGEST_FUNCTION_ROLE = f"arn:aws-us-gov:iam::{'0' * 12}:role/{'S' * 40}-VendingFunction"


def _generated(callers: int, roles: int, **options: Any) -> Policy:
    return parse_policy(json.dumps(generate_policy(callers=callers, roles=roles, **options)), is_json=True)


def _principals(policy: Policy) -> list[str]:
    return [arn for caller in policy.callers.values() for arn in caller.iam_principals]


@pytest.mark.parametrize(("callers", "roles"), [(20, 10), (200, 40), (1000, 200)])
def test_generated_policies_fit_every_policy_quota(callers: int, roles: int) -> None:
    policy = _generated(callers, roles)
    for alias in policy.roles:
        trust = trust_policy(policy, alias, vending_role_arn=LONGEST_FUNCTION_ROLE)
        assert trust.size == iam_size(trust.document) <= TRUST_POLICY, alias
    api = api_resource_policy(_principals(policy))
    assert api is not None
    assert iam_size(api) <= API_RESOURCE_POLICY


def test_many_callers_on_one_role_fall_back_to_a_required_unlisted_source_identity() -> None:
    policy = _generated(300, 1)  # 300 callers granted role-000
    listed = trust_policy(policy, "role-000", vending_role_arn=LONGEST_FUNCTION_ROLE, budget=TRUST_POLICY_MAX)
    assert not listed.lists_dropped  # 4,096 holds them...
    fallback = trust_policy(policy, "role-000", vending_role_arn=LONGEST_FUNCTION_ROLE)
    assert fallback.lists_dropped  # ...2,048 does not
    assert fallback.size <= TRUST_POLICY
    (statement,) = statements_of(fallback.document)
    assert statement["Principal"] == {"AWS": LONGEST_FUNCTION_ROLE}  # still only the function
    assert statement["Condition"]["Null"] == {"sts:SourceIdentity": "false"}  # required, any value
    assert "sts:SourceIdentity" not in statement["Condition"].get("StringEquals", {})
    assert statement["Condition"]["NumericLessThanEqualsIfExists"] == {"sts:DurationSeconds": 43200}


def test_fallback_keeps_the_external_id() -> None:
    document = generate_policy(callers=300, roles=1)
    document["roles"]["role-000"]["external_id"] = "a-shared-id"
    policy = parse_policy(json.dumps(document), is_json=True)
    fallback = trust_policy(policy, "role-000", vending_role_arn=LONGEST_FUNCTION_ROLE)
    assert fallback.lists_dropped
    (statement,) = statements_of(fallback.document)
    assert statement["Condition"]["StringEquals"] == {"sts:ExternalId": "a-shared-id"}


def test_budget_is_measured_on_what_iam_will_see_not_on_a_placeholder() -> None:
    # A CDK token is shorter than the ARN it becomes: sizing must use the literal stand-in.
    policy = _generated(150, 1)
    token = "${Token[TOKEN.1]}"
    measured = trust_policy(policy, "role-000", vending_role_arn=token, measured_arn=LONGEST_FUNCTION_ROLE)
    literal = trust_policy(policy, "role-000", vending_role_arn=LONGEST_FUNCTION_ROLE)
    assert measured.lists_dropped == literal.lists_dropped
    assert measured.size == literal.size


def test_within_budget_is_reusable_for_other_documents() -> None:
    full = {"Statement": [{"Condition": {"StringEquals": {"k": ["x" * 30] * 100}}}]}
    reduced = {"Statement": [{"Condition": {"Null": {"k": "false"}}}]}
    assert within_budget(full, reduced, budget=10_000).lists_dropped is False
    chosen = within_budget(full, reduced, budget=2048)
    assert chosen.lists_dropped is True
    assert chosen.document == reduced


def test_estimates_never_undercount_intrinsics() -> None:
    resources = {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "Credvend-VendingFunction"}},
    }
    real_function = "arn:aws:lambda:ap-southeast-2:123456789012:function:Credvend-VendingFunction4B3C2D1E-AbCdEfGhIjKl"
    assert len(estimate({"Fn::GetAtt": ["Fn", "Arn"]}, resources)) >= len(real_function)
    role = estimate({"Fn::GetAtt": ["Role", "Arn"]}, resources)
    assert role.endswith(":role/Credvend-VendingFunction")
    assert len(role) >= len("arn:aws-us-gov:iam::123456789012:role/Credvend-VendingFunction")
    joined = estimate(
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":role/*"]]},
        resources,
    )
    assert len(joined) >= len("arn:aws-us-gov:iam::123456789012:role/*")


def test_cfn_json_values_are_counted_in_full() -> None:
    # What a trust policy with a token in a condition key looks like (CDK's CfnJson).
    subs = [f"repo:acme/app-{index}" for index in range(100)]
    before, after = json.dumps({"PROVIDER:sub": subs}).split("PROVIDER")
    resources = {
        "Provider": {"Type": "AWS::IAM::OIDCProvider", "Properties": {}},
        "Conditions": {
            "Type": "Custom::AWSCDKCfnJson",
            "Properties": {"Value": {"Fn::Join": ["", [before, {"Ref": "Provider"}, after]]}},
        },
    }
    document = {"Statement": [{"Condition": {"StringEquals": {"Fn::GetAtt": ["Conditions", "Value"]}}}]}
    estimated = estimate(document, resources)
    (values,) = estimated["Statement"][0]["Condition"]["StringEquals"].values()
    assert values == subs
    assert iam_size(estimated) > iam_size({"k": subs})


def test_findings_name_the_document_the_quota_and_the_size() -> None:
    template = {
        "Resources": {
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Policy": {"Statement": ["x" * 9000]}}},
        }
    }
    findings = template_findings(template, template_bytes=100, limits=Limits())
    (over,) = [finding for finding in findings if finding.exceeded]
    text = str(over)
    assert "resource policy of REST API Api" in text
    assert "API Gateway resource policy length quota of 8,192" in text
    assert "9,018 characters" in text


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The real app, with 1,000 callers and 200 roles (20 of them in another account)."""
    policy = yaml.safe_dump(generate_policy(callers=1000, roles=200), sort_keys=False)
    return synth(tmp_path_factory.mktemp("thousand"), policy, environ=ACCOUNT_ENV)


def test_a_thousand_callers_and_200_roles_synthesize_within_every_quota(thousand: Synth) -> None:
    assert thousand.stack.quota_checks is not None
    (findings,) = thousand.stack.quota_checks.findings.values()
    assert [str(finding) for finding in findings if finding.exceeded] == []
    documents = {finding.document for finding in findings}
    assert sum(document.startswith("trust policy of role") for document in documents) >= 180
    assert any(document.startswith("resource policy of REST API") for document in documents)
    assert any(document.startswith("inline policies of role Credvend-VendingFunction") for document in documents)
    assert len(thousand.outputs) <= 10


def test_a_thousand_callers_leave_the_api_and_execution_role_documents_as_small_as_twenty(
    thousand: Synth, in_account: Synth
) -> None:
    def measures(api: Synth) -> dict[str, int]:
        assert api.stack.quota_checks is not None
        (findings,) = api.stack.quota_checks.findings.values()
        return {finding.document.split(" (")[0]: finding.size for finding in findings}

    big, small = measures(thousand), measures(in_account)
    assert (
        big["inline policies of role Credvend-VendingFunction"]
        == small["inline policies of role Credvend-VendingFunction"]
    )
    (big_api,) = [size for name, size in big.items() if name.startswith("resource policy")]
    assert big_api < 2 * 700  # four caller accounts


def test_a_document_over_its_quota_fails_the_synth_naming_it(tmp_path: Path) -> None:
    # Callers in 250 accounts: an account list that no API resource policy can hold.
    document = generate_policy(callers=250, roles=5)
    for index, caller in enumerate(document["callers"].values()):
        caller["iam_principals"] = [f"arn:aws:iam::{index + 100_000_000_000:012d}:role/caller"]
    with pytest.raises(RuntimeError) as caught:
        synth(tmp_path, yaml.safe_dump(document))
    message = str(caught.value)
    assert "resource policy of REST API" in message
    assert "API Gateway resource policy length quota of 8,192" in message


def test_a_role_whose_callers_do_not_fit_is_warned_about_by_name(tmp_path: Path) -> None:
    from aws_cdk.assertions import Annotations, Match

    crowded = synth(tmp_path, yaml.safe_dump(generate_policy(callers=300, roles=1)))
    (warning,) = Annotations.from_stack(crowded.stack).find_warning("*", Match.string_like_regexp("role-000"))
    assert "300 granted callers do not fit the 2,048-character trust policy" in str(warning.entry.data)
    (role,) = crowded.stack.target_roles.roles.values()
    (statement,) = statements_of(crowded.stack.resolve(role.assume_role_policy_document))
    assert statement["Condition"]["Null"] == {"sts:SourceIdentity": "false"}
    assert crowded.stack.target_roles.unlisted == ["role-000"]


def test_two_hundred_external_roles_fit_the_execution_role() -> None:
    from credvend_policy.quotas import policy_findings

    policy = _generated(200, 200, external_every=1)  # every role in another account
    report = policy_findings(policy)
    (managed,) = [f for f in report.findings if f.document.startswith("managed policies of the execution role")]
    assert "200 external role ARNs" in managed.document
    assert not managed.exceeded
    assert [str(f) for f in report.findings if f.exceeded] == []

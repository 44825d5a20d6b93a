"""Every synth checks the template it wrote against AWS's quotas (credvend_policy.quotas).

LocalStack enforces none of these quotas and CloudFormation checks most of them only when
it reaches the resource, halfway through a deploy. So the app measures each generated
document in the synthesized template — every role's trust policy, each role's inline
policies together, each managed policy and how many a role has, the API's resource
policy, the number of outputs and resources, the template's size — and fails the synth
(a CDK policy-validation plugin, like cdk-nag) naming the document, the quota and the size.

Intrinsics are counted at their longest: a template says ``{"Ref": "AWS::AccountId"}``
where IAM will see twelve digits, so each is replaced by a literal at least as long as
its value can be (``estimate``) before measuring. A document is never under-counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    IPolicyValidationContextBeta1,
    IPolicyValidationPluginBeta1,
    PolicyValidationPluginReportBeta1,
    PolicyViolatingResourceBeta1,
    PolicyViolationBeta1,
)

from credvend_policy.quotas import (
    API_RESOURCE_POLICY_QUOTA,
    MANAGED_POLICY_QUOTA,
    ROLE_INLINE_QUOTA,
    STACK_OUTPUTS_QUOTA,
    STACK_RESOURCES_QUOTA,
    TEMPLATE_QUOTA,
    Limits,
    QuotaFinding,
    iam_size,
)
from credvend_policy.trust import WIDEST_PARTITION

# Literals at least as long as what CloudFormation substitutes.
_ACCOUNT = "0" * 12
_REGION = "x" * 16  # the longest Region names today have 14 characters
_PSEUDO = {
    "AWS::Partition": WIDEST_PARTITION,
    "AWS::AccountId": _ACCOUNT,
    "AWS::Region": _REGION,
    "AWS::URLSuffix": "amazonaws.com.cn",
    "AWS::StackName": "x" * 128,
    "AWS::StackId": "x" * 160,
}
_NAME = "x" * 64  # a generated physical name (functions, roles, policies: 64 at most)
_UNKNOWN = "x" * 256  # anything else; generous, as only policies' own references matter


def _physical_name(resource: Mapping[str, Any], name_key: str, resources: Mapping[str, Any]) -> str:
    name = resource.get("Properties", {}).get(name_key)
    return estimate(name, resources) if name is not None else _NAME


def _ref(logical_id: str, resources: Mapping[str, Any]) -> str:
    if logical_id in _PSEUDO:
        return _PSEUDO[logical_id]
    resource = resources.get(logical_id, {})
    name_keys = {
        "AWS::IAM::Role": "RoleName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::Logs::LogGroup": "LogGroupName",
    }
    kind = resource.get("Type", "")
    if kind in name_keys:
        return _physical_name(resource, name_keys[kind], resources)
    if kind == "AWS::ApiGateway::RestApi":
        return "x" * 10
    return _UNKNOWN


def _get_att(logical_id: str, attribute: str, resources: Mapping[str, Any]) -> Any:
    resource = resources.get(logical_id, {})
    kind = resource.get("Type", "")
    prefix = f"arn:{WIDEST_PARTITION}"
    if attribute == "Arn" and kind == "AWS::IAM::Role":
        path = resource.get("Properties", {}).get("Path", "/")
        return f"{prefix}:iam::{_ACCOUNT}:role{estimate(path, resources)}{_ref(logical_id, resources)}"
    if attribute == "Arn" and kind == "AWS::Lambda::Function":
        return f"{prefix}:lambda:{_REGION}:{_ACCOUNT}:function:{_ref(logical_id, resources)}"
    if attribute == "Arn" and kind == "AWS::Logs::LogGroup":
        return f"{prefix}:logs:{_REGION}:{_ACCOUNT}:log-group:{_ref(logical_id, resources)}:*"
    if kind == "AWS::ApiGateway::RestApi":
        return "x" * 10
    if kind == "Custom::AWSCDKCfnJson" and attribute == "Value":
        # CDK's CfnJson (JSON whose keys hold tokens, e.g. an OIDC issuer's `<host>:aud`
        # condition key): its value is the JSON text of its Value property.
        text = estimate(resource.get("Properties", {}).get("Value"), resources)
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return text
    return _UNKNOWN


def estimate(value: Any, resources: Mapping[str, Any]) -> Any:
    """``value`` with every intrinsic replaced by a literal at least as long as its result."""
    if isinstance(value, list):
        return [estimate(item, resources) for item in value]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return _ref(argument, resources)
        if key == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return _get_att(logical_id, attribute, resources)
        if key == "Fn::Join":
            separator, parts = argument
            return separator.join(str(estimate(part, resources)) for part in parts)
        if key.startswith("Fn::"):
            return _UNKNOWN
    return {key: estimate(item, resources) for key, item in value.items()}


def _name(resource: Mapping[str, Any], logical_id: str, key: str) -> str:
    name = resource.get("Properties", {}).get(key)
    return name if isinstance(name, str) else logical_id


def _attached_to(policy: Mapping[str, Any], role_id: str) -> bool:
    return {"Ref": role_id} in policy.get("Properties", {}).get("Roles", [])


def template_findings(template: Mapping[str, Any], *, template_bytes: int, limits: Limits) -> list[QuotaFinding]:
    """Every quota-bound measure of ``template``, over its quota or not (``exceeded`` tells)."""
    resources: Mapping[str, Any] = template.get("Resources", {})
    findings: list[QuotaFinding] = []

    def size(document: Any) -> int:
        return iam_size(estimate(document, resources))

    by_type: dict[str, dict[str, Mapping[str, Any]]] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource.get("Type", ""), {})[logical_id] = resource

    for role_id, role in by_type.get("AWS::IAM::Role", {}).items():
        props = role.get("Properties", {})
        label = f"role {_name(role, role_id, 'RoleName')} ({role_id})"
        if "AssumeRolePolicyDocument" in props:
            findings.append(
                QuotaFinding(
                    f"trust policy of {label}", limits.trust_policy_quota, size(props["AssumeRolePolicyDocument"])
                )
            )
        inline = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        inline += [
            policy["Properties"]["PolicyDocument"]
            for policy in by_type.get("AWS::IAM::Policy", {}).values()
            if _attached_to(policy, role_id)
        ]
        if inline:
            findings.append(
                QuotaFinding(f"inline policies of {label}", ROLE_INLINE_QUOTA, sum(size(doc) for doc in inline))
            )
        managed = len(props.get("ManagedPolicyArns", [])) + sum(
            _attached_to(policy, role_id) for policy in by_type.get("AWS::IAM::ManagedPolicy", {}).values()
        )
        if managed:
            findings.append(
                QuotaFinding(f"managed policies of {label}", limits.managed_policies_per_role_quota, managed)
            )

    for policy_id, policy in by_type.get("AWS::IAM::ManagedPolicy", {}).items():
        findings.append(
            QuotaFinding(
                f"managed policy {policy_id}", MANAGED_POLICY_QUOTA, size(policy["Properties"]["PolicyDocument"])
            )
        )
    for api_id, api in by_type.get("AWS::ApiGateway::RestApi", {}).items():
        policy = api.get("Properties", {}).get("Policy")
        if policy is not None:
            findings.append(
                QuotaFinding(f"resource policy of REST API {api_id}", API_RESOURCE_POLICY_QUOTA, size(policy))
            )

    findings.append(QuotaFinding("stack outputs", STACK_OUTPUTS_QUOTA, len(template.get("Outputs", {}))))
    findings.append(QuotaFinding("stack resources", STACK_RESOURCES_QUOTA, len(resources)))
    findings.append(QuotaFinding("stack template", TEMPLATE_QUOTA, template_bytes))
    return findings


def check_template_file(path: Path, limits: Limits) -> list[QuotaFinding]:
    text = path.read_bytes()
    return template_findings(json.loads(text), template_bytes=len(text), limits=limits)


def _logical_id(finding: QuotaFinding) -> str:
    """The logical id a finding's document names in parentheses or last, if any."""
    label = finding.document
    if label.endswith(")") and "(" in label:
        return label[label.rindex("(") + 1 : -1]
    return label.rsplit(" ", 1)[-1]


@jsii.implements(IPolicyValidationPluginBeta1)
class QuotaChecks:
    """CDK policy-validation plugin: fails the synth on any document over an AWS quota.

    ``findings`` keeps the last measures (all of them, over or within), per template.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.findings: dict[str, list[QuotaFinding]] = {}

    @property
    def name(self) -> str:
        return "credvend-aws-quotas"

    @property
    def version(self) -> str | None:
        return None

    @property
    def rule_ids(self) -> list[str] | None:
        return None

    def validate(self, context: IPolicyValidationContextBeta1) -> PolicyValidationPluginReportBeta1:
        violations = []
        for template_path in context.template_paths:
            findings = check_template_file(Path(template_path), self.limits)
            self.findings[template_path] = findings
            violations += [
                PolicyViolationBeta1(
                    rule_name=finding.quota.name,
                    description=str(finding),
                    fix=self._fix(finding),
                    violating_resources=[
                        PolicyViolatingResourceBeta1(
                            resource_logical_id=_logical_id(finding), template_path=template_path, locations=[]
                        )
                    ],
                )
                for finding in findings
                if finding.exceeded
            ]
        return PolicyValidationPluginReportBeta1(success=not violations, violations=violations)

    @staticmethod
    def _fix(finding: QuotaFinding) -> str:
        if finding.quota is API_RESOURCE_POLICY_QUOTA:
            return "callers in too many accounts: set context `organization_id` to admit their AWS Organization"
        if finding.quota.raisable_with:
            return (
                f"raise the quota in Service Quotas, then set context `{finding.quota.raisable_with}`; "
                "or split the policy file over several stacks (context `stack_name`)"
            )
        return "split the policy file over several stacks (context `stack_name`)"

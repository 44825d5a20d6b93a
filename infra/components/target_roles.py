"""The ``create: true`` roles of the policy file, each trusting only the vending function."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnTag, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from credvend_policy import Policy
from credvend_policy.model import default_role_name
from credvend_policy.quotas import TRUST_POLICY
from credvend_policy.trust import WIDEST_ISSUER, trust_policy
from infra.nag import acknowledge

# Every created role carries this tag with the stack's name as its value: the execution
# role's permission selects the roles it may assume by it, so that permission stays one
# statement however many roles the policy creates (names and paths never change for it).
STACK_TAG = "credvend:stack"
ALIAS_TAG = "credvend:alias"


class TargetRoles(Construct):
    """One IAM role per ``create: true`` alias; ``role_arns`` maps alias to the role's ARN.

    The trust policy is ``trust_policy``'s output verbatim (an L1 role, so CDK adds nothing
    to it): the same builder makes the policies that owners of roles in other accounts
    apply by hand. A role whose list of granted callers would not fit the trust-policy
    budget gets the fallback document (source identity required, not listed) and a synth
    warning that names it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        vending_role_arn: str,
        stack_tag: str,
        measured_vending_role_arn: str | None = None,
        trust_policy_budget: int = TRUST_POLICY,
        issuer: str | None = None,
        oidc_provider_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.CfnRole] = {}
        self.unlisted: list[str] = []  # aliases whose trust policy does not list its callers
        for alias, spec in policy.roles.items():
            if not spec.create:
                continue
            role_name = spec.role_name or default_role_name(alias)
            trust = trust_policy(
                policy,
                alias,
                vending_role_arn=vending_role_arn,
                budget=trust_policy_budget,
                measured_arn=measured_vending_role_arn,
                issuer=issuer,
                oidc_provider_arn=oidc_provider_arn,
                measured_issuer=WIDEST_ISSUER,
            )
            document: Any = trust.document
            if policy.issuance_of(alias) == "web_identity":
                # The condition keys name the issuer, whose host holds the API's id: a token.
                # CloudFormation resolves no intrinsic in a JSON key, so the document goes as
                # a string (the property takes one), with the id joined in.
                document = Stack.of(self).to_json_string(document)
            role = iam.CfnRole(
                self,
                alias,
                role_name=role_name,
                description=f"credvend target role {alias!r}: vended to the callers granted it in the policy file",
                assume_role_policy_document=document,
                max_session_duration=spec.max_session_duration,
                managed_policy_arns=list(spec.managed_policy_arns) or None,
                tags=[CfnTag(key=ALIAS_TAG, value=alias), CfnTag(key=STACK_TAG, value=stack_tag)],
            )
            if trust.lists_dropped:
                self.unlisted.append(alias)
                Annotations.of(role).add_warning_v2(
                    "credvend:trust-policy-unlisted",
                    f"role {alias!r} ({role_name}): the {len(policy.callers_granted(alias))} granted callers do not "
                    f"fit the {trust_policy_budget:,}-character trust policy, so it requires a source identity "
                    "without listing them (the function still authorizes every caller). Raise the account's "
                    "quota and set context `trust_policy_quota` to list them.",
                )
            for managed_policy_arn in spec.managed_policy_arns:
                acknowledge(
                    role,
                    "AwsSolutions-IAM4",
                    finding=f"Policy::{managed_policy_arn}",
                    reason="The policy file's author chose this managed policy for the role, "
                    "so reviewing it is part of reviewing policy.yaml.",
                )
            self.roles[alias] = role

    @property
    def role_arns(self) -> dict[str, str]:
        return {alias: role.attr_arn for alias, role in self.roles.items()}

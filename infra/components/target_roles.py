"""The ``create: true`` roles of the policy file, each trusting only the vending function."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnTag, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from credvend_policy import Policy, trust_policy_document
from credvend_policy.model import default_role_name
from infra.nag import acknowledge


class TargetRoles(Construct):
    """One IAM role per ``create: true`` alias; ``role_arns`` maps alias to the role's ARN.

    The trust policy is ``trust_policy_document``'s output verbatim (an L1 role, so CDK
    adds nothing to it): the same builder makes the policies that owners of roles in
    other accounts apply by hand.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        vending_role_arn: str,
        issuer: str | None = None,
        oidc_provider_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.CfnRole] = {}
        for alias, spec in policy.roles.items():
            if not spec.create:
                continue
            document: Any = trust_policy_document(
                policy, alias, vending_role_arn=vending_role_arn, issuer=issuer, oidc_provider_arn=oidc_provider_arn
            )
            if policy.issuance_of(alias) == "web_identity":
                # The condition keys name the issuer, whose host holds the API's id: a token.
                # CloudFormation resolves no intrinsic in a JSON key, so the document goes as
                # a string (the property takes one), with the id joined in.
                document = Stack.of(self).to_json_string(document)
            role = iam.CfnRole(
                self,
                alias,
                role_name=spec.role_name or default_role_name(alias),
                description=f"credvend target role {alias!r}: vended to the callers granted it in the policy file",
                assume_role_policy_document=document,
                max_session_duration=spec.max_session_duration,
                managed_policy_arns=list(spec.managed_policy_arns) or None,
                tags=[CfnTag(key="credvend:alias", value=alias)],
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

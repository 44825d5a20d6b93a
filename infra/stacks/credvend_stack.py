"""The credvend stack: function, target roles, API, and the grants between them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from credvend_policy import Policy, trust_policy_document
from credvend_policy.trust import VENDING_ACTIONS
from infra.components.dashboard import OperationsDashboard
from infra.components.target_roles import TargetRoles
from infra.components.vending_api import VendingApi
from infra.components.vending_function import VendingFunction
from infra.config import RETENTION_BY_DAYS, DeploymentConfig

# Where an account number belongs in a file written while the account is still unknown.
ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"


def _pascal(alias: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", alias) if part)


class CredvendStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: Policy,
        config: DeploymentConfig,
        function_code_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.policy = policy
        self.config = config
        self._output_ids: set[str] = set()
        retention = RETENTION_BY_DAYS[config.log_retention_days]

        self.vending = VendingFunction(
            self,
            "Vending",
            code_dir=function_code_dir,
            role_name=config.function_role_name,
            architecture=config.architecture,
            log_retention=retention,
            reserved_concurrency=config.reserved_concurrency,
            tracing=config.tracing,
        )
        self.target_roles = TargetRoles(self, "TargetRoles", policy=policy, vending_role_arn=self.vending.role.role_arn)
        self._grant_vending(self.vending.role)
        self.api = VendingApi(
            self,
            "Api",
            handler=self.vending.function,
            api_name=self.stack_name,
            throttle_rate_limit=config.throttle_rate_limit,
            throttle_burst_limit=config.throttle_burst_limit,
            log_retention=retention,
            create_cloudwatch_role=config.api_cloudwatch_role,
            caller_principal_arns=[arn for caller in policy.callers.values() for arn in caller.iam_principals],
            tracing=config.tracing,
        )
        self.operations = OperationsDashboard(
            self,
            "Operations",
            namespace=self.vending.service_name,
            service_name=self.vending.service_name,
            function=self.vending.function,
            api=self.api.api,
        )
        self._outputs()

    # --- grants ---------------------------------------------------------------------------

    @property
    def vendable_role_arns(self) -> list[str]:
        """Every role ARN of the policy file, computed the way the function computes it at run time."""
        return [
            spec.arn_in(alias=alias, partition=self.partition, account=self.account)
            for alias, spec in self.policy.roles.items()
        ]

    def _grant_vending(self, role: iam.IRole) -> None:
        # Nothing on "*": the function's only other STS call, GetCallerIdentity, needs no
        # permission (IAM allows it to every identity, even against an explicit Deny).
        iam.Policy(
            self,
            "VendingPermissions",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="AssumeTheRolesOfThePolicyFile",
                    # The identity side of what every trust policy allows.
                    actions=list(VENDING_ACTIONS),
                    resources=self.vendable_role_arns,
                ),
            ],
        )

    # --- outputs --------------------------------------------------------------------------

    def _output_id(self, prefix: str, alias: str) -> str:
        output_id = f"{prefix}{_pascal(alias)}"
        if output_id in self._output_ids:  # aliases "a-b" and "a.b" both read "AB"
            output_id += hashlib.sha256(alias.encode()).hexdigest()[:6]
        self._output_ids.add(output_id)
        return output_id

    def _outputs(self) -> None:
        CfnOutput(
            self, "ApiUrl", value=self.api.url, description="Stage URL; the client's --endpoint / CREDVEND_ENDPOINT"
        )
        CfnOutput(self, "FunctionName", value=self.vending.function.function_name)
        CfnOutput(
            self,
            "FunctionRoleArn",
            value=self.vending.role.role_arn,
            description="The principal every target role's trust policy names",
        )
        for alias, arn in self.target_roles.role_arns.items():
            CfnOutput(self, self._output_id("RoleArn", alias), value=arn, description=f"ARN of created role {alias!r}")
        for alias in self.external_aliases:
            document = trust_policy_document(self.policy, alias, vending_role_arn=self.vending.role.role_arn)
            CfnOutput(
                self,
                self._output_id("TrustPolicy", alias),
                value=self.to_json_string(document),
                description=f"Trust policy the owner of {self.policy.roles[alias].arn} must apply (role {alias!r})",
            )

    # --- trust policies for roles in other accounts ---------------------------------------

    @property
    def external_aliases(self) -> list[str]:
        return [alias for alias, spec in self.policy.roles.items() if not spec.create]

    @property
    def function_role_arn_literal(self) -> str:
        """The execution role's ARN as text, with ACCOUNT_ID standing in for an unknown account."""
        partition = self.partition if not Token.is_unresolved(self.partition) else "aws"
        account = self.account if not Token.is_unresolved(self.account) else ACCOUNT_PLACEHOLDER
        return f"arn:{partition}:iam::{account}:role/{self.config.function_role_name}"

    def external_trust_policies(self) -> dict[str, dict[str, Any]]:
        """alias -> trust policy document for each ``arn:`` role, with a literal principal ARN."""
        arn = self.function_role_arn_literal
        return {
            alias: trust_policy_document(self.policy, alias, vending_role_arn=arn) for alias in self.external_aliases
        }

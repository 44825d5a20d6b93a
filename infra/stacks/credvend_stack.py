"""The credvend stack: function, target roles, API, and the grants between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack, Token
from aws_cdk import aws_iam as iam
from constructs import Construct

from credvend_policy import Policy, parse_arn
from credvend_policy.quotas import EXTERNAL_STATEMENT_OVERHEAD, chunk_arns
from credvend_policy.trust import VENDING_ACTIONS, WIDEST_ISSUER, WIDEST_PARTITION, oidc_provider_arn, trust_policy
from infra.components.dashboard import OperationsDashboard
from infra.components.issuer import PUBLIC_ROUTES, OidcIssuer
from infra.components.target_roles import STACK_TAG, TargetRoles
from infra.components.vending_api import STAGE_NAME, VendingApi
from infra.components.vending_function import VendingFunction
from infra.config import RETENTION_BY_DAYS, DeploymentConfig
from infra.nag import acknowledge
from infra.quota_checks import QuotaChecks

# Where an account number belongs in a file written while the account is still unknown.
ACCOUNT_PLACEHOLDER = "ACCOUNT_ID"
# Where the API's id belongs in an issuer URL written before the API exists.
API_ID_PLACEHOLDER = "API_ID"


class CredvendStack(Stack):
    # Set by infra.assembly.build_app: the quota plugin, whose findings the bench reports.
    quota_checks: QuotaChecks | None = None

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
            public_routes=PUBLIC_ROUTES if self.uses_web_identity else (),
            organization_id=config.organization_id,
            tracing=config.tracing,
        )
        self.issuer = self._oidc_issuer() if self.uses_web_identity else None
        self.target_roles = TargetRoles(
            self,
            "TargetRoles",
            policy=policy,
            vending_role_arn=self.vending.role.role_arn,
            stack_tag=self.stack_name,
            measured_vending_role_arn=self.function_role_arn_measured,
            trust_policy_budget=config.trust_policy_quota,
            issuer=self.issuer.issuer if self.issuer else None,
            oidc_provider_arn=self.issuer.provider_arn if self.issuer else None,
        )
        self._grant_vending(self.vending.role)
        self.operations = OperationsDashboard(
            self,
            "Operations",
            namespace=self.vending.service_name,
            service_name=self.vending.service_name,
            function=self.vending.function,
            api=self.api.api,
        )
        self._outputs()

    # --- web identity (CONTRACT §9) ------------------------------------------------------

    @property
    def uses_web_identity(self) -> bool:
        return any(self.policy.issuance_of(alias) == "web_identity" for alias in self.policy.roles)

    def _oidc_issuer(self) -> OidcIssuer:
        """The signing key, the OIDC provider and the public discovery routes; the function
        learns the issuer and the key from its environment and may sign with that key only."""
        issuer = OidcIssuer(
            self,
            "Issuer",
            api=self.api.api,
            integration=self.api.integration,
            stage_name=STAGE_NAME,
            signer_role_arn=self.vending.role.role_arn,
        )
        function = self.vending.function
        function.add_environment("CREDVEND_ISSUER", issuer.issuer)
        function.add_environment("CREDVEND_SIGNING_KEY", issuer.signing_key.key_arn)
        issuer.grant_signing(self.vending.role, function_arn=function.function_arn)
        return issuer

    # --- grants ---------------------------------------------------------------------------

    @property
    def external_role_arns(self) -> list[str]:
        """The ``arn:`` roles the function assumes. ``web_identity`` roles need no permission:
        their AssumeRoleWithWebIdentity call is unsigned, authorized by the token alone."""
        return [
            spec.arn
            for alias, spec in self.policy.roles.items()
            if spec.arn is not None and self.policy.issuance_of(alias) == "assume_role"
        ]

    def _grant_vending(self, role: iam.IRole) -> None:
        """The execution role's permissions, none of which grows with the roles it creates.

        Created roles are selected by the tag the stack sets on each (one statement for any
        number); roles in other accounts are listed, in customer managed policies of at most
        6,144 characters each (``external_role_policies``). Every statement holds only from
        inside the function (``lambda:SourceFunctionArn``; Lambda adds the key to the
        function's own calls and to the log writes it makes for it), so the role's
        credentials are useless elsewhere. It is a separate policy resource, not the role's
        inline policy: it names the function, which itself depends on the role.
        Nothing on "*": the function's only other STS call, GetCallerIdentity, needs no
        permission (IAM allows it to every identity, even against an explicit Deny).
        """
        on_function = self.from_the_function
        statements = []
        if self.target_roles.roles:
            statements.append(
                iam.PolicyStatement(
                    sid="AssumeRolesThisStackCreated",
                    # The identity side of what every trust policy allows.
                    actions=list(VENDING_ACTIONS),
                    resources=[f"arn:{self.partition}:iam::{self.account}:role/*"],
                    conditions={"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": self.stack_name}, **on_function},
                )
            )
        statements.append(
            iam.PolicyStatement(
                sid="WriteOwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                # A log group's Arn attribute ends in ":*": the streams inside it.
                resources=[self.vending.log_group.log_group_arn],
                conditions=on_function,
            )
        )
        permissions = iam.Policy(self, "VendingPermissions", roles=[role], statements=statements)
        if self.target_roles.roles:
            partition, account = self._as_nag_shows(self.partition), self._as_nag_shows(self.account)
            acknowledge(
                permissions,
                "AwsSolutions-IAM5",
                finding=f"Resource::arn:{partition}:iam::{account}:role/*",
                reason="Only roles tagged with this stack's name (the roles it creates), and only from inside the "
                "function; each such role's trust policy admits this execution role alone.",
            )
        self.external_role_policies: list[iam.ManagedPolicy] = []
        for index, arns in enumerate(
            chunk_arns(self.external_role_arns, statement_overhead=EXTERNAL_STATEMENT_OVERHEAD)
        ):
            self.external_role_policies.append(
                iam.ManagedPolicy(
                    self,
                    f"ExternalRoles{index + 1}",
                    description="credvend: the roles in other accounts that the policy file vends",
                    roles=[role],
                    statements=[
                        iam.PolicyStatement(
                            sid="AssumeTheListedRoles",
                            actions=list(VENDING_ACTIONS),
                            resources=arns,
                            conditions=on_function,
                        )
                    ],
                )
            )

    @staticmethod
    def _as_nag_shows(value: str) -> str:
        """A pseudo parameter as cdk-nag writes it in a finding: literal if known, else <AWS::...>."""
        if not Token.is_unresolved(value):
            return value
        return "<AWS::Partition>" if "Partition" in str(value) else "<AWS::AccountId>"

    @property
    def from_the_function(self) -> dict[str, Any]:
        """The condition that ties a permission of the execution role to the function itself."""
        return {"ArnEquals": {"lambda:SourceFunctionArn": self.vending.function.function_arn}}

    # --- outputs --------------------------------------------------------------------------

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
        if self.issuer is not None:
            CfnOutput(
                self,
                "IssuerUrl",
                value=self.issuer.issuer,
                description="credvend's OIDC issuer URL; web_identity roles trust its IAM OIDC provider",
            )
        # One output per role would cost 200 of CloudFormation's 200 outputs for 200 roles:
        # two JSON maps instead, alias -> value.
        if self.target_roles.role_arns:
            CfnOutput(
                self,
                "RoleArns",
                value=self.to_json_string(self.target_roles.role_arns),
                description="JSON map: alias -> ARN of each role the stack created",
            )
        if self.external_aliases:
            CfnOutput(
                self,
                "TrustPolicies",
                value=self.to_json_string(
                    {
                        alias: self.trust_document(alias, vending_role_arn=self.vending.role.role_arn)
                        for alias in self.external_aliases
                    }
                ),
                description="JSON map: alias -> trust policy the owner of that role (in another account) must apply",
            )

    # --- trust policies for roles in other accounts ---------------------------------------

    @property
    def external_aliases(self) -> list[str]:
        return [alias for alias, spec in self.policy.roles.items() if not spec.create]

    def trust_document(self, alias: str, *, vending_role_arn: str, issuer: str | None = None) -> dict[str, Any]:
        """The trust policy of ``alias``, sized as IAM will see it: the same document (and the
        same listed-or-not decision) in the template, the outputs and the assembly's files.
        A web_identity role trusts the issuer's provider in the role's own account (its owner
        creates it: ``credvend trust-policy``); ``issuer`` defaults to the stack's."""
        provider = None
        if self.policy.issuance_of(alias) == "web_identity":
            issuer = issuer or (self.issuer.issuer if self.issuer else None)
            parsed = parse_arn(self.policy.roles[alias].arn or "")
            if issuer is None or parsed is None:  # pragma: no cover - validated policy, issuer built
                raise ValueError(f"role {alias!r}: no issuer or no ARN")
            provider = oidc_provider_arn(issuer, partition=parsed.partition, account=parsed.account)
        return trust_policy(
            self.policy,
            alias,
            vending_role_arn=vending_role_arn,
            budget=self.config.trust_policy_quota,
            measured_arn=self.function_role_arn_measured,
            issuer=issuer,
            oidc_provider_arn=provider,
            measured_issuer=WIDEST_ISSUER,
        ).document

    @property
    def function_role_arn_measured(self) -> str:
        """A literal ARN at least as long as the execution role's will be, to size documents."""
        return f"arn:{WIDEST_PARTITION}:iam::{'0' * 12}:role/{self.config.function_role_name}"

    @property
    def function_role_arn_literal(self) -> str:
        """The execution role's ARN as text, with ACCOUNT_ID standing in for an unknown account."""
        partition = self.partition if not Token.is_unresolved(self.partition) else "aws"
        account = self.account if not Token.is_unresolved(self.account) else ACCOUNT_PLACEHOLDER
        return f"arn:{partition}:iam::{account}:role/{self.config.function_role_name}"

    def external_trust_policies(self) -> dict[str, dict[str, Any]]:
        """alias -> trust policy document for each ``arn:`` role, with a literal principal ARN."""
        arn = self.function_role_arn_literal
        region = self.region if not Token.is_unresolved(self.region) else "REGION"
        issuer = f"https://{API_ID_PLACEHOLDER}.execute-api.{region}.amazonaws.com/{STAGE_NAME}"
        return {
            alias: self.trust_document(alias, vending_role_arn=arn, issuer=issuer) for alias in self.external_aliases
        }
